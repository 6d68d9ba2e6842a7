/**
 * Picks the kernels the engine runs on: the native addon when it loads, else
 * the WebAssembly build of the same kernels (shipped in the package, so it
 * needs no compiler), else the reference kernels; a fallback says once which
 * backend runs and how much slower to expect. UNTIE_BACKEND=
 * native|wasm|reference forces a choice (native or wasm then fails loudly if
 * it does not load).
 */
import type { Kernels } from './kernels.js';
import { reference } from './reference.js';
import { loadNative, nativeLoadError } from './native.js';
import { loadWasm, wasmLoadError } from './wasm-file.js';
import { UntieError } from '../errors.js';

let active: Kernels | null = null;
let native: Kernels | null | undefined;

/**
 * How much slower than native one training step runs on the fallbacks, 1
 * thread each, measured on the Zen 3 development machine: `npm run
 * bench:engine` (the 4-layer BERT step, wasm_1t / untie_1t) and the issue's
 * tiny-preset step on the reference kernels (83 s against 0.37 s).
 */
const WASM_SLOWER = '3x';
const REFERENCE_SLOWER = '200x';

/** The environment variable, where there is a process (not in a page). */
function env(name: string): string | undefined {
  return typeof process === 'undefined' ? undefined : process.env[name];
}

function notice(message: string): void {
  if (typeof process !== 'undefined' && typeof process.emitWarning === 'function') process.emitWarning(message);
  else console.warn(message);
}

function nativeOrNull(): Kernels | null {
  if (native === undefined) native = loadNative();
  return native;
}

/** The native kernels if the addon loads, else null (no warning). */
export function nativeKernels(): Kernels | null {
  return nativeOrNull();
}

/** The WebAssembly kernels if the shipped module loads, else null (no warning). */
export function wasmKernels(): Kernels | null {
  return loadWasm();
}

/** What `chooseKernels` picks from: loaders that return null when a backend does not load, with why. */
export interface KernelCandidates {
  native(): Kernels | null;
  nativeError(): string | null;
  wasm(): Kernels | null;
  wasmError(): string | null;
}

/**
 * The backend for an UNTIE_BACKEND value (undefined or '': the fastest that
 * loads): native, else wasm, else reference, calling `notice` once with
 * which backend runs and how much slower when it is not native. A forced
 * backend that does not load throws.
 */
export function chooseKernels(wanted: string | undefined, from: KernelCandidates, notice: (message: string) => void): Kernels {
  if (wanted !== undefined && wanted !== '' && !['native', 'wasm', 'reference'].includes(wanted)) {
    throw new UntieError(`UNTIE_BACKEND=${wanted} is not a backend; use native, wasm or reference (or leave it unset for the fastest that loads)`);
  }
  if (wanted === 'reference') return reference;
  if (wanted === 'wasm') {
    const w = from.wasm();
    if (!w) throw new UntieError(`UNTIE_BACKEND=wasm but the WebAssembly kernels did not load: ${from.wasmError()}`);
    return w;
  }
  const nat = from.native();
  if (nat) return nat;
  if (wanted === 'native') {
    throw new UntieError('UNTIE_BACKEND=native but the native addon did not load. Run `npm run build:native` and read its output.');
  }
  const why = `the native kernels did not load (${from.nativeError() ?? 'not built'})`;
  const fix = 'Run `npm run build:native` to build them (needs python3, make and a C++ compiler).';
  const w = from.wasm();
  if (w) {
    notice(`untie: ${why}, so untie runs on its WebAssembly kernels (one thread, about ${WASM_SLOWER} slower than native on one thread). ${fix}`);
    return w;
  }
  notice(
    `untie: ${why} and the WebAssembly kernels did not either (${from.wasmError()}), so untie runs on the reference kernels ` +
      `(correct but about ${REFERENCE_SLOWER} slower than native). ${fix}`,
  );
  return reference;
}

/** The kernels every op uses: picked on first use (see chooseKernels), or set by useKernels. */
export function kernels(): Kernels {
  if (active) return active;
  active = chooseKernels(env('UNTIE_BACKEND'), { native: nativeOrNull, nativeError: nativeLoadError, wasm: loadWasm, wasmError: wasmLoadError }, notice);
  return active;
}

/** Switches the kernels every op uses from now on (tests compare backends this way). */
export function useKernels(k: Kernels): void {
  active = k;
}

/** Sets the thread count of the active kernels (native: its pool; wasm and reference: one thread, ignored). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new UntieError(`threads must be a positive integer, got ${n}`);
  kernels().setThreads(n);
}

export { reference };
export type { Kernels };
