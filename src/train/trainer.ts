/**
 * The training loop. It reads top to bottom like nanoGPT's: get batch,
 * forward, backward, the sharing hook, clip, step, log, eval, checkpoint.
 * Everything a resumed run needs is in the checkpoint, so `resume` is a flag
 * on the same loop, and a resumed run repeats the uninterrupted one exactly.
 */
import os from 'node:os';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { watchInterrupt } from '../backend/native.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { saveTokenizer } from '../data/tokenizer.js';
import { UntieError } from '../errors.js';
import { BertForMaskedLM } from '../models/bert.js';
import type { GptLMHeadModel } from '../models/gpt.js';
import type { LanguageModel, LmBatch } from '../models/lm.js';
import { Optimizer, clipGradNorm } from '../optim/optimizers.js';
import { learningRate, learningRateAt } from '../optim/schedule.js';
import { SharingController, type GradNorms, type SharingEvent } from '../sharing/controller.js';
import { describeGrowth } from '../sharing/growth.js';
import { AnomalyError, checkParameters, setDetectAnomaly } from '../tensor/anomaly.js';
import { backward, clearTape, noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { bertConfigOf, criterionOf, growthOf, initialGroups, modelOf, resolveSchedule, shareOf, validateRunConfig, type ResolvedSchedule, type RunConfig } from './config.js';
import { firstNonFiniteParameter, listCheckpoints, openCheckpoint, pruneCheckpoints, restoreCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.js';
import { describeData, prepareData, type PreparedData } from './data.js';
import { finishedRun } from './finished.js';
import { readTask } from '../data/tasks/index.js';
import type { TaskData, TaskName } from '../data/tasks/task.js';
import { probeEncoder, PROBE_SETTINGS } from './finetune.js';
import { MetricsLog, type MetricRecord } from './metrics.js';
import { Progress, formatSeconds } from './progress.js';
import { ScalarEventWriter } from './tensorboard.js';
import { describeFsError, fsErrorCode, fsFailure, makeDirectory, writeFileAtomic } from './fsutil.js';
import { RunLock } from './runlock.js';

export interface TrainOptions {
  config: RunConfig;
  /** Continue the run in `config`'s run folder from its newest checkpoint. */
  resume?: boolean;
  /**
   * With `resume`: lengthen the run to this many updates, recomputing its
   * schedule (learning-rate horizon and warmup, untie step, deadline and
   * check interval) and logging what changed. Without it a resumed run keeps
   * the schedule of its first start.
   */
  extendTo?: number;
  /** Stop after this many completed steps without a final checkpoint, as a crash would (tests). */
  haltAt?: number;
  /**
   * Stop after this step, saving a checkpoint there, as Ctrl-C would; `resume`
   * continues the run exactly. Trains a run in parts, or keeps the early
   * checkpoints a probe needs (with `keepLast` large enough).
   */
  stopAt?: number;
  /** Print progress (default true). */
  progress?: boolean;
  /** How the user runs `untie train` ("untie train", "npx untie train"), for the resume hints it prints (default "untie train"). */
  command?: string;
  /** Name the first op, tensor and layer whose output or gradient is not finite (slower; off by default). */
  detectAnomaly?: boolean;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  finalValLoss: number;
  finalValAcc: number;
  /** A generated corpus's final validation accuracy per difficulty ("1" -> 0.98, ...); absent for text. */
  finalValAccByDifficulty?: Record<string, number>;
  /** What those difficulties count ("hops", "depth"). */
  difficulty?: string;
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
  /** A generated corpus's accuracy per difficulty of its targets (hop count, depth): "1" -> 0.98, ...; absent for text. */
  byDifficulty?: Record<string, number>;
}

/**
 * The highest mean loss a run that still learns shows: 10 times that of a
 * uniform guess over the vocabulary (10 ln V nats: on average the right token
 * at probability V^-10). A run past it has diverged even while the loss is
 * finite: on a 4-layer test model at lr 1e6 the loss went 7.0, 8.6e12, 1.6e17.
 */
export function lossCeiling(vocabSize: number): number {
  return 10 * Math.log(vocabSize);
}

/** `loss` as an error message shows a diverged one ("NaN", "8.6e+12 (over 10 ln V = 69)"), or null when it is sane. */
export function divergedLoss(loss: number, vocabSize: number): string | null {
  if (!Number.isFinite(loss)) return String(loss);
  const ceiling = lossCeiling(vocabSize);
  return loss > ceiling ? `${loss.toPrecision(3)} (over 10 ln V = ${ceiling.toFixed(0)})` : null;
}

/** Mean loss and accuracy of the model's objective over `batches` (dropout off, nothing recorded); per difficulty where the batches say it. */
export function evaluate(model: LanguageModel, batches: (LmBatch & { difficulty?: Int32Array })[]): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0, correct = 0, count = 0;
  const levels = new Map<number, { correct: number; count: number }>();
  try {
    noGrad(() => {
      for (const b of batches) {
        // tidy: each batch's activations go back to the buffer pool for the next.
        tidy(() => {
          const out = model.loss(b);
          lossSum += out.loss.item() * out.count;
          correct += out.correct;
          count += out.count;
          if (!b.difficulty || !out.hits) return;
          // out.hits follows the labelled positions in flat order.
          let r = 0;
          for (let i = 0; i < b.labels.length; i++) {
            if (b.labels[i] === IGNORE_INDEX) continue;
            const level = levels.get(b.difficulty[i]) ?? { correct: 0, count: 0 };
            level.correct += out.hits[r++];
            level.count++;
            levels.set(b.difficulty[i], level);
          }
        });
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const result: EvalResult = { loss: lossSum / count, accuracy: correct / count, tokens: count };
  if (levels.size > 0) {
    result.byDifficulty = Object.fromEntries([...levels.entries()].sort((a, b) => a[0] - b[0]).map(([d, l]) => [String(d), l.correct / l.count]));
  }
  return result;
}

export function runDirOf(cfg: RunConfig): string {
  return path.join(cfg.outDir, cfg.name);
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config;
  validateRunConfig(cfg);
  const runDir = runDirOf(cfg);
  const threads = threadCount(cfg.train.threads);
  if (threads.note) warn(threads.note);
  kernels().setThreads(threads.threads);
  if (cfg.train.threads > 1 && kernels().getThreads() < threads.threads) {
    warn(`--threads ${cfg.train.threads}: the ${kernels().name} kernels run on one thread, so this run uses one.`);
  }

  // ---- read and check every input; nothing is written until all of it has passed
  const resumeFrom = resumePoint(runDir, opts.resume ?? false);
  const done = resumeFrom && opts.extendTo === undefined ? finishedRun(cfg, runDir, opts.command) : null;
  if (done) throw new UntieError(done.message); // nothing to train: nothing is written (no new events file)
  // On resume the folder exists: lock it first, so that no other run changes it while we check it.
  let lock = resumeFrom ? takeLock(runDir) : null;
  try {
    const run = await setUpRun(cfg, runDir, resumeFrom, opts.extendTo);
    if (opts.stopAt !== undefined) checkStopAt(opts.stopAt, run.state.step, cfg.train.budget > 0 ? null : run.schedule.steps);
    // ---- all inputs are good: claim the folder, then write
    if (!lock) {
      makeDirectory(runDir);
      lock = takeLock(runDir);
    }
    return await runTraining(cfg, runDir, run, opts);
  } catch (err) {
    // A file that cannot be read or written before the loop (permissions, a full disk): one line, not a stack.
    if (fsErrorCode(err) !== null) throw new UntieError(`${fsFailure(err)}. Nothing saved in ${runDir} was changed; fix that, then run again.`);
    throw err;
  } finally {
    lock?.release();
  }
}

/** A stop step the run will reach: after its current step, before its end (a budget run's end is not a step). */
function checkStopAt(stopAt: number, step: number, totalSteps: number | null): void {
  if (!Number.isInteger(stopAt) || stopAt < 1) throw new UntieError(`--stop-at ${stopAt}: give the step to stop after, a whole number from 1`);
  if (stopAt <= step) throw new UntieError(`--stop-at ${stopAt}: the run is already at step ${step}; give a later step, or leave --stop-at out to train to the end`);
  if (totalSteps !== null && stopAt >= totalSteps) throw new UntieError(`--stop-at ${stopAt}: the run ends at step ${totalSteps} anyway; leave --stop-at out, or give an earlier step`);
}

/** The newest checkpoint to resume from (null for a new run), or an UntieError when there is none, or when a new run would overwrite one. */
function resumePoint(runDir: string, resume: boolean): { step: number; dir: string } | null {
  const ckpts = listCheckpoints(runDir);
  if (resume) {
    if (ckpts.length === 0) throw new UntieError(`${runDir} has no checkpoint-<step> folder to resume from. Start a new run instead (drop --resume).`);
    return ckpts[ckpts.length - 1];
  }
  if (ckpts.length > 0) throw new UntieError(`${runDir} already holds checkpoints. Resume it with --resume ${runDir}, or pick another --name / --out.`);
  return null;
}

interface RunSetup {
  data: PreparedData;
  model: BertForMaskedLM | GptLMHeadModel;
  named: [string, Tensor][];
  optimizer: Optimizer;
  sharing: SharingController;
  state: TrainerState;
  /** The schedule this start follows (the first start's, or an --extend-to's). */
  schedule: ResolvedSchedule;
  /** With --extend-to: the metrics.jsonl record of what it recomputed. */
  extension: MetricRecord | null;
}

/** Data, model, optimizer, tying plan and (on resume) the checkpoint's state, in memory: every input is checked, nothing is written. */
async function setUpRun(cfg: RunConfig, runDir: string, resumeFrom: { step: number; dir: string } | null, extendTo: number | undefined): Promise<RunSetup> {
  const t = cfg.train;
  // The checkpoint's checksums and state come first: the untie criterion is built from its saved schedule.
  const opened = resumeFrom ? openCheckpoint(resumeFrom.dir, resumeFrom.step) : null;
  const { schedule, extension } = runSchedule(cfg, opened?.state ?? null, extendTo);
  const data = await prepareData(cfg.data, t.seed, runDir, t.batchSize, { save: false, kind: cfg.model.kind });
  const model = modelOf(cfg, data.tokenizer.vocabSize, t.seed);
  const named = model.namedParameters();
  const optimizer = new Optimizer({ kind: t.optimizer, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weightDecay });
  const criterion = criterionOf(cfg, schedule);
  const growth = growthOf(cfg, schedule); // progressive stacking: the controller grows the stack on this schedule
  const sharing = new SharingController(model.stack(), {
    groups: initialGroups(cfg, growth),
    criterion, sharedGrad: cfg.sharing.sharedGrad, untieOptimizer: cfg.sharing.untieOptimizer, ...(growth ? { growth } : {}),
  });
  sharing.tieWeights();

  let state: TrainerState = {
    step: 0, dropoutRng: model.dropoutRng.getState(), data: data.train.getState(), sharing: sharing.getState(),
    optimizerSteps: {}, bestValLoss: null, elapsed: 0, schedule,
  };
  if (resumeFrom && opened) {
    const restored = restoreCheckpoint(
      resumeFrom.dir, resumeFrom.step, { model, optimizer, sharing, named, dataset: data.train, batchSize: t.batchSize, gradAccum: t.gradAccum, tokenizerDir: runDir }, opened,
    );
    state = { ...restored.state, schedule };
    if (!restored.verified) warn(`${resumeFrom.dir} has no checksums (an older untie wrote it): its files were checked for structure and values only.`);
  }
  return { data, model, named, optimizer, sharing, state, schedule, extension };
}

/** Writes the run's config and tokenizer, then trains: the loop. */
async function runTraining(cfg: RunConfig, runDir: string, run: RunSetup, opts: TrainOptions): Promise<TrainResult> {
  const t = cfg.train;
  const { data, model, named, optimizer, sharing, schedule, extension } = run;
  let state = run.state;
  const totalSteps = schedule.steps;
  const resumeHint = `${opts.command ?? 'untie train'} --resume ${shellQuote(runDir)}`;
  // The config as it now runs: an --extend-to changes its steps, so the next --resume reads the extended length.
  writeFileAtomic(path.join(runDir, 'config.json'), JSON.stringify({ ...cfg, train: { ...t, steps: totalSteps } }, null, 2) + '\n');
  if (data.tokenizerTrained) saveTokenizer(data.tokenizer, runDir, { modelMaxLength: cfg.data.seqLen });
  setDetectAnomaly(opts.detectAnomaly ?? false, opts.detectAnomaly ? anomalyNames(named) : undefined);

  const metrics = new MetricsLog(path.join(runDir, 'metrics.jsonl'), state.step);
  const tb = new ScalarEventWriter(runDir);
  const budget = t.budget > 0 ? t.budget : null;
  const progress = new Progress(totalSteps, opts.progress ?? true, process.stderr, budget);
  const tokensPerStep = t.batchSize * cfg.data.seqLen * t.gradAccum;
  const sched = { lr: t.lr, warmupSteps: schedule.warmupSteps, totalSteps, kind: t.schedule };
  // How much of the run is done: steps, or seconds of a --budget run (evaluation and checkpoints excluded).
  const fractionDone = () => (budget ? state.elapsed / budget : state.step / totalSteps);
  const finished = () => (budget ? state.elapsed >= budget : state.step >= totalSteps);
  const lrNow = (step: number) =>
    budget ? learningRateAt(fractionDone(), { lr: t.lr, warmupFraction: t.warmupFraction, kind: t.schedule }) : learningRate(step, sched);
  const decoder = model.kind === 'gpt';
  // The probe's task, read once with the run's tokenizer and document split (its test documents are the validation documents).
  const probeData: TaskData | null = t.probe
    ? await readTask(t.probe as TaskName, data.tokenizer, { maxLength: cfg.data.seqLen, maxTrain: PROBE_SETTINGS.maxTrain, maxDev: PROBE_SETTINGS.maxDev }, { splitSeed: cfg.data.splitSeed, validationFraction: cfg.data.validationFraction })
    : null;
  let untiedAt: number | null = null;
  for (const e of metrics.previous) if (e.type === 'untie') untiedAt = e.step as number;
  let lastEval: (EvalResult & { step: number }) | null = null;
  let interrupted = false;
  const stopping = 'Ctrl-C: stopping after the current step and saving a checkpoint (Ctrl-C again quits at once, without saving).';
  const onSigint = () => {
    interrupted = true;
    if (!unwatch) warn(stopping); // without the addon's handler, say it now (between steps)
  };
  process.once('SIGINT', onSigint);
  // SIGTERM (kill, timeout, a closed npx) asks for the same stop; a second one quits at once.
  const onSigterm = () => {
    interrupted = true;
    warn('SIGTERM: stopping after the current step and saving a checkpoint (a second SIGTERM quits at once, without saving).');
  };
  process.once('SIGTERM', onSigterm);
  // Says so the moment Ctrl-C is pressed, not when the step ends (see native/interrupt.cc).
  const unwatch = watchInterrupt(`\nuntie: ${stopping}\n`);

  const saveNow = () => {
    const damaged = firstNonFiniteParameter(named);
    if (damaged) throw divergence(`after step ${state.step} the weights hold NaN or infinite values (first in ${damaged})`, runDir, state.step, `checkpoint-${state.step} was not written.`);
    state = { ...state, dropoutRng: model.dropoutRng.getState(), data: data.train.getState(), sharing: sharing.getState() };
    const dir = saveCheckpoint(runDir, { model, optimizer, trainable: sharing.trainable(named), state }, { tokenizerDir: runDir, resumeHint });
    pruneCheckpoints(runDir, t.keepLast);
    // Named inside the run folder: the log stays true when the folder moves, and names no path of this machine.
    metrics.write({ type: 'checkpoint', step: state.step, path: path.basename(dir) });
  };

  try {
    const length = budget ? `for ${formatSeconds(budget)} of training` : `for ${totalSteps} steps`;
    const growth = sharing.options.growth;
    const shape = growth ? `BERT grown ${describeGrowth(growth.stages)}${growth.tied ? ` (copies tied, untie ${cfg.sharing.untie})` : ''}` : `${cfg.model.layers}-layer ${decoder ? 'GPT decoder' : 'BERT'} (${shareOf(cfg)}, untie ${cfg.sharing.untie})`;
    const resumed = state.step > 0 ? `resuming from checkpoint-${state.step} (${budget ? `${formatSeconds(state.elapsed)} trained` : `step ${state.step} of ${totalSteps}`}): ` : '';
    progress.start(state.step, `${resumed}training ${shape} ${length} in ${runDir}`);
    const about = describeData(cfg.data, data, budget ? null : totalSteps, t.batchSize * t.gradAccum, cfg.model.kind);
    progress.note(about.summary);
    for (const w of about.warnings) warn(w);
    if (extension) {
      metrics.write(extension);
      progress.note(`extended to ${totalSteps} steps from step ${state.step}: ${describeChanges(extension)}`);
    }
    while (!finished()) {
      const stepStart = performance.now();
      const step = state.step; // 0-based index of this update
      const lr = lrNow(step);

      // forward + backward, accumulating gradients over micro-batches; a step that will be
      // logged also counts correct predictions (a budget run's last step is known only after it)
      const accuracy = (step + 1) % t.logEvery === 0 || (!budget && step + 1 === totalSteps);
      model.zeroGrad();
      let loss = 0, correct = 0, targets = 0;
      for (let micro = 0; micro < t.gradAccum; micro++) {
        // tidy: the step's activations and gradients go back to the buffer pool, so later steps allocate nothing.
        const value = tidy(() => {
          const out = model.loss(data.train.nextBatch(t.batchSize), { accuracy });
          correct += out.correct;
          targets += out.count;
          const v = out.loss.item();
          const diverged = divergedLoss(v, data.tokenizer.vocabSize);
          if (diverged) {
            clearTape();
            throw divergence(`the loss became ${diverged} at step ${step + 1}`, runDir, step);
          }
          backward(out.loss, 1 / t.gradAccum);
          return v;
        });
        loss += value / t.gradAccum;
      }

      sharing.beforeUpdate(step, fractionDone(), optimizer); // the method: measure layer agreement, tie the gradients
      const trainable = sharing.trainable(named);
      const norms = checkedGradNorms(sharing, trainable, runDir, step);
      clipGradNorm(trainable.map(([, p]) => p), t.clip, t.clipBasis === 'layers' ? norms.layers : norms.update);
      optimizer.step(trainable.map(([, p]) => p), trainable.map(([n]) => n), lr);
      if (opts.detectAnomaly) checkParameters(trainable, `after the optimizer update of step ${step + 1}`);
      state.step = step + 1;
      const seconds = (performance.now() - stepStart) / 1000;
      state.elapsed += seconds;
      const events = sharing.afterUpdate(step, optimizer, fractionDone()); // ...and untie when the criterion says so, grow when the schedule does
      const last = finished();
      for (const e of events) {
        metrics.write(sharingRecord(e));
        if (e.type === 'sharing_check') {
          tb.addScalars({ 'sharing/mean_cosine': mean(e.pairs.map((p) => p.cosine)), 'sharing/pairs_below': e.below }, state.step);
        } else {
          if (e.type === 'untie') untiedAt = e.step + 1;
          progress.note(`step ${state.step}: ${e.type}${e.reason ? ` (${e.reason})` : ''} -> ${e.description}`);
          tb.addScalar('sharing/groups', sharing.groups.length, state.step);
        }
      }
      if (state.step % t.logEvery === 0 || last) {
        const acc = accuracy ? { acc: correct / targets } : {};
        metrics.write({
          type: 'train', step: state.step, loss, ...acc, lr, grad_norm: norms.update, grad_norm_layers: norms.layers,
          tokens_per_s: tokensPerStep / seconds, elapsed: state.elapsed,
        });
        tb.addScalars({
          'train/loss': loss, ...(accuracy ? { 'train/accuracy': correct / targets } : {}), 'train/lr': lr,
          'train/grad_norm': norms.update, 'train/grad_norm_layers': norms.layers, 'train/tokens_per_s': tokensPerStep / seconds,
        }, state.step);
      }
      progress.update(state.step, { loss, tokensPerSecond: tokensPerStep / seconds, elapsed: state.elapsed });

      const evalMark = t.evalPoints > 0 ? Math.floor(Math.min(1, fractionDone()) * t.evalPoints) : 0;
      if ((t.evalEvery > 0 && state.step % t.evalEvery === 0) || evalMark > (state.evalMark ?? 0) || last) {
        state.evalMark = evalMark;
        const ev = checkedEvaluate(model, data.validation, data.tokenizer.vocabSize, runDir, state.step);
        lastEval = { ...ev, step: state.step };
        state.bestValLoss = state.bestValLoss === null ? ev.loss : Math.min(state.bestValLoss, ev.loss);
        const uni = data.unigram;
        // A decoder's loss is also read as perplexity, exp(loss): the vocabulary it is as unsure as.
        const ppl = decoder ? { val_ppl: Math.exp(ev.loss), unigram_val_ppl: Math.exp(uni.loss) } : {};
        const byDifficulty = ev.byDifficulty ? { val_acc_by_difficulty: ev.byDifficulty } : {};
        metrics.write({
          type: 'eval', step: state.step, val_loss: ev.loss, val_acc: ev.accuracy, ...byDifficulty,
          unigram_val_loss: uni.loss, unigram_val_acc: uni.accuracy, ...ppl, elapsed: state.elapsed,
        });
        tb.addScalars({ 'val/loss': ev.loss, 'val/accuracy': ev.accuracy, 'val/unigram_loss': uni.loss, 'val/unigram_accuracy': uni.accuracy }, state.step);
        if (ev.byDifficulty && data.task) {
          for (const [d, acc] of Object.entries(ev.byDifficulty)) tb.addScalar(`val/accuracy_${data.task.difficulty}_${d}`, acc, state.step);
        }
        progress.note(
          `step ${state.step}: val loss ${ev.loss.toFixed(4)} (unigram ${uni.loss.toFixed(4)}), ` +
            (decoder ? `perplexity ${Math.exp(ev.loss).toFixed(1)} (unigram ${Math.exp(uni.loss).toFixed(1)}), ` : '') +
            `accuracy ${(100 * ev.accuracy).toFixed(2)}% (unigram ${(100 * uni.accuracy).toFixed(2)}%)` +
            (ev.byDifficulty && data.task ? `; by ${data.task.difficulty}: ${Object.entries(ev.byDifficulty).map(([d, a]) => `${d}: ${(100 * a).toFixed(1)}%`).join(', ')}` : ''),
        );
        if (probeData && model instanceof BertForMaskedLM) {
          const probeStart = performance.now();
          const probe = probeEncoder(model, probeData);
          const run = probe.runs[0];
          metrics.write({ type: 'probe', step: state.step, task: probeData.task, metric: probeData.metric, score: run.test!.score, dev_score: run.dev.score, lr: probe.lr, seconds: (performance.now() - probeStart) / 1000 });
          tb.addScalar(`probe/${probeData.task}_${probeData.metric}`, run.test!.score, state.step);
          progress.note(`step ${state.step}: ${probeData.task} probe (frozen encoder) test ${probeData.metric} ${(100 * run.test!.score).toFixed(2)}%`);
        }
      }
      if (opts.haltAt !== undefined && state.step >= opts.haltAt) break;
      const stopHere = opts.stopAt !== undefined && state.step >= opts.stopAt;
      if ((t.saveEvery > 0 && state.step % t.saveEvery === 0) || last || interrupted || stopHere) saveNow();
      if (interrupted || stopHere) {
        const stopped = `${interrupted ? 'interrupted' : `stopped after step ${state.step} (--stop-at)`}: saved checkpoint-${state.step}; continue with: ${resumeHint}`;
        if (opts.progress ?? true) progress.note(stopped);
        else warn(stopped); // said even with --quiet/--json: the user needs the way back
        break;
      }
      await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C (SIGINT) reach us between steps
    }
  } catch (err) {
    clearTape();
    // The step that failed was not saved; a checkpoint at state.step may hold the weights that led to it (divergence says which).
    if (err instanceof AnomalyError) throw divergence(`${err.message} That was in step ${state.step + 1}`, runDir, state.step, 'Nothing from this step was saved.');
    // A full disk or an I/O error while writing metrics or events: one line, not a stack.
    if (fsErrorCode(err) !== null) {
      throw new UntieError(`writing in ${runDir} failed at step ${state.step}: ${describeFsError(err)}. The checkpoints saved so far are intact; fix that, then continue with: ${resumeHint}`);
    }
    throw err;
  } finally {
    unwatch?.();
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigterm);
    setDetectAnomaly(false);
    progress.finish();
    tb.close();
  }

  const final = lastEval ?? { ...checkedEvaluate(model, data.validation, data.tokenizer.vocabSize, runDir, state.step), step: state.step };
  return {
    runDir, steps: state.step, finalValLoss: final.loss, finalValAcc: final.accuracy,
    ...(final.byDifficulty && data.task ? { finalValAccByDifficulty: final.byDifficulty, difficulty: data.task.difficulty } : {}),
    unigramValLoss: data.unigram.loss, unigramValAcc: data.unigram.accuracy, seconds: state.elapsed, untiedAt,
    uniqueParameters: sharing.uniqueParameterCount(named), parameters: named.reduce((n, [, p]) => n + p.size, 0), interrupted,
  };
}

/** The kernel thread count for a `threads` setting (0 = all cores), capped at the cores there are, with a note when capped. */
export function threadCount(requested: number, cores = os.availableParallelism()): { threads: number; note: string | null } {
  if (requested <= 0) return { threads: cores, note: null };
  if (requested <= cores) return { threads: requested, note: null };
  return {
    threads: cores,
    note: `--threads ${requested} is more than the ${cores} core${cores === 1 ? '' : 's'} here; using ${cores} (more threads than cores only wait for each other).`,
  };
}

/** Takes the run folder's lock, saying when a dead run's lock was taken over. */
function takeLock(runDir: string): RunLock {
  const lock = RunLock.acquire(runDir);
  if (lock.tookOverStale) warn(`took over ${lock.file}, left by a run that is no longer running (pid ${lock.tookOverStale.pid}).`);
  return lock;
}

/** Parameter names for --detect-anomaly's messages (a tied tensor is named after its first layer). */
function anomalyNames(named: [string, Tensor][]): Map<Tensor, string> {
  const names = new Map<Tensor, string>();
  for (const [name, p] of named) if (!names.has(p)) names.set(p, name);
  return names;
}

function warn(message: string): void {
  process.stderr.write(`untie: ${message}\n`);
}

/** `dir` as a shell word: as is when plain, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/**
 * The run's schedule: resolved at its first start, read back from the
 * checkpoint on resume (checkpoints older than this field: resolved from the
 * config, as they were), and recomputed only by an explicit `extendTo`, which
 * returns the metrics.jsonl record of what changed.
 */
function runSchedule(cfg: RunConfig, resumed: TrainerState | null, extendTo: number | undefined): { schedule: ResolvedSchedule; extension: MetricRecord | null } {
  if (!resumed) {
    if (extendTo !== undefined) throw new UntieError('--extend-to lengthens an existing run: use it with --resume RUN_DIR');
    return { schedule: resolveSchedule(cfg), extension: null };
  }
  if (extendTo !== undefined && cfg.train.budget > 0) {
    // A budget run's schedule (learning rate, untie fraction, deadline, checks) is fractions of its seconds, not of a step count.
    throw new UntieError(
      `--extend-to lengthens a step-count run; this one trains for a --budget of ${formatSeconds(cfg.train.budget)}, and its schedule is fractions of that budget. ` +
        'Resume it without --extend-to, or start a new run with a larger --budget.',
    );
  }
  const kept = resumed.schedule ?? resolveSchedule(cfg);
  if (extendTo === undefined) {
    if (cfg.train.steps !== kept.steps) {
      throw new UntieError(
        `this run was planned for ${kept.steps} steps, and a resumed run keeps the schedule of its first start (learning rate, warmup, untie step, deadline and check interval). ` +
          `To lengthen it, pass --extend-to ${Math.max(cfg.train.steps, kept.steps + 1)}, which recomputes them and logs what changed.`,
      );
    }
    return { schedule: kept, extension: null };
  }
  if (!Number.isInteger(extendTo) || extendTo <= kept.steps) {
    throw new UntieError(`--extend-to must be a whole number of steps above the run's planned ${kept.steps}, got ${extendTo}`);
  }
  const schedule = resolveSchedule(cfg, extendTo);
  const changed = (Object.keys(schedule) as (keyof ResolvedSchedule)[]).filter((k) => schedule[k] !== kept[k]);
  return { schedule, extension: { type: 'extend', step: resumed.step, from: kept, to: schedule, changed } };
}

/** "steps 12 -> 20, warmupSteps 1 -> 2" for an extension record. */
function describeChanges(extension: MetricRecord): string {
  const from = extension.from as Record<string, unknown>, to = extension.to as Record<string, unknown>;
  return (extension.changed as string[]).map((k) => `${k} ${String(from[k])} -> ${String(to[k])}`).join(', ');
}

/**
 * The error for a run that diverged with `completed` updates made, saying
 * which checkpoints are still good. A checkpoint from before `completed` is:
 * its weights are finite and trained on with a sane loss and a finite
 * gradient. One at `completed` holds the very weights that failed.
 */
function divergence(what: string, runDir: string, completed: number, done = 'Nothing from this step was applied or saved.'): UntieError {
  const ckpts = listCheckpoints(runDir);
  const good = ckpts.filter((c) => c.step < completed);
  const failed = ckpts.some((c) => c.step === completed);
  return new UntieError(
    `${what}. ${done} ` +
      (failed ? `checkpoint-${completed} holds the weights that led to this (resuming it repeats it). ` : '') +
      (good.length > 0 ? `The last good checkpoint (finite weights that trained on with a sane loss) is ${good[good.length - 1].dir}. ` : 'No earlier checkpoint is kept. ') +
      'A resumed run keeps its settings and would do the same: start a new run with a lower --lr or a longer --warmup (and --clip on); --detect-anomaly names the op where it starts.',
  );
}

/**
 * The gradient norms of update `step` (see SharingController.gradNorms),
 * refusing, before anything is applied, a gradient that is not finite.
 */
function checkedGradNorms(sharing: SharingController, trainable: [string, Tensor][], runDir: string, step: number): GradNorms {
  const norms = sharing.gradNorms(trainable.map(([, p]) => p));
  if (!Number.isFinite(norms.update) || !Number.isFinite(norms.layers)) {
    const bad = trainable.find(([, p]) => p.grad && !kernels().allFinite(p.grad));
    throw divergence(`the gradients became non-finite at step ${step + 1} (norm ${norms.update}${bad ? `, first in ${bad[0]}` : ''}) while the loss was finite`, runDir, step);
  }
  return norms;
}

/** `evaluate`, refusing a diverged validation loss (after `completed` updates). */
function checkedEvaluate(model: LanguageModel, batches: LmBatch[], vocabSize: number, runDir: string, completed: number): EvalResult {
  const ev = evaluate(model, batches);
  const diverged = divergedLoss(ev.loss, vocabSize);
  if (diverged) throw divergence(`the validation loss after step ${completed} is ${diverged}`, runDir, completed, `checkpoint-${completed} was not written.`);
  return ev;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** A sharing event as a metrics.jsonl record, with the step counted in completed updates. */
function sharingRecord(e: SharingEvent): MetricRecord {
  return { ...e, step: e.step + 1 };
}
