/**
 * `npm run bench:engine [-- --json] [-- --quick] [-- --profile] [-- --bf16]`
 *
 * The engine's numbers, in one run, against PyTorch on the same machine:
 * - GEMM GFLOP/s (bench/gemm.ts), untie vs torch;
 * - one full training step (forward, backward, AdamW) of a 4-layer BERT
 *   encoder with its MLM head, at 1 thread and at the default thread count,
 *   untie vs the same model in plain PyTorch (bench/torch_bert.py), and on 1
 *   thread untie's WebAssembly kernels too (`bert_step_ms.wasm_1t` beside
 *   `bert_step_ms.untie_1t`; GEMM rows carry `wasm_gflops`);
 * - untie's RSS at step 10 and step 200 and its peak, in a fresh child
 *   process that runs 200 steps (a step must not grow memory over time).
 * `--profile` adds one step's time split by kernel, with FLOP rates.
 *
 * PyTorch figures are reported only when torch runs on an optimised BLAS: on
 * the reference (netlib) BLAS, which Debian's python3-torch gets without
 * libopenblas0-pthread, its GEMM is about 50x slower, and the benchmark says
 * so and how to fix it instead of printing a false win (torch-python.ts).
 *
 * bfloat16: untie has no bf16 path (`bert_step_ms.untie_bf16` is null; see
 * the README). PyTorch's bf16 step (CPU autocast) is timed when the CPU has
 * bf16 instructions (AVX512-BF16 or AMX), or with `--bf16` (elsewhere torch
 * emulates bf16 and its step takes about 20x its float32 step).
 *
 * Both sides do the same work: the same shapes and dropout, the MLM head
 * (transform + tied decoder over the vocab) applied only to the masked
 * positions (a gather), AdamW with BERT's no-decay rule. PyTorch runs at its
 * best (docs/design.md, "Benchmarking against PyTorch fairly"); untie and
 * torch never run at the same time. Each figure is the median of several
 * steps after warm-up; the machine is shared, so compare ratios from one run.
 *
 * With --json, stdout carries exactly one JSON object (progress goes to
 * stderr); torch fields are null when no python imports torch or torch is
 * refused (`torch_refused` says why).
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernels, useKernels, wasmKernels } from '../src/backend/index.js';
import type { Kernels } from '../src/backend/kernels.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../src/models/bert.js';
import { Optimizer, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, tidy } from '../src/tensor/tensor.js';
import { benchGemm, printGemmRows } from './gemm.js';
import { existsSync, readFileSync } from 'node:fs';
import { findTorchPython, torchEnv, usableTorchPython } from './torch-python.js';

const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- the workload

const BATCH = 32, SEQ = 128, MASK_PROB = 0.15;

function benchConfig(): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: 8192, hidden: 256, layers: 4, heads: 4, intermediate: 1024, maxPositions: SEQ,
    dropout: 0.1, attentionDropout: 0.1, norm: 'post',
  };
}

/** Random ids, every token real, each position masked (labelled) with probability 15%. */
function benchBatch(c: BertConfig, seed = 2): MlmBatch {
  const rng = new Rng(seed);
  const n = BATCH * SEQ;
  const inputIds = new Int32Array(n), labels = new Int32Array(n).fill(-100);
  for (let i = 0; i < n; i++) {
    inputIds[i] = 5 + (rng.nextU32() % (c.vocabSize - 5));
    if (rng.uniform() < MASK_PROB) labels[i] = inputIds[i];
  }
  return { inputIds, tokenTypeIds: new Int32Array(n), attentionMask: new Float32Array(n).fill(1), labels, batchSize: BATCH, seqLen: SEQ };
}

