/**
 * GEMM GFLOP/s: untie's native matmul against PyTorch (OpenBLAS) on the same
 * machine, on the shapes of a BERT step: (M, K, N) = (4096, 256, 256),
 * (4096, 256, 1024), (4096, 1024, 256), (512, 512, 512), and the batched
 * attention shape 64 x (128x64 @ 64x128); and the transposed shapes of the
 * backward pass: the weight gradients dW = dYᵀ X (Aᵀ B, k = 4096 rows) and
 * x Wᵀ (A Bᵀ) at the same weight shapes; each at 1 and 2 threads. On 1
 * thread, also untie's WebAssembly kernels (src/backend/wasm.ts, one thread
 * only), on arrays in the module's memory as the tensor pool places them.
 *
 * Both sides are timed the same way (bench/torch_gemm.py mirrors timeOne):
 * warm-up, then the median of several timed loops of calls, each loop lasting
 * at least minSeconds, into a preallocated output. PyTorch runs at its best
 * (docs/design.md, "Benchmarking against PyTorch fairly"): OpenBLAS and OpenMP
 * capped at the same thread count, passive OpenMP waiting, and none of this
 * machine's OpenBLAS overrides. The machine may be shared: compare the ratio
 * of figures from one run, not figures across runs.
 *
 *   node --import tsx bench/gemm.ts [--quick] [--json] [--threads 1,2]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative, nativeInfo } from '../src/backend/native.js';
import { loadWasm } from '../src/backend/wasm-file.js';
import type { Kernels } from '../src/backend/kernels.js';
import { torchEnv, usableTorchPython } from './torch-python.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * [batch, M, K, N, op]: C (M, N) = op(A) (M, K) @ op(B) (K, N), batch times;
 * op 'NN' (default), 'TN' (A stored (K, M): Aᵀ B) or 'NT' (B stored (N, K): A Bᵀ).
 */
export type GemmShape = [number, number, number, number, ('NN' | 'TN' | 'NT')?];

export const GEMM_SHAPES: GemmShape[] = [
  [1, 4096, 256, 256],
  [1, 4096, 256, 1024],
  [1, 4096, 1024, 256],
  [1, 512, 512, 512],
  [64, 128, 64, 128],
  // weight gradients of the BERT step's Linears (out x in = 256x256, 1024x256, 256x1024) over 4096 rows
  [1, 256, 4096, 256, 'TN'],
  [1, 1024, 4096, 256, 'TN'],
  [1, 256, 4096, 1024, 'TN'],
  // x Wᵀ with W stored (out, in), as every Linear runs
  [1, 4096, 256, 256, 'NT'],
  [1, 4096, 256, 1024, 'NT'],
  [1, 4096, 1024, 256, 'NT'],
];

export interface GemmBenchOptions {
  /** Thread counts to measure (default [1, 2]). */
  threads?: number[];
  shapes?: GemmShape[];
  /** Fewer, shorter timed loops. */
  quick?: boolean;
  /** Skip PyTorch even if it is installed (it is skipped anyway when it runs on the reference BLAS). */
  noTorch?: boolean;
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
}

export interface GemmBenchRow {
  shape: string;
  threads: number;
  untie_gflops: number;
  torch_gflops: number | null;
  /**
   * On 1 thread, GFLOP per second of CPU time (user + system) rather than of
   * wall time: what the thread did while it ran, so that a shared machine's
   * load, which stretches wall time, does not skew the ratio. Null on more
   * threads (CPU time then also counts threads waiting, differently on each side).
   */
  untie_cpu_gflops: number | null;
  torch_cpu_gflops: number | null;
  /** untie's wasm kernels, 1 thread only (null on more threads, or when the module does not load): by wall and by CPU time. */
  wasm_gflops: number | null;
  wasm_cpu_gflops: number | null;
}

interface Timing {
  gflops: number;
  cpu_gflops: number;
}

export function shapeLabel([batch, m, k, n, op = 'NN']: GemmShape): string {
  const one = op === 'TN' ? `(${k}x${m})ᵀ @ ${k}x${n}` : op === 'NT' ? `${m}x${k} @ (${n}x${k})ᵀ` : `${m}x${k} @ ${k}x${n}`;
  return batch === 1 ? one : `${batch} x (${one})`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function randomUniform(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/** GFLOP/s of one shape (by wall and by CPU time): medians over `reps` timed loops of at least `minSeconds` each. */
function timeOne(k: Kernels, [batch, m, kk, n, op = 'NN']: GemmShape, reps: number, minSeconds: number): Timing {
  // Where the kernels keep tensors (the wasm module's memory), as the pool does: no copies per call.
  const placed: Float32Array[] = [];
  const place = (x: Float32Array) => {
    const at = k.memory?.alloc(x.length);
    if (!at) return x;
    at.set(x);
    placed.push(at);
    return at;
  };
  const a = place(randomUniform(batch * m * kk, 1)), b = place(randomUniform(batch * kk * n, 2)), c = place(new Float32Array(batch * m * n));
  const ta = op === 'TN', tb = op === 'NT';
  const call = () => k.matmul(a, b, c, batch, m, n, kk, ta, tb, m * kk, kk * n, m * n, 1, 0);
  const flops = 2 * batch * m * n * kk;
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  let t0 = now(), calls = 0;
  while (calls < 3 || now() - t0 < minSeconds) {
    call();
    calls++;
  }
  const loop = Math.max(1, Math.floor(minSeconds / ((now() - t0) / calls)));
  const times: number[] = [], cpuTimes: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    t0 = now();
    for (let i = 0; i < loop; i++) call();
    times.push((now() - t0) / loop);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1e6 / loop);
  }
  for (const x of placed) k.memory!.free(x);
  return { gflops: flops / median(times) / 1e9, cpu_gflops: flops / median(cpuTimes) / 1e9 };
}

