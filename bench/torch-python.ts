/**
 * Finds a python interpreter that can `import torch`, for the PyTorch parity
 * test and the engine benchmark. Debian's python3-torch lives under
 * /usr/bin/python3, which is often not the `python3` first on PATH, so every
 * candidate is probed for an installed torch package. UNTIE_TORCH_PYTHON overrides the search. Returns null
 * when none imports torch: callers skip their PyTorch side, never fail.
 */
import { spawnSync } from 'node:child_process';

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
