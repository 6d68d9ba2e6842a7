/**
 * The native and the wasm kernels against the reference ones: every kernel on
 * random inputs of several shapes (odd sizes, sizes that are not multiples of
 * the GEMM microkernel, sizes large enough to be split over threads), on every
 * native SIMD path this CPU has and on the WebAssembly build (native/wasm/),
 * both with arrays from anywhere (which the wasm backend copies in and out)
 * and with arrays in the module's memory (as the tensor pool allocates them
 * there, run in place). Also: results are bit-identical run to run and with
 * 1, 2 or 3 threads, and bad arguments throw instead of crashing.
 *
 * Tolerances (|native - reference| <= atol + rtol * |reference|):
 * - exact: kernels whose float math mirrors the reference's double math op for
 *   op (add, mul, scale, axpy, addRowVector, tanhBackward, dropout, embedding,
 *   permute4, splitHeads, mergeHeads, adamwStep).
 * - matmul: atol = 1e-4 * max|reference|. The reference sums in double, we sum
 *   in float with FMA (wasm: multiply then add, SIMD128 has no FMA), so errors
 *   grow like sqrt(k) * 2^-24 * |terms|.
 * - exp/erf/tanh-based kernels: rtol 1e-5, atol 1e-7 (unchanged when GELU,
 *   softmax forward and cross-entropy moved to float32 math). Native computes
 *   these in float32 with a vectorised exp (~1.5e-7 relative) and the
 *   reference's erfc fit; measured against the reference on 1M inputs in
 *   [-6, 6]: GELU forward and softmax <= 2e-6 relative, cross-entropy
 *   backward <= 3e-7. GELU backward loses relative accuracy only next to its
 *   zero (x ~ -0.75, where cdf + x pdf cancels): absolute error ~2e-8 there,
 *   which atol covers. Sums are in a different order than the reference's.
 * - sum/dot/sumSquares: rtol 1e-12 (double accumulation, different order).
 *
 * Without the addon built the native tests skip, unless UNTIE_REQUIRE_NATIVE=1.
 * The wasm module is shipped in the package, so its tests never skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, nativeInfo, nativeLoadError, setNativeSimd, type Simd } from '../src/backend/native.js';
import { reference } from '../src/backend/reference.js';
import type { Kernels } from '../src/backend/kernels.js';
import { loadWasm, wasmLoadError } from '../src/backend/wasm-file.js';
import type { WasmKernels } from '../src/backend/wasm.js';

const native = loadNative();
const required = process.env.UNTIE_REQUIRE_NATIVE === '1';
const skip = native ? false : `native addon not available (${nativeLoadError()}); run npm run build:native`;
const wasm = loadWasm();

if (!native && required) {
  test('native addon loads (UNTIE_REQUIRE_NATIVE=1)', () => {
    assert.fail(`the native addon did not load: ${nativeLoadError()}`);
  });
}

test('the shipped wasm kernels load', () => {
  assert.ok(wasm, `native/wasm/untie.wasm did not load: ${wasmLoadError()}`);
  assert.equal(wasm.name, 'wasm');
});

/**
 * The wasm kernels with every Float32Array and Int32Array argument first
 * placed in the module's memory (the same array twice gets the same place, so
 * in-place calls stay in place), as tensors from the pool are: the kernels
 * then run on them without copies. Results are copied back after the call.
 */
function inModuleMemory(K: WasmKernels): Kernels {
  const wrapped: Record<string, unknown> = {};
  for (const key of Object.keys(K) as (keyof Kernels)[]) {
    const fn = K[key];
    if (typeof fn !== 'function' || key === 'setThreads' || key === 'getThreads') {
      wrapped[key] = fn;
      continue;
    }
    wrapped[key] = (...args: unknown[]) => {
      const placed = new Map<unknown, { view: Float32Array | Int32Array; block: Float32Array }>();
      const moved = args.map((a) => {
        if (!(a instanceof Float32Array || a instanceof Int32Array)) return a;
        let p = placed.get(a);
        if (!p) {
          const block = K.memory.alloc(Math.max(1, a.length))!;
          const view = a instanceof Float32Array ? block.subarray(0, a.length) : new Int32Array(block.buffer, block.byteOffset, a.length);
          view.set(a);
          placed.set(a, (p = { view, block }));
        }
        return p.view;
      });
      try {
        return (fn as (...a: unknown[]) => unknown)(...moved);
      } finally {
        for (const [orig, { view, block }] of placed) {
          (orig as Float32Array | Int32Array).set(view);
          K.memory.free(block);
        }
      }
    };
  }
  return wrapped as unknown as Kernels;
}

