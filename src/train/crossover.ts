/**
 * Crossing over to PyTorch and back (python/untie_torch).
 *
 * `untie export CHECKPOINT OUT --sharing` adds to the Hugging Face folder
 * what a run needs to go on in untie_torch without changing what the method
 * decides:
 *   optimizer.safetensors  the checkpoint's moments ("<param>.exp_avg",
 *                          "<param>.exp_avg_sq"; a tied group's state is on
 *                          its first member, as in untie_torch)
 *   untie_state.json       the step, the stack's name prefix, the tying plan
 *                          and the criterion's state (streaks, statistic,
 *                          check marks), the criterion's settings, the shared
 *                          gradient rule, the untie-optimizer rule, the
 *                          optimizer's settings and per-parameter step counts,
 *                          the learning-rate schedule and the criterion's
 *                          steps as the checkpoint resolved them (its first
 *                          start's, or an --extend-to's: trainer_state's
 *                          schedule), the clip, and the trainer fields
 *                          untie_torch carries back unchanged (dropout RNG,
 *                          data position, elapsed, best loss, the resolved
 *                          schedule)
 *   batches.safetensors    with --batches N: the run's next N updates'
 *                          batches (N x gradAccum micro-batches, as
 *                          [N x gradAccum, batch, seq] input_ids, token_type_ids,
 *                          attention_mask, labels), so a torch run can train
 *                          on exactly what untie would have
 *
 * Back: untie_torch's save_untie_checkpoint writes checkpoint-M into the run
 * folder in untie's layout; its trainer_state "data" may be
 * {"untieTorch": {"from": <data position>, "batches": K}}: the position the
 * export left, and how many of the run's batches the torch run consumed since,
 * which the resumed run skips (see restoreDataPosition in checkpoint.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import type { MlmBatch } from '../models/bert.js';
import { CHECKPOINT_FILES, readTrainerState, restoreDataPosition, type TrainerState } from './checkpoint.js';
import { criterionOf, readConfigFile, resolveSchedule, runConfigOf, type RunConfig } from './config.js';
import { prepareData } from './data.js';
import { writeSafetensors } from './safetensors.js';
import { writeFileAtomic } from './fsutil.js';
import { resolveModelDir } from './load.js';

export const SHARING_EXPORT = { state: 'untie_state.json', optimizer: 'optimizer.safetensors', batches: 'batches.safetensors' } as const;
export const SHARING_FORMAT = { format: 'untie-sharing', version: 1 } as const;

/**
 * The checkpoint a sharing export of `target` (a run folder: its newest; or
 * one of its checkpoints) reads, its run folder and config, checked: the
 * export needs the run's settings, not only its weights. Call it before
 * writing anything.
 */
export function sharingSource(target: string): { checkpoint: string; runDir: string; cfg: RunConfig } {
  const { modelDir, runDir } = resolveModelDir(target);
  if (runDir === null || !fs.existsSync(path.join(modelDir, CHECKPOINT_FILES.state))) {
    throw new UntieError(`--sharing needs a run folder or one of its checkpoint-<step> folders (with the run's config.json and trainer_state.json); ${target} is not one`);
  }
  const cfg = runConfigOf(readConfigFile(path.join(runDir, 'config.json')), runDir);
  if (cfg.model.kind === 'gpt') {
    throw new UntieError(`--sharing exports BERT runs, whose names untie_torch loads; ${runDir} is a GPT decoder (--model gpt). Export only its weights (drop --sharing).`);
  }
  if (cfg.sharing.grow) {
    throw new UntieError(`--sharing exports runs of a fixed depth; ${runDir} grows its stack (--grow ${cfg.sharing.grow}), which untie_torch does not. Export only its weights (drop --sharing).`);
  }
  // A Pre-LN export is RoBERTa-PreLayerNorm's (other names, a padding row in the position table), which untie_torch's mapping does not follow.
  if (cfg.model.norm !== 'post') {
    throw new UntieError(
      `--sharing exports Post-LN runs (Hugging Face BERT names, which untie_torch loads by name); ${runDir} is Pre-LN (--norm ${cfg.model.norm}). ` +
        'Train the run to cross over with --norm post, or export only its weights (drop --sharing).',
    );
  }
  // Hugging Face's BERT always has biases: the export's zero ones would be trained in PyTorch, and the model would no longer be the run's.
  if (!cfg.model.bias) {
    throw new UntieError(`--sharing exports runs with biases; ${runDir} has none (--bias off), and a PyTorch BERT would train the export's zero biases. Train with --bias on to cross over.`);
  }
  if (cfg.train.budget > 0) throw new UntieError('--sharing exports step-count runs; a --budget run\'s schedule is fractions of its wall-clock budget, which a torch run does not share');
  return { checkpoint: modelDir, runDir, cfg };
}

