/**
 * Fine-tuning one classifier on one task at one learning rate and seed: the
 * paper's recipe scaled down (a few epochs; AdamW with weight decay 0.01;
 * linear warmup over the first 10% of the updates, then linear decay to 0;
 * gradient clipping at 1). It reads like the pre-training loop and uses its
 * pieces (Optimizer, learningRate, clipGradNorm, Progress, MetricsLog).
 *
 * What lets it learn from any encoder, a random one included: the loss of
 * a sequence task weighs each class by the inverse of its frequency (so
 * predicting the majority class for everything is no longer a cheap
 * minimum), and the run is scored on dev at evenly spaced points, keeps the
 * weights of the best one and stops once dev has not improved for
 * `patience` evaluations.
 *
 * With `frozen`, the encoder is not trained: its features are computed once
 * (dropout off) and only the head learns from them, a probe of what the
 * encoder knows (a linear probe for token tasks; the pooler and the
 * classifier for sequence tasks, as Hugging Face's sequence head has both).
 */
import { UntieError } from '../errors.js';
import type { TaskData, TaskExample } from '../data/tasks/task.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { PAD_ID } from '../data/tokenizer.js';
import type { BertConfig, TokenBatch } from '../models/bert.js';
import { newClassifier, type BertClassifier, type ClassifierKind } from '../models/heads.js';
import { classWeightedCrossEntropy } from '../nn/losses.js';
import type { Module } from '../nn/module.js';
import { Optimizer, clipGradNorm } from '../optim/optimizers.js';
import { learningRate } from '../optim/schedule.js';
import { Rng } from '../tensor/rng.js';
import { Tensor, backward, clearTape, noGrad, tidy } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';
import type { MetricsLog } from './metrics.js';
import type { Progress } from './progress.js';

export interface FinetuneRecipe {
  lr: number;
  seed: number;
  epochs: number;
  /** Examples per update. */
  batchSize: number;
  /** Fraction of the updates spent warming up (0.1: the paper's 10%). */
  warmupFraction: number;
  weightDecay: number;
  /** Global gradient-norm clip (0 = off). */
  clip: number;
  /** Train the head only, on features of the frozen encoder. */
  frozen: boolean;
  /**
   * 'balanced': each class's loss weighted by rows / (classes x its rows in
   * the training split), sklearn's class_weight="balanced"; 'none': all 1.
   */
  classWeights: 'balanced' | 'none';
  /** Dev evaluations over the run, evenly spaced, the last at its end; the weights of the best are kept. */
  evals: number;
  /** Stop once this many evaluations in a row have not beaten the best (0: never stop early). */
  patience: number;
}

/**
 * The recipe's defaults. Sequence tasks (spam, classify) balance the
 * classes; token tasks (POS) do not: they are scored by accuracy over every
 * word, and a rare tag is rare in the test split too.
 */
export function defaultRecipe(kind: ClassifierKind): FinetuneRecipe {
  return {
    lr: 3e-4, seed: 0, epochs: 3, batchSize: 16, warmupFraction: 0.1, weightDecay: 0.01, clip: 1, frozen: false,
    classWeights: kind === 'sequence' ? 'balanced' : 'none', evals: 10, patience: 3,
  };
}

/**
 * Per-class loss weights from the training labels: 'balanced' gives
 * rows / (classes present x rows of the class), 1 on average over rows
 * (a class absent from train gets 0); 'none' gives 1 to every class.
 */
export function classWeightsOf(train: readonly TaskExample[], classes: number, mode: 'balanced' | 'none'): Float64Array {
  if (mode === 'none') return new Float64Array(classes).fill(1);
  const counts = new Float64Array(classes);
  for (const e of train) for (const l of e.labels) if (l !== IGNORE_INDEX) counts[l]++;
  const rows = counts.reduce((a, b) => a + b, 0), present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? rows / (present * c) : 0));
}

