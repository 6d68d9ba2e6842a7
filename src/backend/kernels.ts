/**
 * The kernel interface: every piece of arithmetic the engine does on more than
 * a handful of numbers goes through one of these functions. Three
 * implementations exist: `reference` (plain TypeScript, obviously correct,
 * slow), `native` (the C++ addon in native/, fast) and `wasm` (the same C++
 * compiled to WebAssembly: no compiler needed at install, runs in a page).
 * Tests run every kernel on each and compare with the reference.
 *
 * Conventions, shared by both implementations:
 * - All tensors are float32, row-major, contiguous; shapes are passed as
 *   separate integers and documented per kernel as `name (dims)`.
 * - Kernels write into caller-allocated outputs. Unless a kernel says
 *   "accumulates", outputs are overwritten, never read.
 * - An output may alias an input only where the kernel says "in place OK".
 * - Reductions (sum, dot, ...) accumulate in float64 and return a JS number.
 * - Results depend only on inputs and the thread count, never on timing.
 * - Every implementation validates array lengths against the shapes before
 *   touching memory, and throws (never crashes) when they disagree.
 */

export type F32 = Float32Array;
export type I32 = Int32Array;

/**
 * Memory a backend wants tensor buffers in (the wasm backend: its module's
 * memory, which its kernels read and write in place, while other arrays are
 * copied in and out per call). The buffer pool (src/tensor/pool.ts) takes its
 * buffers from here when the active kernels have it.
 */
export interface KernelMemory {
  /** A view of `n` floats in this memory, or null when it is full (the pool then uses an ordinary array). */
  alloc(n: number): Float32Array | null;
  /** Gives back a view that `alloc` returned (the whole view, as returned). */
  free(a: Float32Array): void;
}

export interface Kernels {
  /** 'native', 'wasm' or 'reference'. */
  readonly name: string;

  /** Where tensor buffers should live for these kernels; absent: anywhere (ordinary arrays). */
  readonly memory?: KernelMemory;

  /** Threads used by parallel kernels (native); reference always uses 1. */
  setThreads(n: number): void;
  getThreads(): number;

  /**
   * Batched GEMM: for i in [0, batch):
   *   C_i = alpha * op(A_i) @ op(B_i) + beta * C_i
   * op(A_i) is (m, k): A_i is stored (m, k) or, when transA, (k, m).
   * op(B_i) is (k, n): B_i is stored (k, n) or, when transB, (n, k).
   * C_i is (m, n). A_i starts at a[i * strideA] (strideA = 0 broadcasts one
   * matrix to every batch item), likewise B_i and C_i. beta = 0 means C is
   * not read (so it may hold garbage or NaN).
   */
  matmul(
    a: F32, b: F32, c: F32,
    batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean,
    strideA: number, strideB: number, strideC: number,
    alpha: number, beta: number,
  ): void;

  // ---- elementwise: all arrays have length `a.length` unless stated ----

  /** out = a + b. In place OK. */
  add(a: F32, b: F32, out: F32): void;
  /** out = a * b (elementwise). In place OK. */
  mul(a: F32, b: F32, out: F32): void;
  /** out = s * a. In place OK. */
  scale(a: F32, s: number, out: F32): void;
  /** accumulates: dst += s * src. */
  axpy(dst: F32, src: F32, s: number): void;

  /** x (rows, cols), bias (cols), out (rows, cols): out[r,c] = x[r,c] + bias[c]. In place OK. */
  addRowVector(x: F32, bias: F32, out: F32, rows: number, cols: number): void;
  /** x (rows, cols), out (cols): out[c] = sum_r x[r,c]. */
  sumRows(x: F32, out: F32, rows: number, cols: number): void;

