// Synthetic masked-LM batches of a run's shape, for the benchmarks that time training steps.
import type { MlmBatch } from '../src/models/bert.js';
import type { Rng } from '../src/tensor/rng.js';

/** Random token ids, 15% of them masked (the [MASK] id 4) and predicted. */
export function syntheticBatch(batchSize: number, seqLen: number, vocab: number, rng: Rng): MlmBatch {
  const n = batchSize * seqLen;
  const inputIds = new Int32Array(n), labels = new Int32Array(n).fill(-100);
  for (let i = 0; i < n; i++) {
    inputIds[i] = 5 + rng.int(vocab - 5);
    if (rng.uniform() < 0.15) {
      labels[i] = inputIds[i];
      inputIds[i] = 4;
    }
  }
  return { inputIds, labels, tokenTypeIds: new Int32Array(n), attentionMask: new Float32Array(n).fill(1), batchSize, seqLen };
}