/** A model, its optimizer and one batch; `step()` is one full training step. */
function trainer(seed = 1) {
  const c = benchConfig();
  const model = new BertForMaskedLM(c, seed);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p), names = named.map(([n]) => n);
  const opt = new Optimizer(defaultOptimizerConfig());
  const batch = benchBatch(c);
  let masked = 0;
  for (const l of batch.labels) if (l !== -100) masked++;
  return {
    config: c,
    masked,
    paramCount: params.reduce((s, p) => s + p.size, 0),
    step(): number {
      model.zeroGrad();
      const loss = tidy(() => {
        const out = model.mlm(batch);
        backward(out.loss);
        return out.loss.item();
      });
      opt.step(params, names, 1e-4);
      return loss;
    },
  };
}

/**
 * FLOPs of one training step, counting matmuls only (2 per multiply-add,
 * backward = 2x forward): per layer the four projections, the FFN and the
 * two attention products; the MLM transform and decoder on masked rows.
 */
function stepFlops(c: BertConfig, masked: number): number {
  const rows = BATCH * SEQ, C = c.hidden, I = c.intermediate;
  const perLayer = 2 * rows * (4 * C * C + 2 * C * I) + 2 * 2 * BATCH * SEQ * SEQ * C;
  const head = 2 * masked * (C * C + C * c.vocabSize);
  return 3 * (c.layers * perLayer + head);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------------------------------------------------------------- untie timing

/**
 * Wall-clock ms per step, and CPU ms (user + system, all threads): on a shared
 * machine wall time inflates with others' load, CPU time much less.
 */
function timeUntieSteps(threads: number, warmup: number, reps: number): { median: number; all: number[]; cpuMedian: number } {
  kernels().setThreads(threads);
  const t = trainer();
  for (let i = 0; i < warmup; i++) t.step();
  const all: number[] = [], cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    t.step();
    all.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { median: median(all), all, cpuMedian: median(cpu) };
}

// ---------------------------------------------------------------- torch timing

interface TorchStep {
  bf16: boolean;
  step_ms_median: number;
  cpu_ms_median: number;
  step_ms: number[];
  torch_threads: number;
  torch_version: string;
}

function timeTorchSteps(python: string, threads: number, warmup: number, reps: number, bf16 = false): TorchStep | null {
  const run = spawnSync(python, [
    join(here, 'torch_bert.py'), '--config', JSON.stringify(benchConfig()), '--threads', String(threads),
    '--batch', String(BATCH), '--seq', String(SEQ), '--mask-prob', String(MASK_PROB),
    '--warmup', String(warmup), '--steps', String(reps), ...(bf16 ? ['--bf16'] : []),
  ], { encoding: 'utf8', env: torchEnv(threads), maxBuffer: 1 << 24 });
  if (run.status !== 0) {
    log(`torch_bert.py${bf16 ? ' --bf16' : ''} failed (${threads} threads):\n${run.stderr}`);
    return null;
  }
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as TorchStep;
}

// ---------------------------------------------------------------- RSS, in a fresh process

interface RssReport {
  steps: number;
  threads: number;
  /** MB after the given step (1-based), keyed by step. */
  at: Record<string, number>;
  peakMb: number;
  stepMsMedian: number;
}

const MB = 1024 * 1024;

/** Runs in the child: `steps` training steps, RSS after each, peak from the OS. */
function rssChild(steps: number, threads: number): void {
  kernels().setThreads(threads);
  const t = trainer();
  const at: Record<string, number> = {};
  const times: number[] = [];
  const marks = new Set([1, 10, 50, 100, 150, 200, steps]);
  for (let i = 1; i <= steps; i++) {
    const t0 = performance.now();
    t.step();
    times.push(performance.now() - t0);
    if (marks.has(i)) at[String(i)] = process.memoryUsage().rss / MB;
    if (i % 20 === 0) log(`  rss child: step ${i}/${steps}, rss ${(process.memoryUsage().rss / MB).toFixed(0)} MB`);
  }
  // ru_maxrss is in kilobytes on Linux.
  const report: RssReport = { steps, threads, at, peakMb: process.resourceUsage().maxRSS / 1024, stepMsMedian: median(times) };
  process.stdout.write(JSON.stringify(report) + '\n');
}

function measureRss(steps: number, threads: number): RssReport | null {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync(process.execPath, [...process.execArgv, self, '--rss-child', String(steps), String(threads)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24,
  });
  if (run.status !== 0) {
    log(`the RSS child process failed (status ${run.status})`);
    return null;
  }
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as RssReport;
}

// ---------------------------------------------------------------- profile

interface KernelStat {
  calls: number;
  ms: number;
  flops: number;
}

/**
 * Wraps every kernel with a timer. Matmuls are keyed by their shape and
 * transpose flags so that each GEMM of the model shows up on its own line.
 */
function profiled(K: Kernels, stats: Map<string, KernelStat>): Kernels {
  const wrapped: Record<string, unknown> = { name: `${K.name}+profile` };
  for (const key of Object.keys(K) as (keyof Kernels)[]) {
    const fn = K[key];
    if (typeof fn !== 'function' || key === 'setThreads' || key === 'getThreads') {
      wrapped[key] = fn;
      continue;
    }
    wrapped[key] = (...args: unknown[]) => {
      let label: string = key, flops = 0;
      if (key === 'matmul') {
        const [, , , batch, m, n, k, ta, tb, , , , , beta] = args as [unknown, unknown, unknown, number, number, number, number, boolean, boolean, number, number, number, number, number];
        label = `matmul ${batch > 1 ? `${batch}x ` : ''}(${m}x${k})${ta ? 'ᵀ' : ''}·(${k}x${n})${tb ? 'ᵀ' : ''}${beta ? ' +=' : ''}`;
        flops = 2 * batch * m * n * k;
      }
      const t0 = performance.now();
      const r = (fn as (...a: unknown[]) => unknown)(...args);
      const s = stats.get(label) ?? { calls: 0, ms: 0, flops: 0 };
      s.calls++;
      s.ms += performance.now() - t0;
      s.flops += flops;
      stats.set(label, s);
      return r;
    };
  }
  return wrapped as unknown as Kernels;
}

interface ProfileReport {
  threads: number;
  stepMs: number;
  kernelMs: number;
  /** Step time outside kernels: JS, allocation, GC. */
  otherMs: number;
  rows: { kernel: string; calls: number; ms: number; share: number; gflops: number | null }[];
}

function profileStep(threads: number, reps: number): ProfileReport {
  const K = kernels();
  K.setThreads(threads);
  const t = trainer();
  t.step();
  t.step();
  const stats = new Map<string, KernelStat>();
  useKernels(profiled(K, stats));
  let total = 0;
  try {
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      t.step();
      total += performance.now() - t0;
    }
  } finally {
    useKernels(K);
  }
  const rows = [...stats.entries()].map(([kernel, s]) => ({
    kernel, calls: s.calls / reps, ms: s.ms / reps, share: 0,
    gflops: s.flops > 0 ? s.flops / (s.ms / 1000) / 1e9 : null,
  }));
  const stepMs = total / reps;
  const kernelMs = rows.reduce((a, r) => a + r.ms, 0);
  for (const r of rows) r.share = r.ms / stepMs;
  rows.sort((a, b) => b.ms - a.ms);
  return { threads, stepMs, kernelMs, otherMs: stepMs - kernelMs, rows };
}

