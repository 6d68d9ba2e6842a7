// Every differentiable op's gradient against central finite differences, on
// the reference kernels, the wasm ones and (when built) the native ones.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeKernels, reference, useKernels, kernels, wasmKernels } from '../src/backend/index.js';
import type { Kernels } from '../src/backend/kernels.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import * as ops from '../src/tensor/ops.js';
import { gradCheck, randTensor } from './helpers.js';

const backends: Kernels[] = [reference];
const nat = nativeKernels(), wasm = wasmKernels();
if (nat) backends.push(nat);
if (wasm) backends.push(wasm);

for (const K of backends) {
  describe(`gradients (${K.name} kernels)`, () => {
    const before = kernels();
    test.before(() => useKernels(K));
    test.after(() => useKernels(before));
    const rng = new Rng(7);

    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
      test(`matmul 2-D transA=${transA} transB=${transB}`, () => {
        const a = randTensor(transA ? [5, 3] : [3, 5], rng);
        const b = randTensor(transB ? [4, 5] : [5, 4], rng);
        gradCheck(([x, y]) => ops.matmul(x, y, { transA, transB }), [a, b], { what: 'matmul' });
      });
      test(`matmul batched with shared b, transA=${transA} transB=${transB}`, () => {
        const a = randTensor(transA ? [2, 3, 4, 3] : [2, 3, 3, 4], rng);
        const b = randTensor(transB ? [2, 4] : [4, 2], rng);
        gradCheck(([x, y]) => ops.matmul(x, y, { transA, transB }), [a, b], { what: 'matmul broadcast' });
      });
    }
    test('matmul batched 4-D', () => {
      const a = randTensor([2, 2, 3, 4], rng), b = randTensor([2, 2, 4, 3], rng);
      gradCheck(([x, y]) => ops.matmul(x, y), [a, b], { what: 'bmm' });
      gradCheck(([x, y]) => ops.matmul(x, y, { transA: true, transB: true }), [randTensor([2, 2, 4, 3], rng), randTensor([2, 2, 3, 4], rng)], { what: 'bmm tt' });
    });
    test('linear with and without bias', () => {
      const x = randTensor([2, 3, 5], rng), w = randTensor([4, 5], rng), b = randTensor([4], rng);
      gradCheck(([xx, ww, bb]) => ops.linear(xx, ww, bb), [x, w, b], { what: 'linear' });
      gradCheck(([xx, ww]) => ops.linear(xx, ww, null), [x, w], { what: 'linear no bias' });
    });
    test('add: same shape, bias, general broadcast', () => {
      gradCheck(([a, b]) => ops.add(a, b), [randTensor([3, 4], rng), randTensor([3, 4], rng)], { what: 'add' });
      gradCheck(([a, b]) => ops.add(a, b), [randTensor([2, 3, 4], rng), randTensor([4], rng)], { what: 'add bias' });
      gradCheck(([a, b]) => ops.add(a, b), [randTensor([3, 1], rng), randTensor([1, 4], rng)], { what: 'add outer' });
      gradCheck(([a, b]) => ops.add(a, b), [randTensor([4], rng), randTensor([2, 3, 4], rng)], { what: 'add bias first' });
    });
    test('add of a tensor to itself accumulates both paths', () => {
      gradCheck(([a]) => ops.add(a, a), [randTensor([3, 4], rng)], { what: 'a + a' });
    });
    test('sub, mul, scale', () => {
      gradCheck(([a, b]) => ops.sub(a, b), [randTensor([3, 4], rng), randTensor([4], rng)], { what: 'sub' });
      gradCheck(([a, b]) => ops.mul(a, b), [randTensor([3, 4], rng), randTensor([3, 1], rng)], { what: 'mul' });
      gradCheck(([a]) => ops.scale(a, -1.7), [randTensor([3, 4], rng)], { what: 'scale' });
    });
    test('reshape, permute, transpose', () => {
      gradCheck(([a]) => ops.reshape(a, [4, -1]), [randTensor([2, 3, 4], rng)], { what: 'reshape' });
      gradCheck(([a]) => ops.permute(a, [2, 0, 3, 1]), [randTensor([2, 3, 4, 5], rng)], { what: 'permute' });
      gradCheck(([a]) => ops.permute(a, [1, 0, 2]), [randTensor([2, 3, 4], rng)], { what: 'permute 3-D' });
      gradCheck(([a]) => ops.transpose(a), [randTensor([3, 5], rng)], { what: 'transpose' });
    });
    test('sum, mean', () => {
      gradCheck(([a]) => ops.sum(a), [randTensor([3, 4], rng)], { what: 'sum' });
      gradCheck(([a]) => ops.mean(a), [randTensor([3, 4], rng)], { what: 'mean' });
    });
    test('gelu, tanh', () => {
      gradCheck(([a]) => ops.gelu(a), [randTensor([4, 7], rng, 2)], { what: 'gelu', h: 1e-3 });
      gradCheck(([a]) => ops.tanh(a), [randTensor([4, 7], rng)], { what: 'tanh', h: 1e-3 });
    });
    test('biasGelu (bias + GELU in one op)', () => {
      gradCheck(([x, b]) => ops.biasGelu(x, b), [randTensor([2, 3, 7], rng, 2), randTensor([7], rng)], { what: 'biasGelu', h: 1e-3 });
    });
    test('addLayerNorm (residual add fused into the norm), also with x = y', () => {
      gradCheck(([x, y, g, b]) => ops.addLayerNorm(x, y, g, b, 1e-5), [randTensor([3, 6], rng), randTensor([3, 6], rng), randTensor([6], rng), randTensor([6], rng)],
        { what: 'addLayerNorm', h: 1e-3, rtol: 3e-2, atol: 5e-3 });
      gradCheck(([x, g, b]) => ops.addLayerNorm(x, x, g, b, 1e-5), [randTensor([3, 6], rng), randTensor([6], rng), randTensor([6], rng)],
        { what: 'addLayerNorm x+x', h: 1e-3, rtol: 3e-2, atol: 5e-3 });
    });
    test('linearHeads (Q, K, V in one GEMM): every weight and bias, and an output that gets no gradient', () => {
      // x (B=2, T=3, C=4); three projections to H=2 heads of D=3; the loss mixes the outputs so each gets its own gradient.
      const heads = (xs: Tensor[]) => ops.linearHeads(xs[0], [xs[1], xs[2], xs[3]], [xs[4], null, xs[5]], 2);
      const inputs = [randTensor([2, 3, 4], rng), randTensor([6, 4], rng), randTensor([6, 4], rng), randTensor([6, 4], rng), randTensor([6], rng), randTensor([6], rng)];
      gradCheck((xs) => { const [q, k, v] = heads(xs); return ops.add(ops.mul(q, k), ops.scale(v, 0.5)); }, inputs, { what: 'linearHeads' });
      gradCheck((xs) => heads(xs)[1], inputs.slice(0, 4).concat([inputs[4], inputs[5]]), { what: 'linearHeads, only K used' });
    });
    test('layerNorm', () => {
      gradCheck(([x, g, b]) => ops.layerNorm(x, g, b, 1e-5), [randTensor([3, 6], rng), randTensor([6], rng), randTensor([6], rng)], { what: 'layerNorm', h: 1e-3, rtol: 3e-2, atol: 5e-3 });
    });
    test('softmax with scale and key mask', () => {
      const mask = new Float32Array([0, 0, -1e4, 0, 0, -Infinity, 0, 0]); // 2 mask rows of 4
      gradCheck(([x]) => ops.softmax(x, { scale: 0.5, mask, maskGroup: 3 }), [randTensor([2, 3, 4], rng)], { what: 'softmax', h: 1e-3 });
    });
    test('dropout (same seed each call)', () => {
      gradCheck(([x]) => ops.dropout(x, 0.3, new Rng(5)), [randTensor([5, 8], rng)], { what: 'dropout' });
    });
    test('embedding (repeated ids accumulate)', () => {
      const ids = Int32Array.from([1, 3, 1, 0, 3, 3]);
      gradCheck(([t]) => ops.embedding(t, ids, [2, 3]), [randTensor([4, 5], rng)], { what: 'embedding' });
    });
    test('crossEntropy with ignore index', () => {
      const targets = Int32Array.from([2, -100, 0, 4]);
      gradCheck(([l]) => ops.crossEntropy(l, targets), [randTensor([4, 5], rng)], { what: 'crossEntropy', h: 1e-3 });
    });
  });
}

