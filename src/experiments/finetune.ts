/**
 * Downstream fine-tuning as one experiment: a pre-trained checkpoint (or the
 * same shape with random weights, or its frozen encoder) fine-tuned on a
 * task with the recipe's learning-rate search and several seeds, scored on
 * the task's fixed test split against the majority-class baseline. Returns
 * the results; writes them, a metrics log and the best model (by dev score)
 * into `finetune-<task>/` under the run folder.
 *
 * Kept cheap on purpose (the compare experiment calls this for every
 * variant): by default 512 training examples of at most 128 tokens, 3 epochs
 * at batch 16 (96 updates a run), a grid of 3 learning rates with the first
 * seed, then 2 more seeds: 5 runs of 96 updates.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import { checkTaskOptions, readTask } from '../data/tasks/index.js';
import type { TagSet } from '../data/tasks/pos.js';
import { majorityLabel, type ReaderLimits, type TaskData, type TaskName } from '../data/tasks/task.js';
import { newClassifier } from '../models/heads.js';
import { hfLayoutOf, loadModelWeights, saveModelWeights } from '../train/checkpoint.js';
import { defaultRunConfig } from '../train/config.js';
import {
  defaultRecipe, majorityScore, searchAndTrain, stepsOf, type FinetuneRecipe, type SearchRun, type TaskScore,
} from '../train/finetune.js';
import { writeFileAtomic } from '../train/fsutil.js';
import { openCheckpoint, readWeights } from '../train/load.js';
import { MetricsLog } from '../train/metrics.js';
import { Progress, formatSeconds } from '../train/progress.js';

/** The learning-rate grids: for fine-tuning the whole model, and for training a head on a frozen encoder. */
export const LR_GRID = [1e-4, 3e-4, 1e-3] as const;
export const FROZEN_LR_GRID = [1e-3, 3e-3, 1e-2] as const;

export const FINETUNE_DEFAULTS = {
  seeds: 3, epochs: 3, frozenEpochs: 10, batchSize: 16, maxLength: 128, maxTrain: 512, maxDev: 256,
} as const;

export interface FinetuneOptions {
  /** A run folder (its newest checkpoint), a checkpoint-<step> folder, or an exported model folder. */
  checkpoint: string;
  task: TaskName;
  /** classify: the CSV or JSONL file. */
  data?: string;
  textColumn?: string;
  labelColumn?: string;
  /** classify: the label names in id order (default: those in the file, sorted). */
  labels?: string[];
  /** pos: universal (12 tags, default) or full (every Brown tag). */
  tags?: TagSet;
  /** Number of seeds (0, 1, ..., seeds - 1). */
  seeds?: number;
  lrGrid?: number[];
  epochs?: number;
  batchSize?: number;
  /** Ids per sequence ([CLS] and [SEP] included), at most the model's max positions. */
  maxLength?: number;
  maxTrain?: number;
  maxDev?: number;
  /** The same model shape with random weights: the floor pre-training must beat. */
  fromScratch?: boolean;
  /** Train only the head on the frozen encoder's features (a probe). */
  frozen?: boolean;
  /** Where results and the best model go (default: <run>/finetune-<task>[-scratch|-frozen]); null: write nothing. */
  outDir?: string | null;
  /** Kernel threads (default: leave as set). */
  threads?: number;
  /** Progress on stderr (default true). */
  progress?: boolean;
}

export interface FinetuneResult {
  task: TaskName;
  metric: 'accuracy' | 'f1';
  /** Mean test score over seeds, in [0, 1]. */
  score: number;
  /** Standard deviation of the test score over seeds (n - 1 in the denominator; 0 for one seed). */
  std: number;
  seeds: number[];
  /** Test score of each seed. */
  scores: number[];
  /** The learning rate chosen on dev. */
  lr: number;
  /** Wall-clock seconds of the whole experiment (data, grid, seeds, scoring). */
  seconds: number;
  /** CPU seconds of this process over the experiment (user + system): the cost when the machine is shared. */
  cpuSeconds: number;
  mode: 'pretrained' | 'from-scratch' | 'frozen' | 'frozen-from-scratch';
  checkpoint: string;
  /** Majority-class baseline (the most frequent training label) on the test split. */
  baseline: TaskScore & { label: string };
  grid: SearchRun[];
  runs: SearchRun[];
  bestSeed: number;
  /** The results folder (null when nothing was written). */
  outDir: string | null;
  splits: TaskData['splits'];
  labels: string[];
}