/** A batch of examples padded to the longest, with one target per row of the model's logits. */
export interface TaskBatch extends TokenBatch {
  /** Token tasks: batch x seqLen labels (IGNORE_INDEX at padding). Sequence tasks: one label per example. */
  targets: Int32Array;
}

export function taskBatch(examples: readonly TaskExample[], kind: 'token' | 'sequence'): TaskBatch {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.inputIds.length));
  const inputIds = new Int32Array(B * T).fill(PAD_ID), attentionMask = new Float32Array(B * T);
  const targets = kind === 'token' ? new Int32Array(B * T).fill(IGNORE_INDEX) : new Int32Array(B);
  examples.forEach((e, b) => {
    inputIds.set(e.inputIds, b * T);
    attentionMask.fill(1, b * T, b * T + e.inputIds.length);
    if (kind === 'token') targets.set(e.labels, b * T);
    else targets[b] = e.labels[0];
  });
  return { inputIds, tokenTypeIds: new Int32Array(B * T), attentionMask, batchSize: B, seqLen: T, targets };
}

/** Encoder features of one example: the rows the head scores, with their targets (labelled rows only). */
export interface FeatureRows {
  features: Float32Array;
  targets: Int32Array;
}

/**
 * The encoder's features of every example (dropout off, no tape), keeping
 * only rows with a target: what a frozen-encoder probe trains and is scored on.
 */
export function encoderFeatures(model: BertClassifier, examples: readonly TaskExample[], batchSize: number): FeatureRows[] {
  const H = model.config.hidden;
  const out: FeatureRows[] = [];
  withEval(model, () => {
    for (let i = 0; i < examples.length; i += batchSize) {
      const batch = taskBatch(examples.slice(i, i + batchSize), model.kind);
      // tidy: the batch's activations go back to the buffer pool once its features are copied out.
      tidy(() => {
        const f = noGrad(() => model.encoderFeatures(batch)).data;
        const rowsPer = model.kind === 'token' ? batch.seqLen : 1;
        for (let b = 0; b < batch.batchSize; b++) {
          const rows: number[] = [];
          for (let r = 0; r < rowsPer; r++) if (batch.targets[b * rowsPer + r] !== IGNORE_INDEX) rows.push(b * rowsPer + r);
          const features = new Float32Array(rows.length * H);
          rows.forEach((row, k) => features.set(f.subarray(row * H, (row + 1) * H), k * H));
          out.push({ features, targets: Int32Array.from(rows, (row) => batch.targets[row]) });
        }
      });
    }
  });
  return out;
}

/** Rows of several examples' features as one (rows, hidden) tensor and its targets. */
function stackRows(items: readonly FeatureRows[], hidden: number): { x: Tensor; targets: Int32Array } {
  const n = items.reduce((s, it) => s + it.targets.length, 0);
  const x = new Float32Array(n * hidden), targets = new Int32Array(n);
  let at = 0;
  for (const it of items) {
    x.set(it.features, at * hidden);
    targets.set(it.targets, at);
    at += it.targets.length;
  }
  return { x: new Tensor(x, [n, hidden]), targets };
}

export interface TaskScore {
  /** The task's headline metric (accuracy or F1 of the positive label), in [0, 1]. */
  score: number;
  accuracy: number;
  /** F1 of the positive label, when the task has one. */
  f1: number | null;
  /** Scored rows: words (token tasks) or examples. */
  count: number;
}

/** Scores predictions against gold labels with the task's metric. */
export function scorePredictions(predicted: ArrayLike<number>, gold: ArrayLike<number>, data: Pick<TaskData, 'metric' | 'positiveLabel'>): TaskScore {
  let correct = 0, tp = 0, fp = 0, fn = 0;
  const pos = data.positiveLabel;
  for (let i = 0; i < gold.length; i++) {
    if (predicted[i] === gold[i]) correct++;
    if (pos !== null) {
      if (predicted[i] === pos && gold[i] === pos) tp++;
      else if (predicted[i] === pos) fp++;
      else if (gold[i] === pos) fn++;
    }
  }
  const accuracy = gold.length > 0 ? correct / gold.length : 0;
  const f1 = pos === null ? null : tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  return { score: data.metric === 'f1' ? f1 ?? 0 : accuracy, accuracy, f1, count: gold.length };
}

