/**
 * Loads the shipped WebAssembly kernels (native/wasm/untie.wasm, committed,
 * so `npm install` needs no compiler for them) in Node. Synchronous, because
 * the backend is picked on first use (kernels()); the module is ~90 KB and
 * compiles in milliseconds. Pages use instantiateWasmKernels (wasm.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './native.js';
import { wasmKernelsSync, type WasmKernels } from './wasm.js';

let loaded: WasmKernels | null | undefined;
let loadError: string | null = null;

/** The path of the shipped module, or null outside a package. */
export function wasmFile(): string | null {
  const root = packageRoot();
  return root ? join(root, 'native', 'wasm', 'untie.wasm') : null;
}

/** The wasm kernels, or null when the module is missing or does not instantiate (see wasmLoadError()). */
export function loadWasm(): WasmKernels | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    const file = wasmFile();
    if (!file || !existsSync(file)) {
      loadError = `not found (${file ?? 'native/wasm/untie.wasm'} is missing; \`npm run build:wasm\` rebuilds it)`;
    } else {
      // UNTIE_WASM_MEMORY_MB: the module memory's fixed size (default: 4 GiB reserved, committed as used).
      const mb = Number(process.env.UNTIE_WASM_MEMORY_MB);
      loaded = wasmKernelsSync(readFileSync(file), Number.isFinite(mb) && mb > 0 ? { memoryBytes: mb * 2 ** 20 } : {});
    }
  } catch (err) {
    loadError = err instanceof Error ? err.message : String(err);
  }
  return loaded;
}

/** Why the module did not load, or null if it did (or was not tried yet). */
export function wasmLoadError(): string | null {
  return loadError;
}