// ---- inputs

/** mulberry32: a small seeded generator, so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}
function randInt(n: number, lo: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + Math.floor(r() * (hi - lo));
  return a;
}
const copy = (a: Float32Array) => new Float32Array(a);

// ---- comparison

interface Tol {
  atol: number;
  rtol: number;
}
const EXACT: Tol = { atol: 0, rtol: 0 };

function assertClose(what: string, got: Float32Array | number[], want: Float32Array | number[], tol: Tol): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -Infinity, at = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (g === w) continue;
    const excess = Math.abs(g - w) - (tol.atol + tol.rtol * Math.abs(w));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  if (worst > 0) {
    assert.fail(`${what}: element ${at} is ${got[at]}, reference ${want[at]} (tolerance atol=${tol.atol} rtol=${tol.rtol})`);
  }
}

function assertBitIdentical(what: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

// ---- cases: each runs one kernel on fixed inputs and returns its outputs

interface Case {
  name: string;
  tol: Tol;
  run: (k: Kernels) => Float32Array[];
}

const cases: Case[] = [];
const SIZES = [1, 7, 129, 1000, 70001];

for (const n of SIZES) {
  const a = randn(n, 1 + n), b = randn(n, 2 + n);
  cases.push({ name: `add n=${n}`, tol: EXACT, run: (k) => { const o = new Float32Array(n); k.add(a, b, o); return [o]; } });
  cases.push({ name: `add in place n=${n}`, tol: EXACT, run: (k) => { const o = copy(a); k.add(o, b, o); return [o]; } });
  cases.push({ name: `mul n=${n}`, tol: EXACT, run: (k) => { const o = new Float32Array(n); k.mul(a, b, o); return [o]; } });
  cases.push({ name: `scale n=${n}`, tol: EXACT, run: (k) => { const o = copy(a); k.scale(o, 0.3, o); return [o]; } });
  cases.push({ name: `axpy n=${n}`, tol: EXACT, run: (k) => { const d = copy(a); k.axpy(d, b, -1.7); return [d]; } });
  const x = randn(n, 3 + n, 4);
  cases.push({ name: `geluForward n=${n}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(n); k.geluForward(x, o); return [o]; } });
  cases.push({ name: `geluBackward n=${n}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(n); k.geluBackward(x, b, o); return [o]; } });
  cases.push({ name: `tanhForward n=${n}`, tol: { atol: 0, rtol: 1e-6 }, run: (k) => { const o = new Float32Array(n); k.tanhForward(x, o); return [o]; } });
  const y = new Float32Array(n);
  reference.tanhForward(x, y);
  cases.push({ name: `tanhBackward n=${n}`, tol: EXACT, run: (k) => { const o = new Float32Array(n); k.tanhBackward(y, b, o); return [o]; } });
  for (const p of [0, 0.1, 0.5]) {
    cases.push({
      name: `dropoutForward n=${n} p=${p}`, tol: EXACT,
      run: (k) => { const o = new Float32Array(n); k.dropoutForward(a, o, p, 12345 + n); return [o]; },
    });
    cases.push({
      name: `dropoutBackward n=${n} p=${p}`, tol: EXACT,
      run: (k) => { const o = new Float32Array(n); k.dropoutBackward(b, o, p, 12345 + n); return [o]; },
    });
  }
  const g = randn(n, 4 + n), mm = randn(n, 5 + n, 0.1), vv = randn(n, 6 + n, 0.01).map(Math.abs);
  cases.push({
    name: `adamwStep n=${n}`, tol: EXACT,
    run: (k) => {
      const p = copy(a), m = copy(mm), v = copy(vv);
      k.adamwStep(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1 - 0.9 ** 3, 1 - 0.999 ** 3);
      return [p, m, v];
    },
  });
}

for (const [rows, cols] of [[1, 1], [7, 5], [3, 129], [129, 7], [64, 1000], [700, 257]] as const) {
  const x = randn(rows * cols, rows * 31 + cols, 3), bias = randn(cols, cols + 7);
  cases.push({ name: `addRowVector ${rows}x${cols}`, tol: EXACT, run: (k) => { const o = new Float32Array(rows * cols); k.addRowVector(x, bias, o, rows, cols); return [o]; } });
  cases.push({ name: `sumRows ${rows}x${cols}`, tol: { atol: 1e-6, rtol: 1e-6 }, run: (k) => { const o = new Float32Array(cols); k.sumRows(x, o, rows, cols); return [o]; } });

  // softmax, with and without a mask; the mask has -Infinity entries and one fully masked group.
  const group = Math.max(1, Math.floor(rows / 3));
  const groups = Math.ceil(rows / group);
  const mask = randn(groups * cols, rows + cols * 3);
  for (let i = 0; i < mask.length; i++) if (mask[i] > 0.5) mask[i] = -Infinity;
  for (let c = 0; c < cols; c++) mask[c] = -Infinity; // the first group's rows are all masked -> zeros
  const dy = randn(rows * cols, rows + cols);
  cases.push({ name: `softmaxForward ${rows}x${cols}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(rows * cols); k.softmaxForward(x, o, rows, cols, 0.7, null, 1); return [o]; } });
  cases.push({ name: `softmaxForward masked ${rows}x${cols}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(rows * cols); k.softmaxForward(x, o, rows, cols, 0.7, mask, group); return [o]; } });
  const sy = new Float32Array(rows * cols);
  reference.softmaxForward(x, sy, rows, cols, 1, null, 1);
  cases.push({ name: `softmaxBackward ${rows}x${cols}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(rows * cols); k.softmaxBackward(sy, dy, o, rows, cols, 0.7); return [o]; } });

  // bias + GELU: inputs in [-6, 6] around the bias, as the exp/erf kernels are tested
  const gx = randn(rows * cols, rows * 13 + cols, 4), gdy = randn(rows * cols, rows * 17 + cols);
  cases.push({ name: `biasGeluForward ${rows}x${cols}`, tol: { atol: 1e-7, rtol: 1e-5 }, run: (k) => { const o = new Float32Array(rows * cols); k.biasGeluForward(gx, bias, o, rows, cols); return [o]; } });
  cases.push({
    name: `biasGeluBackward ${rows}x${cols}`, tol: { atol: 1e-6, rtol: 1e-5 },
    run: (k) => { const dx = new Float32Array(rows * cols), db = new Float32Array(cols); k.biasGeluBackward(gx, bias, gdy, dx, db, rows, cols); return [dx, db]; },
  });

  const gamma = randn(cols, cols + 1), beta = randn(cols, cols + 2);
  const xs = x.map((v, i) => v + (i % cols) * 0.01 + 5); // an offset, so that the mean matters
  cases.push({
    name: `addLayerNormForward ${rows}x${cols}`, tol: { atol: 1e-6, rtol: 1e-5 },
    run: (k) => {
      const s = new Float32Array(rows * cols), o = new Float32Array(rows * cols), mu = new Float32Array(rows), rs = new Float32Array(rows);
      k.addLayerNormForward(xs, dy, gamma, beta, s, o, mu, rs, rows, cols, 1e-5);
      return [s, o, mu, rs];
    },
  });
  cases.push({
    name: `layerNormForward ${rows}x${cols}`, tol: { atol: 1e-6, rtol: 1e-5 },
    run: (k) => {
      const o = new Float32Array(rows * cols), mu = new Float32Array(rows), rs = new Float32Array(rows);
      k.layerNormForward(xs, gamma, beta, o, mu, rs, rows, cols, 1e-5);
      return [o, mu, rs];
    },
  });
  const mu = new Float32Array(rows), rs = new Float32Array(rows);
  reference.layerNormForward(xs, gamma, beta, new Float32Array(rows * cols), mu, rs, rows, cols, 1e-5);
  cases.push({
    name: `layerNormBackward ${rows}x${cols}`, tol: { atol: 1e-5, rtol: 1e-5 },
    run: (k) => {
      const dx = new Float32Array(rows * cols), dg = new Float32Array(cols), db = new Float32Array(cols);
      k.layerNormBackward(xs, gamma, mu, rs, dy, dx, dg, db, rows, cols);
      return [dx, dg, db];
    },
  });

  // cross-entropy with some ignored rows (ignore index -100)
  const targets = randInt(rows, 0, cols, rows * 7 + cols);
  for (let r = 0; r < rows; r += 3) targets[r] = -100;
  const logits = randn(rows * cols, rows * 11 + cols, 8);
  cases.push({
    name: `crossEntropyForward ${rows}x${cols}`, tol: { atol: 1e-6, rtol: 1e-5 },
    run: (k) => {
      const losses = new Float32Array(rows), lse = new Float32Array(rows);
      const count = k.crossEntropyForward(logits, targets, losses, lse, rows, cols, -100);
      return [losses, lse, new Float32Array([count])];
    },
  });
  const lse = new Float32Array(rows);
  reference.crossEntropyForward(logits, targets, new Float32Array(rows), lse, rows, cols, -100);
  cases.push({
    name: `crossEntropyBackward ${rows}x${cols}`, tol: { atol: 1e-7, rtol: 1e-5 },
    run: (k) => { const d = new Float32Array(rows * cols); k.crossEntropyBackward(logits, targets, lse, d, rows, cols, -100, 0.25); return [d]; },
  });

  // embedding: rows = n ids, cols = dim, vocab 50 (so ids repeat and backward accumulates)
  const vocab = 50, table = randn(vocab * cols, cols * 5), ids = randInt(rows, 0, vocab, rows + 99);
  cases.push({ name: `embeddingForward n=${rows} dim=${cols}`, tol: EXACT, run: (k) => { const o = new Float32Array(rows * cols); k.embeddingForward(table, ids, o, rows, cols, vocab); return [o]; } });
  cases.push({ name: `embeddingBackward n=${rows} dim=${cols}`, tol: EXACT, run: (k) => { const d = copy(table); k.embeddingBackward(x, ids, d, rows, cols, vocab); return [d]; } });
}

for (const dims of [[1, 1, 1, 1], [2, 3, 4, 5], [3, 7, 17, 8], [4, 64, 4, 33]] as const) {
  const total = dims[0] * dims[1] * dims[2] * dims[3];
  const x = randn(total, total);
  for (const perm of [[0, 1, 2, 3], [0, 2, 1, 3], [0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 3, 2], [2, 0, 3, 1]] as const) {
    cases.push({
      name: `permute4 (${dims}) perm (${perm})`, tol: EXACT,
      run: (k) => { const o = new Float32Array(total); k.permute4(x, o, dims[0], dims[1], dims[2], dims[3], perm[0], perm[1], perm[2], perm[3]); return [o]; },
    });
  }
}

// attention heads: parts 1 and 3, with and without bias; mergeHeads leaves the other parts alone
for (const [batch, seq, heads, dim] of [[1, 1, 1, 1], [2, 5, 3, 4], [3, 17, 2, 33], [4, 64, 4, 32]] as const) {
  for (const parts of [1, 3]) {
    const total = batch * seq * heads * dim;
    const x = randn(total * parts, total + parts), bias = randn(heads * dim, dim + 3), hx = randn(total, total + 7);
    const base = randn(total * parts, total + 11);
    for (let part = 0; part < parts; part++) {
      const shape = `${batch}x${seq}x${parts}x${heads}x${dim} part ${part}`;
      cases.push({ name: `splitHeads ${shape}`, tol: EXACT, run: (k) => { const o = new Float32Array(total); k.splitHeads(x, null, o, batch, seq, parts, part, heads, dim); return [o]; } });
      cases.push({ name: `splitHeads + bias ${shape}`, tol: EXACT, run: (k) => { const o = new Float32Array(total); k.splitHeads(x, bias, o, batch, seq, parts, part, heads, dim); return [o]; } });
      cases.push({ name: `mergeHeads ${shape}`, tol: EXACT, run: (k) => { const o = copy(base); k.mergeHeads(hx, o, batch, seq, parts, part, heads, dim); return [o]; } });
    }
  }
}

function GEMM_TOL_FOR(want: Float32Array): Tol {
  let s = 1;
  for (const v of want) if (Math.abs(v) > s) s = Math.abs(v);
  return { atol: 1e-4 * s, rtol: 0 };
}
// Marker object: resolved per output by GEMM_TOL_FOR.
const GEMM_TOL: Tol = { atol: -1, rtol: -1 };

// matmul: all four transposes, sizes around the microkernel tiles (14x32, 6x16, 4x16) and the K block (256).
const GEMM_SHAPES: [number, number, number][] = [
  [1, 1, 1], [7, 5, 3], [1, 300, 40], [300, 1, 40], [14, 32, 256], [15, 33, 257], [129, 65, 33], [64, 129, 7], [200, 100, 600], [97, 300, 1000],
];
for (const [m, n, k] of GEMM_SHAPES) {
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const a = randn(m * k, m * 1000 + k), b = randn(k * n, n * 1000 + k + 1);
      const c0 = randn(m * n, m + n);
      const nanC = new Float32Array(m * n).fill(NaN);
      const name = `matmul m=${m} n=${n} k=${k} transA=${ta} transB=${tb}`;
      cases.push({ name: `${name} alpha=1 beta=0 (C full of NaN)`, tol: GEMM_TOL, run: (kk) => { const c = copy(nanC); kk.matmul(a, b, c, 1, m, n, k, ta, tb, 0, 0, 0, 1, 0); return [c]; } });
      cases.push({ name: `${name} alpha=1.5 beta=0.5`, tol: GEMM_TOL, run: (kk) => { const c = copy(c0); kk.matmul(a, b, c, 1, m, n, k, ta, tb, 0, 0, 0, 1.5, 0.5); return [c]; } });
      if (!ta && !tb) {
        cases.push({ name: `${name} alpha=-1 beta=1`, tol: GEMM_TOL, run: (kk) => { const c = copy(c0); kk.matmul(a, b, c, 1, m, n, k, ta, tb, 0, 0, 0, -1, 1); return [c]; } });
      }
    }
  }
}
// batched, with padding between items and stride 0 (broadcast) for A or B
for (const [batch, m, n, k, padA, padB, padC, zeroA, zeroB] of [
  [3, 7, 9, 5, 3, 0, 2, false, true], [5, 33, 17, 40, 0, 5, 0, true, false], [16, 64, 64, 32, 0, 0, 0, false, false],
  [7, 30, 31, 29, 1, 2, 3, false, false], [64, 32, 32, 16, 0, 0, 0, false, true],
] as const) {
  for (const [ta, tb] of [[false, false], [false, true], [true, false]] as const) {
    const sA = zeroA ? 0 : m * k + padA, sB = zeroB ? 0 : k * n + padB, sC = m * n + padC;
    const a = randn((batch - 1) * sA + m * k, batch * 3 + m), b = randn((batch - 1) * sB + k * n, batch * 5 + n);
    const c0 = randn((batch - 1) * sC + m * n, batch + k);
    cases.push({
      name: `matmul batch=${batch} m=${m} n=${n} k=${k} strides ${sA},${sB},${sC} transA=${ta} transB=${tb}`, tol: GEMM_TOL,
      run: (kk) => { const c = copy(c0); kk.matmul(a, b, c, batch, m, n, k, ta, tb, sA, sB, sC, 0.5, 2); return [c]; },
    });
  }
}

const reductionInputs = SIZES.concat([200003]).map((n) => randn(n, n * 3 + 1, 2));

// ---- the SIMD paths to test: every one this CPU has

const simds: Simd[] = [];
if (native) {
  const best = nativeInfo()!.simd;
  for (const s of ['avx512', 'avx2', 'scalar'] as const) if (setNativeSimd(s)) simds.push(s);
  setNativeSimd(best);
}

function onPath(simd: Simd, threads: number): Kernels {
  assert.ok(setNativeSimd(simd));
  native!.setThreads(threads);
  return native!;
}

/** A backend to test: a label, why it is skipped (or false), and its kernels set to a thread count. */
interface Path {
  label: string;
  skip: string | false;
  on: (threads: number) => Kernels;
}
// Without the addon, one skipped group stands for all native paths.
const paths: Path[] = (simds.length ? simds : (['best'] as unknown as Simd[])).map((simd) => ({
  label: `native (${simd})`, skip, on: (threads: number) => onPath(simd, threads),
}));
if (wasm) {
  paths.push({ label: 'wasm', skip: false, on: (threads) => (wasm.setThreads(threads), wasm) });
  const placed = inModuleMemory(wasm);
  paths.push({ label: 'wasm (arrays in the module memory)', skip: false, on: (threads) => (wasm.setThreads(threads), placed) });
}

