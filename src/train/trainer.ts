/**
 * The training loop. It reads top to bottom like nanoGPT's: get batch,
 * forward, backward, the sharing hook, clip, step, log, eval, checkpoint.
 * Everything a resumed run needs is in the checkpoint, so `resume` is a flag
 * on the same loop, and a resumed run repeats the uninterrupted one exactly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import { BertForMaskedLM, type MlmBatch } from '../models/bert.js';
import { Optimizer, clipGradNorm } from '../optim/optimizers.js';
import { learningRate, learningRateAt } from '../optim/schedule.js';
import { SharingController, type SharingEvent } from '../sharing/controller.js';
import { parseShare, planGroups } from '../sharing/plan.js';
import { backward, clearTape, noGrad } from '../tensor/tensor.js';
import { bertConfigOf, criterionOf, shareOf, validateRunConfig, warmupOf, type RunConfig } from './config.js';
import { listCheckpoints, loadModelWeights, loadOptimizerState, pruneCheckpoints, readTrainerState, saveCheckpoint, CHECKPOINT_FILES, type TrainerState } from './checkpoint.js';
import { prepareData } from './data.js';
import { MetricsLog, type MetricRecord } from './metrics.js';
import { Progress, formatSeconds } from './progress.js';
import { ScalarEventWriter } from './tensorboard.js';
import { writeFileAtomic } from './fsutil.js';

export interface TrainOptions {
  config: RunConfig;
  /** Continue the run in `config`'s run folder from its newest checkpoint. */
  resume?: boolean;
  /** Stop after this many completed steps without a final checkpoint, as a crash would (tests). */
  haltAt?: number;
  /** Print progress (default true). */
  progress?: boolean;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  finalValLoss: number;
  finalValAcc: number;
  /** The unigram predictor on the same validation targets: the line a model must clearly beat. */
  unigramValLoss: number;
  unigramValAcc: number;
  seconds: number;
  /** Completed steps when the layers were untied (null if they never were). */
  untiedAt: number | null;
  uniqueParameters: number;
  parameters: number;
  /** True when Ctrl-C stopped the run early (after saving a checkpoint). */
  interrupted: boolean;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  tokens: number;
}