function torchGflops(python: string, shapes: GemmShape[], threads: number, reps: number, minSeconds: number, log: (l: string) => void): Timing[] | null {
  const run = spawnSync(python, [join(here, 'torch_gemm.py'), JSON.stringify({ threads, shapes, reps, min_s: minSeconds })], {
    encoding: 'utf8',
    env: torchEnv(threads),
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) {
    log(`torch_gemm.py failed (${threads} threads): ${run.stderr || run.error?.message}`);
    return null;
  }
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { gflops: number[]; cpu_gflops: number[] };
  return out.gflops.map((g, i) => ({ gflops: g, cpu_gflops: out.cpu_gflops[i] }));
}

/**
 * Measures every shape at every thread count, untie then torch (never at the
 * same time), in alternating rounds: each figure is the median over rounds,
 * so that a change of load on a shared machine hits both sides alike.
 */
export async function benchGemm(opts: GemmBenchOptions = {}): Promise<GemmBenchRow[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const k = loadNative();
  if (!k) throw new Error('bench/gemm: the native addon is not built; run npm run build:native');
  const shapes = opts.shapes ?? GEMM_SHAPES;
  const threadCounts = opts.threads ?? [1, 2];
  const reps = opts.quick ? 3 : 5;
  const rounds = opts.quick ? 2 : 3;
  const minSeconds = opts.quick ? 0.03 : 0.1;
  const before = k.getThreads();
  const rows: GemmBenchRow[] = [];
  const python = opts.noTorch ? null : usableTorchPython().python;
  const wasm = loadWasm();
  try {
    for (const threads of threadCounts) {
      k.setThreads(threads);
      const untie: Timing[][] = shapes.map(() => []), torch: Timing[][] = shapes.map(() => []), wasmT: Timing[][] = shapes.map(() => []);
      for (let round = 1; round <= rounds; round++) {
        log(`GEMM, untie, ${threads} thread(s), round ${round}/${rounds} ...`);
        shapes.forEach((s, i) => untie[i].push(timeOne(k, s, reps, minSeconds)));
        if (wasm && threads === 1) {
          log(`GEMM, untie wasm, 1 thread, round ${round}/${rounds} ...`);
          shapes.forEach((s, i) => wasmT[i].push(timeOne(wasm, s, reps, minSeconds)));
        }
        if (!python) continue;
        log(`GEMM, torch, ${threads} thread(s), round ${round}/${rounds} ...`);
        torchGflops(python, shapes, threads, reps, minSeconds, log)?.forEach((g, i) => torch[i].push(g));
      }
      const med = (ts: Timing[], key: keyof Timing) => median(ts.map((t) => t[key]));
      shapes.forEach((s, i) => rows.push({
        shape: shapeLabel(s), threads, untie_gflops: med(untie[i], 'gflops'), torch_gflops: torch[i].length ? med(torch[i], 'gflops') : null,
        untie_cpu_gflops: threads === 1 ? med(untie[i], 'cpu_gflops') : null,
        torch_cpu_gflops: threads === 1 && torch[i].length ? med(torch[i], 'cpu_gflops') : null,
        wasm_gflops: wasmT[i].length ? med(wasmT[i], 'gflops') : null,
        wasm_cpu_gflops: wasmT[i].length ? med(wasmT[i], 'cpu_gflops') : null,
      }));
    }
  } finally {
    k.setThreads(before);
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--threads');
  const threads = ti >= 0 ? args[ti + 1].split(',').map(Number) : undefined;
  const noTorch = args.includes('--no-torch');
  const { refused } = noTorch ? { refused: null } : usableTorchPython();
  if (refused) process.stderr.write(`No PyTorch figures: ${refused}\n`);
  const rows = await benchGemm({ quick: args.includes('--quick'), noTorch, threads });
  if (args.includes('--json')) {
    console.log(JSON.stringify({ native: nativeInfo(), rows }));
    return;
  }
  console.log(`untie native: ${JSON.stringify(nativeInfo())}`);
  printGemmRows(rows, console.log);
}

/** The GEMM table: wall-clock GFLOP/s and ratio, and on 1 thread the same per CPU second, with the wasm kernels'. */
export function printGemmRows(rows: GemmBenchRow[], print: (line: string) => void, indent = ''): void {
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? (a / b).toFixed(2) : '-');
  print(indent + 'shape'.padEnd(28) + 'threads'.padStart(8) + 'untie'.padStart(9) + 'torch'.padStart(9) + 'ratio'.padStart(8) +
    '   per CPU second: untie'.padStart(25) + 'torch'.padStart(9) + 'ratio'.padStart(8) + 'wasm'.padStart(8) + 'wasm/untie'.padStart(12));
  for (const r of rows) {
    print(indent + r.shape.padEnd(28) + String(r.threads).padStart(8) + f(r.untie_gflops).padStart(9) + f(r.torch_gflops).padStart(9) +
      ratio(r.untie_gflops, r.torch_gflops).padStart(8) + f(r.untie_cpu_gflops).padStart(25) + f(r.torch_cpu_gflops).padStart(9) +
      ratio(r.untie_cpu_gflops, r.torch_cpu_gflops).padStart(8) + f(r.wasm_cpu_gflops).padStart(8) + ratio(r.wasm_cpu_gflops, r.untie_cpu_gflops).padStart(12));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