for (const { label, skip, on } of paths) {
  test(`${label} matches reference on every kernel`, { skip }, () => {
    const k = on(2);
    for (const c of cases) {
      const got = c.run(k), want = c.run(reference);
      got.forEach((g, i) => assertClose(`${c.name} output ${i}`, g, want[i], c.tol === GEMM_TOL ? GEMM_TOL_FOR(want[i]) : c.tol));
    }
  });

  test(`${label} matmul with beta = 0 never reads C (NaN in C does not leak)`, { skip }, () => {
    const k = on(2);
    for (const [m, n, kk] of GEMM_SHAPES) {
      const c = new Float32Array(m * n).fill(NaN);
      k.matmul(randn(m * kk, 1), randn(kk * n, 2), c, 1, m, n, kk, false, false, 0, 0, 0, 1, 0);
      assert.ok(k.allFinite(c), `m=${m} n=${n} k=${kk}`);
    }
  });

  test(`${label} reductions match reference`, { skip }, () => {
    const k = on(2);
    for (const a of reductionInputs) {
      const b = randn(a.length, 77);
      const close = (what: string, g: number, w: number) =>
        assert.ok(Math.abs(g - w) <= 1e-12 * Math.max(1, Math.abs(w)) * Math.sqrt(a.length), `${what} n=${a.length}: ${g} vs ${w}`);
      close('sum', k.sum(a), reference.sum(a));
      close('dot', k.dot(a, b), reference.dot(a, b));
      close('sumSquares', k.sumSquares(a), reference.sumSquares(a));
      assert.equal(k.allFinite(a), true);
      for (const bad of [Infinity, -Infinity, NaN]) {
        for (const at of [0, a.length >> 1, a.length - 1]) {
          const c = copy(a);
          c[at] = bad;
          assert.equal(k.allFinite(c), false, `allFinite with ${bad} at ${at} of ${a.length}`);
        }
      }
    }
    assert.equal(k.sum(new Float32Array(0)), 0);
    assert.equal(k.allFinite(new Float32Array(0)), true);
  });

  test(`${label} is bit-identical run to run and with 1, 2 or 3 threads`, { skip }, () => {
    const k = on(1);
    const one = cases.map((c) => c.run(k));
    const oneAgain = cases.map((c) => c.run(k));
    k.setThreads(2);
    const two = cases.map((c) => c.run(k));
    const twoAgain = cases.map((c) => c.run(k));
    k.setThreads(3);
    const three = cases.map((c) => c.run(k));
    cases.forEach((c, ci) => {
      one[ci].forEach((o, i) => {
        assertBitIdentical(`${c.name} output ${i}, repeated on 1 thread`, oneAgain[ci][i], o);
        assertBitIdentical(`${c.name} output ${i}, repeated on 2 threads`, twoAgain[ci][i], two[ci][i]);
        assertBitIdentical(`${c.name} output ${i}, 1 vs 2 threads`, two[ci][i], o);
        assertBitIdentical(`${c.name} output ${i}, 1 vs 3 threads`, three[ci][i], o);
      });
    });
    for (const a of reductionInputs) {
      k.setThreads(1);
      const s1 = k.sum(a), d1 = k.sumSquares(a);
      k.setThreads(2);
      assert.equal(k.sum(a), s1);
      assert.equal(k.sumSquares(a), d1);
    }
  });
}

