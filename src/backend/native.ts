/**
 * The native kernels: the C++ addon built from native/ by node-gyp into
 * build/Release/untie_native.node. The addon exports one function per kernel
 * with the interface's names and positional arguments, so the Kernels object
 * is the addon's functions themselves: no wrapper between a kernel call and C++.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from './kernels.js';

export type Simd = 'avx512' | 'avx2' | 'scalar';

/** What the addon exports besides the kernels. */
interface NativeAddon extends Omit<Kernels, 'name'> {
  /** The SIMD path in use, or (with a name) switch to another one the CPU has; returns success. */
  simd(): Simd;
  simd(name: Simd): boolean;
  /** Prints `message` on stderr at the first SIGINT, in the signal handler (see native/interrupt.cc). */
  watchInterrupt(message: string): boolean;
  unwatchInterrupt(): void;
}

let addon: NativeAddon | null | undefined;
let loadError: string | null = null;

/** The package root: the nearest directory above this file with a package.json (src/backend or dist/backend). */
export function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function loadAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  try {
    const root = packageRoot();
    const file = root ? join(root, 'build', 'Release', 'untie_native.node') : null;
    if (!file || !existsSync(file)) {
      loadError = `not built (${file ?? 'build/Release/untie_native.node'} is missing)`;
    } else {
      addon = createRequire(import.meta.url)(file) as NativeAddon;
    }
  } catch (err) {
    loadError = err instanceof Error ? err.message : String(err);
  }
  return addon;
}

/** The native kernels, or null when the addon is not built or does not load (see nativeLoadError()). */
export function loadNative(): Kernels | null {
  const a = loadAddon();
  if (!a) return null;
  return {
    name: 'native',
    setThreads: a.setThreads,
    getThreads: a.getThreads,
    matmul: a.matmul,
    add: a.add,
    mul: a.mul,
    scale: a.scale,
    axpy: a.axpy,
    addRowVector: a.addRowVector,
    sumRows: a.sumRows,
    geluForward: a.geluForward,
    geluBackward: a.geluBackward,
    tanhForward: a.tanhForward,
    tanhBackward: a.tanhBackward,
    biasGeluForward: a.biasGeluForward,
    biasGeluBackward: a.biasGeluBackward,
    dropoutForward: a.dropoutForward,
    dropoutBackward: a.dropoutBackward,
    softmaxForward: a.softmaxForward,
    softmaxBackward: a.softmaxBackward,
    layerNormForward: a.layerNormForward,
    layerNormBackward: a.layerNormBackward,
    addLayerNormForward: a.addLayerNormForward,
    crossEntropyForward: a.crossEntropyForward,
    crossEntropyBackward: a.crossEntropyBackward,
    embeddingForward: a.embeddingForward,
    embeddingBackward: a.embeddingBackward,
    permute4: a.permute4,
    splitHeads: a.splitHeads,
    mergeHeads: a.mergeHeads,
    adamwStep: a.adamwStep,
    sum: a.sum,
    dot: a.dot,
    sumSquares: a.sumSquares,
    allFinite: a.allFinite,
  };
}

/** Why the addon did not load, or null if it did (or was not tried yet). */
export function nativeLoadError(): string | null {
  return loadError;
}

/** Which SIMD path the addon runs and on how many threads; null when it is not loaded. */
export function nativeInfo(): { simd: Simd; threads: number } | null {
  const a = loadAddon();
  return a ? { simd: a.simd(), threads: a.getThreads() } : null;
}

/**
 * Switches the addon to another SIMD path (for tests and benchmarks: 'avx2' or
 * 'scalar' on an AVX-512 machine). Returns false if the CPU lacks it or the
 * addon is not loaded.
 */
export function setNativeSimd(simd: Simd): boolean {
  const a = loadAddon();
  return a ? a.simd(simd) : false;
}

/**
 * Makes the first Ctrl-C print `message` at once, even while JS is busy in a
 * long synchronous step, and a second one end the process (see
 * native/interrupt.cc). Install it after a JS SIGINT listener; returns a
 * function that uninstalls it, or null when the addon is not loaded or the
 * platform has no POSIX signals (then the JS listener alone answers Ctrl-C,
 * between steps).
 */
export function watchInterrupt(message: string): (() => void) | null {
  const a = loadAddon();
  if (!a || typeof a.watchInterrupt !== 'function' || !a.watchInterrupt(message)) return null;
  return () => a.unwatchInterrupt();
}
