/**
 * The wasm kernels: the C++ kernels of native/ compiled to wasm32 with SIMD128
 * (native/wasm/untie.wasm, built by `npm run build:wasm`), behind the same
 * Kernels interface. This file has no Node imports, so that a page can use it
 * (see examples/browser/); src/backend/wasm-file.ts loads the shipped module
 * in Node.
 *
 * Where tensors live: the module's memory is created here at a fixed size
 * (up to 4 GiB, reserved, not committed: the OS maps pages as they are first
 * written) and never grown, because growing a non-shared memory detaches
 * every view of it. Kernels that get views of that memory run on them in
 * place. The tensor buffer pool (src/tensor/pool.ts) asks the active kernels
 * for `memory` and takes its buffers from here, so activations and gradients,
 * the arrays of the hot path, are never copied. Any other array (a caller's
 * own Float32Array, parameters made with `new Float32Array`, ids) is copied
 * into a temporary block of the memory for the call and, if the kernel
 * writes it, copied back: correct for every array, and cheap where it
 * happens (a weight read once per GEMM, ids, masks).
 *
 * One thread: the module runs every kernel on the calling thread (the pool of
 * native/pool.h is a loop, native/wasm/runtime.cc), so setThreads is accepted
 * and ignored, and results are the same at every setting.
 *
 * Like the native addon, every kernel checks its arguments (types, counts,
 * lengths against the shapes, targets and ids in range) before touching
 * memory, and throws an Error naming the op otherwise.
 */
import type { F32, I32, KernelMemory, Kernels } from './kernels.js';

/** The wasm kernels, with the memory the tensor pool takes its buffers from. */
export interface WasmKernels extends Kernels {
  readonly memory: KernelMemory & {
    /** The module memory's size and the bytes of it now allocated (tensors, workspace), in bytes. */
    bytes(): { total: number; inUse: number };
  };
}

const PAGE = 65536;
/** 4 GiB, the most a wasm32 memory can address. */
const MAX_PAGES = 65536;
/** Blocks are aligned to a cache line, as the native build's packing buffers. */
const ALIGN = 64;
const MAX_DIM = 2 ** 31 - 1;

export interface WasmOptions {
  /**
   * The module's memory in bytes, fixed for its lifetime (it holds every
   * tensor of the pool). Default: 4 GiB, or the largest power of two the
   * engine grants below that (a browser tab may refuse 4 GiB).
   */
  memoryBytes?: number;
}

/** The functions the module exports (native/wasm/exports.cc); pointers and sizes are i32. */
interface Exports {
  __heap_base: WebAssembly.Global;
  __wasm_call_ctors(): void;
  matmul(a: number, b: number, c: number, batch: number, m: number, n: number, k: number, ta: number, tb: number,
    sa: number, sb: number, sc: number, alpha: number, beta: number): void;
  add(a: number, b: number, out: number, n: number): void;
  mul(a: number, b: number, out: number, n: number): void;
  scale(a: number, s: number, out: number, n: number): void;
  axpy(dst: number, src: number, s: number, n: number): void;
  addRowVector(x: number, bias: number, out: number, rows: number, cols: number): void;
  sumRows(x: number, out: number, rows: number, cols: number): void;
  geluForward(x: number, out: number, n: number): void;
  geluBackward(x: number, dy: number, dx: number, n: number): void;
  tanhForward(x: number, out: number, n: number): void;
  tanhBackward(y: number, dy: number, dx: number, n: number): void;
  biasGeluForward(x: number, bias: number, out: number, rows: number, cols: number): void;
  biasGeluBackward(x: number, bias: number, dy: number, dx: number, dbias: number, rows: number, cols: number): void;
  dropoutForward(x: number, out: number, n: number, p: number, seed: number): void;
  dropoutBackward(dy: number, dx: number, n: number, p: number, seed: number): void;
  softmaxForward(x: number, out: number, rows: number, cols: number, scale: number, mask: number, group: number): void;
  softmaxBackward(y: number, dy: number, dx: number, rows: number, cols: number, scale: number): void;
  layerNormForward(x: number, gamma: number, beta: number, out: number, mean: number, rstd: number, rows: number,
    cols: number, eps: number): void;
  layerNormBackward(x: number, gamma: number, mean: number, rstd: number, dy: number, dx: number, dgamma: number,
    dbeta: number, rows: number, cols: number): void;
  addLayerNormForward(x: number, y: number, gamma: number, beta: number, sum: number, out: number, mean: number,
    rstd: number, rows: number, cols: number, eps: number): void;
  crossEntropyForward(logits: number, targets: number, losses: number, lse: number, rows: number, cols: number,
    ignore: number): void;
  crossEntropyBackward(logits: number, targets: number, lse: number, dlogits: number, rows: number, cols: number,
    ignore: number, gradScale: number): void;
  embeddingForward(table: number, ids: number, out: number, n: number, dim: number): void;
  embeddingBackward(dout: number, ids: number, dtable: number, n: number, dim: number): void;
  permute4(x: number, out: number, d0: number, d1: number, d2: number, d3: number, p0: number, p1: number, p2: number,
    p3: number): void;
  splitHeads(x: number, bias: number, out: number, batch: number, seq: number, parts: number, part: number,
    heads: number, dim: number): void;
  mergeHeads(x: number, out: number, batch: number, seq: number, parts: number, part: number, heads: number,
    dim: number): void;
  adamwStep(param: number, grad: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number,
    eps: number, wd: number, bc1: number, bc2: number): void;
  sum(a: number, n: number): number;
  dot(a: number, b: number, n: number): number;
  sumSquares(a: number, n: number): number;
  allFinite(a: number, n: number): number;
}

