/**
 * The reference kernels: every kernel of `kernels.ts` in plain TypeScript,
 * written to be obviously correct rather than fast. The native kernels are
 * tested against these, and untie falls back to them when the addon is absent.
 */
import { dropoutUniform, type F32, type I32, type Kernels } from './kernels.js';

function fail(op: string, message: string): never {
  throw new Error(`untie reference ${op}: ${message}`);
}

function needLength(op: string, name: string, arr: ArrayLike<number>, n: number): void {
  if (arr.length < n) fail(op, `${name} has ${arr.length} elements, needs ${n}`);
}

function checkIds(op: string, ids: I32, n: number, vocab: number): void {
  for (let i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= vocab) fail(op, `id ${ids[i]} at position ${i} is outside [0, ${vocab})`);
}

function sameLength(op: string, ...arrays: [string, ArrayLike<number>][]): number {
  const n = arrays[0][1].length;
  for (const [name, a] of arrays) if (a.length !== n) fail(op, `${name} has ${a.length} elements, expected ${n}`);
  return n;
}

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), in float64. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export const reference: Kernels = {
  name: 'reference',
  setThreads() {},
  getThreads() {
    return 1;
  },

  matmul(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta) {
    needLength('matmul', 'a', a, (batch - 1) * strideA + m * k);
    needLength('matmul', 'b', b, (batch - 1) * strideB + k * n);
    needLength('matmul', 'c', c, (batch - 1) * strideC + m * n);
    for (let bi = 0; bi < batch; bi++) {
      const ao = bi * strideA, bo = bi * strideB, co = bi * strideC;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = transA ? a[ao + p * m + i] : a[ao + i * k + p];
            const bv = transB ? b[bo + j * k + p] : b[bo + p * n + j];
            acc += av * bv;
          }
          const prev = beta === 0 ? 0 : beta * c[co + i * n + j];
          c[co + i * n + j] = alpha * acc + prev;
        }
      }
    }
  },

  add(a, b, out) {
    const n = sameLength('add', ['a', a], ['b', b], ['out', out]);
    for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  },
  mul(a, b, out) {
    const n = sameLength('mul', ['a', a], ['b', b], ['out', out]);
    for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
  },
  scale(a, s, out) {
    const n = sameLength('scale', ['a', a], ['out', out]);
    for (let i = 0; i < n; i++) out[i] = s * a[i];
  },
  axpy(dst, src, s) {
    const n = sameLength('axpy', ['dst', dst], ['src', src]);
    for (let i = 0; i < n; i++) dst[i] += s * src[i];
  },

  addRowVector(x, bias, out, rows, cols) {
    needLength('addRowVector', 'x', x, rows * cols);
    needLength('addRowVector', 'out', out, rows * cols);
    needLength('addRowVector', 'bias', bias, cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] + bias[c];
  },
  sumRows(x, out, rows, cols) {
    needLength('sumRows', 'x', x, rows * cols);
    needLength('sumRows', 'out', out, cols);
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let r = 0; r < rows; r++) acc += x[r * cols + c];
      out[c] = acc;
    }
  },

  geluForward(x, out) {
    const n = sameLength('geluForward', ['x', x], ['out', out]);
    for (let i = 0; i < n; i++) out[i] = 0.5 * x[i] * (1 + erf(x[i] * INV_SQRT2));
  },
  geluBackward(x, dy, dx) {
    const n = sameLength('geluBackward', ['x', x], ['dy', dy], ['dx', dx]);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const cdf = 0.5 * (1 + erf(v * INV_SQRT2));
      const pdf = INV_SQRT_2PI * Math.exp(-0.5 * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  },
  tanhForward(x, out) {
    const n = sameLength('tanhForward', ['x', x], ['out', out]);
    for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]);
  },
  tanhBackward(y, dy, dx) {
    const n = sameLength('tanhBackward', ['y', y], ['dy', dy], ['dx', dx]);
    for (let i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
  },

  biasGeluForward(x, bias, out, rows, cols) {
    needLength('biasGeluForward', 'x', x, rows * cols);
    needLength('biasGeluForward', 'out', out, rows * cols);
    needLength('biasGeluForward', 'bias', bias, cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = Math.fround(x[r * cols + c] + bias[c]);
        out[r * cols + c] = 0.5 * v * (1 + erf(v * INV_SQRT2));
      }
    }
  },
  biasGeluBackward(x, bias, dy, dx, dbias, rows, cols) {
    for (const [name, arr] of [['x', x], ['dy', dy], ['dx', dx]] as const) needLength('biasGeluBackward', name, arr, rows * cols);
    needLength('biasGeluBackward', 'bias', bias, cols);
    needLength('biasGeluBackward', 'dbias', dbias, cols);
    const acc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = Math.fround(x[r * cols + c] + bias[c]);
        const cdf = 0.5 * (1 + erf(v * INV_SQRT2));
        const pdf = INV_SQRT_2PI * Math.exp(-0.5 * v * v);
        const d = Math.fround(dy[r * cols + c] * (cdf + v * pdf));
        dx[r * cols + c] = d;
        acc[c] += d;
      }
    }
    for (let c = 0; c < cols; c++) dbias[c] = acc[c];
  },

  dropoutForward(x, out, p, seed) {
    const n = sameLength('dropoutForward', ['x', x], ['out', out]);
    if (!(p >= 0 && p < 1)) fail('dropoutForward', `p must be in [0, 1), got ${p}`);
    const keepScale = Math.fround(1 / (1 - p));
    for (let i = 0; i < n; i++) out[i] = x[i] * (dropoutUniform(seed, i) >= p ? keepScale : 0);
  },
  dropoutBackward(dy, dx, p, seed) {
    const n = sameLength('dropoutBackward', ['dy', dy], ['dx', dx]);
    if (!(p >= 0 && p < 1)) fail('dropoutBackward', `p must be in [0, 1), got ${p}`);
    const keepScale = Math.fround(1 / (1 - p));
    for (let i = 0; i < n; i++) dx[i] = dy[i] * (dropoutUniform(seed, i) >= p ? keepScale : 0);
  },

  softmaxForward(x, out, rows, cols, scale, mask, maskGroup) {
    needLength('softmaxForward', 'x', x, rows * cols);
    needLength('softmaxForward', 'out', out, rows * cols);
    if (mask) needLength('softmaxForward', 'mask', mask, Math.ceil(rows / maskGroup) * cols);
    const row = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const mo = mask ? Math.floor(r / maskGroup) * cols : 0;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) {
        row[c] = scale * x[r * cols + c] + (mask ? mask[mo + c] : 0);
        if (row[c] > max) max = row[c];
      }
      if (max === -Infinity) {
        for (let c = 0; c < cols; c++) out[r * cols + c] = 0;
        continue;
      }
      let sum = 0;
      for (let c = 0; c < cols; c++) {
        row[c] = Math.exp(row[c] - max);
        sum += row[c];
      }
      for (let c = 0; c < cols; c++) out[r * cols + c] = row[c] / sum;
    }
  },
  softmaxBackward(y, dy, dx, rows, cols, scale) {
    for (const [name, arr] of [['y', y], ['dy', dy], ['dx', dx]] as const) needLength('softmaxBackward', name, arr, rows * cols);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * y[r * cols + c];
      for (let c = 0; c < cols; c++) dx[r * cols + c] = scale * y[r * cols + c] * (dy[r * cols + c] - dot);
    }
  },

  layerNormForward(x, gamma, beta, out, mean, rstd, rows, cols, eps) {
    needLength('layerNormForward', 'x', x, rows * cols);
    needLength('layerNormForward', 'out', out, rows * cols);
    needLength('layerNormForward', 'gamma', gamma, cols);
    needLength('layerNormForward', 'beta', beta, cols);
    needLength('layerNormForward', 'mean', mean, rows);
    needLength('layerNormForward', 'rstd', rstd, rows);
    for (let r = 0; r < rows; r++) {
      let mu = 0;
      for (let c = 0; c < cols; c++) mu += x[r * cols + c];
      mu /= cols;
      let variance = 0;
      for (let c = 0; c < cols; c++) variance += (x[r * cols + c] - mu) ** 2;
      variance /= cols;
      const rs = 1 / Math.sqrt(variance + eps);
      mean[r] = mu;
      rstd[r] = rs;
      for (let c = 0; c < cols; c++) out[r * cols + c] = (x[r * cols + c] - mu) * rs * gamma[c] + beta[c];
    }
  },
  layerNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols) {
    for (const [name, arr] of [['x', x], ['dy', dy], ['dx', dx]] as const) needLength('layerNormBackward', name, arr, rows * cols);
    for (const [name, arr] of [['gamma', gamma], ['dgamma', dgamma], ['dbeta', dbeta]] as const) needLength('layerNormBackward', name, arr, cols);
    needLength('layerNormBackward', 'mean', mean, rows);
    needLength('layerNormBackward', 'rstd', rstd, rows);
    const dg = new Float64Array(cols), db = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const mu = mean[r], rs = rstd[r];
      // xhat = (x - mu) * rs; g = dy * gamma
      // dx = rs * (g - mean(g) - xhat * mean(g * xhat))
      let meanG = 0, meanGX = 0;
      for (let c = 0; c < cols; c++) {
        const xhat = (x[r * cols + c] - mu) * rs;
        const g = dy[r * cols + c] * gamma[c];
        meanG += g;
        meanGX += g * xhat;
        dg[c] += dy[r * cols + c] * xhat;
        db[c] += dy[r * cols + c];
      }
      meanG /= cols;
      meanGX /= cols;
      for (let c = 0; c < cols; c++) {
        const xhat = (x[r * cols + c] - mu) * rs;
        const g = dy[r * cols + c] * gamma[c];
        dx[r * cols + c] = rs * (g - meanG - xhat * meanGX);
      }
    }
    for (let c = 0; c < cols; c++) {
      dgamma[c] = dg[c];
      dbeta[c] = db[c];
    }
  },

  addLayerNormForward(x, y, gamma, beta, sum, out, mean, rstd, rows, cols, eps) {
    for (const [name, arr] of [['x', x], ['y', y], ['sum', sum]] as const) needLength('addLayerNormForward', name, arr, rows * cols);
    for (let i = 0; i < rows * cols; i++) sum[i] = x[i] + y[i];
    reference.layerNormForward(sum, gamma, beta, out, mean, rstd, rows, cols, eps);
  },

  crossEntropyForward(logits, targets, losses, lse, rows, cols, ignoreIndex) {
    needLength('crossEntropyForward', 'logits', logits, rows * cols);
    needLength('crossEntropyForward', 'targets', targets, rows);
    needLength('crossEntropyForward', 'losses', losses, rows);
    needLength('crossEntropyForward', 'lse', lse, rows);
    let count = 0;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) {
        losses[r] = 0;
        lse[r] = 0;
        continue;
      }
      if (t < 0 || t >= cols) fail('crossEntropyForward', `target ${t} at row ${r} is outside [0, ${cols})`);
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, logits[r * cols + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(logits[r * cols + c] - max);
      const l = max + Math.log(sum);
      lse[r] = l;
      losses[r] = l - logits[r * cols + t];
      count++;
    }
    return count;
  },
  crossEntropyBackward(logits, targets, lse, dlogits, rows, cols, ignoreIndex, gradScale) {
    needLength('crossEntropyBackward', 'logits', logits, rows * cols);
    needLength('crossEntropyBackward', 'dlogits', dlogits, rows * cols);
    needLength('crossEntropyBackward', 'targets', targets, rows);
    needLength('crossEntropyBackward', 'lse', lse, rows);
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignoreIndex) {
        for (let c = 0; c < cols; c++) dlogits[r * cols + c] = 0;
        continue;
      }
      if (t < 0 || t >= cols) fail('crossEntropyBackward', `target ${t} at row ${r} is outside [0, ${cols})`);
      for (let c = 0; c < cols; c++) {
        const p = Math.exp(logits[r * cols + c] - lse[r]);
        dlogits[r * cols + c] = gradScale * (p - (c === t ? 1 : 0));
      }
    }
  },

  embeddingForward(table, ids, out, n, dim, vocab) {
    needLength('embeddingForward', 'table', table, vocab * dim);
    needLength('embeddingForward', 'ids', ids, n);
    needLength('embeddingForward', 'out', out, n * dim);
    checkIds('embeddingForward', ids, n, vocab);
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      for (let d = 0; d < dim; d++) out[i * dim + d] = table[id * dim + d];
    }
  },
  embeddingBackward(dout, ids, dtable, n, dim, vocab) {
    needLength('embeddingBackward', 'dout', dout, n * dim);
    needLength('embeddingBackward', 'ids', ids, n);
    needLength('embeddingBackward', 'dtable', dtable, vocab * dim);
    checkIds('embeddingBackward', ids, n, vocab);
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      for (let d = 0; d < dim; d++) dtable[id * dim + d] += dout[i * dim + d];
    }
  },

  permute4(x, out, d0, d1, d2, d3, p0, p1, p2, p3) {
    const dims = [d0, d1, d2, d3], perm = [p0, p1, p2, p3];
    if ([...perm].sort().join() !== '0,1,2,3') fail('permute4', `perm [${perm}] is not a permutation of [0,1,2,3]`);
    const total = d0 * d1 * d2 * d3;
    needLength('permute4', 'x', x, total);
    needLength('permute4', 'out', out, total);
    const inStrides = [d1 * d2 * d3, d2 * d3, d3, 1];
    const od = perm.map((p) => dims[p]);
    const idx = [0, 0, 0, 0];
    for (let o = 0; o < total; o++) {
      // decompose o into output coordinates
      let rem = o;
      for (let ax = 3; ax >= 0; ax--) {
        idx[ax] = rem % od[ax];
        rem = Math.floor(rem / od[ax]);
      }
      let src = 0;
      for (let ax = 0; ax < 4; ax++) src += idx[ax] * inStrides[perm[ax]];
      out[o] = x[src];
    }
  },

  splitHeads(x, bias, out, batch, seq, parts, part, heads, headDim) {
    const total = batch * seq * heads * headDim;
    needLength('splitHeads', 'x', x, total * parts);
    needLength('splitHeads', 'out', out, total);
    if (bias) needLength('splitHeads', 'bias', bias, heads * headDim);
    if (!(part < parts)) fail('splitHeads', `part ${part} is not below parts ${parts}`);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seq; t++) {
        for (let h = 0; h < heads; h++) {
          for (let d = 0; d < headDim; d++) {
            const v = x[(((b * seq + t) * parts + part) * heads + h) * headDim + d];
            out[((b * heads + h) * seq + t) * headDim + d] = bias ? v + bias[h * headDim + d] : v;
          }
        }
      }
    }
  },
  mergeHeads(x, out, batch, seq, parts, part, heads, headDim) {
    const total = batch * seq * heads * headDim;
    needLength('mergeHeads', 'x', x, total);
    needLength('mergeHeads', 'out', out, total * parts);
    if (!(part < parts)) fail('mergeHeads', `part ${part} is not below parts ${parts}`);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seq; t++) {
        for (let h = 0; h < heads; h++) {
          for (let d = 0; d < headDim; d++) {
            out[(((b * seq + t) * parts + part) * heads + h) * headDim + d] = x[((b * heads + h) * seq + t) * headDim + d];
          }
        }
      }
    }
  },

  adamwStep(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2) {
    const n = sameLength('adamwStep', ['param', param], ['grad', grad], ['m', m], ['v', v]);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    const decay = 1 - lr * weightDecay;
    for (let i = 0; i < n; i++) {
      const g = grad[i];
      param[i] *= decay;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      param[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / sqrtBc2 + eps);
    }
  },

  sum(a) {
    let acc = 0;
    for (let i = 0; i < a.length; i++) acc += a[i];
    return acc;
  },
  dot(a, b) {
    const n = sameLength('dot', ['a', a], ['b', b]);
    let acc = 0;
    for (let i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
  },
  sumSquares(a) {
    let acc = 0;
    for (let i = 0; i < a.length; i++) acc += a[i] * a[i];
    return acc;
  },
  allFinite(a) {
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
    return true;
  },
};

export type { F32, I32 };
