/**
 * The differentiable ops. Each computes its output with the kernels and, when
 * an input needs a gradient, records a backward closure that writes the
 * input gradients (see tensor.ts). Shapes are checked up front: a mismatch is
 * an UntieError naming the op and the shapes.
 *
 * Outputs and gradients come from the buffer pool (pool.ts), so their
 * contents start out undefined: every kernel call here either overwrites its
 * output or is given zeros. Buffers an op keeps only for its backward (masks,
 * row statistics) go back to the pool when that backward has run.
 */
import { kernels } from '../backend/index.js';
import type { Kernels } from '../backend/kernels.js';
import { UntieError } from '../errors.js';
import { anomalyMode, checkGradient } from './anomaly.js';
import { alloc, release, zeros } from './pool.js';
import type { Rng } from './rng.js';
import { Tensor, accumulateGrad, needsGrad, record, shapeString, sizeOf, type Shape } from './tensor.js';

function fail(op: string, message: string): never {
  throw new UntieError(`${op}: ${message}`);
}

function addInto(K: Kernels) {
  return (dst: Float32Array, src: Float32Array) => K.axpy(dst, src, 1);
}

function give(K: Kernels, t: Tensor, g: Float32Array, owned: boolean): void {
  accumulateGrad(t, g, owned, addInto(K));
}

/** Gives `t` a gradient the op just computed into a buffer of its own: adopted as t.grad, or added in and given back. */
function giveFresh(K: Kernels, t: Tensor, g: Float32Array): void {
  if (!accumulateGrad(t, g, true, addInto(K))) release(g);
}