function printProfile(p: ProfileReport, flops: number): void {
  console.log(`\nProfile of one step at ${p.threads} thread(s): ${p.stepMs.toFixed(0)} ms, of which kernels ${p.kernelMs.toFixed(0)} ms, outside kernels (JS, allocation, GC) ${p.otherMs.toFixed(0)} ms`);
  console.log(`  matmul FLOPs per step ${(flops / 1e9).toFixed(1)} G: ${(flops / (p.stepMs / 1000) / 1e9).toFixed(1)} GFLOP/s over the whole step`);
  console.log('  ' + 'kernel'.padEnd(44) + 'calls'.padStart(7) + 'ms'.padStart(9) + 'share'.padStart(8) + 'GFLOP/s'.padStart(9));
  for (const r of p.rows) {
    if (r.ms < 0.05 * p.stepMs / 100) continue;
    console.log('  ' + r.kernel.padEnd(44) + r.calls.toFixed(0).padStart(7) + r.ms.toFixed(1).padStart(9) + `${(100 * r.share).toFixed(1)}%`.padStart(8) + (r.gflops === null ? '' : r.gflops.toFixed(1)).padStart(9));
  }
}

// ---------------------------------------------------------------- main

interface Options {
  json: boolean;
  quick: boolean;
  profile: boolean;
  bf16: boolean;
  rssSteps: number;
}