test('linearHeads gives what three Linears split into heads give; biasGelu and addLayerNorm what their unfused ops give', () => {
  const rng = new Rng(21);
  const x = randTensor([2, 5, 8], rng, 1, false);
  const ws = [0, 1, 2].map(() => randTensor([8, 8], rng, 1, false)), bs = [randTensor([8], rng, 1, false), null, randTensor([8], rng, 1, false)];
  const fused = ops.linearHeads(x, ws, bs, 4);
  ws.forEach((w, i) => {
    const split = ops.permute(ops.reshape(ops.linear(x, w, bs[i]), [2, 5, 4, 2]), [0, 2, 1, 3]);
    assert.deepEqual(Array.from(fused[i].data), Array.from(split.data), `output ${i}`);
    assert.deepEqual(fused[i].shape, [2, 4, 5, 2]);
  });
  const h = randTensor([5, 8], rng, 2, false), b = randTensor([8], rng, 1, false);
  assert.deepEqual(Array.from(ops.biasGelu(h, b).data), Array.from(ops.gelu(ops.add(h, b)).data));
  const y = randTensor([5, 8], rng, 1, false), g = randTensor([8], rng, 1, false);
  assert.deepEqual(Array.from(ops.addLayerNorm(h, y, g, b, 1e-5).data), Array.from(ops.layerNorm(ops.add(h, y), g, b, 1e-5).data));
});

test('crossEntropy matches a hand computation', () => {
  const logits = Tensor.from([1, 2, 3, 0, 0, 0], [2, 3]);
  const loss = ops.crossEntropy(logits, Int32Array.from([2, -100])).item();
  const expected = -Math.log(Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3)));
  assert.ok(Math.abs(loss - expected) < 1e-6, `${loss} vs ${expected}`);
});

test('shape errors name the op and the shapes', () => {
  const a = Tensor.zeros([2, 3]), b = Tensor.zeros([4, 5]);
  assert.throws(() => ops.matmul(a, b), /matmul: inner dimensions differ: a \[2, 3\]/);
  assert.throws(() => ops.add(a, b), /add: shapes \[2, 3\] and \[4, 5\] do not broadcast/);
  assert.throws(() => ops.reshape(a, [4, 2]), /reshape: cannot reshape \[2, 3\]/);
  assert.throws(() => ops.crossEntropy(a, Int32Array.from([0])), /crossEntropy: logits \[2, 3\] have 2 rows but targets has 1/);
  assert.throws(() => ops.embedding(a, Int32Array.from([5])), /outside \[0, 2\)/);
  assert.throws(() => new Tensor(new Float32Array(5), [2, 3]), /5 elements but shape \[2, 3\] needs 6/);
});