// ---------------------------------------------------------------- matmul

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * Matrix product of the last two axes, batched over the leading ones.
 * a (..., m, k) [or (..., k, m) with transA], b (..., k, n) [or (..., n, k)
 * with transB]. b may be 2-D, then it is shared by every batch item.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2) fail('matmul', `needs at least 2-D inputs, got ${shapeString(a.shape)} and ${shapeString(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const m = transA ? ac : ar, k = transA ? ar : ac;
  const kb = transB ? bc : br, n = transB ? br : bc;
  const batchShape = a.shape.slice(0, -2);
  const batch = sizeOf(batchShape);
  const bBatchShape = b.shape.slice(0, -2);
  const bBroadcast = b.rank === 2 && a.rank > 2;
  if (k !== kb) fail('matmul', `inner dimensions differ: a ${shapeString(a.shape)}${transA ? 'ᵀ' : ''} and b ${shapeString(b.shape)}${transB ? 'ᵀ' : ''}`);
  if (!bBroadcast && shapeString(batchShape) !== shapeString(bBatchShape)) {
    fail('matmul', `batch dimensions differ: a ${shapeString(a.shape)} and b ${shapeString(b.shape)}`);
  }
  const K = kernels();
  const out = alloc(batch * m * n);
  const strideB = bBroadcast ? 0 : k * n;
  K.matmul(a.data, b.data, out, batch, m, n, k, transA, transB, m * k, strideB, m * n, 1, 0);
  const result = Tensor.adopt(out, [...batchShape, m, n]);
  if (!needsGrad(a, b)) return result;
  return record(result, () => {
    const dy = result.grad!;
    if (a.requiresGrad) {
      // dA = dY @ op(B)^T, laid out as A is stored.
      const da = alloc(a.size);
      if (!transA) K.matmul(dy, b.data, da, batch, m, k, n, false, !transB, m * n, strideB, m * k, 1, 0);
      else K.matmul(b.data, dy, da, batch, k, m, n, transB, true, strideB, m * n, m * k, 1, 0);
      giveFresh(K, a, da);
    }
    if (b.requiresGrad) {
      if (bBroadcast) {
        // Shared B: sum the per-item gradients by treating the batch as one big matmul.
        const db = alloc(b.size);
        if (!transA && !transB) {
          // dB (k, n) = A^T (k, batch*m) @ dY (batch*m, n)
          K.matmul(a.data, dy, db, 1, k, n, batch * m, true, false, 0, 0, 0, 1, 0);
        } else if (!transA && transB) {
          // dB (n, k) = dY^T (n, batch*m) @ A (batch*m, k)
          K.matmul(dy, a.data, db, 1, n, k, batch * m, true, false, 0, 0, 0, 1, 0);
        } else {
          for (let i = 0; i < batch; i++) {
            const ai = a.data.subarray(i * m * k, (i + 1) * m * k), dyi = dy.subarray(i * m * n, (i + 1) * m * n);
            const beta = i === 0 ? 0 : 1;
            if (!transB) K.matmul(ai, dyi, db, 1, k, n, m, false, false, 0, 0, 0, 1, beta);
            else K.matmul(dyi, ai, db, 1, n, k, m, true, true, 0, 0, 0, 1, beta);
          }
        }
        giveFresh(K, b, db);
      } else {
        const db = alloc(b.size);
        // dB = op(A)^T @ dY, laid out as B is stored.
        if (!transB) K.matmul(a.data, dy, db, batch, k, n, m, !transA, false, m * k, m * n, k * n, 1, 0);
        else K.matmul(dy, a.data, db, batch, n, k, m, true, transA, m * n, m * k, k * n, 1, 0);
        giveFresh(K, b, db);
      }
    }
  });
}

/**
 * y = x @ W^T + b, with W stored (out, in) as torch.nn.Linear and Hugging
 * Face checkpoints do. x (..., in), W (out, in), b (out) or null.
 * The weight gradient is accumulated straight into W.grad by the GEMM (beta=1).
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (weight.rank !== 2) fail('linear', `weight must be 2-D (out, in), got ${shapeString(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) fail('linear', `input ${shapeString(x.shape)} does not end in ${inF} (weight ${shapeString(weight.shape)})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) fail('linear', `bias ${shapeString(bias.shape)} does not match weight ${shapeString(weight.shape)}`);
  const rows = x.size / inF;
  const K = kernels();
  const out = alloc(rows * outF);
  K.matmul(x.data, weight.data, out, 1, rows, outF, inF, false, true, 0, 0, 0, 1, 0);
  if (bias) K.addRowVector(out, bias.data, out, rows, outF);
  const result = Tensor.adopt(out, [...x.shape.slice(0, -1), outF]);
  if (!needsGrad(x, weight, bias)) return result;
  return record(result, () => {
    const dy = result.grad!;
    if (x.requiresGrad) {
      const dx = alloc(x.size);
      K.matmul(dy, weight.data, dx, 1, rows, inF, outF, false, false, 0, 0, 0, 1, 0);
      giveFresh(K, x, dx);
    }
    if (weight.requiresGrad) {
      // dW (out, in) = dY^T (out, rows) @ X (rows, in), accumulated in place when W already has a gradient.
      if (weight.grad) {
        K.matmul(dy, x.data, weight.grad, 1, outF, inF, rows, true, false, 0, 0, 0, 1, 1);
        if (anomalyMode.on) checkGradient(weight);
      } else {
        const dw = alloc(weight.size);
        K.matmul(dy, x.data, dw, 1, outF, inF, rows, true, false, 0, 0, 0, 1, 0);
        giveFresh(K, weight, dw);
      }
    }
    if (bias && bias.requiresGrad) {
      const db = alloc(outF);
      K.sumRows(dy, db, rows, outF);
      giveFresh(K, bias, db);
    }
  });
}

/**
 * Several Linear maps of one input, computed as one GEMM, laid out as
 * attention heads: x (B, T, C), weights[i] (H * D, C), biases[i] (H * D) or
 * null; returns one (B, H, T, D) tensor per weight (Q, K and V of
 * self-attention). The weights stay separate tensors with separate
 * gradients; their concatenation is built for each call (P * H * D * C
 * floats, small next to the GEMM).
 */
export function linearHeads(x: Tensor, weights: Tensor[], biases: (Tensor | null)[], heads: number): Tensor[] {
  if (x.rank !== 3) fail('linearHeads', `x must be (batch, seq, features), got ${shapeString(x.shape)}`);
  const [B, T, C] = x.shape;
  const P = weights.length;
  if (P === 0 || biases.length !== P) fail('linearHeads', `needs one bias (or null) per weight, got ${P} weights and ${biases.length} biases`);
  const outF = weights[0].shape[0];
  for (const [i, w] of weights.entries()) {
    if (w.rank !== 2 || w.shape[0] !== outF || w.shape[1] !== C) fail('linearHeads', `weight ${i} ${shapeString(w.shape)} is not (${outF}, ${C})`);
    const b = biases[i];
    if (b && (b.rank !== 1 || b.size !== outF)) fail('linearHeads', `bias ${i} ${shapeString(b.shape)} is not (${outF})`);
  }
  if (outF % heads !== 0) fail('linearHeads', `${outF} output features do not split into ${heads} heads`);
  const D = outF / heads, rows = B * T, width = P * outF;
  const K = kernels();
  const wcat = alloc(width * C);
  weights.forEach((w, i) => wcat.set(w.data, i * outF * C));
  const fused = alloc(rows * width);
  K.matmul(x.data, wcat, fused, 1, rows, width, C, false, true, 0, 0, 0, 1, 0);
  const outs = weights.map((_, i) => {
    const out = alloc(rows * outF);
    K.splitHeads(fused, biases[i]?.data ?? null, out, B, T, P, i, heads, D);
    return Tensor.adopt(out, [B, heads, T, D]);
  });
  release(fused);
  if (!needsGrad(x, ...weights, ...biases)) {
    release(wcat);
    return outs;
  }
  // One backward for all outputs: it runs when backward reaches the first of
  // them, by which time every output's gradient is complete (their consumers
  // were all recorded later). The other entries then do nothing.
  let ran = false;
  const run = () => {
    if (ran) return;
    ran = true;
    const dfused = alloc(rows * width);
    outs.forEach((out, i) => {
      const g = out.grad ?? zeros(out.size);
      K.mergeHeads(g, dfused, B, T, P, i, heads, D);
      if (g !== out.grad) release(g);
    });
    if (x.requiresGrad) {
      const dx = alloc(x.size);
      K.matmul(dfused, wcat, dx, 1, rows, C, width, false, false, 0, 0, 0, 1, 0);
      giveFresh(K, x, dx);
    }
    if (weights.some((w) => w.requiresGrad)) {
      const dw = alloc(width * C);
      K.matmul(dfused, x.data, dw, 1, width, C, rows, true, false, 0, 0, 0, 1, 0);
      weights.forEach((w, i) => give(K, w, dw.subarray(i * outF * C, (i + 1) * outF * C), false));
      release(dw);
    }
    if (biases.some((b) => b?.requiresGrad)) {
      const db = alloc(width);
      K.sumRows(dfused, db, rows, width);
      biases.forEach((b, i) => b && give(K, b, db.subarray(i * outF, (i + 1) * outF), false));
      release(db);
    }
    release(dfused);
    release(wcat);
  };
  for (const out of outs) record(out, run);
  return outs;
}

// ---------------------------------------------------------------- broadcasting arithmetic

function broadcastShape(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1, db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(op, `shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** For each output index, the index into an input broadcast to `outShape`. */
function broadcastIndex(inShape: Shape, outShape: Shape): Int32Array {
  const rank = outShape.length;
  const padded = [...new Array(rank - inShape.length).fill(1), ...inShape];
  const inStrides = new Array(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = padded[i] === 1 ? 0 : s;
    s *= padded[i];
  }
  const total = sizeOf(outShape);
  const idx = new Int32Array(total);
  const coord = new Array(rank).fill(0);
  for (let o = 0; o < total; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += coord[i] * inStrides[i];
    idx[o] = src;
    for (let i = rank - 1; i >= 0; i--) {
      if (++coord[i] < outShape[i]) break;
      coord[i] = 0;
    }
  }
  return idx;
}

function isSuffix(small: Shape, big: Shape): boolean {
  if (small.length > big.length) return false;
  for (let i = 1; i <= small.length; i++) if (small[small.length - i] !== big[big.length - i]) return false;
  return true;
}

/** Sums a gradient of `outShape` down to `inShape` (the inverse of broadcasting). */
function reduceToShape(K: Kernels, g: Float32Array, outShape: Shape, inShape: Shape): Float32Array {
  const n = sizeOf(inShape);
  if (n === g.length) return g;
  if (isSuffix(inShape, outShape)) {
    const out = alloc(n);
    K.sumRows(g, out, g.length / n, n);
    return out;
  }
  const idx = broadcastIndex(inShape, outShape);
  const acc = new Float64Array(n);
  for (let o = 0; o < g.length; o++) acc[idx[o]] += g[o];
  return Float32Array.from(acc);
}

function expand(t: Tensor, outShape: Shape): Float32Array {
  if (t.size === sizeOf(outShape)) return t.data;
  const idx = broadcastIndex(t.shape, outShape);
  const out = new Float32Array(idx.length);
  for (let o = 0; o < idx.length; o++) out[o] = t.data[idx[o]];
  return out;
}

/** a + b with NumPy broadcasting. The common bias case (b's shape a suffix of a's) runs as one kernel. */
export function add(a: Tensor, b: Tensor): Tensor {
  const K = kernels();
  const shape = broadcastShape('add', a.shape, b.shape);
  const n = sizeOf(shape);
  const out = alloc(n);
  if (a.size === n && b.size === n) K.add(a.data, b.data, out);
  else if (a.size === n && isSuffix(b.shape, a.shape)) K.addRowVector(a.data, b.data, out, n / b.size, b.size);
  else if (b.size === n && isSuffix(a.shape, b.shape)) K.addRowVector(b.data, a.data, out, n / a.size, a.size);
  else K.add(expand(a, shape), expand(b, shape), out);
  const result = Tensor.adopt(out, shape);
  if (!needsGrad(a, b)) return result;
  return record(result, () => {
    const dy = result.grad!;
    // dy is shared by both inputs, so it is handed over to at most one of them.
    let handedOver = false;
    for (const t of [a, b]) {
      if (!t.requiresGrad) continue;
      const g = reduceToShape(K, dy, shape, t.shape);
      if (g !== dy) {
        giveFresh(K, t, g);
        continue;
      }
      give(K, t, g, !handedOver);
      handedOver = true;
    }
  });
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return add(a, scale(b, -1));
}

/** a * b (elementwise) with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  const K = kernels();
  const shape = broadcastShape('mul', a.shape, b.shape);
  const ad = expand(a, shape), bd = expand(b, shape);
  const out = alloc(sizeOf(shape));
  K.mul(ad, bd, out);
  const result = Tensor.adopt(out, shape);
  if (!needsGrad(a, b)) return result;
  return record(result, () => {
    const dy = result.grad!;
    for (const [t, other] of [[a, bd], [b, ad]] as const) {
      if (!t.requiresGrad) continue;
      const g = alloc(dy.length);
      K.mul(dy, other, g);
      const reduced = reduceToShape(K, g, shape, t.shape);
      if (reduced !== g) release(g);
      giveFresh(K, t, reduced);
    }
  });
}

/** s * a for a constant s. */
export function scale(a: Tensor, s: number): Tensor {
  const K = kernels();
  const out = alloc(a.size);
  K.scale(a.data, s, out);
  const result = Tensor.adopt(out, a.shape);
  if (!needsGrad(a)) return result;
  return record(result, () => {
    const g = alloc(a.size);
    K.scale(result.grad!, s, g);
    giveFresh(K, a, g);
  });
}

// ---------------------------------------------------------------- shape ops

/** Same data, new shape (one dimension may be -1). */
export function reshape(a: Tensor, shape: number[]): Tensor {
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  if (unknown >= 0) {
    const known = sizeOf(resolved.filter((_, i) => i !== unknown));
    resolved[unknown] = known === 0 ? 0 : a.size / known;
  }
  if (sizeOf(resolved) !== a.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    fail('reshape', `cannot reshape ${shapeString(a.shape)} (${a.size} elements) to ${shapeString(shape)}`);
  }
  const result = new Tensor(a.data, resolved);
  if (!needsGrad(a)) return result;
  return record(result, () => give(kernels(), a, result.grad!, true));
}

/** Permutes the axes of a tensor of rank <= 4. */
export function permute(a: Tensor, perm: number[]): Tensor {
  const rank = a.rank;
  if (rank > 4) fail('permute', `supports rank <= 4, got ${shapeString(a.shape)}`);
  if (perm.length !== rank || [...perm].sort().join() !== [...Array(rank).keys()].join()) {
    fail('permute', `[${perm}] is not a permutation of the ${rank} axes of ${shapeString(a.shape)}`);
  }
  const pad = 4 - rank;
  const dims = [...new Array(pad).fill(1), ...a.shape];
  const p4 = [...Array(pad).keys(), ...perm.map((p) => p + pad)];
  const K = kernels();
  const out = alloc(a.size);
  K.permute4(a.data, out, dims[0], dims[1], dims[2], dims[3], p4[0], p4[1], p4[2], p4[3]);
  const result = Tensor.adopt(out, perm.map((p) => a.shape[p]));
  if (!needsGrad(a)) return result;
  return record(result, () => {
    const inv = new Array(4);
    for (let i = 0; i < 4; i++) inv[p4[i]] = i;
    const od = p4.map((p) => dims[p]);
    const g = alloc(a.size);
    K.permute4(result.grad!, g, od[0], od[1], od[2], od[3], inv[0], inv[1], inv[2], inv[3]);
    giveFresh(K, a, g);
  });
}

/** Swaps the last two axes. */
export function transpose(a: Tensor): Tensor {
  if (a.rank < 2) fail('transpose', `needs at least 2 axes, got ${shapeString(a.shape)}`);
  const perm = [...Array(a.rank).keys()];
  [perm[a.rank - 2], perm[a.rank - 1]] = [perm[a.rank - 1], perm[a.rank - 2]];
  return permute(a, perm);
}

// ---------------------------------------------------------------- reductions

/** Sum of all elements, as a one-element tensor. */
export function sum(a: Tensor): Tensor {
  const K = kernels();
  const result = new Tensor(Float32Array.of(K.sum(a.data)), [1]);
  if (!needsGrad(a)) return result;
  return record(result, () => giveFresh(K, a, alloc(a.size).fill(result.grad![0])));
}

/** Mean of all elements, as a one-element tensor. */
export function mean(a: Tensor): Tensor {
  if (a.size === 0) fail('mean', 'mean of an empty tensor');
  return scale(sum(a), 1 / a.size);
}

// ---------------------------------------------------------------- activations

export function gelu(x: Tensor): Tensor {
  const K = kernels();
  const out = alloc(x.size);
  K.geluForward(x.data, out);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x)) return result;
  return record(result, () => {
    const dx = alloc(x.size);
    K.geluBackward(x.data, result.grad!, dx);
    giveFresh(K, x, dx);
  });
}

/**
 * gelu(x + bias) over the last axis, in one pass: x (..., C) is a Linear's
 * output without its bias, bias (C). The same values as gelu(add(x, bias)).
 */
export function biasGelu(x: Tensor, bias: Tensor): Tensor {
  const cols = x.shape[x.rank - 1];
  if (bias.rank !== 1 || bias.size !== cols) fail('biasGelu', `bias ${shapeString(bias.shape)} does not match the last axis of ${shapeString(x.shape)}`);
  const rows = x.size / cols;
  const K = kernels();
  const out = alloc(x.size);
  K.biasGeluForward(x.data, bias.data, out, rows, cols);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x, bias)) return result;
  return record(result, () => {
    const dx = alloc(x.size), db = alloc(cols);
    K.biasGeluBackward(x.data, bias.data, result.grad!, dx, db, rows, cols);
    giveFresh(K, x, dx);
    giveFresh(K, bias, db);
  });
}

