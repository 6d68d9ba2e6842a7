/**
 * The reference lines of a fine-tuning result, as pre-training has the
 * unigram line: what a model with no encoder scores on the same split, so a
 * reader sees at once whether the encoder added anything.
 *
 * - majority: the most frequent training label, predicted for every row.
 * - bag of words: for sequence tasks (spam, classify) a multinomial logistic
 *   regression on the L2-normalised counts of the example's WordPiece ids
 *   (the very ids the model sees, so the same truncation), with the
 *   recipe's class weights and its L2 strength chosen on dev; for token
 *   tasks (POS) the most frequent tag of each word in the training split
 *   (a word never seen there gets the majority tag), the classic tagging
 *   baseline.
 *
 * Both train on `data.train` and are scored on `data.test`: the examples the
 * fine-tuned model trains on and is scored on.
 */
import type { TaskData, TaskExample } from '../data/tasks/task.js';
import { examplesDigest, majorityLabel } from '../data/tasks/task.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { SPECIAL_TOKENS } from '../data/tokenizer.js';
import { better, classWeightsOf, scorePredictions, type TaskScore } from './finetune.js';

/** What a reference line trained on and was scored on, so it can be checked against the model's. */
export interface ReferenceSplits {
  trainExamples: number;
  testExamples: number;
  /** examplesDigest of the training and test examples. */
  trainDigest: string;
  testDigest: string;
}

export interface MajorityReference extends TaskScore, ReferenceSplits {
  /** The majority label's name. */
  label: string;
}

export interface BowReference extends TaskScore, ReferenceSplits {
  method: 'logistic regression on bag-of-words counts' | 'most frequent tag of each word';
  /** The L2 strength chosen on dev (logistic regression only). */
  l2: number | null;
  /** Its dev score. */
  dev: TaskScore | null;
  seconds: number;
}

export interface References {
  majority: MajorityReference;
  bow: BowReference;
}

/** L2 strengths tried on dev for the logistic regression (on the mean loss; sklearn's C = 1 / (l2 * n)). */
export const BOW_L2_GRID = [1e-2, 1e-3, 1e-4] as const;

function splitsOf(data: TaskData): ReferenceSplits {
  return { trainExamples: data.train.length, testExamples: data.test.length, trainDigest: examplesDigest(data.train), testDigest: examplesDigest(data.test) };
}

function goldOf(examples: readonly TaskExample[]): number[] {
  return examples.flatMap((e) => Array.from(e.labels).filter((l) => l !== IGNORE_INDEX));
}

export function majorityReference(data: TaskData): MajorityReference {
  const majority = majorityLabel(data);
  const gold = goldOf(data.test);
  return { ...scorePredictions(new Array<number>(gold.length).fill(majority), gold, data), label: data.labelNames[majority], ...splitsOf(data) };
}

// ---------------------------------------------------------------- bag of words

/** Rows of a sparse matrix (CSR): row r's features are index[start[r]..start[r+1]) with their values. */
export interface SparseRows {
  start: Int32Array;
  index: Int32Array;
  value: Float64Array;
  /** Number of features (columns). */
  features: number;
}

/** Each example's WordPiece ids (special tokens left out) as L2-normalised counts. */
export function bagOfWords(examples: readonly TaskExample[], features: number): SparseRows {
  const start = new Int32Array(examples.length + 1);
  const index: number[] = [], value: number[] = [];
  examples.forEach((e, r) => {
    const counts = new Map<number, number>();
    for (const id of e.inputIds) if (id >= SPECIAL_TOKENS.length && id < features) counts.set(id, (counts.get(id) ?? 0) + 1);
    const ids = [...counts.keys()].sort((a, b) => a - b);
    const norm = Math.sqrt(ids.reduce((s, id) => s + counts.get(id)! ** 2, 0));
    for (const id of ids) {
      index.push(id);
      value.push(counts.get(id)! / norm);
    }
    start[r + 1] = index.length;
  });
  return { start, index: Int32Array.from(index), value: Float64Array.from(value), features };
}

export interface LogisticRegression {
  classes: number;
  features: number;
  /** (classes, features), row-major. */
  weight: Float64Array;
  bias: Float64Array;
}

export interface FitOptions {
  classes: number;
  /** Strength of (l2 / 2) * ||weight||^2 added to the mean loss (the bias is not penalised). */
  l2: number;
  /** Per-row weights of the loss (default 1): sum_i s_i loss_i / sum_i s_i. */
  rowWeights?: ArrayLike<number>;
  /** Most gradient steps. */
  iterations?: number;
  /** Stop when the gradient's largest entry is below this. */
  tolerance?: number;
}