// ---------------------------------------------------------------- memory

/**
 * First-fit allocator over [base, end) of the module's memory, for the pool's
 * tensor buffers, the kernels' own workspace (GEMM packing buffers, through
 * the module's `alloc` import) and the temporary copies of arrays from
 * elsewhere. Blocks are few and long-lived (the pool reuses its buffers), so
 * a sorted free list with coalescing is enough.
 */
class Heap {
  private starts: number[] = [];
  private sizes: number[] = [];
  private readonly used = new Map<number, number>();
  inUse = 0;

  constructor(base: number, readonly end: number) {
    const start = Math.ceil(base / ALIGN) * ALIGN;
    if (start < end) {
      this.starts.push(start);
      this.sizes.push(end - start);
    }
  }

  /** The offset of a new block of at least `bytes`, or 0 when none is free. */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.starts.length; i++) {
      if (this.sizes[i] < size) continue;
      const at = this.starts[i];
      if (this.sizes[i] === size) {
        this.starts.splice(i, 1);
        this.sizes.splice(i, 1);
      } else {
        this.starts[i] += size;
        this.sizes[i] -= size;
      }
      this.used.set(at, size);
      this.inUse += size;
      return at;
    }
    return 0;
  }

  free(at: number): void {
    const size = this.used.get(at);
    if (size === undefined) throw new Error(`untie wasm: free of ${at}, which is not an allocated block`);
    this.used.delete(at);
    this.inUse -= size;
    // The first free block after `at`, by binary search.
    let lo = 0, hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid] < at) lo = mid + 1;
      else hi = mid;
    }
    let start = at, end = at + size, i = lo;
    if (i < this.starts.length && this.starts[i] === end) {
      end += this.sizes[i];
      this.starts.splice(i, 1);
      this.sizes.splice(i, 1);
    }
    if (i > 0 && this.starts[i - 1] + this.sizes[i - 1] === start) {
      i--;
      start = this.starts[i];
      this.starts[i] = start;
      this.sizes[i] = end - start;
      return;
    }
    this.starts.splice(i, 0, start);
    this.sizes.splice(i, 0, end - start);
  }
}

// ---------------------------------------------------------------- argument checks

function fail(op: string, message: string): never {
  throw new Error(`untie wasm ${op}: ${message}`);
}

function argc(op: string, got: number, expected: number): void {
  if (got < expected) fail(op, `expected ${expected} arguments, got ${got}`);
}

function f32(op: string, name: string, a: unknown): F32 {
  if (!(a instanceof Float32Array)) fail(op, `${name} must be a Float32Array`);
  return a;
}

function f32OrNull(op: string, name: string, a: unknown): F32 | null {
  if (a === null || a === undefined) return null;
  if (!(a instanceof Float32Array)) fail(op, `${name} must be a Float32Array or null`);
  return a;
}

function i32(op: string, name: string, a: unknown): I32 {
  if (!(a instanceof Int32Array)) fail(op, `${name} must be an Int32Array`);
  return a;
}

function num(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number') fail(op, `${name} must be a number`);
  return v;
}

/** A non-negative integer (a size or an index), small enough for an i32. */
function dim(op: string, name: string, v: unknown): number {
  const x = num(op, name, v);
  if (!(x >= 0 && Number.isSafeInteger(x))) fail(op, `${name} must be a non-negative integer, got ${x}`);
  if (x > MAX_DIM) fail(op, `${name} = ${x} is too large for the wasm backend (at most 2^31 - 1)`);
  return x;
}

function bool(op: string, name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(op, `${name} must be a boolean`);
  return v;
}

/** a * b, failing past 2^53 instead of losing precision. */
function mul(op: string, a: number, b: number): number {
  const r = a * b;
  if (r > Number.MAX_SAFE_INTEGER) fail(op, `shape too large (${a} x ${b})`);
  return r;
}

function need(op: string, name: string, len: number, needed: number, what = ''): void {
  if (len < needed) fail(op, `${name} has ${len} elements, needs ${needed}${what ? ` for ${what}` : ''}`);
}

function same(op: string, name: string, len: number, ref: string, refLen: number): void {
  if (len !== refLen) fail(op, `${name} has ${len} elements, expected ${refLen} (the length of ${ref})`);
}