function parseOptions(argv: string[]): Options {
  const known = new Set(['--json', '--quick', '--profile', '--bf16']);
  for (const a of argv) {
    if (!known.has(a)) {
      process.stderr.write(`bench:engine: unknown option ${a}. Options: --json (one JSON object on stdout), --quick (short run), --profile (time by kernel), --bf16 (time PyTorch's bf16 step even where the CPU emulates bf16)\n`);
      process.exit(2);
    }
  }
  const quick = argv.includes('--quick');
  return { json: argv.includes('--json'), quick, profile: argv.includes('--profile'), bf16: argv.includes('--bf16'), rssSteps: quick ? 30 : 200 };
}

/** Whether the CPU has bfloat16 arithmetic (AVX512-BF16 or AMX-BF16); false where /proc/cpuinfo is absent. */
function cpuHasBf16(): boolean {
  if (!existsSync('/proc/cpuinfo')) return false;
  return /\b(avx512_bf16|amx_bf16)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

const UNTIE_BF16_NOTE =
  'untie has no bfloat16 path: a bf16 GEMM gains only with AVX512-BF16 (vdpbf16ps), which the machine untie is developed on ' +
  '(AMD EPYC Zen 3, AVX2) lacks, so such code could not be run or tested there; on AVX2 bf16 adds conversions to float32 arithmetic';

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--rss-child') {
    rssChild(Number(argv[1]), Number(argv[2]));
    return;
  }
  const opts = parseOptions(argv);
  // In --json mode nothing but the final object may reach stdout.
  const print = console.log;
  if (opts.json) console.log = (...a: unknown[]) => log(a.map(String).join(' '));

  const K = kernels();
  if (K.name !== 'native' && process.env.UNTIE_BACKEND !== 'reference') {
    process.stderr.write('bench:engine: the native kernels did not load, and timing the reference kernels says nothing. Run `npm run build:native` (or set UNTIE_BACKEND=reference to time them anyway).\n');
    process.exit(1);
  }
  const defaultThreads = K.getThreads();
  const threadCounts = [...new Set([1, defaultThreads])];
  const torchFound = findTorchPython();
  const { python, refused } = usableTorchPython();
  const warmup = opts.quick ? 1 : 2, reps = opts.quick ? 3 : 7;
  const c = benchConfig();
  const probe = trainer();
  const flops = stepFlops(c, probe.masked);

  console.log(`untie engine benchmark: ${K.name} kernels, default ${defaultThreads} thread(s), ${availableParallelism()} cores; PyTorch: ${torchFound ?? 'not found'}`);
  if (refused) {
    console.log(`No PyTorch figures: ${refused}`);
    if (opts.json) process.stderr.write(`bench:engine: no PyTorch figures: ${refused}\n`);
  }
  console.log(`BERT step: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads, FFN ${c.intermediate}, vocab ${c.vocabSize}, batch ${BATCH} x seq ${SEQ}, ` +
    `${probe.masked} masked positions (${(100 * probe.masked / (BATCH * SEQ)).toFixed(1)}%), dropout ${c.dropout}, ${(probe.paramCount / 1e6).toFixed(2)}M parameters, ` +
    `${(flops / 1e9).toFixed(1)} GFLOP of matmuls per step.`);
  console.log('Both sides: forward + backward + AdamW; the MLM head (transform + tied decoder) only on the masked positions (gather); median of ' +
    `${reps} steps after ${warmup} warm-up.`);

  // GEMM
  log('GEMM ...');
  let gemm: Awaited<ReturnType<typeof benchGemm>> = [];
  try {
    gemm = await benchGemm({ quick: opts.quick, threads: threadCounts, log, noTorch: !python });
  } catch (err) {
    log(`GEMM benchmark failed, going on without it: ${err instanceof Error ? err.message : String(err)}`);
  }
  console.log('\nGEMM GFLOP/s');
  printGemmRows(gemm, (line) => console.log(line), '  ');

  // BERT step, untie and torch alternating per thread count so both see similar machine load.
  const byThreads: {
    threads: number; untie: number; torch: number | null; ratio: number | null;
    untie_cpu: number; torch_cpu: number | null; untie_all: number[]; torch_all: number[] | null;
  }[] = [];
  const wasm = wasmKernels();
  let wasmStep: ReturnType<typeof timeUntieSteps> | null = null;
  for (const n of threadCounts) {
    log(`BERT step, untie, ${n} thread(s) ...`);
    const u = timeUntieSteps(n, warmup, reps);
    if (n === 1 && wasm) {
      // Right after native's 1-thread step, so that both see about the same load.
      log('BERT step, untie wasm, 1 thread ...');
      useKernels(wasm);
      try {
        wasmStep = timeUntieSteps(1, warmup, reps);
      } finally {
        useKernels(K);
      }
    }
    log(`BERT step, torch, ${n} thread(s) ...`);
    const tr = python ? timeTorchSteps(python, n, warmup, reps) : null;
    byThreads.push({
      threads: n, untie: u.median, torch: tr?.step_ms_median ?? null, ratio: tr ? u.median / tr.step_ms_median : null,
      untie_cpu: u.cpuMedian, torch_cpu: tr?.cpu_ms_median ?? null, untie_all: u.all, torch_all: tr?.step_ms ?? null,
    });
  }
  K.setThreads(defaultThreads);
  // bfloat16: PyTorch's autocast step, where the CPU has bf16 arithmetic or when asked.
  const hasBf16 = cpuHasBf16();
  let torchBf16: TorchStep | null = null, torchBf16Note: string;
  if (!python) torchBf16Note = 'no usable PyTorch';
  else if (!hasBf16 && !opts.bf16) torchBf16Note = 'not timed: this CPU has no bf16 arithmetic (AVX512-BF16/AMX), so torch emulates it (about 20x its float32 step); --bf16 times it anyway';
  else {
    log(`BERT step, torch bf16 autocast, ${defaultThreads} thread(s) ...`);
    torchBf16 = timeTorchSteps(python, defaultThreads, 1, opts.quick ? 2 : 3, true);
    torchBf16Note = torchBf16 ? `timed (CPU autocast to bfloat16${hasBf16 ? '' : ', emulated on this CPU'})` : 'torch_bert.py --bf16 failed';
  }
  console.log('\nBERT training step (ms, median)');
  console.log('  ' + 'threads'.padEnd(9) + 'untie'.padStart(9) + 'torch'.padStart(9) + 'untie/torch'.padStart(13) + '   untie GFLOP/s' + '   CPU ms untie / torch');
  for (const r of byThreads) {
    console.log('  ' + String(r.threads).padEnd(9) + r.untie.toFixed(0).padStart(9) + (r.torch?.toFixed(0) ?? '-').padStart(9) + (r.ratio?.toFixed(2) ?? '-').padStart(13) +
      (flops / (r.untie / 1000) / 1e9).toFixed(1).padStart(18) + `   ${r.untie_cpu.toFixed(0)} / ${r.torch_cpu?.toFixed(0) ?? '-'}`.padStart(24));
  }

  const native1 = byThreads.find((r) => r.threads === 1)!;
  if (wasmStep) {
    console.log(`  wasm, 1 thread: ${wasmStep.median.toFixed(0)} ms (CPU ${wasmStep.cpuMedian.toFixed(0)} ms), ` +
      `${(wasmStep.median / native1.untie).toFixed(2)}x native's 1-thread step (CPU: ${(wasmStep.cpuMedian / native1.untie_cpu).toFixed(2)}x)`);
  } else {
    console.log('  wasm: - (the WebAssembly kernels did not load)');
  }
  console.log(`  bf16 at ${defaultThreads} thread(s): untie - (${UNTIE_BF16_NOTE}); torch ${torchBf16 ? `${torchBf16.step_ms_median.toFixed(0)} ms` : `- (${torchBf16Note})`}`);

  // RSS
  log(`RSS: ${opts.rssSteps} steps in a child process at ${defaultThreads} thread(s) ...`);
  const rss = measureRss(opts.rssSteps, defaultThreads);
  if (rss) {
    const at = Object.entries(rss.at).map(([s, mb]) => `step ${s}: ${mb.toFixed(0)}`).join(', ');
    console.log(`\nuntie RSS over ${rss.steps} steps (MB): ${at}; peak ${rss.peakMb.toFixed(0)}; median step there ${rss.stepMsMedian.toFixed(0)} ms`);
  }

  let profile: ProfileReport | null = null;
  if (opts.profile) {
    log('profile ...');
    profile = profileStep(defaultThreads, opts.quick ? 1 : 3);
    printProfile(profile, flops);
    K.setThreads(defaultThreads);
  }

  const atDefault = byThreads.find((r) => r.threads === defaultThreads)!;
  const result = {
    gemm,
    bert_step_ms: {
      untie: atDefault.untie, torch: atDefault.torch, untie_bf16: null, torch_bf16: torchBf16?.step_ms_median ?? null,
      untie_1t: native1.untie, wasm_1t: wasmStep?.median ?? null,
    },
    bert_step_cpu_ms: { untie_1t: native1.untie_cpu, wasm_1t: wasmStep?.cpuMedian ?? null },
    bf16: { untie: UNTIE_BF16_NOTE, torch: torchBf16Note, cpu_has_bf16: hasBf16 },
    torch_refused: refused,
    rss_mb: { step10: rss?.at['10'] ?? null, step200: rss?.at['200'] ?? null, peak: rss?.peakMb ?? null, steps: rss?.steps ?? null, at: rss?.at ?? null },
    ratios: {
      bert_step_untie_over_torch: atDefault.ratio,
      bert_step_wasm_over_untie_1t: wasmStep ? wasmStep.median / native1.untie : null,
      bert_step_wasm_over_untie_1t_cpu: wasmStep ? wasmStep.cpuMedian / native1.untie_cpu : null,
      gemm_wasm_over_untie_cpu: gemm.map((g) => (g.wasm_cpu_gflops !== null && g.untie_cpu_gflops ? g.wasm_cpu_gflops / g.untie_cpu_gflops : null)),
      gemm_untie_over_torch: gemm.map((g) => (g.torch_gflops ? g.untie_gflops / g.torch_gflops : null)),
      gemm_untie_over_torch_cpu: gemm.map((g) => (g.untie_cpu_gflops !== null && g.torch_cpu_gflops ? g.untie_cpu_gflops / g.torch_cpu_gflops : null)),
    },
    bert_step_by_threads: byThreads,
    threads: defaultThreads,
    backend: K.name,
    config: { ...c, batch: BATCH, seq: SEQ, maskProb: MASK_PROB, maskedPositions: probe.masked, params: probe.paramCount, matmulGflopPerStep: flops / 1e9 },
    method: 'forward + backward + AdamW per step; MLM head only on masked positions (gather) on both sides; median after warm-up',
    torch_python: torchFound,
    profile,
  };
  if (opts.json) {
    console.log = print;
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    console.log(`\nuntie/torch at ${defaultThreads} thread(s): BERT step ${atDefault.ratio?.toFixed(2) ?? '- (no torch)'}`);
  }
}

await main(process.argv.slice(2));
