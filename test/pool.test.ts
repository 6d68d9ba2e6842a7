// The tensor buffer pool and tidy scopes: buffers are reused only after they
// come back, nothing a caller holds is recycled, a training step after the
// first allocates no new buffers, and recycling changes no result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../src/models/bert.js';
import { Optimizer, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { alloc, isPooled, poolStats, release, zeros } from '../src/tensor/pool.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor, backward, tapeLength, tidy } from '../src/tensor/tensor.js';
import * as ops from '../src/tensor/ops.js';

test('a released buffer is handed out again; subarrays, foreign arrays and second releases are refused', () => {
  const a = alloc(5000);
  assert.equal(a.length, 5000);
  assert.ok(isPooled(a));
  assert.equal(release(a.subarray(0, 10)), false, 'a subarray is not the array handed out');
  assert.equal(release(new Float32Array(5000)), false, 'an array the pool never handed out');
  assert.equal(release(a), true);
  assert.equal(release(a), false, 'a second release of the same array');
  const b = alloc(4999); // same size class (4608 < n <= 5120)
  assert.equal(b.buffer, a.buffer, 'the released buffer is reused for a request of its size class');
  assert.equal(b.length, 4999);
  const c = alloc(5000);
  assert.notEqual(c.buffer, b.buffer, 'a buffer still handed out is never handed out twice');
  const z = zeros(6000);
  assert.ok(z.every((v) => v === 0));
  for (const x of [b, c, z]) release(x);
  // Small arrays are plain allocations: never pooled, never taken back.
  const small = alloc(10);
  assert.equal(isPooled(small), false);
  assert.equal(release(small), false);
});

test('tidy disposes what it made and did not return; the returned tensor, views included, keep their values', () => {
  const x = Tensor.from(Array.from({ length: 4096 }, (_, i) => i % 7), [64, 64]);
  let inner: Tensor | null = null;
  const kept = tidy(() => {
    inner = ops.scale(x, 2);
    const y = ops.add(inner, x); // 3x
    return ops.reshape(y, [4096]); // a view of y's buffer
  });
  assert.ok(kept.alive);
  assert.deepEqual(Array.from(kept.data.subarray(0, 8)), [0, 3, 6, 9, 12, 15, 18, 0]);
  assert.equal(inner!.alive, false);
  assert.throws(() => inner!.data, /used after its memory went back to the pool/);
  // The caller's own tensor is never touched.
  assert.ok(x.alive);
  // A buffer given back by the scope is reused, and does not clobber the kept one.
  const before = Array.from(kept.data);
  tidy(() => {
    ops.scale(x, -1);
    ops.scale(x, -5);
  });
  assert.deepEqual(Array.from(kept.data), before);
  // Returned in an object: kept too.
  const { a, b } = tidy(() => ({ a: ops.scale(x, 1), b: ops.scale(x, 2), n: 3 }));
  assert.ok(a.alive && b.alive);
  assert.equal(b.data[1], 2);
});

test('tidy releases nothing while the tape still needs its tensors (backward comes later)', () => {
  const w = new Tensor(Float32Array.from({ length: 2048 }, (_, i) => (i % 5) - 2), [32, 64], true);
  const loss = tidy(() => ops.sum(ops.gelu(ops.scale(w, 0.5))));
  assert.ok(tapeLength() > 0);
  backward(loss); // would read released buffers if tidy had given them back
  const h = 1e-2;
  const f = (v: number) => { const u = 0.5 * v; return 0.5 * u * (1 + erfApprox(u / Math.SQRT2)); };
  for (const i of [0, 1, 2, 3, 4, 777]) {
    const v = w.data[i];
    const numeric = (f(v + h) - f(v - h)) / (2 * h);
    assert.ok(Math.abs(w.grad![i] - numeric) < 2e-3, `d loss / d w[${i}]: ${w.grad![i]} vs ${numeric}`);
  }
  w.zeroGrad();
});

/** erf, Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7). */
function erfApprox(x: number): number {
  const s = Math.sign(x), z = Math.abs(x), t = 1 / (1 + 0.3275911 * z);
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return s * y;
}

// ---------------------------------------------------------------- whole training steps

function smallBert(): BertConfig {
  return { ...defaultBertConfig(), vocabSize: 60, hidden: 32, layers: 2, heads: 2, intermediate: 64, maxPositions: 32 };
}

function batchOf(c: BertConfig, seed: number): MlmBatch {
  const B = 4, T = 32, rng = new Rng(seed);
  const inputIds = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  for (let i = 0; i < B * T; i++) {
    inputIds[i] = 5 + (rng.nextU32() % (c.vocabSize - 5));
    if ((i + seed) % 4 === 0) labels[i] = inputIds[i]; // 32 masked positions, different ones each step
  }
  return { inputIds, tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T).fill(1), labels, batchSize: B, seqLen: T };
}

/** Trains `steps` steps (a new batch each, of the same shapes); returns the parameters and the pool's fresh allocations per step. */
function train(steps: number, useTidy: boolean): { params: Float32Array[]; fresh: number[]; losses: number[] } {
  const c = smallBert();
  const model = new BertForMaskedLM(c, 3);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p), names = named.map(([n]) => n);
  const opt = new Optimizer(defaultOptimizerConfig());
  const fresh: number[] = [], losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const before = poolStats().fresh;
    model.zeroGrad();
    const batch = batchOf(c, 100 + s);
    const step = () => {
      const { loss } = model.mlm(batch);
      backward(loss);
      return loss.item();
    };
    losses.push(useTidy ? tidy(step) : step());
    opt.step(params, names, 1e-3);
    fresh.push(poolStats().fresh - before);
  }
  return { params: params.map((p) => p.data.slice()), fresh, losses };
}

test('a training step in tidy allocates no new buffers once the pool is warm, and trains bit-identically to one without', () => {
  const pooled = train(8, true);
  assert.ok(pooled.fresh[0] > 0, 'the first step fills the pool');
  assert.deepEqual(pooled.fresh.slice(1), new Array(7).fill(0), `fresh pool allocations per step: ${pooled.fresh}`);
  const plain = train(8, false);
  assert.deepEqual(pooled.losses, plain.losses);
  pooled.params.forEach((p, i) => assert.ok(Buffer.from(p.buffer).equals(Buffer.from(plain.params[i].buffer)), `parameter ${i} differs`));
});