/** Softmax probabilities of row r, written into p. */
function probabilities(m: LogisticRegression, x: SparseRows, r: number, p: Float64Array): void {
  const K = m.classes, V = m.features;
  let max = -Infinity;
  for (let c = 0; c < K; c++) {
    let z = m.bias[c];
    for (let k = x.start[r]; k < x.start[r + 1]; k++) z += m.weight[c * V + x.index[k]] * x.value[k];
    p[c] = z;
    if (z > max) max = z;
  }
  let sum = 0;
  for (let c = 0; c < K; c++) sum += (p[c] = Math.exp(p[c] - max));
  for (let c = 0; c < K; c++) p[c] /= sum;
}

/**
 * The objective (weighted mean cross-entropy + l2 / 2 * ||weight||^2) and its
 * gradient at `m`, written into gw and gb.
 */
export function logisticObjective(m: LogisticRegression, x: SparseRows, labels: ArrayLike<number>, opts: FitOptions, gw: Float64Array, gb: Float64Array): number {
  const K = m.classes, V = m.features, n = labels.length;
  const p = new Float64Array(K);
  let totalWeight = 0;
  for (let r = 0; r < n; r++) totalWeight += opts.rowWeights?.[r] ?? 1;
  gw.fill(0);
  gb.fill(0);
  let loss = 0;
  for (let r = 0; r < n; r++) {
    const s = (opts.rowWeights?.[r] ?? 1) / totalWeight;
    if (s === 0) continue;
    probabilities(m, x, r, p);
    loss -= s * Math.log(Math.max(p[labels[r]], 1e-300));
    for (let c = 0; c < K; c++) {
      const g = s * (p[c] - (c === labels[r] ? 1 : 0));
      gb[c] += g;
      for (let k = x.start[r]; k < x.start[r + 1]; k++) gw[c * V + x.index[k]] += g * x.value[k];
    }
  }
  for (let i = 0; i < gw.length; i++) {
    loss += (opts.l2 / 2) * m.weight[i] * m.weight[i];
    gw[i] += opts.l2 * m.weight[i];
  }
  return loss;
}

/**
 * Fits a multinomial logistic regression by Nesterov's accelerated gradient
 * with a fixed step of 1 / L and a restart whenever the momentum points
 * uphill (O'Donoghue & Candes). Rows are L2-normalised, so with the bias
 * each row has squared norm at most 2 and the softmax's curvature is at most
 * 1/2: L = 1 + l2 bounds the objective's curvature, and the step is safe.
 * Deterministic (starts at zero, no sampling).
 */
export function fitLogisticRegression(x: SparseRows, labels: ArrayLike<number>, opts: FitOptions): LogisticRegression & { iterations: number; gradientMax: number } {
  const K = opts.classes, V = x.features;
  const model: LogisticRegression = { classes: K, features: V, weight: new Float64Array(K * V), bias: new Float64Array(K) };
  const ahead: LogisticRegression = { classes: K, features: V, weight: new Float64Array(K * V), bias: new Float64Array(K) };
  const prevW = new Float64Array(K * V), prevB = new Float64Array(K);
  const gw = new Float64Array(K * V), gb = new Float64Array(K);
  const step = 1 / (1 + opts.l2), maxIter = opts.iterations ?? 500, tol = opts.tolerance ?? 1e-6;
  let k = 0, it = 0, gradientMax = Infinity;
  for (; it < maxIter; it++) {
    // The look-ahead point: model + momentum * (model - previous).
    const momentum = k / (k + 3);
    for (let i = 0; i < gw.length; i++) ahead.weight[i] = model.weight[i] + momentum * (model.weight[i] - prevW[i]);
    for (let c = 0; c < K; c++) ahead.bias[c] = model.bias[c] + momentum * (model.bias[c] - prevB[c]);
    logisticObjective(ahead, x, labels, opts, gw, gb);
    gradientMax = 0;
    for (const g of gw) gradientMax = Math.max(gradientMax, Math.abs(g));
    for (const g of gb) gradientMax = Math.max(gradientMax, Math.abs(g));
    if (gradientMax < tol) {
      model.weight.set(ahead.weight);
      model.bias.set(ahead.bias);
      break;
    }
    prevW.set(model.weight);
    prevB.set(model.bias);
    let uphill = 0;
    for (let i = 0; i < gw.length; i++) {
      model.weight[i] = ahead.weight[i] - step * gw[i];
      uphill += gw[i] * (model.weight[i] - prevW[i]);
    }
    for (let c = 0; c < K; c++) {
      model.bias[c] = ahead.bias[c] - step * gb[c];
      uphill += gb[c] * (model.bias[c] - prevB[c]);
    }
    k = uphill > 0 ? 0 : k + 1;
  }
  return { ...model, iterations: it, gradientMax };
}

