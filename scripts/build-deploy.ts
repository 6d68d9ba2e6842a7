// Builds the deploy example (examples/deploy/): bundles its page script, with
// transformers.js (its browser build, on onnxruntime-web), into
// examples/deploy/dist/bundle.js (esbuild), and copies onnxruntime-web's
// WebAssembly runtime next to it, so that the page fetches nothing from
// anywhere but its own server.
//
//   npm run build:deploy
//
// The model is not part of the build: `untie export RUN examples/deploy/model --onnx` puts one beside the page.
import { build } from 'esbuild';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const DEPLOY_DIR = path.join(root, 'examples', 'deploy');

/** The runtime transformers.js loads for the wasm device (its asyncify build), from the onnxruntime-web it depends on. */
export const ORT_WASM_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

/** Writes examples/deploy/dist/{bundle.js, onnxruntime's .mjs and .wasm}; returns the example's folder. */
export async function buildDeployExample(): Promise<string> {
  const dist = path.join(DEPLOY_DIR, 'dist');
  fs.mkdirSync(dist, { recursive: true });
  await build({
    entryPoints: [path.join(DEPLOY_DIR, 'main.ts')],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022',
    outfile: path.join(dist, 'bundle.js'), logLevel: 'warning', legalComments: 'none',
  });
  const fromTransformers = createRequire(createRequire(import.meta.url).resolve('@huggingface/transformers'));
  for (const file of ORT_WASM_FILES) fs.copyFileSync(fromTransformers.resolve(`onnxruntime-web/${file}`), path.join(dist, file));
  return DEPLOY_DIR;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = await buildDeployExample();
  console.log(`built ${path.relative(root, path.join(dir, 'dist'))}/bundle.js and onnxruntime-web's ${ORT_WASM_FILES.join(', ')}; ` +
    `export a model into ${path.relative(root, path.join(dir, 'model'))}/ (untie export RUN ${path.relative(root, path.join(dir, 'model'))} --onnx), serve ${path.relative(root, dir)}/ over HTTP and open index.html`);
}