function checkTargets(op: string, targets: I32, rows: number, cols: number, ignore: number): number {
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === ignore) continue;
    if (t < 0 || t >= cols) fail(op, `target ${t} at row ${r} is outside [0, ${cols}) and is not the ignore index ${ignore}`);
    count++;
  }
  return count;
}

function checkIds(op: string, ids: I32, n: number, vocab: number): void {
  for (let i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= vocab) fail(op, `id ${ids[i]} at position ${i} is outside [0, ${vocab})`);
  }
}

/** An integer that fits an i32 (ignoreIndex may be negative). */
function int32(op: string, name: string, v: unknown): number {
  const x = num(op, name, v);
  if (!Number.isInteger(x) || x < -(2 ** 31) || x > MAX_DIM) fail(op, `${name} must be an integer that fits in 32 bits, got ${x}`);
  return x;
}

// ---------------------------------------------------------------- the kernels

/** How a kernel uses an array argument: read only, written only, or read and written. */
const IN = 0, OUT = 1, INOUT = 2;

/** The Kernels over one instance of the module. */
function makeKernels(ex: Exports, memory: WebAssembly.Memory): WasmKernels {
  const buffer = memory.buffer;
  const heap = heapOf.get(ex)!;
  const u8 = new Uint8Array(buffer);

  // The copies of one call: arrays from outside the module's memory, their
  // temporary blocks, and whether to copy them back.
  const tempArrays: (F32 | I32)[] = [];
  const tempAt: number[] = [];
  const tempBack: boolean[] = [];

  /** The address of `a` in the module's memory: in place, or a temporary copy. */
  function ptr(op: string, a: F32 | I32 | null, use: number): number {
    if (a === null) return 0;
    if (a.buffer === buffer) return a.byteOffset;
    // The same array twice in one call (in-place ops) gets one block.
    const seen = tempArrays.indexOf(a);
    if (seen >= 0) {
      if (use !== IN) tempBack[seen] = true;
      return tempAt[seen];
    }
    const at = heap.alloc(a.byteLength);
    if (at === 0 && a.byteLength > 0) {
      releaseTemps(false);
      fail(op, `the wasm memory (${buffer.byteLength / 2 ** 20} MB) is full; use a smaller model or batch, or the native backend`);
    }
    if (use !== OUT) u8.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    tempArrays.push(a);
    tempAt.push(at);
    tempBack.push(use !== IN);
    return at;
  }

  /** Copies written arrays back (after a call that ran) and frees the temporary blocks. */
  function releaseTemps(copyBack: boolean): void {
    for (let i = 0; i < tempArrays.length; i++) {
      const a = tempArrays[i];
      if (copyBack && tempBack[i]) new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(u8.subarray(tempAt[i], tempAt[i] + a.byteLength));
      heap.free(tempAt[i]);
    }
    tempArrays.length = 0;
    tempAt.length = 0;
    tempBack.length = 0;
  }

  /** Runs a module function on the pointers made for this call, then copies back. */
  function done<T>(result: T): T {
    if (tempArrays.length) releaseTemps(true);
    return result;
  }

  function elementwise2(op: 'add' | 'mul') {
    return function (this: unknown, a: F32, b: F32, out: F32): void {
      argc(op, arguments.length, 3);
      f32(op, 'a', a), f32(op, 'b', b), f32(op, 'out', out);
      same(op, 'b', b.length, 'a', a.length);
      same(op, 'out', out.length, 'a', a.length);
      call(op, () => ex[op](ptr(op, a, IN), ptr(op, b, IN), ptr(op, out, OUT), a.length));
    };
  }

  function rowBias(op: 'addRowVector' | 'biasGeluForward') {
    return function (this: unknown, x: F32, bias: F32, out: F32, rows: number, cols: number): void {
      argc(op, arguments.length, 5);
      f32(op, 'x', x), f32(op, 'bias', bias), f32(op, 'out', out);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      const rc = mul(op, rows, cols);
      need(op, 'x', x.length, rc, 'rows x cols');
      need(op, 'out', out.length, rc, 'rows x cols');
      need(op, 'bias', bias.length, cols, 'cols');
      call(op, () => ex[op](ptr(op, x, IN), ptr(op, bias, IN), ptr(op, out, OUT), rows, cols));
    };
  }

  function unary(op: 'geluForward' | 'tanhForward') {
    return function (this: unknown, x: F32, out: F32): void {
      argc(op, arguments.length, 2);
      f32(op, 'x', x), f32(op, 'out', out);
      same(op, 'out', out.length, 'x', x.length);
      call(op, () => ex[op](ptr(op, x, IN), ptr(op, out, OUT), x.length));
    };
  }

  function backward(op: 'geluBackward' | 'tanhBackward', xname: string) {
    return function (this: unknown, x: F32, dy: F32, dx: F32): void {
      argc(op, arguments.length, 3);
      f32(op, xname, x), f32(op, 'dy', dy), f32(op, 'dx', dx);
      same(op, 'dy', dy.length, xname, x.length);
      same(op, 'dx', dx.length, xname, x.length);
      call(op, () => ex[op](ptr(op, x, IN), ptr(op, dy, IN), ptr(op, dx, OUT), x.length));
    };
  }

  function dropout(op: 'dropoutForward' | 'dropoutBackward', xname: string, outname: string) {
    return function (this: unknown, x: F32, out: F32, p: number, seed: number): void {
      argc(op, arguments.length, 4);
      f32(op, xname, x), f32(op, outname, out);
      p = num(op, 'p', p), seed = num(op, 'seed', seed);
      same(op, outname, out.length, xname, x.length);
      if (!(p >= 0 && p < 1)) fail(op, `p must be in [0, 1), got ${p}`);
      call(op, () => ex[op](ptr(op, x, IN), ptr(op, out, OUT), x.length, p, seed >>> 0));
    };
  }

  /** Runs `fn` (which makes the pointers and calls the module), freeing temporaries if it throws. */
  function call<T>(op: string, fn: () => T): T {
    let result: T;
    try {
      result = fn();
    } catch (err) {
      releaseTemps(false);
      throw err;
    }
    return done(result);
  }

  const kernels: WasmKernels = {
    name: 'wasm',
    setThreads(n: number): void {
      argc('setThreads', arguments.length, 1);
      n = dim('setThreads', 'n', n);
      if (n < 1) fail('setThreads', `n must be at least 1, got ${n}`);
      // One thread whatever is asked: see the header.
    },
    getThreads: () => 1,

    matmul(a, b, c, batch, m, n, k, transA, transB, strideA, strideB, strideC, alpha, beta): void {
      const op = 'matmul';
      argc(op, arguments.length, 14);
      f32(op, 'a', a), f32(op, 'b', b), f32(op, 'c', c);
      batch = dim(op, 'batch', batch), m = dim(op, 'm', m), n = dim(op, 'n', n), k = dim(op, 'k', k);
      transA = bool(op, 'transA', transA), transB = bool(op, 'transB', transB);
      strideA = dim(op, 'strideA', strideA), strideB = dim(op, 'strideB', strideB), strideC = dim(op, 'strideC', strideC);
      alpha = num(op, 'alpha', alpha), beta = num(op, 'beta', beta);
      if (batch === 0) return;
      const mk = mul(op, m, k), kn = mul(op, k, n), mn = mul(op, m, n);
      const lastA = mul(op, batch - 1, mk === 0 ? 0 : strideA), lastB = mul(op, batch - 1, kn === 0 ? 0 : strideB);
      const lastC = mul(op, batch - 1, mn === 0 ? 0 : strideC);
      if (mk > 0) need(op, 'a', a.length, lastA + mk, `batch=${batch} m=${m} k=${k} strideA=${strideA} (transA=${transA})`);
      if (kn > 0) need(op, 'b', b.length, lastB + kn, `batch=${batch} k=${k} n=${n} strideB=${strideB} (transB=${transB})`);
      if (mn > 0) need(op, 'c', c.length, lastC + mn, `batch=${batch} m=${m} n=${n} strideC=${strideC}`);
      if (mn === 0) return;
      // Strides are unused for one item (and may then be anything).
      const one = batch === 1;
      call(op, () => ex.matmul(ptr(op, a, IN), ptr(op, b, IN), ptr(op, c, beta === 0 ? OUT : INOUT), batch, m, n, k,
        transA ? 1 : 0, transB ? 1 : 0, one ? 0 : strideA, one ? 0 : strideB, one ? 0 : strideC, alpha, beta));
    },

    add: elementwise2('add'),
    mul: elementwise2('mul'),
    scale(a, s, out): void {
      const op = 'scale';
      argc(op, arguments.length, 3);
      f32(op, 'a', a), f32(op, 'out', out);
      s = num(op, 's', s);
      same(op, 'out', out.length, 'a', a.length);
      call(op, () => ex.scale(ptr(op, a, IN), s, ptr(op, out, OUT), a.length));
    },
    axpy(dst, src, s): void {
      const op = 'axpy';
      argc(op, arguments.length, 3);
      f32(op, 'dst', dst), f32(op, 'src', src);
      s = num(op, 's', s);
      same(op, 'src', src.length, 'dst', dst.length);
      call(op, () => ex.axpy(ptr(op, dst, INOUT), ptr(op, src, IN), s, dst.length));
    },
    addRowVector: rowBias('addRowVector'),
    sumRows(x, out, rows, cols): void {
      const op = 'sumRows';
      argc(op, arguments.length, 4);
      f32(op, 'x', x), f32(op, 'out', out);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      need(op, 'x', x.length, mul(op, rows, cols), 'rows x cols');
      need(op, 'out', out.length, cols, 'cols');
      call(op, () => ex.sumRows(ptr(op, x, IN), ptr(op, out, OUT), rows, cols));
    },

    geluForward: unary('geluForward'),
    geluBackward: backward('geluBackward', 'x'),
    tanhForward: unary('tanhForward'),
    tanhBackward: backward('tanhBackward', 'y'),
    biasGeluForward: rowBias('biasGeluForward'),
    biasGeluBackward(x, bias, dy, dx, dbias, rows, cols): void {
      const op = 'biasGeluBackward';
      argc(op, arguments.length, 7);
      f32(op, 'x', x), f32(op, 'bias', bias), f32(op, 'dy', dy), f32(op, 'dx', dx), f32(op, 'dbias', dbias);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      const rc = mul(op, rows, cols);
      need(op, 'x', x.length, rc, 'rows x cols');
      need(op, 'dy', dy.length, rc, 'rows x cols');
      need(op, 'dx', dx.length, rc, 'rows x cols');
      need(op, 'bias', bias.length, cols, 'cols');
      need(op, 'dbias', dbias.length, cols, 'cols');
      call(op, () => ex.biasGeluBackward(ptr(op, x, IN), ptr(op, bias, IN), ptr(op, dy, IN), ptr(op, dx, OUT),
        ptr(op, dbias, OUT), rows, cols));
    },

    dropoutForward: dropout('dropoutForward', 'x', 'out'),
    dropoutBackward: dropout('dropoutBackward', 'dy', 'dx'),

    softmaxForward(x, out, rows, cols, scale, mask, maskGroup): void {
      const op = 'softmaxForward';
      argc(op, arguments.length, 7);
      f32(op, 'x', x), f32(op, 'out', out);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      scale = num(op, 'scale', scale);
      mask = f32OrNull(op, 'mask', mask);
      let group = 1;
      const rc = mul(op, rows, cols);
      need(op, 'x', x.length, rc, 'rows x cols');
      need(op, 'out', out.length, rc, 'rows x cols');
      if (mask) {
        group = dim(op, 'maskGroup', maskGroup);
        if (group < 1) fail(op, `maskGroup must be at least 1, got ${group}`);
        need(op, 'mask', mask.length, mul(op, Math.ceil(rows / group), cols), 'ceil(rows / maskGroup) x cols');
      }
      call(op, () => ex.softmaxForward(ptr(op, x, IN), ptr(op, out, OUT), rows, cols, scale, ptr(op, mask, IN), group));
    },
    softmaxBackward(y, dy, dx, rows, cols, scale): void {
      const op = 'softmaxBackward';
      argc(op, arguments.length, 6);
      f32(op, 'y', y), f32(op, 'dy', dy), f32(op, 'dx', dx);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      scale = num(op, 'scale', scale);
      const rc = mul(op, rows, cols);
      need(op, 'y', y.length, rc, 'rows x cols');
      need(op, 'dy', dy.length, rc, 'rows x cols');
      need(op, 'dx', dx.length, rc, 'rows x cols');
      call(op, () => ex.softmaxBackward(ptr(op, y, IN), ptr(op, dy, IN), ptr(op, dx, OUT), rows, cols, scale));
    },

    layerNormForward(x, gamma, beta, out, mean, rstd, rows, cols, eps): void {
      const op = 'layerNormForward';
      argc(op, arguments.length, 9);
      f32(op, 'x', x), f32(op, 'gamma', gamma), f32(op, 'beta', beta), f32(op, 'out', out);
      f32(op, 'mean', mean), f32(op, 'rstd', rstd);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      eps = num(op, 'eps', eps);
      const rc = needNormOutputs(op, rows, cols, out, gamma, beta, mean, rstd);
      need(op, 'x', x.length, rc, 'rows x cols');
      call(op, () => ex.layerNormForward(ptr(op, x, IN), ptr(op, gamma, IN), ptr(op, beta, IN), ptr(op, out, OUT),
        ptr(op, mean, OUT), ptr(op, rstd, OUT), rows, cols, eps));
    },
    layerNormBackward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols): void {
      const op = 'layerNormBackward';
      argc(op, arguments.length, 10);
      f32(op, 'x', x), f32(op, 'gamma', gamma), f32(op, 'mean', mean), f32(op, 'rstd', rstd), f32(op, 'dy', dy);
      f32(op, 'dx', dx), f32(op, 'dgamma', dgamma), f32(op, 'dbeta', dbeta);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      const rc = mul(op, rows, cols);
      need(op, 'x', x.length, rc, 'rows x cols');
      need(op, 'dy', dy.length, rc, 'rows x cols');
      need(op, 'dx', dx.length, rc, 'rows x cols');
      need(op, 'gamma', gamma.length, cols, 'cols');
      need(op, 'dgamma', dgamma.length, cols, 'cols');
      need(op, 'dbeta', dbeta.length, cols, 'cols');
      need(op, 'mean', mean.length, rows, 'rows');
      need(op, 'rstd', rstd.length, rows, 'rows');
      call(op, () => ex.layerNormBackward(ptr(op, x, IN), ptr(op, gamma, IN), ptr(op, mean, IN), ptr(op, rstd, IN),
        ptr(op, dy, IN), ptr(op, dx, OUT), ptr(op, dgamma, OUT), ptr(op, dbeta, OUT), rows, cols));
    },
    addLayerNormForward(x, y, gamma, beta, sum, out, mean, rstd, rows, cols, eps): void {
      const op = 'addLayerNormForward';
      argc(op, arguments.length, 11);
      f32(op, 'x', x), f32(op, 'y', y), f32(op, 'gamma', gamma), f32(op, 'beta', beta), f32(op, 'sum', sum);
      f32(op, 'out', out), f32(op, 'mean', mean), f32(op, 'rstd', rstd);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      eps = num(op, 'eps', eps);
      const rc = needNormOutputs(op, rows, cols, out, gamma, beta, mean, rstd);
      need(op, 'x', x.length, rc, 'rows x cols');
      need(op, 'y', y.length, rc, 'rows x cols');
      need(op, 'sum', sum.length, rc, 'rows x cols');
      call(op, () => ex.addLayerNormForward(ptr(op, x, IN), ptr(op, y, IN), ptr(op, gamma, IN), ptr(op, beta, IN),
        ptr(op, sum, OUT), ptr(op, out, OUT), ptr(op, mean, OUT), ptr(op, rstd, OUT), rows, cols, eps));
    },

    crossEntropyForward(logits, targets, losses, lse, rows, cols, ignoreIndex): number {
      const op = 'crossEntropyForward';
      argc(op, arguments.length, 7);
      f32(op, 'logits', logits), i32(op, 'targets', targets), f32(op, 'losses', losses), f32(op, 'lse', lse);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      const ignore = int32(op, 'ignoreIndex', ignoreIndex);
      need(op, 'logits', logits.length, mul(op, rows, cols), 'rows x cols');
      need(op, 'targets', targets.length, rows, 'rows');
      need(op, 'losses', losses.length, rows, 'rows');
      need(op, 'lse', lse.length, rows, 'rows');
      const count = checkTargets(op, targets, rows, cols, ignore);
      call(op, () => ex.crossEntropyForward(ptr(op, logits, IN), ptr(op, targets, IN), ptr(op, losses, OUT),
        ptr(op, lse, OUT), rows, cols, ignore));
      return count;
    },
    crossEntropyBackward(logits, targets, lse, dlogits, rows, cols, ignoreIndex, gradScale): void {
      const op = 'crossEntropyBackward';
      argc(op, arguments.length, 8);
      f32(op, 'logits', logits), i32(op, 'targets', targets), f32(op, 'lse', lse), f32(op, 'dlogits', dlogits);
      rows = dim(op, 'rows', rows), cols = dim(op, 'cols', cols);
      const ignore = int32(op, 'ignoreIndex', ignoreIndex);
      gradScale = num(op, 'gradScale', gradScale);
      const rc = mul(op, rows, cols);
      need(op, 'logits', logits.length, rc, 'rows x cols');
      need(op, 'dlogits', dlogits.length, rc, 'rows x cols');
      need(op, 'targets', targets.length, rows, 'rows');
      need(op, 'lse', lse.length, rows, 'rows');
      checkTargets(op, targets, rows, cols, ignore);
      call(op, () => ex.crossEntropyBackward(ptr(op, logits, IN), ptr(op, targets, IN), ptr(op, lse, IN),
        ptr(op, dlogits, OUT), rows, cols, ignore, gradScale));
    },

    embeddingForward(table, ids, out, n, d, vocab): void {
      const op = 'embeddingForward';
      argc(op, arguments.length, 6);
      f32(op, 'table', table), i32(op, 'ids', ids), f32(op, 'out', out);
      n = dim(op, 'n', n), d = dim(op, 'dim', d), vocab = dim(op, 'vocab', vocab);
      need(op, 'table', table.length, mul(op, vocab, d), 'vocab x dim');
      need(op, 'ids', ids.length, n, 'n');
      need(op, 'out', out.length, mul(op, n, d), 'n x dim');
      checkIds(op, ids, n, vocab);
      call(op, () => ex.embeddingForward(ptr(op, table, IN), ptr(op, ids, IN), ptr(op, out, OUT), n, d));
    },
    embeddingBackward(dout, ids, dtable, n, d, vocab): void {
      const op = 'embeddingBackward';
      argc(op, arguments.length, 6);
      f32(op, 'dout', dout), i32(op, 'ids', ids), f32(op, 'dtable', dtable);
      n = dim(op, 'n', n), d = dim(op, 'dim', d), vocab = dim(op, 'vocab', vocab);
      need(op, 'dout', dout.length, mul(op, n, d), 'n x dim');
      need(op, 'ids', ids.length, n, 'n');
      need(op, 'dtable', dtable.length, mul(op, vocab, d), 'vocab x dim');
      checkIds(op, ids, n, vocab);
      call(op, () => ex.embeddingBackward(ptr(op, dout, IN), ptr(op, ids, IN), ptr(op, dtable, INOUT), n, d));
    },

    permute4(x, out, d0, d1, d2, d3, p0, p1, p2, p3): void {
      const op = 'permute4';
      argc(op, arguments.length, 10);
      f32(op, 'x', x), f32(op, 'out', out);
      d0 = dim(op, 'd0', d0), d1 = dim(op, 'd1', d1), d2 = dim(op, 'd2', d2), d3 = dim(op, 'd3', d3);
      p0 = dim(op, 'p0', p0), p1 = dim(op, 'p1', p1), p2 = dim(op, 'p2', p2), p3 = dim(op, 'p3', p3);
      let seen = 0;
      for (const p of [p0, p1, p2, p3]) {
        if (p > 3 || seen & (1 << p)) fail(op, `perm [${p0},${p1},${p2},${p3}] is not a permutation of [0,1,2,3]`);
        seen |= 1 << p;
      }
      const total = mul(op, mul(op, d0, d1), mul(op, d2, d3));
      need(op, 'x', x.length, total, 'd0 x d1 x d2 x d3');
      need(op, 'out', out.length, total, 'd0 x d1 x d2 x d3');
      if (total === 0) return;
      call(op, () => ex.permute4(ptr(op, x, IN), ptr(op, out, OUT), d0, d1, d2, d3, p0, p1, p2, p3));
    },

    splitHeads(x, bias, out, batch, seq, parts, part, heads, headDim): void {
      const op = 'splitHeads';
      argc(op, arguments.length, 9);
      f32(op, 'x', x), f32(op, 'out', out);
      bias = f32OrNull(op, 'bias', bias);
      const [one, all] = headsArgs(op, batch, seq, parts, part, heads, headDim);
      need(op, 'x', x.length, all, 'batch x seq x parts x heads x headDim');
      need(op, 'out', out.length, one, 'batch x seq x heads x headDim');
      if (bias) need(op, 'bias', bias.length, mul(op, heads, headDim), 'heads x headDim');
      call(op, () => ex.splitHeads(ptr(op, x, IN), ptr(op, bias, IN), ptr(op, out, OUT), batch, seq, parts, part, heads, headDim));
    },
    mergeHeads(x, out, batch, seq, parts, part, heads, headDim): void {
      const op = 'mergeHeads';
      argc(op, arguments.length, 8);
      f32(op, 'x', x), f32(op, 'out', out);
      const [one, all] = headsArgs(op, batch, seq, parts, part, heads, headDim);
      need(op, 'x', x.length, one, 'batch x heads x seq x headDim');
      need(op, 'out', out.length, all, 'batch x seq x parts x heads x headDim');
      call(op, () => ex.mergeHeads(ptr(op, x, IN), ptr(op, out, INOUT), batch, seq, parts, part, heads, headDim));
    },

    adamwStep(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2): void {
      const op = 'adamwStep';
      argc(op, arguments.length, 11);
      f32(op, 'param', param), f32(op, 'grad', grad), f32(op, 'm', m), f32(op, 'v', v);
      lr = num(op, 'lr', lr), beta1 = num(op, 'beta1', beta1), beta2 = num(op, 'beta2', beta2), eps = num(op, 'eps', eps);
      weightDecay = num(op, 'weightDecay', weightDecay), bc1 = num(op, 'bc1', bc1), bc2 = num(op, 'bc2', bc2);
      same(op, 'grad', grad.length, 'param', param.length);
      same(op, 'm', m.length, 'param', param.length);
      same(op, 'v', v.length, 'param', param.length);
      call(op, () => ex.adamwStep(ptr(op, param, INOUT), ptr(op, grad, IN), ptr(op, m, INOUT), ptr(op, v, INOUT),
        param.length, lr, beta1, beta2, eps, weightDecay, bc1, bc2));
    },

    sum(a): number {
      argc('sum', arguments.length, 1);
      f32('sum', 'a', a);
      return call('sum', () => ex.sum(ptr('sum', a, IN), a.length));
    },
    dot(a, b): number {
      argc('dot', arguments.length, 2);
      f32('dot', 'a', a), f32('dot', 'b', b);
      same('dot', 'b', b.length, 'a', a.length);
      return call('dot', () => ex.dot(ptr('dot', a, IN), ptr('dot', b, IN), a.length));
    },
    sumSquares(a): number {
      argc('sumSquares', arguments.length, 1);
      f32('sumSquares', 'a', a);
      return call('sumSquares', () => ex.sumSquares(ptr('sumSquares', a, IN), a.length));
    },
    allFinite(a): boolean {
      argc('allFinite', arguments.length, 1);
      f32('allFinite', 'a', a);
      return call('allFinite', () => ex.allFinite(ptr('allFinite', a, IN), a.length)) !== 0;
    },

    memory: {
      alloc(n: number): F32 | null {
        const at = heap.alloc(n * 4);
        return at === 0 ? null : new Float32Array(buffer, at, n);
      },
      free(a: F32): void {
        if (a.buffer !== buffer) throw new Error('untie wasm: freeing an array that is not in the module memory');
        heap.free(a.byteOffset);
      },
      bytes: () => ({ total: buffer.byteLength, inUse: heap.inUse }),
    },
  };
  return kernels;
}

