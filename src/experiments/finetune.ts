/**
 * Downstream fine-tuning as one experiment: a pre-trained checkpoint (or the
 * same shape with random weights, or its frozen encoder) fine-tuned on a
 * task with the recipe's learning-rate search and several seeds, scored on
 * the task's fixed test split beside two reference lines trained on the
 * same split (the majority class and a bag of words, see
 * train/references.ts). Returns the results; writes them, a metrics log
 * and the best model (by dev score) into `finetune-<task>/` under the run
 * folder.
 *
 * By default every training example is used, for one epoch or as many as it
 * takes to make 300 updates (spam: 2 epochs, 568 updates; pos: 1 epoch,
 * 765; a file of 140 training rows: 34 epochs), each run keeping the
 * weights of its best dev evaluation and stopping once dev stops improving.
 * Quick judges (`untie compare --downstream`, scripts) pass a cap on the
 * training examples and the epochs explicitly (QUICK_JUDGE).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import { checkTaskOptions, readTask } from '../data/tasks/index.js';
import type { TagSet } from '../data/tasks/pos.js';
import { examplesDigest, type ReaderLimits, type SplitInfo, type TaskData, type TaskName } from '../data/tasks/task.js';
import { newClassifier } from '../models/heads.js';
import { hfLayoutOf, loadModelWeights, saveModelWeights } from '../train/checkpoint.js';
import { defaultRunConfig } from '../train/config.js';
import { defaultRecipe, searchAndTrain, stepsOf, type FinetuneRecipe, type SearchRun } from '../train/finetune.js';
import { writeFileAtomic } from '../train/fsutil.js';
import { openCheckpoint, readWeights } from '../train/load.js';
import { MetricsLog } from '../train/metrics.js';
import { Progress, formatSeconds } from '../train/progress.js';
import { references, type BowReference, type MajorityReference } from '../train/references.js';

/** The learning-rate grids: for fine-tuning the whole model, and for training a head on a frozen encoder. */
export const LR_GRID = [1e-4, 3e-4, 1e-3] as const;
export const FROZEN_LR_GRID = [1e-3, 3e-3, 1e-2] as const;

export const FINETUNE_DEFAULTS = {
  seeds: 3, epochs: 1, frozenEpochs: 10, minUpdates: 300, batchSize: 16, maxLength: 128, maxTrain: 0, maxDev: 256, evals: 10, patience: 3,
} as const;

/**
 * The cheap settings a judge of many checkpoints passes explicitly (`untie
 * compare --downstream`): 512 training examples (a fixed subset), 3 epochs
 * (10 for a frozen-encoder probe), 96 (320) updates a run.
 */
export const QUICK_JUDGE = { maxTrain: 512, epochs: 3, frozenEpochs: 10 } as const;

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
  /** Passes over the training examples (default: 1, or 10 frozen; more on a small split, to make minUpdates). */
  epochs?: number;
  /** With the default epochs: at least this many updates a run (default 300). */
  minUpdates?: number;
  batchSize?: number;
  /** Dev evaluations a run (default 10) and how many in a row without a new best stop it (default 3; 0 = never). */
  evals?: number;
  patience?: number;
  /** Class weights of the loss (default: balanced for spam and classify, none for pos). */
  classWeights?: 'balanced' | 'none';
  /** Ids per sequence ([CLS] and [SEP] included), at most the model's max positions. */
  maxLength?: number;
  /** Training examples kept, a fixed subset (default 0 = all). */
  maxTrain?: number;
  maxDev?: number;
  /** The same model shape with random weights: the floor pre-training must beat. */
  fromScratch?: boolean;
  /** Train only the head on the frozen encoder's features (a probe). */
  frozen?: boolean;
  /** Where results and the best model go (default: <run>/finetune-<task>[-<data file>][-scratch|-frozen]); null: write nothing. */
  outDir?: string | null;
  /** Replace the results already in outDir (default: refuse, before any work). */
  force?: boolean;
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
  /** The reference lines on the same split: the majority class (the most frequent training label), and a bag of words. */
  majority: MajorityReference;
  bow: BowReference;
  /** Passes over the training examples each run was planned for, and its updates (a run stops sooner when dev stops improving). */
  epochs: number;
  updatesPerRun: number;
  grid: SearchRun[];
  runs: SearchRun[];
  bestSeed: number;
  /** The results folder (null when nothing was written). */
  outDir: string | null;
  /** Each split's size and source, and examplesDigest of its examples. */
  splits: Record<'train' | 'dev' | 'test', SplitInfo & { digest: string }>;
  labels: string[];
}