/**
 * Writes the sharing state, the optimizer state and (with `batches`) the
 * run's next training batches of `target` (see sharingSource) into `outDir` (which already
 * holds the exported model). Returns the files written.
 */
export async function writeSharingExport(target: string, outDir: string, opts: { batches?: number } = {}): Promise<string[]> {
  const { checkpoint, runDir, cfg } = sharingSource(target);
  const state: TrainerState = readTrainerState(checkpoint);
  // The schedule the checkpoint trains on: its first start's, or an --extend-to's (older checkpoints: the config's, as the trainer resolves it).
  const schedule = state.schedule ?? resolveSchedule(cfg);
  const criterion = criterionOf(cfg, schedule);
  criterion.setState(state.sharing.criterion); // checks that the state belongs to the run's criterion
  const t = cfg.train;
  const { step, sharing, optimizerSteps, ...trainer } = state;
  const exported = {
    ...SHARING_FORMAT,
    step,
    stack: 'bert.encoder.layer',
    sharing,
    criterion: criterion.describe(),
    sharedGrad: cfg.sharing.sharedGrad,
    untieOptimizer: cfg.sharing.untieOptimizer,
    optimizer: { kind: t.optimizer, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weightDecay, steps: optimizerSteps },
    schedule: { lr: t.lr, warmupSteps: schedule.warmupSteps, totalSteps: schedule.steps, kind: t.schedule },
    clip: t.clip,
    clipBasis: t.clipBasis,
    batchSize: t.batchSize,
    gradAccum: t.gradAccum,
    trainer,
  };
  fs.copyFileSync(path.join(checkpoint, CHECKPOINT_FILES.optimizer), path.join(outDir, SHARING_EXPORT.optimizer));
  writeFileAtomic(path.join(outDir, SHARING_EXPORT.state), JSON.stringify(exported, null, 1) + '\n');
  const files: string[] = [SHARING_EXPORT.optimizer, SHARING_EXPORT.state];
  const count = opts.batches ?? 0;
  if (count > 0) {
    const data = await prepareData(cfg.data, t.seed, runDir, t.batchSize, { save: false });
    restoreDataPosition(data.train, state.data, t.batchSize, t.gradAccum);
    const batches = Array.from({ length: count * t.gradAccum }, () => data.train.nextBatch(t.batchSize));
    writeBatches(path.join(outDir, SHARING_EXPORT.batches), batches);
    files.push(SHARING_EXPORT.batches);
  }
  return files;
}

/** Batches of one shape as [count, batch, seq] tensors. */
function writeBatches(file: string, batches: MlmBatch[]): void {
  const { batchSize: B, seqLen: T } = batches[0];
  const stack = <A extends Int32Array | Float32Array>(make: (n: number) => A, pick: (b: MlmBatch) => A): A => {
    const out = make(batches.length * B * T);
    batches.forEach((b, i) => out.set(pick(b), i * B * T));
    return out;
  };
  const shape = [batches.length, B, T];
  writeSafetensors(file, {
    input_ids: { dtype: 'I32', shape, data: stack((n) => new Int32Array(n), (b) => b.inputIds) },
    token_type_ids: { dtype: 'I32', shape, data: stack((n) => new Int32Array(n), (b) => b.tokenTypeIds) },
    attention_mask: { dtype: 'F32', shape, data: stack((n) => new Float32Array(n), (b) => b.attentionMask) },
    labels: { dtype: 'I32', shape, data: stack((n) => new Int32Array(n), (b) => b.labels) },
  }, { format: 'pt' });
}