function argmaxRows(logits: Float32Array, rows: number, cols: number, keep: (row: number) => boolean, out: number[]): void {
  for (let r = 0; r < rows; r++) {
    if (!keep(r)) continue;
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[r * cols + c] > logits[r * cols + best]) best = c;
    out.push(best);
  }
}

/** Scores the whole model (encoder and head) on examples, or the head on precomputed features. */
export function evaluateClassifier(model: BertClassifier, data: TaskData, examples: readonly TaskExample[] | readonly FeatureRows[], batchSize: number): TaskScore {
  const L = model.labels.length;
  const predicted: number[] = [], gold: number[] = [];
  withEval(model, () => {
    for (let i = 0; i < examples.length; i += batchSize) {
      const chunk = examples.slice(i, i + batchSize);
      // tidy: each chunk's activations go back to the buffer pool for the next.
      tidy(() => {
        if (isFeatures(chunk)) {
          const { x, targets } = stackRows(chunk, model.config.hidden);
          argmaxRows(noGrad(() => model.head(x)).data, targets.length, L, () => true, predicted);
          gold.push(...targets);
        } else {
          const batch = taskBatch(chunk, model.kind);
          const keep = (r: number) => batch.targets[r] !== IGNORE_INDEX;
          argmaxRows(noGrad(() => model.logits(batch)).data, batch.targets.length, L, keep, predicted);
          for (const t of batch.targets) if (t !== IGNORE_INDEX) gold.push(t);
        }
      });
    }
  });
  return scorePredictions(predicted, gold, data);
}

function isFeatures(items: readonly (TaskExample | FeatureRows)[]): items is readonly FeatureRows[] {
  return items.length > 0 && 'features' in items[0];
}

function withEval<T>(model: BertClassifier, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try {
    return fn();
  } finally {
    model.train(wasTraining);
  }
}

export interface FinetuneHooks {
  progress?: Progress;
  metrics?: MetricsLog;
  /** Updates done before this run (the progress bar and metrics.jsonl count across runs). */
  stepOffset?: number;
  /** Frozen encoder: its features of the training examples (computed once for all runs). */
  trainFeatures?: FeatureRows[];
  /** What dev scoring runs on: the dev examples, or (frozen) their features. Without it the run is not evaluated and keeps its last weights. */
  dev?: readonly TaskExample[] | readonly FeatureRows[];
  /** Examples per forward pass when scoring dev (default: twice the batch). */
  evalBatchSize?: number;
}

export interface FinetuneRunResult {
  /** Updates made (fewer than planned when the run stopped early). */
  steps: number;
  seconds: number;
  finalLoss: number;
  /** The best dev score and the update it was reached at, whose weights the model holds now (null without dev). */
  dev: TaskScore | null;
  bestStep: number | null;
  stoppedEarly: boolean;
}

/** Updates a run of `recipe` takes on `examples` training examples (unless it stops early). */
export function stepsOf(recipe: Pick<FinetuneRecipe, 'epochs' | 'batchSize'>, examples: number): number {
  return recipe.epochs * Math.ceil(examples / recipe.batchSize);
}

/** The updates after which dev is scored: `evals` of them, evenly spaced, the last at the end. */
export function evalSteps(evals: number, totalSteps: number): Set<number> {
  const n = Math.max(1, Math.min(evals, totalSteps));
  return new Set(Array.from({ length: n }, (_, k) => Math.round(((k + 1) * totalSteps) / n)));
}

/** A higher score; on a tie (e.g. F1 0 when no spam is found) the higher accuracy. */
export function better(a: TaskScore, b: TaskScore): boolean {
  return a.score > b.score || (a.score === b.score && a.accuracy > b.accuracy);
}