  /** out = gelu(x) = x * 0.5 * (1 + erf(x / sqrt(2))), the exact GELU. */
  geluForward(x: F32, out: F32): void;
  /** dx = dy * gelu'(x). */
  geluBackward(x: F32, dy: F32, dx: F32): void;
  /** out = tanh(x). */
  tanhForward(x: F32, out: F32): void;
  /** y = tanh(x) as returned by tanhForward; dx = dy * (1 - y^2). */
  tanhBackward(y: F32, dy: F32, dx: F32): void;

  /** x (rows, cols), bias (cols), out (rows, cols): out = gelu(x + bias), the sum rounded to float32 first (as addRowVector then geluForward). */
  biasGeluForward(x: F32, bias: F32, out: F32, rows: number, cols: number): void;
  /**
   * x, dy, dx (rows, cols), bias, dbias (cols): with pre = x + bias (rounded
   * to float32), dx = dy * gelu'(pre) and dbias[c] = sum_r dx[r, c] (as
   * geluBackward then sumRows).
   */
  biasGeluBackward(x: F32, bias: F32, dy: F32, dx: F32, dbias: F32, rows: number, cols: number): void;

  /**
   * Inverted dropout with a counter-based RNG, so both backends and every
   * thread count draw the same mask, and the backward pass draws it again
   * instead of storing it: for element i, u = uniform(seed, i) (see
   * `dropoutUniform` below); keep when u >= p. With s = fround(1 / (1 - p)):
   * x, out (n): out[i] = x[i] * (keep ? s : 0). p in [0, 1).
   */
  dropoutForward(x: F32, out: F32, p: number, seed: number): void;
  /** dy, dx (n): dx[i] = dy[i] * (keep ? s : 0), the same mask as dropoutForward with this p and seed. */
  dropoutBackward(dy: F32, dx: F32, p: number, seed: number): void;

  /**
   * Row softmax with fused scale and optional additive mask:
   *   out[r, :] = softmax(scale * x[r, :] + mask[floor(r / maskGroup), :])
   * x, out (rows, cols); mask (rows / maskGroup, cols) or null.
   * For attention scores (B, H, T, T) with a key mask (B, T): maskGroup = H*T.
   * A row whose entries are all -Infinity after masking yields zeros.
   */
  softmaxForward(x: F32, out: F32, rows: number, cols: number, scale: number,
    mask: F32 | null, maskGroup: number): void;
  /** y = softmax output; dx[r,c] = scale * y[r,c] * (dy[r,c] - sum_j dy[r,j] y[r,j]). */
  softmaxBackward(y: F32, dy: F32, dx: F32, rows: number, cols: number, scale: number): void;

  /**
   * LayerNorm over the last axis (biased variance, as PyTorch).
   * x, out (rows, cols); gamma, beta (cols); mean, rstd (rows) are written
   * for the backward pass: rstd = 1 / sqrt(var + eps).
   */
  layerNormForward(x: F32, gamma: F32, beta: F32, out: F32, mean: F32, rstd: F32,
    rows: number, cols: number, eps: number): void;
  /**
   * Writes dx (rows, cols), dgamma (cols), dbeta (cols) (overwritten, not
   * accumulated), from x, gamma, the saved mean/rstd and dy (rows, cols).
   */
  layerNormBackward(x: F32, gamma: F32, mean: F32, rstd: F32, dy: F32,
    dx: F32, dgamma: F32, dbeta: F32, rows: number, cols: number): void;
  /**
   * The residual add fused into LayerNorm: x, y, sum, out (rows, cols):
   * sum = x + y (kept for the backward pass), out = LayerNorm(sum), with mean
   * and rstd as layerNormForward (the same results as add then layerNormForward).
   */
  addLayerNormForward(x: F32, y: F32, gamma: F32, beta: F32, sum: F32, out: F32, mean: F32, rstd: F32,
    rows: number, cols: number, eps: number): void;

