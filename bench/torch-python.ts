/**
 * Finds a python interpreter that can `import torch`, for the PyTorch parity
 * test and the engine benchmark. Debian's python3-torch lives under
 * /usr/bin/python3, which is often not the `python3` first on PATH, so every
 * candidate is probed for an installed torch package. UNTIE_TORCH_PYTHON overrides the search. Returns null
 * when none imports torch: callers skip their PyTorch side, never fail.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null | undefined;

export function findTorchPython(): string | null {
  if (cached !== undefined) return cached;
  const fromEnv = process.env.UNTIE_TORCH_PYTHON;
  const candidates = fromEnv ? [fromEnv] : ['python3', '/usr/bin/python3', 'python'];
  cached = null;
  for (const py of candidates) {
    // find_spec, not `import torch`: the import takes seconds, this a few ms.
    const probe = spawnSync(py, ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'], { stdio: 'ignore', timeout: 60_000 });
    if (probe.status === 0) {
      cached = py;
      break;
    }
  }
  return cached;
}

/** What bench/torch_blas.py reports about the BLAS under torch's CPU GEMM. */
export interface TorchBlas {
  torch: string;
  /** BLAS-like libraries mapped into the process after a matmul; null where /proc/self/maps does not exist. */
  blas_libraries: string[] | null;
  /** One thread's GFLOP/s on a 512^3 GEMM. */
  gemm512_gflops: number;
}

const OPTIMISED_BLAS = /openblas|mkl|blis|flexiblas|accelerate|armpl|libsci/i;

/** Below this, a one-thread 512^3 GEMM is the reference BLAS's (netlib: 1-3 GFLOP/s; an optimised BLAS: 15 or more, even on a loaded machine). */
const REFERENCE_BLAS_GFLOPS = 5;

/**
 * Why torch's GEMM is not a fair yardstick, or null when it is: it runs on
 * the reference (netlib) BLAS, which Debian's python3-torch gets through
 * libblas.so.3 unless an optimised BLAS is installed. A reference libblas
 * mapped into the process with no optimised BLAS beside it decides; when both
 * are mapped (an optimised LAPACK over the reference BLAS) or the maps cannot
 * be read, the speed of a 512^3 GEMM does.
 */
export function torchBlasProblem(r: TorchBlas): string | null {
  const speed = `its 512^3 GEMM runs at ${r.gemm512_gflops.toFixed(1)} GFLOP/s on one thread`;
  const fix =
    'Install an optimised BLAS for it and run again: on Debian/Ubuntu `sudo apt-get install libopenblas0-pthread` ' +
    '(check with `update-alternatives --display libblas.so.3-x86_64-linux-gnu`).';
  const slow = r.gemm512_gflops < REFERENCE_BLAS_GFLOPS;
  const reference = r.blas_libraries?.find((p) => /(^|\/)libblas\.so/.test(p) && !OPTIMISED_BLAS.test(p)) ?? null;
  const optimised = r.blas_libraries?.some((p) => OPTIMISED_BLAS.test(p)) ?? false;
  if (reference && (!optimised || slow)) {
    return `PyTorch runs on the reference (netlib) BLAS (${reference}): ${speed}, about 50x slower than it should be, so a comparison with it would be a false win. ${fix}`;
  }
  if (!r.blas_libraries && slow) return `PyTorch's GEMM looks like the reference (netlib) BLAS: ${speed}. ${fix}`;
  return null;
}

/** Runs bench/torch_blas.py with `python`; null (with the reason in `error`) when it fails. */
export function probeTorchBlas(python: string): { blas: TorchBlas | null; error: string | null } {
  const run = spawnSync(python, [join(dirname(fileURLToPath(import.meta.url)), 'torch_blas.py')], {
    encoding: 'utf8', env: torchEnv(1), timeout: 300_000,
  });
  if (run.status !== 0) return { blas: null, error: `torch_blas.py failed: ${run.stderr || run.error?.message}` };
  return { blas: JSON.parse(run.stdout.trim().split('\n').pop()!) as TorchBlas, error: null };
}

/**
 * The python to time PyTorch with, or null: none imports torch, or torch runs
 * on the reference BLAS (then `refused` says so and how to fix it, and no
 * PyTorch figure may be reported). Probed once per process.
 */
let usable: { python: string | null; refused: string | null } | undefined;
export function usableTorchPython(): { python: string | null; refused: string | null } {
  if (usable) return usable;
  const python = findTorchPython();
  if (!python) return (usable = { python: null, refused: null });
  const { blas, error } = probeTorchBlas(python);
  if (!blas) return (usable = { python: null, refused: `could not check which BLAS PyTorch uses (${error}), so no PyTorch figure is reported` });
  const problem = torchBlasProblem(blas);
  return (usable = problem ? { python: null, refused: problem } : { python, refused: null });
}

/**
 * The environment for a PyTorch subprocess limited to `threads` threads, at
 * PyTorch's best (see docs/design.md, "Benchmarking against PyTorch fairly"):
 * OpenBLAS and OpenMP pools both capped, passive OpenMP waiting, and none of
 * this machine's OpenBLAS tuning overrides.
 */
export function torchEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    MKL_NUM_THREADS: String(threads),
    OMP_WAIT_POLICY: 'PASSIVE',
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}