/**
 * Fine-tunes `model` in place on data.train. The data order is drawn from
 * the recipe's seed ("finetune-order"); weights and dropout come from the
 * seed the model was built with. With `hooks.dev`, the model ends holding
 * the weights of its best dev evaluation.
 */
export function finetuneClassifier(model: BertClassifier, data: TaskData, recipe: FinetuneRecipe, hooks: FinetuneHooks = {}): FinetuneRunResult {
  if (data.kind !== model.kind) throw new UntieError(`the ${data.task} task needs a ${data.kind} classifier, got a ${model.kind} one`);
  if (data.train.length === 0) throw new UntieError(`the ${data.task} task has no training examples`);
  if (recipe.frozen && !hooks.trainFeatures) throw new UntieError('a frozen-encoder run needs the encoder features of the training examples');
  const n = data.train.length, totalSteps = stepsOf(recipe, n);
  const sched = { lr: recipe.lr, warmupSteps: Math.round(recipe.warmupFraction * totalSteps), totalSteps, kind: 'linear' as const };
  const trainable = model.namedParameters().filter(([name]) => !recipe.frozen || model.isHeadParameter(name));
  const params = trainable.map(([, p]) => p);
  const optimizer = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: recipe.weightDecay });
  const weights = classWeightsOf(data.train, data.labelNames.length, recipe.classWeights);
  const orderRng = Rng.derive(recipe.seed, 'finetune-order');
  const evalAt = hooks.dev ? evalSteps(recipe.evals, totalSteps) : new Set<number>();
  const offset = hooks.stepOffset ?? 0;
  const start = performance.now();
  let step = 0, finalLoss = NaN, stoppedEarly = false, sinceBest = 0;
  let best: { dev: TaskScore; step: number; weights: Float32Array[] } | null = null;
  model.train();
  training: for (let epoch = 0; epoch < recipe.epochs; epoch++) {
    const order = orderRng.shuffle(Array.from({ length: n }, (_, i) => i));
    for (let at = 0; at < n; at += recipe.batchSize) {
      const stepStart = performance.now();
      const picked = order.slice(at, at + recipe.batchSize);
      const lr = learningRate(step, sched);
      model.zeroGrad();
      // tidy: the step's activations and gradients go back to the buffer pool.
      const { value, tokens } = tidy(() => {
        let logits: Tensor, targets: Int32Array, tokens: number;
        if (recipe.frozen) {
          const rows = stackRows(picked.map((i) => hooks.trainFeatures![i]), model.config.hidden);
          logits = model.head(rows.x);
          targets = rows.targets;
          tokens = targets.length;
        } else {
          const batch = taskBatch(picked.map((i) => data.train[i]), model.kind);
          logits = model.logits(batch);
          targets = batch.targets;
          tokens = batch.batchSize * batch.seqLen;
        }
        const loss = recipe.classWeights === 'none' ? ops.crossEntropy(logits, targets) : classWeightedCrossEntropy(logits, targets, weights, IGNORE_INDEX);
        const value = loss.item();
        if (!Number.isFinite(value)) {
          clearTape();
          throw new UntieError(`fine-tuning ${data.task} at lr ${recipe.lr} (seed ${recipe.seed}): the loss became ${value} at update ${step + 1}. Use a smaller learning rate (--lr-grid).`);
        }
        backward(loss);
        return { value, tokens };
      });
      const gradNorm = clipGradNorm(params, recipe.clip);
      optimizer.step(params, trainable.map(([name]) => name), lr);
      step++;
      finalLoss = value;
      const seconds = (performance.now() - stepStart) / 1000;
      hooks.progress?.update(offset + step, { loss: value, tokensPerSecond: tokens / seconds, elapsed: (performance.now() - start) / 1000 });
      if (step % 10 === 0 || step === totalSteps) {
        hooks.metrics?.write({ type: 'finetune_train', step: offset + step, run_step: step, lr_peak: recipe.lr, seed: recipe.seed, lr, loss: value, grad_norm: gradNorm });
      }
      if (evalAt.has(step)) {
        // Model selection on dev: keep a copy of the best weights; stop once dev has stopped improving.
        const dev = evaluateClassifier(model, data, hooks.dev!, hooks.evalBatchSize ?? 2 * recipe.batchSize);
        hooks.metrics?.write({ type: 'finetune_dev', step: offset + step, run_step: step, lr_peak: recipe.lr, seed: recipe.seed, score: dev.score, accuracy: dev.accuracy, ...(dev.f1 !== null ? { f1: dev.f1 } : {}) });
        if (!best || better(dev, best.dev)) {
          best = { dev, step, weights: params.map((p) => Float32Array.from(p.data)) };
          sinceBest = 0;
        } else if (recipe.patience > 0 && ++sinceBest >= recipe.patience) {
          stoppedEarly = step < totalSteps;
          break training;
        }
      }
    }
  }
  if (best && best.step !== step) params.forEach((p, i) => p.data.set(best.weights[i]));
  model.eval();
  return { steps: step, seconds: (performance.now() - start) / 1000, finalLoss, dev: best?.dev ?? null, bestStep: best?.step ?? null, stoppedEarly };
}

