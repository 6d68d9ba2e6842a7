/**
 * What every downstream task reader returns: tokenized examples in three
 * fixed splits, the label names in id order, and how the task is scored.
 *
 * - Token tasks (POS): `labels` has one entry per position, the tag id at
 *   the first sub-token of each word and IGNORE_INDEX everywhere else, so
 *   every word gets exactly one prediction.
 * - Sequence tasks (spam, classify): `labels` has one entry, the class id.
 *
 * Splits: `train` (fine-tuning), `dev` (choosing the learning rate and the
 * best seed) and `test` (the reported score, never used for a choice).
 */
import { Rng, hashString } from '../../tensor/rng.js';
import { IGNORE_INDEX } from '../mlm.js';
import { CLS_ID, SEP_ID, type WordPieceTokenizer } from '../tokenizer.js';

export const TASKS = ['pos', 'spam', 'classify'] as const;
export type TaskName = (typeof TASKS)[number];

export interface TaskExample {
  /** [CLS] ... [SEP], at most the task's maxLength ids. */
  inputIds: Int32Array;
  /** Token tasks: one label id (or IGNORE_INDEX) per input id. Sequence tasks: one label id. */
  labels: Int32Array;
}

export interface TaskData {
  task: TaskName;
  kind: 'token' | 'sequence';
  /** Label names, id order (Hugging Face's id2label). */
  labelNames: string[];
  /** The headline metric: token accuracy (pos), F1 of the positive class (spam), accuracy (classify). */
  metric: 'accuracy' | 'f1';
  /** For F1: the label id counted as positive. */
  positiveLabel: number | null;
  train: TaskExample[];
  dev: TaskExample[];
  test: TaskExample[];
  /** What each split holds (document ids, row counts), for results.json and the README. */
  splits: Record<'train' | 'dev' | 'test', SplitInfo>;
}

export interface SplitInfo {
  /** Examples (sequences) in this split after the caps. */
  examples: number;
  /** Where they came from: Brown document ids, message or row counts. */
  source: string[] | string;
}

export interface ReaderLimits {
  /** Ids per sequence, [CLS] and [SEP] included (<= the model's max positions). */
  maxLength: number;
  /** Most training examples kept (a fixed, seeded subset; 0 = all). */
  maxTrain: number;
  /** Most dev examples kept (0 = all). The test split is never capped. */
  maxDev: number;
}

/** [CLS] ids [SEP], with ids cut so the whole fits in maxLength. */
export function wrapSequence(ids: readonly number[], maxLength: number): Int32Array {
  const body = ids.slice(0, Math.max(0, maxLength - 2));
  return Int32Array.from([CLS_ID, ...body, SEP_ID]);
}

/**
 * Sequence-classification examples: each text tokenized and cut to fit
 * [CLS] ... [SEP] in maxLength ids. Only the first 4 x maxLength words are
 * tokenized (every word gives at least one token, bar control characters),
 * so long mails cost no more than short ones.
 */
export async function encodeSequences(tokenizer: WordPieceTokenizer, texts: readonly string[], labelIds: readonly number[], maxLength: number): Promise<TaskExample[]> {
  const ids = await tokenizer.encodeBatch(texts.map((t) => t.split(/\s+/, 4 * maxLength).join(' ')), { addSpecialTokens: false });
  return ids.map((seq, i) => ({ inputIds: wrapSequence(seq, maxLength), labels: Int32Array.of(labelIds[i]) }));
}

/**
 * Splits items into test/dev/train by a hash of each item's key (its text),
 * not by position: the split does not change when the file is reordered, it
 * is the same on every machine, and items with the same key (duplicates)
 * always land in the same split. Keys are taken in hash order: test fills up
 * to round(fraction * n) items (at least one), then dev, then train gets the rest.
 */
export function splitByKey<T>(items: readonly T[], keyOf: (item: T) => string, fractions: { test: number; dev: number }, salt: string): Record<'train' | 'dev' | 'test', T[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const key = keyOf(item);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  const keys = [...groups.keys()].map((key) => ({ key, h: hashString(`${salt}\u0000${key}`) }));
  keys.sort((a, b) => a.h - b.h || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const nTest = Math.max(1, Math.round(fractions.test * items.length));
  const nDev = Math.max(1, Math.round(fractions.dev * items.length));
  const split = new Uint8Array(items.length); // 0 train, 1 dev, 2 test
  let inTest = 0, inDev = 0;
  for (const { key } of keys) {
    const members = groups.get(key)!;
    const to = inTest < nTest ? 2 : inDev < nDev ? 1 : 0;
    if (to === 2) inTest += members.length;
    if (to === 1) inDev += members.length;
    for (const i of members) split[i] = to;
  }
  // Each split keeps the items' original order.
  return {
    test: items.filter((_, i) => split[i] === 2),
    dev: items.filter((_, i) => split[i] === 1),
    train: items.filter((_, i) => split[i] === 0),
  };
}

/** A fixed, seeded subset of at most `max` items (0 = all), in their original order. */
export function capItems<T>(items: readonly T[], max: number, salt: string): T[] {
  if (max <= 0 || items.length <= max) return [...items];
  const keep = Rng.derive(0, salt).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return keep.map((i) => items[i]);
}

/** The most frequent label among training examples (ties: the lower id): the majority-class baseline. */
export function majorityLabel(data: Pick<TaskData, 'train' | 'labelNames'>): number {
  const counts = new Array<number>(data.labelNames.length).fill(0);
  for (const ex of data.train) for (const l of ex.labels) if (l !== IGNORE_INDEX) counts[l]++;
  let best = 0;
  for (let i = 1; i < counts.length; i++) if (counts[i] > counts[best]) best = i;
  return best;
}

/**
 * A fingerprint of examples, in order (their ids and labels): two results
 * with the same digest of a split trained or were scored on the same
 * examples.
 */
export function examplesDigest(examples: readonly TaskExample[]): string {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h ^= v & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= v >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const e of examples) {
    mix(e.inputIds.length);
    for (const id of e.inputIds) mix(id);
    for (const l of e.labels) mix(l);
  }
  return `${examples.length}:${h.toString(16).padStart(8, '0')}`;
}