export function tanh(x: Tensor): Tensor {
  const K = kernels();
  const out = alloc(x.size);
  K.tanhForward(x.data, out);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x)) return result;
  return record(result, () => {
    const dx = alloc(x.size);
    K.tanhBackward(result.data, result.grad!, dx);
    giveFresh(K, x, dx);
  });
}

/** Rows and columns of a LayerNorm over x's last axis, after checking gamma and beta against it. */
function normShape(op: string, x: Tensor, gamma: Tensor, beta: Tensor): { rows: number; cols: number } {
  const cols = x.shape[x.rank - 1];
  if (gamma.size !== cols || beta.size !== cols) {
    fail(op, `gamma ${shapeString(gamma.shape)} and beta ${shapeString(beta.shape)} must have the last axis of x ${shapeString(x.shape)}`);
  }
  return { rows: x.size / cols, cols };
}

/**
 * LayerNorm over the last axis. x (..., C), gamma, beta (C).
 */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-12): Tensor {
  const { rows, cols } = normShape('layerNorm', x, gamma, beta);
  const K = kernels();
  const out = alloc(x.size), mu = alloc(rows), rstd = alloc(rows);
  K.layerNormForward(x.data, gamma.data, beta.data, out, mu, rstd, rows, cols, eps);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x, gamma, beta)) {
    release(mu);
    release(rstd);
    return result;
  }
  return record(result, () => {
    const dx = alloc(x.size), dg = alloc(cols), db = alloc(cols);
    K.layerNormBackward(x.data, gamma.data, mu, rstd, result.grad!, dx, dg, db, rows, cols);
    release(mu);
    release(rstd);
    giveFresh(K, x, dx);
    giveFresh(K, gamma, dg);
    giveFresh(K, beta, db);
  });
}