function modeOf(o: FinetuneOptions): FinetuneResult['mode'] {
  return o.frozen ? (o.fromScratch ? 'frozen-from-scratch' : 'frozen') : o.fromScratch ? 'from-scratch' : 'pretrained';
}

function suffixOf(mode: FinetuneResult['mode']): string {
  return { pretrained: '', 'from-scratch': '-scratch', frozen: '-frozen', 'frozen-from-scratch': '-frozen-scratch' }[mode];
}

/** The results folder's default name: finetune-pos, finetune-classify-reviews (the data file's name), -scratch / -frozen for those modes. */
export function resultsFolderName(task: TaskName, mode: FinetuneResult['mode'], data?: string): string {
  const file = task === 'classify' && data ? `-${path.parse(data).name.replace(/[^A-Za-z0-9._-]+/g, '-')}` : '';
  return `finetune-${task}${file}${suffixOf(mode)}`;
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

/** A score in [0, 1] as a percentage: "86.90%". */
export function percent(score: number): string {
  return `${(100 * score).toFixed(2)}%`;
}

/** Mean and spread over seeds, the same on stdout and in the progress notes: "86.90% ± 0.20%". */
export function formatScore(mean: number, std: number): string {
  return `${percent(mean)} ± ${percent(std)}`;
}

/** Epochs of a run with the defaults: the base count, or more when one epoch is short, to make at least minUpdates updates. */
export function defaultEpochs(base: number, minUpdates: number, trainExamples: number, batchSize: number): number {
  return Math.max(base, Math.ceil(minUpdates / Math.max(1, Math.ceil(trainExamples / batchSize))));
}

/**
 * Refuses, before any work, to write where results would be lost: a folder
 * of earlier results without --force (a second fine-tune must not silently
 * replace the first's), and with or without it anything that is not such a
 * folder (--out pointing at a run or a checkpoint). An empty folder is used.
 */
function checkOutDir(outDir: string, force: boolean): void {
  if (!fs.existsSync(outDir)) return;
  const isDir = fs.statSync(outDir).isDirectory();
  if (isDir && fs.readdirSync(outDir).length === 0) return;
  if (!isDir || !fs.existsSync(path.join(outDir, 'results.json'))) {
    throw new UntieError(`${outDir} exists and is not a results folder of \`untie finetune\` (it has no results.json), so it is left alone, --force or not. Pass --out with a new folder.`);
  }
  if (!force) throw new UntieError(`${outDir} already exists (the results of an earlier \`untie finetune\`). Pass --force to replace it, or --out DIR to write elsewhere.`);
}

/**
 * Removes the temporary folders (OUT.tmp-PID) that fine-tunes into the same
 * folder left when they were killed (Ctrl-C, SIGKILL), once their process is
 * gone; one still running keeps its own.
 */
function removeStaleTmpDirs(outDir: string): void {
  const parent = path.dirname(outDir), prefix = `${path.basename(outDir)}.tmp-`;
  if (!fs.existsSync(parent)) return;
  for (const name of fs.readdirSync(parent)) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    if (Number.isInteger(pid) && (pid === process.pid || !processAlive(pid))) fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const started = performance.now(), cpuStarted = process.cpuUsage();
  checkTaskOptions(opts.task, opts);
  const frozen = opts.frozen ?? false, mode = modeOf(opts);
  const nSeeds = wholeAtLeast('seeds', opts.seeds ?? FINETUNE_DEFAULTS.seeds, 1);
  const lrGrid = opts.lrGrid ?? [...(frozen ? FROZEN_LR_GRID : LR_GRID)];
  if (lrGrid.length === 0 || !lrGrid.every((lr) => Number.isFinite(lr) && lr > 0)) throw new UntieError(`the learning-rate grid must hold positive numbers, got [${lrGrid.join(', ')}]`);
  const batchSize = wholeAtLeast('batch size', opts.batchSize ?? FINETUNE_DEFAULTS.batchSize, 1);
  if (opts.epochs !== undefined) wholeAtLeast('epochs', opts.epochs, 1);
  const minUpdates = wholeAtLeast('min updates', opts.minUpdates ?? FINETUNE_DEFAULTS.minUpdates, 0);
  const evals = wholeAtLeast('evals', opts.evals ?? FINETUNE_DEFAULTS.evals, 1);
  const patience = wholeAtLeast('patience', opts.patience ?? FINETUNE_DEFAULTS.patience, 0);
  if (opts.classWeights !== undefined && opts.classWeights !== 'balanced' && opts.classWeights !== 'none') {
    throw new UntieError(`class weights must be "balanced" or "none", got "${String(opts.classWeights)}"`);
  }
  if (opts.threads !== undefined) kernels().setThreads(opts.threads > 0 ? opts.threads : os.availableParallelism());

  const ckpt = openCheckpoint(opts.checkpoint);
  const outDir = opts.outDir === null ? null : path.resolve(opts.outDir ?? path.join(ckpt.runDir ?? ckpt.modelDir, resultsFolderName(opts.task, mode, opts.data)));
  if (outDir) checkOutDir(outDir, opts.force ?? false);
  const limits: ReaderLimits = {
    maxLength: Math.min(wholeAtLeast('max length', opts.maxLength ?? FINETUNE_DEFAULTS.maxLength, 8), ckpt.config.maxPositions),
    maxTrain: wholeAtLeast('max examples', opts.maxTrain ?? FINETUNE_DEFAULTS.maxTrain, 0),
    maxDev: wholeAtLeast('max dev', opts.maxDev ?? FINETUNE_DEFAULTS.maxDev, 0),
  };
  // POS: the run's own document split when it pre-trained on Brown; the default split otherwise (it saw no Brown document then).
  const split = ckpt.runConfig?.data?.corpus === 'brown' ? ckpt.runConfig.data : defaultRunConfig().data;
  const data = await readTask(opts.task, ckpt.tokenizer, limits, { ...opts, splitSeed: split.splitSeed, validationFraction: split.validationFraction });
  const base = defaultRecipe(data.kind);
  const epochs = opts.epochs ?? defaultEpochs(frozen ? FINETUNE_DEFAULTS.frozenEpochs : FINETUNE_DEFAULTS.epochs, minUpdates, data.train.length, batchSize);
  const recipe: Omit<FinetuneRecipe, 'lr' | 'seed'> = {
    epochs, batchSize, warmupFraction: base.warmupFraction, weightDecay: base.weightDecay, clip: base.clip, frozen,
    classWeights: opts.classWeights ?? base.classWeights, evals, patience,
  };
  const weights = opts.fromScratch ? null : readWeights(ckpt);
  const build = (seed: number) => {
    const model = newClassifier(data.kind, ckpt.config, data.labelNames, seed);
    // The encoder (and a pooler, if the checkpoint has one) comes from the checkpoint; the classifier is new.
    if (weights) loadModelWeights(ckpt.weightsFile, model, { wanted: (n) => !n.startsWith('classifier.'), optional: (n) => n.startsWith('bert.pooler.'), tensors: weights });
    return model;
  };
  const splits = {
    train: { ...data.splits.train, digest: examplesDigest(data.train) },
    dev: { ...data.splits.dev, digest: examplesDigest(data.dev) },
    test: { ...data.splits.test, digest: examplesDigest(data.test) },
  };

  // Everything goes into a temporary folder first, renamed at the end: a failed or stopped run leaves no half-written results.
  const tmpDir = outDir ? `${outDir}.tmp-${process.pid}` : null;
  const seeds = Array.from({ length: nSeeds }, (_, i) => i);
  const updatesPerRun = stepsOf(recipe, data.train.length);
  const progress = new Progress((lrGrid.length + nSeeds - 1) * updatesPerRun, opts.progress ?? true);
  try {
    if (tmpDir && outDir) {
      removeStaleTmpDirs(outDir);
      fs.mkdirSync(tmpDir, { recursive: true });
    }
    const metrics = tmpDir ? new MetricsLog(path.join(tmpDir, 'metrics.jsonl'), 0) : undefined;
    progress.start(0, `fine-tuning ${ckpt.modelDir} (${mode}) on ${opts.task}: ${data.train.length} train / ${data.dev.length} dev / ${data.test.length} test examples, ` +
      `lr grid ${lrGrid.join(', ')}, ${nSeeds} seed(s), up to ${epochs} epochs of batch ${batchSize} (${updatesPerRun} updates), class weights ${recipe.classWeights}`);
    const refs = references(data, recipe.classWeights);
    progress.note(`reference lines on the test split: majority class ("${refs.majority.label}") ${data.metric} ${percent(refs.majority.score)}; ` +
      `${refs.bow.method} ${data.metric} ${percent(refs.bow.score)} (${formatSeconds(refs.bow.seconds)})`);
    const search = searchAndTrain(data, {
      recipe, lrGrid, seeds, build, sharedEncoder: !opts.fromScratch, progress, metrics,
      onRun: (run, phase) => {
        const kept = `best dev at update ${run.bestStep} of ${run.steps}${run.stoppedEarly ? ', stopped early' : ''}`;
        progress.note(phase === 'grid'
          ? `lr ${run.lr} (seed ${run.seed}): dev ${data.metric} ${percent(run.dev.score)} (${kept})`
          : `seed ${run.seed} at lr ${run.lr}: dev ${percent(run.dev.score)}, test ${data.metric} ${percent(run.test!.score)} (${kept})`);
      },
    });
    const scores = search.runs.map((r) => r.test!.score);
    const { mean, std } = meanStd(scores);
    const result: FinetuneResult = {
      task: opts.task, metric: data.metric, score: mean, std, seeds, scores, lr: search.lr, seconds: (performance.now() - started) / 1000,
      cpuSeconds: cpuSecondsSince(cpuStarted), mode, checkpoint: ckpt.modelDir, majority: refs.majority, bow: refs.bow, epochs, updatesPerRun,
      grid: search.grid, runs: search.runs, bestSeed: search.best.run.seed, outDir, splits, labels: data.labelNames,
    };
    if (tmpDir && outDir) {
      const bestDir = path.join(tmpDir, 'best');
      fs.mkdirSync(bestDir);
      // The export's form, so Hugging Face loads best/ as it is (a Pre-LN model as RoBERTa-PreLayerNorm, zero biases for a bias-free one).
      saveModelWeights(bestDir, search.best.model, { hfBiases: true, layout: hfLayoutOf(search.best.model.config) });
      ckpt.tokenizer.save(bestDir, { modelMaxLength: ckpt.config.maxPositions });
      const record = {
        ...result, outDir: undefined,
        recipe: {
          lr: search.lr, lrGrid, ...recipe, minUpdates: opts.epochs === undefined ? minUpdates : undefined,
          warmup: `${recipe.warmupFraction * 100}% of the updates, then linear decay to 0`, optimizer: 'adamw',
        },
        limits, tags: opts.task === 'pos' ? opts.tags ?? 'universal' : undefined, data: opts.data, best: { seed: search.best.run.seed, dir: 'best' },
      };
      writeFileAtomic(path.join(tmpDir, 'results.json'), JSON.stringify(record, null, 1) + '\n');
      // The old results (--force) move aside until the new ones are in place, so a stop in between loses neither.
      const old = fs.existsSync(outDir) ? `${outDir}.tmp-old-${process.pid}` : null; // ".tmp-": skipped by readers
      if (old) fs.renameSync(outDir, old);
      fs.renameSync(tmpDir, outDir);
      if (old) fs.rmSync(old, { recursive: true, force: true });
    }
    progress.note(`${opts.task} (${mode}): test ${data.metric} ${formatScore(mean, std)} over ${nSeeds} seed(s) at lr ${search.lr}, ${formatSeconds(result.seconds)}`);
    return result;
  } finally {
    progress.finish();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}