export function predictLogistic(m: LogisticRegression, x: SparseRows): number[] {
  const p = new Float64Array(m.classes);
  const out: number[] = [];
  for (let r = 0; r + 1 < x.start.length; r++) {
    probabilities(m, x, r, p);
    let best = 0;
    for (let c = 1; c < m.classes; c++) if (p[c] > p[best]) best = c;
    out.push(best);
  }
  return out;
}

function sequenceLabels(examples: readonly TaskExample[]): Int32Array {
  return Int32Array.from(examples, (e) => e.labels[0]);
}

/** The bag-of-words logistic regression of a sequence task: fitted on train at each L2 strength, the best on dev scored on test. */
function bowLogistic(data: TaskData, classWeights: 'balanced' | 'none'): Omit<BowReference, 'seconds' | keyof ReferenceSplits> {
  let features: number = SPECIAL_TOKENS.length;
  for (const split of [data.train, data.dev, data.test]) for (const e of split) for (const id of e.inputIds) features = Math.max(features, id + 1);
  const [trainRows, devRows, testRows] = [data.train, data.dev, data.test].map((s) => bagOfWords(s, features));
  const labels = sequenceLabels(data.train);
  const weights = classWeightsOf(data.train, data.labelNames.length, classWeights);
  const rowWeights = Array.from(labels, (l) => weights[l]);
  let chosen: { l2: number; model: LogisticRegression; dev: TaskScore } | null = null;
  for (const l2 of BOW_L2_GRID) {
    const model = fitLogisticRegression(trainRows, labels, { classes: data.labelNames.length, l2, rowWeights });
    const dev = scorePredictions(predictLogistic(model, devRows), sequenceLabels(data.dev), data);
    if (!chosen || better(dev, chosen.dev)) chosen = { l2, model, dev };
  }
  const score = scorePredictions(predictLogistic(chosen!.model, testRows), sequenceLabels(data.test), data);
  return { ...score, method: 'logistic regression on bag-of-words counts', l2: chosen!.l2, dev: chosen!.dev };
}

/** A word's key: the ids of its pieces, from its labelled first piece to the next labelled position (or [SEP]). */
function wordsOf(e: TaskExample, each: (key: string, label: number) => void): void {
  const n = e.inputIds.length;
  for (let i = 0; i < n; i++) {
    if (e.labels[i] === IGNORE_INDEX) continue;
    let end = i + 1;
    while (end < n - 1 && e.labels[end] === IGNORE_INDEX) end++;
    each(Array.from(e.inputIds.subarray(i, end)).join(','), e.labels[i]);
  }
}

/** The most frequent tag of each word in train (ties: the lower tag id); unseen words get the majority tag. */
function wordTags(data: TaskData): Omit<BowReference, 'seconds' | keyof ReferenceSplits> {
  const counts = new Map<string, number[]>();
  for (const e of data.train) {
    wordsOf(e, (key, label) => {
      let c = counts.get(key);
      if (!c) counts.set(key, (c = new Array<number>(data.labelNames.length).fill(0)));
      c[label]++;
    });
  }
  const majority = majorityLabel(data);
  const tagOf = new Map<string, number>();
  for (const [key, c] of counts) tagOf.set(key, c.indexOf(Math.max(...c)));
  const predicted: number[] = [], gold: number[] = [];
  for (const e of data.test) {
    wordsOf(e, (key, label) => {
      predicted.push(tagOf.get(key) ?? majority);
      gold.push(label);
    });
  }
  return { ...scorePredictions(predicted, gold, data), method: 'most frequent tag of each word', l2: null, dev: null };
}

/** Both reference lines of a task, trained on data.train (dev for the choice) and scored on data.test. */
export function references(data: TaskData, classWeights: 'balanced' | 'none'): References {
  const started = performance.now();
  const bow = data.kind === 'sequence' ? bowLogistic(data, classWeights) : wordTags(data);
  return {
    majority: majorityReference(data),
    bow: { ...bow, seconds: (performance.now() - started) / 1000, ...splitsOf(data) },
  };
}
