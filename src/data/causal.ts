/**
 * Next-token examples, GPT style.
 *
 * The stream: each document's sentences in order, then [SEP] (the end of a
 * document, as GPT-2's <|endoftext|>), one document after another. It is cut
 * into windows of seqLen + 1 tokens, each starting where the previous one's
 * inputs ended (stride seqLen), so every token of the stream is a target
 * exactly once: the inputs are a window's first seqLen tokens, the labels the
 * same window shifted by one. Windows cross document boundaries, as in
 * GPT-2's training: after a [SEP] the model learns to start afresh, and
 * `untie generate` starts its prompt with one.
 *
 * Training draws full windows in a seeded order per epoch; validation takes
 * the validation split's windows in corpus order, the last one right-padded
 * (labels -100 there), so every validation token counts.
 */
import { check } from '../errors.js';
import type { LmBatch } from '../models/lm.js';
import { IGNORE_INDEX, EpochSampler, type EpochPosition } from './mlm.js';
import { CLS_ID, MASK_ID, PAD_ID, SEP_ID } from './tokenizer.js';

/** The ids the causal stream never holds, so never a target: what the unigram line leaves out. */
export const NOT_IN_STREAM: readonly number[] = [PAD_ID, CLS_ID, MASK_ID];

/** Documents (each a list of sentences' ids) as one stream, each document followed by `endId` ([SEP]). */
export function tokenStream(docs: readonly (readonly ArrayLike<number>[])[], endId = SEP_ID): Int32Array {
  let length = 0;
  for (const doc of docs) {
    for (const s of doc) length += s.length;
    length++;
  }
  const stream = new Int32Array(length);
  let at = 0;
  for (const doc of docs) {
    for (const s of doc) {
      stream.set(s, at);
      at += s.length;
    }
    stream[at++] = endId;
  }
  return stream;
}

/**
 * The stream's windows of seqLen + 1 tokens at stride seqLen (views, not
 * copies). `tail`: also the last, shorter window (at least one target).
 */
export function causalWindows(stream: Int32Array, seqLen: number, opts: { tail?: boolean } = {}): Int32Array[] {
  check(Number.isInteger(seqLen) && seqLen >= 1, `Sequence length must be a whole number >= 1, got ${seqLen}.`);
  const windows: Int32Array[] = [];
  for (let start = 0; start + 1 < stream.length; start += seqLen) {
    const end = Math.min(start + seqLen + 1, stream.length);
    if (end - start < seqLen + 1 && !opts.tail) break;
    windows.push(stream.subarray(start, end));
  }
  return windows;
}

/** One batch from windows of at most seqLen + 1 tokens: inputs the first seqLen, labels the next token of each, right-padded. */
export function makeCausalBatch(windows: readonly Int32Array[], seqLen: number): LmBatch {
  const batchSize = windows.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(PAD_ID);
  const tokenTypeIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Float32Array(batchSize * seqLen);
  const labels = new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  for (let b = 0; b < batchSize; b++) {
    const w = windows[b];
    check(w.length >= 2 && w.length <= seqLen + 1, `A window of ${w.length} tokens does not fit the sequence length ${seqLen} (2 to ${seqLen + 1} tokens).`);
    const n = w.length - 1;
    inputIds.set(w.subarray(0, n), b * seqLen);
    labels.set(w.subarray(1), b * seqLen);
    attentionMask.fill(1, b * seqLen, b * seqLen + n);
  }
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize, seqLen };
}

/**
 * Training batches of full windows, in a seeded shuffle per epoch (a batch
 * that crosses an epoch end takes the rest from the next). getState() and
 * setState() resume exactly.
 */
export class CausalDataset {
  private readonly sampler: EpochSampler;

  constructor(readonly windows: readonly Int32Array[], readonly seqLen: number, seed: number) {
    check(windows.length > 0, `The training split holds fewer than ${seqLen + 1} tokens, not one window of --seq-len ${seqLen} + 1. Use a larger corpus or a shorter --seq-len.`);
    for (const w of windows) check(w.length === seqLen + 1, `A training window has ${w.length} tokens; every one must have seqLen + 1 = ${seqLen + 1}.`);
    this.sampler = new EpochSampler(windows.length, seed, 'causal-order-epoch');
  }

  nextBatch(batchSize: number): LmBatch {
    check(Number.isInteger(batchSize) && batchSize > 0, `Batch size must be a positive integer, got ${batchSize}.`);
    return makeCausalBatch(Array.from({ length: batchSize }, () => this.windows[this.sampler.next()]), this.seqLen);
  }

  getState(): EpochPosition {
    return this.sampler.getState();
  }

  setState(state: EpochPosition): void {
    check(
      this.sampler.setState(state),
      () => `The saved data state ${JSON.stringify(state)?.slice(0, 200)} does not fit this dataset (${this.windows.length} windows). ` +
        'The checkpoint was made with different data or sequence length; resume with the same corpus, tokenizer and settings.',
    );
  }
}

/** The validation batches: every window in corpus order (the last may be shorter, and so may the last batch). */
export function buildCausalValidationBatches(windows: readonly Int32Array[], seqLen: number, batchSize: number): LmBatch[] {
  check(Number.isInteger(batchSize) && batchSize > 0, `Batch size must be a positive integer, got ${batchSize}.`);
  check(windows.length > 0, 'The validation set has no tokens: the validation split produced none. Use a larger corpus or validation fraction.');
  const batches: LmBatch[] = [];
  for (let start = 0; start < windows.length; start += batchSize) batches.push(makeCausalBatch(windows.slice(start, start + batchSize), seqLen));
  return batches;
}