/** Mean MLM loss and accuracy over `batches` (dropout off, nothing recorded). */
export function evaluate(model: BertForMaskedLM, batches: MlmBatch[]): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0, correct = 0, count = 0;
  try {
    noGrad(() => {
      for (const b of batches) {
        const out = model.mlm(b);
        lossSum += out.loss.item() * out.count;
        correct += out.correct;
        count += out.count;
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { loss: lossSum / count, accuracy: correct / count, tokens: count };
}

export function runDirOf(cfg: RunConfig): string {
  return path.join(cfg.outDir, cfg.name);
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config;
  validateRunConfig(cfg);
  const runDir = runDirOf(cfg);
  const t = cfg.train;
  kernels().setThreads(t.threads > 0 ? t.threads : os.availableParallelism());
  fs.mkdirSync(runDir, { recursive: true });

  // ---- resume point
  let resumeFrom: string | null = null;
  if (opts.resume) {
    const ckpts = listCheckpoints(runDir);
    if (ckpts.length === 0) throw new UntieError(`${runDir} has no checkpoint-<step> folder to resume from. Start a new run instead (drop --resume).`);
    resumeFrom = ckpts[ckpts.length - 1].dir;
  } else if (listCheckpoints(runDir).length > 0) {
    throw new UntieError(`${runDir} already holds checkpoints. Resume it with --resume ${runDir}, or pick another --name / --out.`);
  }
  writeFileAtomic(path.join(runDir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');

  // ---- data, model, optimizer, sharing
  const data = await prepareData(cfg.data, t.seed, runDir, t.batchSize);
  const model = new BertForMaskedLM(bertConfigOf(cfg, data.tokenizer.vocabSize), t.seed);
  const named = model.namedParameters();
  const optimizer = new Optimizer({ kind: t.optimizer, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weightDecay });
  const criterion = criterionOf(cfg);
  const sharing = new SharingController(model.stack(), {
    groups: planGroups(parseShare(shareOf(cfg), cfg.model.layers)),
    criterion, sharedGrad: cfg.sharing.sharedGrad, untieOptimizer: cfg.sharing.untieOptimizer,
  });
  sharing.tieWeights();

  let state: TrainerState = {
    step: 0, dropoutRng: model.dropoutRng.getState(), data: data.train.getState(), sharing: sharing.getState(),
    optimizerSteps: {}, bestValLoss: null, elapsed: 0,
  };
  if (resumeFrom) {
    state = readTrainerState(resumeFrom);
    loadModelWeights(path.join(resumeFrom, CHECKPOINT_FILES.model), model);
    sharing.setState(state.sharing);
    loadOptimizerState(resumeFrom, optimizer, sharing.trainable(named), state.optimizerSteps);
    model.dropoutRng.setState(state.dropoutRng);
    data.train.setState(state.data as ReturnType<typeof data.train.getState>);
  }

  const metrics = new MetricsLog(path.join(runDir, 'metrics.jsonl'), state.step);
  const tb = new ScalarEventWriter(runDir);
  const budget = t.budget > 0 ? t.budget : null;
  const progress = new Progress(t.steps, opts.progress ?? true, process.stderr, budget);
  const tokensPerStep = t.batchSize * cfg.data.seqLen * t.gradAccum;
  const sched = { lr: t.lr, warmupSteps: warmupOf(cfg), totalSteps: t.steps, kind: t.schedule };
  // How much of the run is done: steps, or seconds of a --budget run (evaluation and checkpoints excluded).
  const fractionDone = () => (budget ? state.elapsed / budget : state.step / t.steps);
  const finished = () => (budget ? state.elapsed >= budget : state.step >= t.steps);
  const lrNow = (step: number) =>
    budget ? learningRateAt(fractionDone(), { lr: t.lr, warmupFraction: t.warmupFraction, kind: t.schedule }) : learningRate(step, sched);
  let untiedAt: number | null = null;
  for (const e of metrics.previous) if (e.type === 'untie') untiedAt = e.step as number;
  let lastEval: { loss: number; accuracy: number; step: number } | null = null;
  let interrupted = false;
  const onSigint = () => (interrupted = true);
  process.once('SIGINT', onSigint);

  const saveNow = () => {
    state = { ...state, dropoutRng: model.dropoutRng.getState(), data: data.train.getState(), sharing: sharing.getState() };
    const dir = saveCheckpoint(runDir, { model, optimizer, trainable: sharing.trainable(named), state });
    pruneCheckpoints(runDir, t.keepLast);
    metrics.write({ type: 'checkpoint', step: state.step, path: dir });
  };

  try {
    const length = budget ? `for ${formatSeconds(budget)} of training` : `for ${t.steps} steps`;
    progress.start(state.step, `training ${cfg.model.layers}-layer BERT (${shareOf(cfg)}, untie ${cfg.sharing.untie}) ${length} in ${runDir}`);
    while (!finished()) {
      const stepStart = performance.now();
      const step = state.step; // 0-based index of this update
      const lr = lrNow(step);

      // forward + backward, accumulating gradients over micro-batches; a step that will be
      // logged also counts correct predictions (a budget run's last step is known only after it)
      const accuracy = (step + 1) % t.logEvery === 0 || (!budget && step + 1 === t.steps);
      model.zeroGrad();
      let loss = 0, correct = 0, masked = 0;
      for (let micro = 0; micro < t.gradAccum; micro++) {
        const out = model.mlm(data.train.nextBatch(t.batchSize), { accuracy });
        correct += out.correct;
        masked += out.count;
        const value = out.loss.item();
        if (!Number.isFinite(value)) {
          clearTape();
          throw new UntieError(
            `the loss became ${value} at step ${step + 1}. Nothing was updated, and the checkpoints in ${runDir} are intact. ` +
              'Lower --lr, raise the warmup, or keep --clip on, then --resume from the last checkpoint.',
          );
        }
        backward(out.loss, 1 / t.gradAccum);
        loss += value / t.gradAccum;
      }

      sharing.beforeUpdate(step, fractionDone()); // the method: measure layer agreement, tie the gradients
      const trainable = sharing.trainable(named);
      const gradNorm = clipGradNorm(trainable.map(([, p]) => p), t.clip);
      optimizer.step(trainable.map(([, p]) => p), trainable.map(([n]) => n), lr);
      state.step = step + 1;
      const seconds = (performance.now() - stepStart) / 1000;
      state.elapsed += seconds;
      const events = sharing.afterUpdate(step, optimizer, fractionDone()); // ...and untie when the criterion says so
      const last = finished();
      for (const e of events) {
        metrics.write(sharingRecord(e));
        if (e.type === 'sharing_check') {
          tb.addScalars({ 'sharing/mean_cosine': mean(e.pairs.map((p) => p.cosine)), 'sharing/pairs_below': e.below }, state.step);
        } else {
          if (e.type === 'untie') untiedAt = state.step;
          progress.note(`step ${state.step}: ${e.type}${e.reason ? ` (${e.reason})` : ''} -> ${e.description}`);
          tb.addScalar('sharing/groups', sharing.groups.length, state.step);
        }
      }
      if (state.step % t.logEvery === 0 || last) {
        const acc = accuracy ? { acc: correct / masked } : {};
        metrics.write({ type: 'train', step: state.step, loss, ...acc, lr, grad_norm: gradNorm, tokens_per_s: tokensPerStep / seconds, elapsed: state.elapsed });
        tb.addScalars({ 'train/loss': loss, ...(accuracy ? { 'train/accuracy': correct / masked } : {}), 'train/lr': lr, 'train/grad_norm': gradNorm, 'train/tokens_per_s': tokensPerStep / seconds }, state.step);
      }
      progress.update(state.step, { loss, tokensPerSecond: tokensPerStep / seconds, elapsed: state.elapsed });

      const evalMark = t.evalPoints > 0 ? Math.floor(Math.min(1, fractionDone()) * t.evalPoints) : 0;
      if ((t.evalEvery > 0 && state.step % t.evalEvery === 0) || evalMark > (state.evalMark ?? 0) || last) {
        state.evalMark = evalMark;
        const ev = evaluate(model, data.validation);
        lastEval = { ...ev, step: state.step };
        state.bestValLoss = state.bestValLoss === null ? ev.loss : Math.min(state.bestValLoss, ev.loss);
        const uni = data.unigram;
        metrics.write({
          type: 'eval', step: state.step, val_loss: ev.loss, val_acc: ev.accuracy,
          unigram_val_loss: uni.loss, unigram_val_acc: uni.accuracy, elapsed: state.elapsed,
        });
        tb.addScalars({ 'val/loss': ev.loss, 'val/accuracy': ev.accuracy, 'val/unigram_loss': uni.loss, 'val/unigram_accuracy': uni.accuracy }, state.step);
        progress.note(
          `step ${state.step}: val loss ${ev.loss.toFixed(4)} (unigram ${uni.loss.toFixed(4)}), ` +
            `accuracy ${(100 * ev.accuracy).toFixed(2)}% (unigram ${(100 * uni.accuracy).toFixed(2)}%)`,
        );
      }
      if (opts.haltAt !== undefined && state.step >= opts.haltAt) break;
      if ((t.saveEvery > 0 && state.step % t.saveEvery === 0) || last || interrupted) saveNow();
      if (interrupted) {
        progress.note(`interrupted: saved checkpoint-${state.step}; continue with: untie train --resume ${runDir}`);
        break;
      }
      await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C (SIGINT) reach us between steps
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    progress.finish();
    tb.close();
  }

  const final = lastEval ?? { ...evaluate(model, data.validation), step: state.step };
  return {
    runDir, steps: state.step, finalValLoss: final.loss, finalValAcc: final.accuracy,
    unigramValLoss: data.unigram.loss, unigramValAcc: data.unigram.accuracy, seconds: state.elapsed, untiedAt,
    uniqueParameters: sharing.uniqueParameterCount(named), parameters: named.reduce((n, [, p]) => n + p.size, 0), interrupted,
  };
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** A sharing event as a metrics.jsonl record, with the step counted in completed updates. */
function sharingRecord(e: SharingEvent): MetricRecord {
  return { ...e, step: e.step + 1 };
}
