/**
 * What the trainer needs of a language model, whichever objective it
 * learns: BERT's masked LM (bert.ts) or GPT's next-token LM (gpt.ts). Both
 * take the same batches (token ids and one target id or IGNORE per position)
 * and declare their repeated blocks as a stack for src/sharing.
 */
import type { Module } from '../nn/module.js';
import type { RepeatedStack } from '../sharing/controller.js';
import type { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';

/** The model families untie trains: 'bert' (encoder, masked LM) and 'gpt' (decoder, next-token LM). */
export type ModelKind = 'bert' | 'gpt';
export const MODEL_KINDS: readonly ModelKind[] = ['bert', 'gpt'];

/** One batch of token ids, flattened (batch, seq). */
export interface TokenBatch {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  batchSize: number;
  seqLen: number;
}

/** A batch with its targets: the id to predict at each position, or -100 where nothing is (the loss's ignore index). */
export interface LmBatch extends TokenBatch {
  labels: Int32Array;
}

export interface LmOutput {
  /** Mean cross-entropy over the labelled positions. */
  loss: Tensor;
  /** Labelled positions predicted correctly (0 when not asked for), and how many there were. */
  correct: number;
  count: number;
  /** Per labelled position, in flat order: 1 where predicted correctly (an encoder's, for accuracy by difficulty; all 0 without accuracy). */
  hits?: Uint8Array;
}

export interface LanguageModel extends Module {
  readonly kind: ModelKind;
  readonly config: { vocabSize: number; layers: number; maxPositions: number };
  /** Every dropout mask draws its seed from this; its state goes into checkpoints. */
  readonly dropoutRng: Rng;
  /**
   * The objective's loss on `b`. Counting correct predictions takes an
   * argmax over the vocabulary at every target, so training asks for it
   * only on logged steps (`accuracy: false` leaves `correct` at 0).
   */
  loss(b: LmBatch, opts?: { accuracy?: boolean }): LmOutput;
  /** The repeated blocks, for the sharing controller. */
  stack(): RepeatedStack;
}

/** How many rows of `logits` (rows, V) have their argmax at `targets[row]`; rows whose target is negative (ignored) do not count. `hits`, when given, gets a 1 at each such row. */
export function countCorrect(logits: Float32Array, targets: Int32Array, V: number, hits?: Uint8Array): number {
  let correct = 0;
  for (let r = 0; r < targets.length; r++) {
    if (targets[r] < 0) continue;
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[r * V + v] > logits[r * V + best]) best = v;
    if (best === targets[r]) {
      correct++;
      if (hits) hits[r] = 1;
    }
  }
  return correct;
}