const backends: { name: string; skip: string | false; get: () => Kernels }[] = [
  { name: 'native', skip, get: () => native! },
  { name: 'wasm', skip: wasm ? false : 'the wasm kernels did not load', get: () => wasm! },
];

for (const { name, skip, get } of backends) {
test(`${name} matmul on large shapes matches reference (several K blocks, both threads busy)`, { skip }, () => {
  const k = get();
  k.setThreads(2);
  for (const [batch, m, n, kk, tb] of [[1, 300, 520, 700, false], [4, 128, 128, 64, true], [1, 1000, 70, 300, false]] as const) {
    const a = randn(batch * m * kk, 5), b = randn(batch * kk * n, 6);
    const got = new Float32Array(batch * m * n), want = new Float32Array(batch * m * n);
    k.matmul(a, b, got, batch, m, n, kk, false, tb, m * kk, kk * n, m * n, 1, 0);
    reference.matmul(a, b, want, batch, m, n, kk, false, tb, m * kk, kk * n, m * n, 1, 0);
    assertClose(`matmul ${batch}x(${m},${n},${kk})`, got, want, GEMM_TOL_FOR(want));
  }
});

test(`${name} kernels throw on bad arguments instead of crashing`, { skip }, () => {
  const k = get();
  const f = (n: number) => new Float32Array(n);
  const throwsNamed = (op: string, fn: () => unknown, msg?: RegExp) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof Error, `${op}: not an Error`);
      assert.match(err.message, new RegExp(`^untie ${name} ${op}: `));
      if (msg) assert.match(err.message, msg);
      return true;
    });
  // matmul: lengths checked against the last batch item's extent
  throwsNamed('matmul', () => k.matmul(f(100), f(4096), f(4096), 1, 64, 64, 64, false, false, 0, 0, 0, 1, 0), /a has 100 elements, needs 4096/);
  throwsNamed('matmul', () => k.matmul(f(4096), f(4096), f(4095), 1, 64, 64, 64, false, false, 0, 0, 0, 1, 0), /c has 4095 elements/);
  throwsNamed('matmul', () => k.matmul(f(2 * 4096), f(4096), f(2 * 4096), 2, 64, 64, 64, false, false, 4096, 0, 4097, 1, 0), /c has 8192 elements, needs 8193/);
  throwsNamed('matmul', () => k.matmul(f(4096), f(4096), f(4096), 3, 64, 64, 64, true, false, 1, 0, 0, 1, 0), /a has 4096 elements, needs 4098/);
  throwsNamed('matmul', () => k.matmul(new Float64Array(4) as unknown as Float32Array, f(4), f(4), 1, 2, 2, 2, false, false, 0, 0, 0, 1, 0), /a must be a Float32Array/);
  throwsNamed('matmul', () => k.matmul(f(4), f(4), f(4), 1, -2, 2, 2, false, false, 0, 0, 0, 1, 0), /m must be a non-negative integer/);
  throwsNamed('matmul', () => k.matmul(f(4), f(4), f(4), 1, 2.5, 2, 2, false, false, 0, 0, 0, 1, 0), /m must be a non-negative integer/);
  throwsNamed('matmul', () => k.matmul(f(4), f(4), f(4), 1, 2, 2, 2, 0 as unknown as boolean, false, 0, 0, 0, 1, 0), /transA must be a boolean/);
  throwsNamed('matmul', () => (k.matmul as unknown as (...a: unknown[]) => void)(f(4), f(4), f(4), 1, 2, 2), /expected 14 arguments, got 6/);
  throwsNamed('matmul', () => k.matmul(f(4), f(4), f(4), 1, 2 ** 40, 2 ** 40, 2, false, false, 0, 0, 0, 1, 0), /too large|elements/);
  // elementwise: lengths must be equal
  throwsNamed('add', () => k.add(f(10), f(9), f(10)), /b has 9 elements, expected 10/);
  throwsNamed('mul', () => k.mul(f(10), f(10), f(11)));
  throwsNamed('scale', () => k.scale(f(10), 2, f(9)));
  throwsNamed('axpy', () => k.axpy(f(10), f(9), 2));
  throwsNamed('geluForward', () => k.geluForward(f(10), f(9)));
  throwsNamed('geluBackward', () => k.geluBackward(f(10), f(10), f(9)));
  throwsNamed('tanhForward', () => k.tanhForward(f(10), f(11)));
  throwsNamed('tanhBackward', () => k.tanhBackward(f(10), f(9), f(10)));
  throwsNamed('dropoutForward', () => k.dropoutForward(f(10), f(9), 0.1, 1));
  throwsNamed('dropoutForward', () => k.dropoutForward(f(10), f(10), 1, 1), /p must be in \[0, 1\)/);
  throwsNamed('dropoutBackward', () => k.dropoutBackward(f(10), f(10), -0.1, 1), /p must be in \[0, 1\)/);
  throwsNamed('biasGeluForward', () => k.biasGeluForward(f(10), f(4), f(10), 2, 5), /bias has 4 elements, needs 5/);
  throwsNamed('biasGeluBackward', () => k.biasGeluBackward(f(10), f(5), f(10), f(10), f(4), 2, 5), /dbias has 4 elements/);
  throwsNamed('addLayerNormForward', () => k.addLayerNormForward(f(10), f(9), f(5), f(5), f(10), f(10), f(2), f(2), 2, 5, 1e-5), /y has 9 elements, needs 10/);
  throwsNamed('splitHeads', () => k.splitHeads(f(24), null, f(8), 1, 2, 3, 3, 2, 2), /part 3 is not below parts 3/);
  throwsNamed('splitHeads', () => k.splitHeads(f(23), null, f(8), 1, 2, 3, 0, 2, 2), /x has 23 elements, needs 24/);
  throwsNamed('splitHeads', () => k.splitHeads(f(24), f(3), f(8), 1, 2, 3, 0, 2, 2), /bias has 3 elements, needs 4/);
  throwsNamed('mergeHeads', () => k.mergeHeads(f(8), f(23), 1, 2, 3, 0, 2, 2), /out has 23 elements, needs 24/);
  throwsNamed('addRowVector', () => k.addRowVector(f(10), f(4), f(10), 2, 5), /bias has 4 elements, needs 5/);
  throwsNamed('sumRows', () => k.sumRows(f(10), f(5), 3, 5), /x has 10 elements, needs 15/);
  throwsNamed('softmaxForward', () => k.softmaxForward(f(10), f(10), 2, 5, 1, f(4), 2), /mask has 4 elements, needs 5/);
  throwsNamed('softmaxForward', () => k.softmaxForward(f(10), f(9), 2, 5, 1, null, 1));
  throwsNamed('softmaxBackward', () => k.softmaxBackward(f(10), f(10), f(9), 2, 5, 1));
  throwsNamed('layerNormForward', () => k.layerNormForward(f(10), f(5), f(5), f(10), f(1), f(2), 2, 5, 1e-5), /mean has 1 elements, needs 2/);
  throwsNamed('layerNormBackward', () => k.layerNormBackward(f(10), f(5), f(2), f(2), f(10), f(10), f(4), f(5), 2, 5), /dgamma/);
  throwsNamed('crossEntropyForward', () => k.crossEntropyForward(f(10), new Int32Array([1, 5]), f(2), f(2), 2, 5, -100), /target 5 at row 1 is outside \[0, 5\)/);
  throwsNamed('crossEntropyForward', () => k.crossEntropyForward(f(10), new Int32Array([-1, 0]), f(2), f(2), 2, 5, -100), /target -1 at row 0/);
  throwsNamed('crossEntropyForward', () => k.crossEntropyForward(f(10), new Float32Array(2) as unknown as Int32Array, f(2), f(2), 2, 5, -100), /targets must be an Int32Array/);
  throwsNamed('crossEntropyBackward', () => k.crossEntropyBackward(f(10), new Int32Array([1, 7]), f(2), f(10), 2, 5, -100, 1), /target 7 at row 1/);
  throwsNamed('embeddingForward', () => k.embeddingForward(f(20), new Int32Array([0, 5]), f(8), 2, 4, 5), /id 5 at position 1 is outside \[0, 5\)/);
  throwsNamed('embeddingForward', () => k.embeddingForward(f(20), new Int32Array([0, -1]), f(8), 2, 4, 5), /id -1/);
  throwsNamed('embeddingBackward', () => k.embeddingBackward(f(8), new Int32Array([0, 9]), f(20), 2, 4, 5), /id 9/);
  throwsNamed('embeddingBackward', () => k.embeddingBackward(f(8), new Int32Array([0]), f(20), 2, 4, 5), /ids has 1 elements, needs 2/);
  throwsNamed('permute4', () => k.permute4(f(24), f(24), 2, 3, 4, 1, 0, 1, 1, 3), /not a permutation/);
  throwsNamed('permute4', () => k.permute4(f(23), f(24), 2, 3, 4, 1, 0, 1, 2, 3), /x has 23 elements, needs 24/);
  throwsNamed('adamwStep', () => k.adamwStep(f(10), f(10), f(10), f(9), 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001));
  throwsNamed('dot', () => k.dot(f(10), f(9)));
  throwsNamed('sum', () => k.sum([1, 2] as unknown as Float32Array), /a must be a Float32Array/);
  throwsNamed('setThreads', () => k.setThreads(0));

  // Nothing was written before a throw: a bad target in the last row leaves the outputs untouched.
  const losses = f(2).fill(7);
  assert.throws(() => k.crossEntropyForward(f(10), new Int32Array([0, 9]), losses, f(2), 2, 5, -100));
  assert.deepEqual([...losses], [7, 7]);
});
}

