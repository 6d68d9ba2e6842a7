/**
 * How much a stack's layers' gradients agree, and how much averaging them
 * (what a tied stack's update is) removes the noise of a batch: the
 * measurements behind the mechanism probe of the past-unigram study
 * (scripts/layer-grads.ts, docs/past-unigram.md). Works on any stack: it
 * takes each layer's gradient, all its tensors laid end to end, per batch.
 */
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';

export interface LayerGradStats {
  step: number;
  batchSize: number;
  /** cos(g_l(b), g_l+1(b)): neighbours on the same batch (what SWE-A logs while layers are tied). */
  adjacentSame: number;
  /** cos(g_l(b), g_l+1(b')), b != b': neighbours' agreement net of the noise one batch gives both. */
  adjacentCross: number;
  /** cos(g_l(b), g_l(b')): how much of one layer's gradient is signal rather than this batch's noise. */
  layerCross: number;
  /** The same for the layer mean (1/L) sum_l g_l(b), a tied stack's update: above layerCross, averaging removes noise. */
  tiedCross: number;
}

function cosine(dot: number, a: number, b: number): number {
  return a > 0 && b > 0 ? dot / Math.sqrt(a * b) : 0;
}

/**
 * Mean cosines over layers (adjacent pairs) and over pairs of batches, from
 * grads[b][l], layer l's gradient on batch b.
 */
export function gradStats(step: number, batchSize: number, grads: Float32Array[][]): LayerGradStats {
  const K = kernels();
  const B = grads.length, L = grads[0].length;
  if (B < 2 || L < 2) throw new UntieError(`the probe needs at least 2 batches and 2 layers, got ${B} and ${L}`);
  const sq = grads.map((gs) => gs.map((g) => K.sumSquares(g)));
  const tied = grads.map((gs) => {
    const m = new Float32Array(gs[0].length);
    for (const g of gs) for (let i = 0; i < m.length; i++) m[i] += g[i] / L;
    return m;
  });
  const tiedSq = tied.map((t) => K.sumSquares(t));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const same: number[] = [], cross: number[] = [], layer: number[] = [], tiedX: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let l = 0; l + 1 < L; l++) same.push(cosine(K.dot(grads[b][l], grads[b][l + 1]), sq[b][l], sq[b][l + 1]));
    for (let c = 0; c < B; c++) {
      if (c === b) continue;
      for (let l = 0; l + 1 < L; l++) cross.push(cosine(K.dot(grads[b][l], grads[c][l + 1]), sq[b][l], sq[c][l + 1]));
      if (c < b) continue;
      for (let l = 0; l < L; l++) layer.push(cosine(K.dot(grads[b][l], grads[c][l]), sq[b][l], sq[c][l]));
      tiedX.push(cosine(K.dot(tied[b], tied[c]), tiedSq[b], tiedSq[c]));
    }
  }
  return { step, batchSize, adjacentSame: mean(same), adjacentCross: mean(cross), layerCross: mean(layer), tiedCross: mean(tiedX) };
}