function needNormOutputs(op: string, rows: number, cols: number, out: F32, gamma: F32, beta: F32, mean: F32, rstd: F32): number {
  const rc = mul(op, rows, cols);
  need(op, 'out', out.length, rc, 'rows x cols');
  need(op, 'gamma', gamma.length, cols, 'cols');
  need(op, 'beta', beta.length, cols, 'cols');
  need(op, 'mean', mean.length, rows, 'rows');
  need(op, 'rstd', rstd.length, rows, 'rows');
  return rc;
}

function headsArgs(op: string, batch: number, seq: number, parts: number, part: number, heads: number, headDim: number): [number, number] {
  batch = dim(op, 'batch', batch), seq = dim(op, 'seq', seq), parts = dim(op, 'parts', parts);
  part = dim(op, 'part', part), heads = dim(op, 'heads', heads), headDim = dim(op, 'headDim', headDim);
  if (part >= parts) fail(op, `part ${part} is not below parts ${parts}`);
  const one = mul(op, mul(op, batch, seq), mul(op, heads, headDim));
  return [one, mul(op, one, parts)];
}

// ---------------------------------------------------------------- instantiation

const heapOf = new WeakMap<Exports, Heap>();

/** A memory of `bytes` (rounded to pages), or of the largest power of two below it that the engine grants. */
function createMemory(bytes: number | undefined): WebAssembly.Memory {
  let pages = Math.min(MAX_PAGES, Math.max(1, Math.ceil((bytes ?? MAX_PAGES * PAGE) / PAGE)));
  for (;;) {
    try {
      return new WebAssembly.Memory({ initial: pages, maximum: pages });
    } catch (err) {
      // A page may be refused 4 GiB; try half, down to 64 MB.
      if (bytes !== undefined || pages <= 1024 || !(err instanceof RangeError)) throw err;
      pages = Math.floor(pages / 2);
    }
  }
}

