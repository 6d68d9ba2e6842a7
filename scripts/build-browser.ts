// Builds the browser example (examples/browser/): bundles its page script,
// with the engine, BERT and AdamW from src/, into examples/browser/dist/
// bundle.js (esbuild), and copies the shipped WebAssembly kernels next to it.
//
//   npm run build:browser
//
// The page uses only browser APIs: the two Node-only modules the backend
// imports (the native addon's loader and the .wasm file loader) are replaced
// by stubs that load nothing; the page instantiates the kernels itself
// (instantiateWasmKernels) and passes them to useKernels.
import { build, type Plugin } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const EXAMPLE_DIR = path.join(root, 'examples', 'browser');

const STUBS: Record<string, string> = {
  'native.js': "export const loadNative = () => null;\nexport const nativeLoadError = () => 'there is no native addon in a page';\n",
  'wasm-file.js': "export const loadWasm = () => null;\nexport const wasmLoadError = () => 'in a page, load the kernels with instantiateWasmKernels and pass them to useKernels';\n",
};

const nodeOnly: Plugin = {
  name: 'untie-node-only-stubs',
  setup(b) {
    b.onResolve({ filter: /^\.\/(native|wasm-file)\.js$/ }, (args) => {
      if (!args.importer.endsWith(path.join('src', 'backend', 'index.ts'))) return undefined;
      return { path: path.basename(args.path), namespace: 'untie-stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'untie-stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

/** Writes examples/browser/dist/{bundle.js,untie.wasm}; returns the folder to serve. */
export async function buildBrowserExample(): Promise<string> {
  const dist = path.join(EXAMPLE_DIR, 'dist');
  fs.mkdirSync(dist, { recursive: true });
  await build({
    entryPoints: [path.join(EXAMPLE_DIR, 'main.ts')],
    bundle: true, format: 'iife', platform: 'browser', target: 'es2022',
    outfile: path.join(dist, 'bundle.js'), plugins: [nodeOnly], logLevel: 'warning', legalComments: 'none',
  });
  fs.copyFileSync(path.join(root, 'native', 'wasm', 'untie.wasm'), path.join(dist, 'untie.wasm'));
  return EXAMPLE_DIR;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = await buildBrowserExample();
  console.log(`built ${path.relative(root, path.join(dir, 'dist'))}/bundle.js and untie.wasm; serve ${path.relative(root, dir)}/ over HTTP and open index.html`);
}