  /**
   * Cross-entropy over logits with an ignore index.
   * logits (rows, cols), targets (rows) int32, losses (rows), lse (rows).
   * For rows whose target is ignoreIndex: losses[r] = 0, lse[r] = 0.
   * Otherwise lse[r] = logsumexp(logits[r,:]), losses[r] = lse[r] - logits[r, t].
   * Returns the number of rows not ignored. A target outside [0, cols) that is
   * not ignoreIndex throws.
   */
  crossEntropyForward(logits: F32, targets: I32, losses: F32, lse: F32,
    rows: number, cols: number, ignoreIndex: number): number;
  /**
   * dlogits[r,c] = gradScale * (exp(logits[r,c] - lse[r]) - [c == t_r]),
   * and 0 for ignored rows.
   */
  crossEntropyBackward(logits: F32, targets: I32, lse: F32, dlogits: F32,
    rows: number, cols: number, ignoreIndex: number, gradScale: number): void;

  /** table (vocab, dim), ids (n) int32, out (n, dim): out[i,:] = table[ids[i],:]. Ids out of range throw. */
  embeddingForward(table: F32, ids: I32, out: F32, n: number, dim: number, vocab: number): void;
  /** accumulates: dtable[ids[i], :] += dout[i, :], in order of i. */
  embeddingBackward(dout: F32, ids: I32, dtable: F32, n: number, dim: number, vocab: number): void;

  /**
   * 4-D permute: x has shape (d0, d1, d2, d3); out has shape
   * (d[p0], d[p1], d[p2], d[p3]) and out[i_p0, i_p1, i_p2, i_p3] = x[i0, i1, i2, i3].
   * `perm` is a permutation of [0, 1, 2, 3]. Lower-rank tensors pad with leading 1s.
   */
  permute4(x: F32, out: F32, d0: number, d1: number, d2: number, d3: number,
    p0: number, p1: number, p2: number, p3: number): void;

  /**
   * Attention heads out of a fused projection: x (batch, seq, parts, heads,
   * headDim), out (batch, heads, seq, headDim) = part `part` of x with the seq
   * and heads axes swapped, plus bias (heads * headDim, indexed h * headDim + d)
   * when not null. With parts = 3 this takes Q, K or V out of one x @ [Wq; Wk; Wv]^T.
   */
  splitHeads(x: F32, bias: F32 | null, out: F32, batch: number, seq: number, parts: number, part: number,
    heads: number, headDim: number): void;
  /**
   * The inverse of splitHeads (without bias): x (batch, heads, seq, headDim)
   * into part `part` of out (batch, seq, parts, heads, headDim); out's other
   * parts are not touched.
   */
  mergeHeads(x: F32, out: F32, batch: number, seq: number, parts: number, part: number, heads: number,
    headDim: number): void;

  /**
   * AdamW (decoupled weight decay, as torch.optim.AdamW), in place on param, m, v:
   *   param *= 1 - lr * weightDecay
   *   m = beta1 * m + (1 - beta1) * grad
   *   v = beta2 * v + (1 - beta2) * grad^2
   *   param -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
   * where bc1 = 1 - beta1^t and bc2 = 1 - beta2^t are passed in by the caller.
   */
  adamwStep(param: F32, grad: F32, m: F32, v: F32,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number,
    bc1: number, bc2: number): void;

  // ---- reductions (float64 accumulation) ----
  /** sum_i a[i] */
  sum(a: F32): number;
  /** sum_i a[i] * b[i] */
  dot(a: F32, b: F32): number;
  /** sum_i a[i]^2 */
  sumSquares(a: F32): number;
  /** true when every element is finite. */
  allFinite(a: F32): boolean;
}

/**
 * The dropout RNG, defined once so that every backend draws the same numbers:
 * a murmur3-style 32-bit finaliser of (seed, index), top 24 bits as a uniform
 * float in [0, 1). `seed` and `index` are uint32.
 */
export function dropoutUniform(seed: number, index: number): number {
  let x = (seed ^ Math.imul(index >>> 0, 0x9e3779b1)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return (x >>> 8) / 16777216;
}