/**
 * LayerNorm(x + y) over the last axis (the residual add of a Post-LN block,
 * fused into the norm): x, y (..., C), gamma, beta (C). The same values as
 * layerNorm(add(x, y), ...).
 */
export function addLayerNorm(x: Tensor, y: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-12): Tensor {
  if (shapeString(x.shape) !== shapeString(y.shape)) fail('addLayerNorm', `x ${shapeString(x.shape)} and y ${shapeString(y.shape)} differ`);
  const { rows, cols } = normShape('addLayerNorm', x, gamma, beta);
  const K = kernels();
  const out = alloc(x.size), sum = alloc(x.size), mu = alloc(rows), rstd = alloc(rows);
  K.addLayerNormForward(x.data, y.data, gamma.data, beta.data, sum, out, mu, rstd, rows, cols, eps);
  const result = Tensor.adopt(out, x.shape);
  const done = () => {
    release(sum);
    release(mu);
    release(rstd);
  };
  if (!needsGrad(x, y, gamma, beta)) {
    done();
    return result;
  }
  return record(result, () => {
    const ds = alloc(x.size), dg = alloc(cols), db = alloc(cols);
    K.layerNormBackward(sum, gamma.data, mu, rstd, result.grad!, ds, dg, db, rows, cols);
    done();
    giveFresh(K, gamma, dg);
    giveFresh(K, beta, db);
    // d sum flows unchanged to both addends: at most one takes the array itself.
    let adopted = false;
    for (const t of [x, y]) {
      if (t.requiresGrad && accumulateGrad(t, ds, !adopted, addInto(K))) adopted = true;
    }
    if (!adopted) release(ds);
  });
}