interface Pending {
  memory: WebAssembly.Memory;
  imports: WebAssembly.Imports;
  setHeap(ex: Exports): void;
}

function prepare(options: WasmOptions): Pending {
  const memory = createMemory(options.memoryBytes);
  let heap: Heap | null = null;
  const imports = {
    env: {
      memory,
      // The kernels' workspace (GEMM packing buffers, scratch): 0 when full, and the module traps.
      alloc: (bytes: number) => heap!.alloc(bytes >>> 0),
      free: (at: number) => heap!.free(at >>> 0),
      log: Math.log,
      tanh: Math.tanh,
    },
  };
  return {
    memory,
    imports,
    setHeap(ex: Exports) {
      heap = new Heap((ex.__heap_base.value as number) >>> 0, memory.buffer.byteLength);
      heapOf.set(ex, heap);
    },
  };
}

function finish(p: Pending, instance: WebAssembly.Instance): WasmKernels {
  const ex = instance.exports as unknown as Exports;
  p.setHeap(ex);
  ex.__wasm_call_ctors();
  return makeKernels(ex, p.memory);
}

/**
 * The wasm kernels from the module's bytes, compiled and instantiated
 * synchronously (Node, or a worker; a page's main thread must use
 * `instantiateWasmKernels`).
 */
export function wasmKernelsSync(bytes: BufferSource, options: WasmOptions = {}): WasmKernels {
  const p = prepare(options);
  return finish(p, new WebAssembly.Instance(new WebAssembly.Module(bytes), p.imports));
}

/**
 * The wasm kernels through WebAssembly.instantiate (streaming when given a
 * fetch Response): for pages. Pass the result to `useKernels`.
 */
export async function instantiateWasmKernels(source: BufferSource | Response | PromiseLike<Response>, options: WasmOptions = {}): Promise<WasmKernels> {
  const p = prepare(options);
  const resolved = await source;
  let instance: WebAssembly.Instance;
  if (typeof Response !== 'undefined' && resolved instanceof Response) {
    if (typeof WebAssembly.instantiateStreaming === 'function' && resolved.headers.get('content-type') === 'application/wasm') {
      instance = (await WebAssembly.instantiateStreaming(resolved, p.imports)).instance;
    } else {
      instance = (await WebAssembly.instantiate(await resolved.arrayBuffer(), p.imports)).instance;
    }
  } else {
    instance = (await WebAssembly.instantiate(resolved as BufferSource, p.imports)).instance;
  }
  return finish(p, instance);
}
