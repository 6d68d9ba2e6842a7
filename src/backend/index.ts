/**
 * Picks the kernels the engine runs on: the native addon when it loads,
 * otherwise the reference kernels, with one clear warning. UNTIE_BACKEND=
 * reference|native forces a choice (native then fails loudly if absent).
 */
import type { Kernels } from './kernels.js';
import { reference } from './reference.js';
import { loadNative } from './native.js';
import { UntieError } from '../errors.js';

let active: Kernels | null = null;
let native: Kernels | null | undefined;

function nativeOrNull(): Kernels | null {
  if (native === undefined) native = loadNative();
  return native;
}

/** The native kernels if the addon loads, else null (no warning). */
export function nativeKernels(): Kernels | null {
  return nativeOrNull();
}

/** The kernels every op uses. */
export function kernels(): Kernels {
  if (active) return active;
  const wanted = process.env.UNTIE_BACKEND;
  if (wanted === 'reference') return (active = reference);
  const nat = nativeOrNull();
  if (nat) return (active = nat);
  if (wanted === 'native') {
    throw new UntieError('UNTIE_BACKEND=native but the native addon did not load. Run `npm run build:native` and read its output.');
  }
  process.emitWarning(
    'untie: the native kernels are not built, so untie runs on the reference kernels (correct but 100x slower). ' +
      'Run `npm run build:native` to build them (needs python3, make and a C++ compiler).',
  );
  return (active = reference);
}

/** Switches the kernels every op uses from now on (tests compare backends this way). */
export function useKernels(k: Kernels): void {
  active = k;
}

/** Sets the thread count of the active kernels (native: its pool; reference: ignored). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new UntieError(`threads must be a positive integer, got ${n}`);
  kernels().setThreads(n);
}

export { reference };
export type { Kernels };
