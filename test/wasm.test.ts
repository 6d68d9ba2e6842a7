// The WebAssembly backend beyond its kernels (those are in
// native-kernels.test.ts): which backend runs when (native, then wasm, then
// reference, with one notice), tensors from the pool living in the module's
// memory, and the tiny preset training through the whole CLI on
// UNTIE_BACKEND=wasm.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chooseKernels, kernels, reference, useKernels, wasmKernels, type Kernels } from '../src/backend/index.js';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { UntieError } from '../src/errors.js';
import { alloc, drainPool, isPooled, release } from '../src/tensor/pool.js';
import { Tensor, tidy } from '../src/tensor/tensor.js';
import * as ops from '../src/tensor/ops.js';
import type { WasmKernels } from '../src/backend/wasm.js';

const execFileAsync = promisify(execFile);
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const wasm = wasmKernels() as WasmKernels | null;
let root: string;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-wasm-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('backend order: native, else wasm (with a notice naming it and the slowdown), else reference; UNTIE_BACKEND forces one', () => {
  const fake = (name: string) => ({ name }) as Kernels;
  const nat = fake('native'), w = fake('wasm');
  const from = (n: Kernels | null, wa: Kernels | null) => ({
    native: () => n, nativeError: () => (n ? null : 'not built (build/Release/untie_native.node is missing)'),
    wasm: () => wa, wasmError: () => (wa ? null : 'not found'),
  });
  const notices: string[] = [];
  const notice = (m: string) => void notices.push(m);

  assert.equal(chooseKernels(undefined, from(nat, w), notice), nat);
  assert.equal(chooseKernels('', from(nat, w), notice), nat);
  assert.equal(notices.length, 0, 'no notice when native runs');

  assert.equal(chooseKernels(undefined, from(null, w), notice), w);
  assert.equal(notices.length, 1);
  assert.match(notices[0], /native kernels did not load \(not built/);
  assert.match(notices[0], /runs on its WebAssembly kernels \(one thread, about \d+x slower than native/);
  assert.ok(!notices[0].includes('\n'), 'the notice is one line');

  assert.equal(chooseKernels(undefined, from(null, null), notice), reference);
  assert.equal(notices.length, 2);
  assert.match(notices[1], /runs on the reference kernels \(correct but about \d+x slower than native\)/);

  // Forced: no fallback, no notice; a forced backend that does not load is an UntieError.
  assert.equal(chooseKernels('wasm', from(nat, w), notice), w);
  assert.equal(chooseKernels('reference', from(nat, w), notice), reference);
  assert.equal(chooseKernels('native', from(nat, w), notice), nat);
  assert.throws(() => chooseKernels('wasm', from(nat, null), notice), (e: unknown) => e instanceof UntieError && /UNTIE_BACKEND=wasm but the WebAssembly kernels did not load: not found/.test(e.message));
  assert.throws(() => chooseKernels('native', from(null, w), notice), (e: unknown) => e instanceof UntieError && /UNTIE_BACKEND=native/.test(e.message));
  assert.throws(() => chooseKernels('gpu', from(nat, w), notice), (e: unknown) => e instanceof UntieError && /UNTIE_BACKEND=gpu is not a backend; use native, wasm or reference/.test(e.message));
  assert.equal(notices.length, 2);
});

test('on the wasm backend, pooled tensors live in the module memory and go back to it', { skip: wasm ? false : 'the wasm kernels did not load' }, () => {
  const K = wasm!;
  const beforeK = kernels();
  useKernels(K);
  try {
    const x = Tensor.from(Array.from({ length: 4096 }, (_, i) => (i % 13) - 6), [64, 64]);
    // Once first, so that the GEMM's own workspace (packing buffers, kept between calls) is counted in `base`.
    tidy(() => ops.matmul(ops.scale(x, 0.5), x));
    drainPool();
    const base = K.memory.bytes().inUse;
    const a = alloc(5000);
    assert.ok(isPooled(a));
    // The module memory is the buffer: kernels run on it in place.
    const probe = K.memory.alloc(16)!;
    assert.equal(a.buffer, probe.buffer, 'a pooled array is a view of the module memory');
    K.memory.free(probe);
    assert.ok(K.memory.bytes().inUse > base);
    release(a);
    // An op's output inside tidy: also in module memory.
    const y = tidy(() => ops.matmul(ops.scale(x, 0.5), x));
    assert.equal(y.data.buffer, a.buffer);
    const want = new Float32Array(64 * 64);
    reference.matmul(x.data.map((v) => v * 0.5), x.data, want, 1, 64, 64, 64, false, false, 0, 0, 0, 1, 0);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(y.data[i] - want[i]) <= 1e-4 * 300, `element ${i}`);
    y.dispose();
    drainPool();
    assert.equal(K.memory.bytes().inUse, base, 'every block went back to the module memory');
  } finally {
    useKernels(beforeK);
  }
});

test('the tiny preset trains through the CLI on UNTIE_BACKEND=wasm (2 steps, one thread)', { skip: wasm ? false : 'the wasm kernels did not load' }, async () => {
  // A small corpus keeps tokenizer training short; the model is the tiny preset's (6 layers, hidden 128, batch 32 x 128).
  const corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  loadBrown().slice(0, 40).forEach((d, i) => fs.writeFileSync(path.join(corpus, `doc${i}.txt`), d.sentences.map(sentenceText).join('\n') + '\n'));
  const script = "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(1));";
  const { stdout, stderr } = await execFileAsync(process.execPath, [
    '--import', 'tsx', '--input-type=module', '-e', script, '--',
    'train', '--preset', 'tiny', '--steps', '2', '--threads', '1', '--corpus', corpus, '--vocab-size', '2000',
    '--eval-batches', '1', '--out', root, '--name', 'tiny-wasm', '--json',
  ], { cwd: repo, env: { ...process.env, UNTIE_BACKEND: 'wasm' }, maxBuffer: 1 << 24 });
  const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { kernels: string; threads: number; steps: number; final_val_loss: number; parameters: number };
  assert.equal(summary.kernels, 'wasm');
  assert.equal(summary.threads, 1);
  assert.equal(summary.steps, 2);
  assert.ok(Number.isFinite(summary.final_val_loss) && summary.final_val_loss > 0, `validation loss ${summary.final_val_loss}`);
  assert.doesNotMatch(stderr, /did not load/, 'a forced backend prints no fallback notice');
  const model = path.join(root, 'tiny-wasm', 'checkpoint-2', 'model.safetensors');
  assert.ok(fs.existsSync(model), 'the run saved its final checkpoint');
});