export interface SearchOptions {
  /** The recipe without lr and seed, which the search sets. */
  recipe: Omit<FinetuneRecipe, 'lr' | 'seed'>;
  /** Learning rates tried on the dev split with the first seed. */
  lrGrid: readonly number[];
  /** Seeds run at the chosen learning rate (the first one's grid run is reused). */
  seeds: readonly number[];
  /** A fresh classifier for a seed (weights from a checkpoint, or random). */
  build: (seed: number) => BertClassifier;
  /** True when the encoder's weights do not depend on the seed (loaded from a checkpoint): a frozen run then computes its features once. */
  sharedEncoder: boolean;
  /** Examples per forward pass when scoring. */
  evalBatchSize?: number;
  progress?: Progress;
  metrics?: MetricsLog;
  /** Called after each run (for progress notes). */
  onRun?: (run: SearchRun, phase: 'grid' | 'seed') => void;
}

export interface SearchRun {
  lr: number;
  seed: number;
  /** The best dev score of the run (the weights it keeps). */
  dev: TaskScore;
  /** Test score; only runs at the chosen learning rate are scored on test. */
  test: TaskScore | null;
  seconds: number;
  /** Updates made, the update whose weights were kept, and whether dev stopped the run before its planned end. */
  steps: number;
  bestStep: number;
  stoppedEarly: boolean;
}

export interface SearchResult {
  /** The learning rate with the best dev score (first seed; ties: better accuracy, then the earlier in the grid). */
  lr: number;
  grid: SearchRun[];
  /** One run per seed at the chosen learning rate, scored on dev and test. */
  runs: SearchRun[];
  /** The run with the best dev score among `runs`, and its model. */
  best: { run: SearchRun; model: BertClassifier };
}

/**
 * The recipe's model selection: each learning rate of the grid trained with
 * the first seed and scored on dev; then the other seeds at the best one.
 * Every run keeps the weights of its best dev evaluation. Test is scored
 * only for the runs at the chosen rate, never used to choose.
 */