test('native thread count: default is the number of cores, setThreads/getThreads round-trip', { skip }, () => {
  const k = native!;
  k.setThreads(3);
  assert.equal(k.getThreads(), 3);
  k.setThreads(1);
  assert.equal(k.getThreads(), 1);
  k.setThreads(2);
  assert.equal(k.getThreads(), 2);
});

test('wasm thread count: one thread whatever is set (single-threaded build); setThreads still checks its argument', { skip: wasm ? false : 'the wasm kernels did not load' }, () => {
  const k = wasm!;
  k.setThreads(3);
  assert.equal(k.getThreads(), 1);
  assert.throws(() => k.setThreads(0), /^Error: untie wasm setThreads: n must be at least 1/);
});

test('wasm: arrays from outside the module memory are copied back only where the kernel writes, and temporary blocks are freed', { skip: wasm ? false : 'the wasm kernels did not load' }, () => {
  const k = wasm!;
  const before = k.memory.bytes().inUse;
  const a = randn(5000, 1), b = randn(5000, 2), out = new Float32Array(5000);
  const aCopy = copy(a);
  k.add(a, b, out);
  assert.deepEqual(a, aCopy, 'an input is not written back');
  for (let i = 0; i < 5000; i++) assert.equal(out[i], Math.fround(a[i] + b[i]));
  // A throw after the copies were made (a bad target in the last row) frees them too.
  assert.throws(() => k.crossEntropyForward(new Float32Array(10), new Int32Array([0, 9]), new Float32Array(2), new Float32Array(2), 2, 5, -100));
  assert.equal(k.memory.bytes().inUse, before, 'no temporary block is left allocated');
});
