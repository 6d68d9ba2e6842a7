/** Shared test helpers: random tensors, finite-difference gradient checks, comparisons. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Module } from '../src/nn/module.js';
import { Rng } from '../src/tensor/rng.js';
import { defaultRunConfig, mergeConfig, type RunConfig } from '../src/train/config.js';
import { Tensor, backward, noGrad } from '../src/tensor/tensor.js';
import * as ops from '../src/tensor/ops.js';

export function randTensor(shape: number[], rng: Rng, std = 1, requiresGrad = true): Tensor {
  return Tensor.randn(shape, rng, std, 0, requiresGrad);
}

export function randArray(n: number, rng: Rng, std = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * rng.normal();
  return a;
}

/** max |a - b| / (atol + rtol * |b|) over elements; <= 1 means "close". */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): { worst: number; at: number } {
  assert.equal(a.length, b.length, 'length mismatch');
  let worst = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) {
      worst = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { worst, at };
}

export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  const { worst, at } = closeness(a, b, rtol, atol);
  assert.ok(worst <= 1, `${what}: element ${at} differs: ${a[at]} vs ${b[at]} (rtol ${rtol}, atol ${atol})`);
}

/**
 * Checks the gradients of `f(inputs)` (any shape) against central finite
 * differences of L = sum(f(inputs) * R) for a fixed random R, with the loss
 * accumulated in float64 so that only the op's own float32 rounding is noise.
 */
export function gradCheck(
  f: (inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { h?: number; rtol?: number; atol?: number; seed?: number; what: string },
): void {
  const h = opts.h ?? 1e-2, rtol = opts.rtol ?? 2e-2, atol = opts.atol ?? 2e-3;
  const rng = new Rng(opts.seed ?? 99);
  const probe = noGrad(() => f(inputs));
  const R = randArray(probe.size, rng);
  const lossOf = (out: Tensor) => {
    let s = 0;
    for (let i = 0; i < out.size; i++) s += out.data[i] * R[i];
    return s;
  };
  for (const t of inputs) t.grad = null;
  const out = f(inputs);
  // L = sum(out * R): seed the tape with R by a weighted-sum op built from mul + sum.
  const weighted = weightedSum(out, R);
  backward(weighted);
  for (const [idx, t] of inputs.entries()) {
    if (!t.requiresGrad) continue;
    assert.ok(t.grad, `${opts.what}: input ${idx} received no gradient`);
    const numeric = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const orig = t.data[i];
      t.data[i] = orig + h;
      const plus = lossOf(noGrad(() => f(inputs)));
      t.data[i] = orig - h;
      const minus = lossOf(noGrad(() => f(inputs)));
      t.data[i] = orig;
      numeric[i] = (plus - minus) / (2 * h);
    }
    assertClose(t.grad, numeric, rtol, atol, `${opts.what}: d/d input ${idx}`);
  }
}


function weightedSum(out: Tensor, R: Float32Array): Tensor {
  return ops.sum(ops.mul(out, new Tensor(R, out.shape)));
}

/**
 * bin/untie.js as shipped, in `dir`/shim, running this source tree's CLI
 * (dist/ may be stale while developing); run it with `node --import tsx`.
 */
export function binShim(dir: string): string {
  const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const shim = path.join(dir, 'shim');
  const bin = path.join(shim, 'bin', 'untie.js');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(path.join(shim, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(shim, 'dist', 'cli'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'bin', 'untie.js'), bin);
  fs.writeFileSync(path.join(shim, 'dist', 'cli', 'main.js'), `export { main } from ${JSON.stringify(path.join(repo, 'src', 'cli', 'main.ts'))};\n`);
  fs.writeFileSync(path.join(shim, 'package.json'), '{"type": "module"}\n');
  return bin;
}

/** Every file under dir (relative path -> bytes), to show a folder is byte-identical before and after. */
export function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out.set(path.relative(dir, full), fs.readFileSync(full));
    }
  };
  walk(dir);
  return out;
}

export function assertSameFolder(before: Map<string, Buffer>, dir: string, what: string): void {
  const now = snapshot(dir);
  assert.deepEqual([...now.keys()], [...before.keys()], `${what}: the files of the run folder changed`);
  for (const [f, bytes] of before) assert.ok(bytes.equals(now.get(f)!), `${what}: ${f} changed`);
}

/** An 8-step run of a 2-layer, hidden-16 BERT on `corpus` (checkpoints at 4 and 8, untied at step 3): the tests' smallest real run. */
export function tinyRunConfig(outDir: string, corpus: string, name: string, patch: object = {}): RunConfig {
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir,
    model: { layers: 2, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 600, evalBatches: 1 },
    train: { steps: 8, batchSize: 2, lr: 3e-3, threads: 1, logEvery: 1, evalEvery: 4, saveEvery: 4, keepLast: 5 },
    sharing: { share: '1x2', untie: 'step:3' },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

/** Moves every weight of `model` off its init (LayerNorm 1/0, zero biases) by N(0, 0.1), so that a weight put in the wrong place shows. */
export function perturb(model: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const [, p] of model.namedParameters()) for (let i = 0; i < p.size; i++) p.data[i] += 0.1 * rng.normal();
}

/** A fill-mask prediction, as untie fill-mask --json and transformers.js's pipeline give it. */
export interface Prediction { token: number; token_str: string; score: number }

/** Same tokens in the same order, except that tokens whose probabilities differ by under 1e-6 may trade places (float32 rounding decides their order). */
export function assertSameTopK(got: Prediction[], expected: Prediction[], what: string): void {
  assert.equal(got.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(got[i].score - expected[i].score) < 1e-5, `${what}: rank ${i} has p = ${got[i].score} against untie's ${expected[i].score}`);
    if (got[i].token !== expected[i].token) {
      const swapped = expected.find((e) => e.token === got[i].token);
      assert.ok(swapped && Math.abs(swapped.score - expected[i].score) < 1e-6, `${what}: rank ${i} is ${got[i].token_str}, untie's is ${expected[i].token_str}`);
    } else {
      assert.equal(got[i].token_str, expected[i].token_str, what);
    }
  }
}