export function searchAndTrain(data: TaskData, opts: SearchOptions): SearchResult {
  if (opts.lrGrid.length === 0) throw new UntieError('the learning-rate grid is empty');
  if (opts.seeds.length === 0) throw new UntieError('at least one seed is needed');
  const evalBatch = opts.evalBatchSize ?? 2 * opts.recipe.batchSize;
  const features = new Map<number, { train: FeatureRows[]; dev: FeatureRows[]; test: FeatureRows[] }>();
  const featuresFor = (model: BertClassifier, seed: number) => {
    const key = opts.sharedEncoder ? 0 : seed;
    let f = features.get(key);
    if (!f) {
      f = { train: encoderFeatures(model, data.train, evalBatch), dev: encoderFeatures(model, data.dev, evalBatch), test: encoderFeatures(model, data.test, evalBatch) };
      features.set(key, f);
    }
    return f;
  };
  const perRun = stepsOf(opts.recipe, data.train.length);
  let stepOffset = 0;
  const trainOne = (lr: number, seed: number) => {
    const model = opts.build(seed);
    const f = opts.recipe.frozen ? featuresFor(model, seed) : null;
    const res = finetuneClassifier(model, data, { ...opts.recipe, lr, seed }, {
      progress: opts.progress, metrics: opts.metrics, stepOffset, trainFeatures: f?.train, dev: f ? f.dev : data.dev, evalBatchSize: evalBatch,
    });
    stepOffset += perRun;
    const score = (split: 'dev' | 'test') => {
      const s = evaluateClassifier(model, data, f ? f[split] : data[split], evalBatch);
      opts.metrics?.write({ type: 'finetune_eval', step: stepOffset, split, lr_peak: lr, seed, score: s.score, accuracy: s.accuracy, ...(s.f1 !== null ? { f1: s.f1 } : {}) });
      return s;
    };
    const run: SearchRun = { lr, seed, dev: res.dev!, test: null, seconds: res.seconds, steps: res.steps, bestStep: res.bestStep!, stoppedEarly: res.stoppedEarly };
    return { model, run, score };
  };

  const grid: SearchRun[] = [];
  let chosen: ReturnType<typeof trainOne> | null = null;
  for (const lr of opts.lrGrid) {
    const r = trainOne(lr, opts.seeds[0]);
    grid.push(r.run);
    opts.onRun?.(r.run, 'grid');
    if (!chosen || better(r.run.dev, chosen.run.dev)) chosen = r;
  }
  const lr = chosen!.run.lr;
  const finals = [chosen!];
  for (const seed of opts.seeds.slice(1)) {
    const r = trainOne(lr, seed);
    finals.push(r);
  }
  let best = finals[0];
  const runs = finals.map((r) => {
    const run = { ...r.run, test: r.score('test') };
    opts.onRun?.(run, 'seed');
    if (better(r.run.dev, best.run.dev)) best = r;
    return run;
  });
  return { lr, grid, runs, best: { run: runs[finals.indexOf(best)], model: best.model } };
}

/** The probe `train --probe TASK` runs after each validation: a frozen encoder, one seed, a short lr search. */
export const PROBE_SETTINGS = { lrGrid: [1e-3, 3e-3, 1e-2], epochs: 10, batchSize: 16, maxTrain: 512, maxDev: 256 } as const;

/**
 * Scores what `encoder` (any model whose parameters include HF's
 * bert.embeddings.* and bert.encoder.*, e.g. the masked-LM model being
 * pre-trained) knows about a task: its encoder weights are copied into a
 * fresh classifier, frozen, and only the head is trained (seed 0, the lr
 * chosen on dev). The encoder itself is not touched.
 */
export function probeEncoder(encoder: Module & { config: BertConfig }, data: TaskData, settings: { lrGrid: readonly number[]; epochs: number; batchSize: number } = PROBE_SETTINGS): SearchResult {
  const source = new Map(encoder.namedParameters());
  const build = (seed: number) => {
    const model = newClassifier(data.kind, encoder.config, data.labelNames, seed);
    for (const [name, p] of model.namedParameters()) {
      if (model.isHeadParameter(name)) continue;
      const from = source.get(name);
      if (!from || from.size !== p.size) throw new UntieError(`the encoder has no parameter "${name}" of ${p.size} values to probe`);
      p.data.set(from.data);
    }
    return model;
  };
  return searchAndTrain(data, {
    recipe: { ...defaultRecipe(data.kind), frozen: true, epochs: settings.epochs, batchSize: settings.batchSize }, lrGrid: settings.lrGrid, seeds: [0], build, sharedEncoder: true,
  });
}
