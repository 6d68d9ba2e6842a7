/**
 * Class-weighted cross-entropy, as torch.nn.functional.cross_entropy with
 * `weight`: sum_i w[y_i] * loss_i / sum_i w[y_i] over the rows with a target.
 *
 * Built from the engine's plain cross-entropy (no new kernel): the mean loss
 * of the rows of class c, times that class's share of the total weight in
 * this batch, summed over the classes present. Classification has few
 * classes, so the few extra passes over the logits cost nothing next to the
 * encoder.
 */
import { check } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';

export function classWeightedCrossEntropy(logits: Tensor, targets: Int32Array, classWeights: ArrayLike<number>, ignoreIndex = -100): Tensor {
  const rowsOf = new Map<number, number>();
  for (const t of targets) if (t !== ignoreIndex) rowsOf.set(t, (rowsOf.get(t) ?? 0) + 1);
  let total = 0;
  for (const [c, n] of rowsOf) total += classWeights[c] * n;
  check(total > 0, `the class weights of this batch's targets sum to ${total}: every class that occurs needs a positive weight`);
  let loss: Tensor | null = null;
  for (const [c, n] of [...rowsOf].sort((a, b) => a[0] - b[0])) {
    if (classWeights[c] === 0) continue;
    const only = targets.map((t) => (t === c ? t : ignoreIndex));
    const term = ops.scale(ops.crossEntropy(logits, only, ignoreIndex), (classWeights[c] * n) / total);
    loss = loss ? ops.add(loss, term) : term;
  }
  return loss!;
}