export interface SoftmaxOptions {
  /** Multiplies the input before the softmax (attention's 1/sqrt(d)). */
  scale?: number;
  /** Additive mask, one row per `maskGroup` consecutive rows of x. */
  mask?: Float32Array | null;
  maskGroup?: number;
}

/** Softmax over the last axis, with fused scale and additive mask. */
export function softmax(x: Tensor, opts: SoftmaxOptions = {}): Tensor {
  const cols = x.shape[x.rank - 1];
  const rows = x.size / cols;
  const s = opts.scale ?? 1;
  const mask = opts.mask ?? null;
  const group = opts.maskGroup ?? rows;
  if (mask && mask.length !== Math.ceil(rows / group) * cols) {
    fail('softmax', `mask has ${mask.length} elements; x ${shapeString(x.shape)} with maskGroup ${group} needs ${Math.ceil(rows / group) * cols}`);
  }
  const K = kernels();
  const out = alloc(x.size);
  K.softmaxForward(x.data, out, rows, cols, s, mask, group);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x)) return result;
  return record(result, () => {
    const dx = alloc(x.size);
    K.softmaxBackward(result.data, result.grad!, dx, rows, cols, s);
    giveFresh(K, x, dx);
  });
}

/**
 * Inverted dropout. The mask comes from a counter-based RNG seeded by one
 * draw from `rng`, so it is the same on every backend and thread count, and
 * the backward pass draws it again rather than keeping it.
 */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (!(p >= 0 && p < 1)) fail('dropout', `p must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const K = kernels();
  const out = alloc(x.size), seed = rng.nextU32();
  K.dropoutForward(x.data, out, p, seed);
  const result = Tensor.adopt(out, x.shape);
  if (!needsGrad(x)) return result;
  return record(result, () => {
    // The mask is drawn again from (seed, index), not stored.
    const dx = alloc(x.size);
    K.dropoutBackward(result.grad!, dx, p, seed);
    giveFresh(K, x, dx);
  });
}

// ---------------------------------------------------------------- embedding and loss

/** Rows of `table` (vocab, dim) picked by `ids`; output (...idsShape, dim). */
export function embedding(table: Tensor, ids: Int32Array, idsShape: Shape = [ids.length]): Tensor {
  if (table.rank !== 2) fail('embedding', `table must be 2-D (vocab, dim), got ${shapeString(table.shape)}`);
  if (sizeOf(idsShape) !== ids.length) fail('embedding', `ids has ${ids.length} entries but shape ${shapeString(idsShape)}`);
  const [vocab, dim] = table.shape;
  const K = kernels();
  const out = alloc(ids.length * dim);
  K.embeddingForward(table.data, ids, out, ids.length, dim, vocab);
  const result = Tensor.adopt(out, [...idsShape, dim]);
  if (!needsGrad(table)) return result;
  return record(result, () => {
    if (table.grad === null) give(K, table, zeros(table.size), true);
    K.embeddingBackward(result.grad!, ids, table.grad!, ids.length, dim, vocab);
    if (anomalyMode.on) checkGradient(table);
  });
}

/**
 * Mean cross-entropy of `logits` (rows, classes) against integer `targets`
 * (rows), skipping rows whose target is `ignoreIndex` (as torch's
 * F.cross_entropy with ignore_index). Returns a one-element tensor; NaN when
 * every row is ignored (as torch does).
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, ignoreIndex = -100): Tensor {
  const cols = logits.shape[logits.rank - 1];
  const rows = logits.size / cols;
  if (targets.length !== rows) fail('crossEntropy', `logits ${shapeString(logits.shape)} have ${rows} rows but targets has ${targets.length}`);
  const K = kernels();
  const losses = alloc(rows), lse = alloc(rows);
  const count = K.crossEntropyForward(logits.data, targets, losses, lse, rows, cols, ignoreIndex);
  const result = new Tensor(Float32Array.of(count === 0 ? NaN : K.sum(losses) / count), [1]);
  release(losses);
  if (!needsGrad(logits) || count === 0) {
    release(lse);
    return result;
  }
  return record(result, () => {
    const dlogits = alloc(logits.size);
    K.crossEntropyBackward(logits.data, targets, lse, dlogits, rows, cols, ignoreIndex, result.grad![0] / count);
    release(lse);
    giveFresh(K, logits, dlogits);
  });
}
