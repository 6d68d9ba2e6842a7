// The layer-gradient statistics of the mechanism probe (src/experiments/layergrads.ts)
// on gradients built with a known structure: a signal shared by every layer plus noise
// that is either each layer's own or one batch's for all layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradStats } from '../src/experiments/layergrads.js';

/** A seeded standard normal (Box-Muller over a linear congruential generator). */
function normals(seed: number) {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** grads[b][l] = signal + noise, the noise drawn per (batch, layer) or per batch only. */
function build(B: number, L: number, n: number, noise: number, shared: boolean): Float32Array[][] {
  const r = normals(7);
  const signal = Float32Array.from({ length: n }, r);
  return Array.from({ length: B }, () => {
    const batchNoise = Float32Array.from({ length: n }, r);
    return Array.from({ length: L }, () => Float32Array.from(signal, (v, i) => v + noise * (shared ? batchNoise[i] : r())));
  });
}

test('layer-gradient statistics: cosines of pure signal are 1', () => {
  const s = gradStats(1, 8, build(3, 4, 2000, 0, false));
  for (const v of [s.adjacentSame, s.adjacentCross, s.layerCross, s.tiedCross]) assert.ok(Math.abs(v - 1) < 1e-6, String(v));
});

test('layer-gradient statistics: averaging L layers whose noise is their own raises the agreement across batches as theory says', () => {
  // signal 1, noise variance 4 per coordinate: one layer's cosine across batches is 1/(1+4) = 0.2;
  // the mean of L = 8 layers has noise variance 4/8, so 1/(1+0.5) = 0.667. Neighbours on one batch agree as much as across batches.
  const s = gradStats(1, 8, build(4, 8, 20000, 2, false));
  assert.ok(Math.abs(s.layerCross - 0.2) < 0.02, String(s.layerCross));
  assert.ok(Math.abs(s.tiedCross - 1 / 1.5) < 0.02, String(s.tiedCross));
  assert.ok(Math.abs(s.adjacentSame - s.adjacentCross) < 0.02);
});

test('layer-gradient statistics: noise that a batch gives every layer alike is not averaged away', () => {
  const s = gradStats(1, 8, build(4, 8, 20000, 2, true));
  assert.ok(Math.abs(s.layerCross - 0.2) < 0.02, String(s.layerCross));
  assert.ok(Math.abs(s.tiedCross - s.layerCross) < 0.02, `${s.tiedCross} vs ${s.layerCross}`);
  assert.ok(s.adjacentSame > 0.99, String(s.adjacentSame)); // same batch: signal and noise both shared
  assert.ok(Math.abs(s.adjacentCross - 0.2) < 0.02, String(s.adjacentCross));
});

test('layer-gradient statistics refuse fewer than 2 batches or 2 layers', () => {
  assert.throws(() => gradStats(1, 8, build(1, 4, 10, 1, false)), /at least 2 batches and 2 layers/);
  assert.throws(() => gradStats(1, 8, build(3, 1, 10, 1, false)), /at least 2 batches and 2 layers/);
});