function modeOf(o: FinetuneOptions): FinetuneResult['mode'] {
  return o.frozen ? (o.fromScratch ? 'frozen-from-scratch' : 'frozen') : o.fromScratch ? 'from-scratch' : 'pretrained';
}

function suffixOf(mode: FinetuneResult['mode']): string {
  return { pretrained: '', 'from-scratch': '-scratch', frozen: '-frozen', 'frozen-from-scratch': '-frozen-scratch' }[mode];
}

function wholeAtLeast(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new UntieError(`${name} must be a whole number >= ${min}, got ${v}`);
  return v;
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const started = performance.now(), cpuStarted = process.cpuUsage();
  checkTaskOptions(opts.task, opts);
  const frozen = opts.frozen ?? false, mode = modeOf(opts);
  const nSeeds = wholeAtLeast('seeds', opts.seeds ?? FINETUNE_DEFAULTS.seeds, 1);
  const lrGrid = opts.lrGrid ?? [...(frozen ? FROZEN_LR_GRID : LR_GRID)];
  if (lrGrid.length === 0 || !lrGrid.every((lr) => Number.isFinite(lr) && lr > 0)) throw new UntieError(`the learning-rate grid must hold positive numbers, got [${lrGrid.join(', ')}]`);
  const recipe: Omit<FinetuneRecipe, 'lr' | 'seed'> = {
    ...defaultRecipe(),
    epochs: wholeAtLeast('epochs', opts.epochs ?? (frozen ? FINETUNE_DEFAULTS.frozenEpochs : FINETUNE_DEFAULTS.epochs), 1),
    batchSize: wholeAtLeast('batch size', opts.batchSize ?? FINETUNE_DEFAULTS.batchSize, 1),
    frozen,
  };
  if (opts.threads !== undefined) kernels().setThreads(opts.threads > 0 ? opts.threads : os.availableParallelism());

  const ckpt = openCheckpoint(opts.checkpoint);
  const limits: ReaderLimits = {
    maxLength: Math.min(wholeAtLeast('max length', opts.maxLength ?? FINETUNE_DEFAULTS.maxLength, 8), ckpt.config.maxPositions),
    maxTrain: wholeAtLeast('max train', opts.maxTrain ?? FINETUNE_DEFAULTS.maxTrain, 0),
    maxDev: wholeAtLeast('max dev', opts.maxDev ?? FINETUNE_DEFAULTS.maxDev, 0),
  };
  // POS: the run's own document split when it pre-trained on Brown; the default split otherwise (it saw no Brown document then).
  const split = ckpt.runConfig?.data?.corpus === 'brown' ? ckpt.runConfig.data : defaultRunConfig().data;
  const data = await readTask(opts.task, ckpt.tokenizer, limits, { ...opts, splitSeed: split.splitSeed, validationFraction: split.validationFraction });
  const weights = opts.fromScratch ? null : readWeights(ckpt);
  const build = (seed: number) => {
    const model = newClassifier(data.kind, ckpt.config, data.labelNames, seed);
    // The encoder (and a pooler, if the checkpoint has one) comes from the checkpoint; the classifier is new.
    if (weights) loadModelWeights(ckpt.weightsFile, model, { wanted: (n) => !n.startsWith('classifier.'), optional: (n) => n.startsWith('bert.pooler.'), tensors: weights });
    return model;
  };
  const majority = majorityLabel(data);
  const baseline = { ...majorityScore(data, data.test, majority), label: data.labelNames[majority] };

  const outDir = opts.outDir === null ? null : path.resolve(opts.outDir ?? path.join(ckpt.runDir ?? ckpt.modelDir, `finetune-${opts.task}${suffixOf(mode)}`));
  // Everything goes into a temporary folder first, renamed at the end: a failed or stopped run leaves no half-written results.
  const tmpDir = outDir ? `${outDir}.tmp-${process.pid}` : null;
  const seeds = Array.from({ length: nSeeds }, (_, i) => i);
  const total = (lrGrid.length + nSeeds - 1) * stepsOf(recipe, data.train.length);
  const progress = new Progress(total, opts.progress ?? true);
  try {
    if (tmpDir) {
      fs.rmSync(tmpDir, { recursive: true, force: true });
      fs.mkdirSync(tmpDir, { recursive: true });
    }
    const metrics = tmpDir ? new MetricsLog(path.join(tmpDir, 'metrics.jsonl'), 0) : undefined;
    const pct = (score: number) => `${(100 * score).toFixed(2)}%`;
    progress.start(0, `fine-tuning ${ckpt.modelDir} (${mode}) on ${opts.task}: ${data.train.length} train / ${data.dev.length} dev / ${data.test.length} test examples, ` +
      `lr grid ${lrGrid.join(', ')}, ${nSeeds} seed(s), ${recipe.epochs} epochs of batch ${recipe.batchSize}`);
    progress.note(`majority-class baseline ("${baseline.label}"): test ${data.metric} ${pct(baseline.score)}`);
    const search = searchAndTrain(data, {
      recipe, lrGrid, seeds, build, sharedEncoder: !opts.fromScratch, progress, metrics,
      onRun: (run, phase) => progress.note(phase === 'grid'
        ? `lr ${run.lr} (seed ${run.seed}): dev ${data.metric} ${pct(run.dev.score)}`
        : `seed ${run.seed} at lr ${run.lr}: dev ${pct(run.dev.score)}, test ${data.metric} ${pct(run.test!.score)}`),
    });
    const scores = search.runs.map((r) => r.test!.score);
    const { mean, std } = meanStd(scores);
    const result: FinetuneResult = {
      task: opts.task, metric: data.metric, score: mean, std, seeds, scores, lr: search.lr, seconds: (performance.now() - started) / 1000,
      cpuSeconds: cpuSecondsSince(cpuStarted),
      mode, checkpoint: ckpt.modelDir, baseline, grid: search.grid, runs: search.runs, bestSeed: search.best.run.seed, outDir, splits: data.splits, labels: data.labelNames,
    };
    if (tmpDir && outDir) {
      const bestDir = path.join(tmpDir, 'best');
      fs.mkdirSync(bestDir);
      // The export's form, so Hugging Face loads best/ as it is (a Pre-LN model as RoBERTa-PreLayerNorm, zero biases for a bias-free one).
      saveModelWeights(bestDir, search.best.model, { hfBiases: true, layout: hfLayoutOf(search.best.model.config) });
      ckpt.tokenizer.save(bestDir, { modelMaxLength: ckpt.config.maxPositions });
      const record = {
        ...result, outDir: undefined, recipe: { ...recipe, lrGrid, warmup: `${recipe.warmupFraction * 100}% of the updates, then linear decay to 0`, optimizer: 'adamw' },
        limits, tags: opts.task === 'pos' ? opts.tags ?? 'universal' : undefined, data: opts.data, best: { seed: search.best.run.seed, dir: 'best' },
      };
      writeFileAtomic(path.join(tmpDir, 'results.json'), JSON.stringify(record, null, 1) + '\n');
      fs.rmSync(outDir, { recursive: true, force: true });
      fs.renameSync(tmpDir, outDir);
    }
    progress.note(`${opts.task} (${mode}): test ${data.metric} ${pct(mean)} ± ${(100 * std).toFixed(2)} over ${nSeeds} seed(s) at lr ${search.lr}, ${formatSeconds(result.seconds)}`);
    return result;
  } finally {
    progress.finish();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
