// PyTorch parity, after llm.c: untie's tiny BertForMaskedLM (embeddings, two
// Post-LN layers, MLM head tied to the word embeddings) against the same
// computation in plain torch (test/torch_parity.py, bench/torch_bert.py),
// from the same weights and inputs: the loss and every parameter gradient.
// Skipped when no python on this machine imports torch, unless
// UNTIE_REQUIRE_TORCH=1 (CI sets it), which makes that a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernels, nativeKernels, reference, useKernels, wasmKernels, type Kernels } from '../src/backend/index.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../src/models/bert.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, tapeLength } from '../src/tensor/tensor.js';
import { findTorchPython } from '../bench/torch-python.js';

/**
 * Tolerances about 10x above what is measured (python3-torch 1.13, both
 * kernel sets, AMD EPYC): loss rel <= 1.2e-7, worst gradient rel 7.3e-7 and
 * median ~3e-7 (float32 rounding in different summation orders). A real
 * mistake in a kernel or a backward shows up orders of magnitude above them.
 */
const LOSS_RTOL = 1e-6;
/** Per tensor: max |untie - torch| / max |torch|. */
const GRAD_RTOL = 1e-5;
/**
 * The key bias adds q·b_k to every score of a row, which the softmax cancels:
 * its gradient is zero in exact arithmetic, and both sides return rounding
 * noise. For it, both must be tiny next to the largest gradient entry.
 */
const ZERO_GRAD = /attention\.self\.key\.bias$/;
const ZERO_GRAD_ATOL = 1e-8; // measured: 1.4e-10

const here = fileURLToPath(new URL('.', import.meta.url));
const python = findTorchPython();
const requireTorch = process.env.UNTIE_REQUIRE_TORCH === '1';

function tinyConfig(norm: 'post' | 'pre'): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: 64, hidden: 32, layers: 2, heads: 4, intermediate: 64, maxPositions: 16,
    dropout: 0, attentionDropout: 0, norm,
  };
}

/** Batch 3 x seq 12: two sequences padded at the end, both token types, ~25% of real tokens masked. */
function tinyBatch(c: BertConfig): MlmBatch {
  const B = 3, T = 12, rng = new Rng(7);
  const lengths = [12, 9, 5];
  const inputIds = new Int32Array(B * T), tokenTypeIds = new Int32Array(B * T);
  const attentionMask = new Float32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (t >= lengths[b]) continue; // padding: id 0, mask 0, never a label
      inputIds[i] = 1 + (rng.nextU32() % (c.vocabSize - 1));
      tokenTypeIds[i] = t >= lengths[b] / 2 ? 1 : 0;
      attentionMask[i] = 1;
      if (t % 4 === 1 || rng.nextU32() % 5 === 0) labels[i] = rng.nextU32() % c.vocabSize;
    }
  }
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize: B, seqLen: T };
}

function writeF32(path: string, a: Float32Array | Int32Array): void {
  writeFileSync(path, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

function readF32(path: string): Float32Array {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function relError(a: Float32Array, b: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff) || a.length !== b.length) return Infinity;
  return scale === 0 ? diff : diff / scale;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

interface Parity {
  loss: { untie: number; torch: number; rel: number };
  /** Tensors whose gradient is not zero in exact arithmetic. */
  grads: { name: string; rel: number }[];
  /** The others: max |gradient| on either side over the largest gradient entry. */
  zeroGrads: { name: string; rel: number }[];
}

interface UntieSide {
  dir: string;
  loss: number;
  named: [string, Float32Array][];
}

/** Runs untie's model on `K`, keeps its loss and gradients, and writes weights and inputs to a fresh temp dir. */
function untieSide(K: Kernels, norm: 'post' | 'pre'): UntieSide {
  const before = kernels();
  useKernels(K);
  try {
    const c = tinyConfig(norm);
    const model = new BertForMaskedLM(c, 1234);
    const named = model.namedParameters();
    // Move every parameter off its init (LayerNorm 1/0, zero biases) so that
    // every term of every gradient is exercised.
    const noise = new Rng(99);
    for (const [, p] of named) for (let i = 0; i < p.size; i++) p.data[i] += 0.05 * noise.normal();
    const batch = tinyBatch(c);
    const out = model.mlm(batch);
    backward(out.loss);
    assert.equal(tapeLength(), 0);

    const dir = mkdtempSync(join(tmpdir(), 'untie-parity-'));
    const params = named.map(([name, p], i) => {
      const file = `param.${i}.f32`;
      writeF32(join(dir, file), p.data);
      return { name, file, shape: p.shape, dtype: 'float32' };
    });
    const inputs: Record<string, { file: string; shape: number[]; dtype: string }> = {};
    const shape = [batch.batchSize, batch.seqLen];
    for (const [key, arr] of [['input_ids', batch.inputIds], ['token_type_ids', batch.tokenTypeIds], ['attention_mask', batch.attentionMask], ['labels', batch.labels]] as const) {
      writeF32(join(dir, `${key}.bin`), arr);
      inputs[key] = { file: `${key}.bin`, shape, dtype: arr instanceof Int32Array ? 'int32' : 'float32' };
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ config: c, params, inputs }));
    return { dir, loss: out.loss.item(), named: named.map(([name, p]) => [name, p.grad ?? new Float32Array(0)]) };
  } finally {
    useKernels(before);
  }
}

function compare(side: UntieSide): Parity {
  const { dir, named } = side;
  const res = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as { loss: number; grads: { name: string; file: string }[] };
  const torchGrads = new Map(res.grads.map((g) => [g.name, readF32(join(dir, g.file))]));
  assert.equal(torchGrads.size, named.length, 'torch and untie disagree on the parameter list');
  let largest = 0;
  for (const g of torchGrads.values()) largest = Math.max(largest, maxAbs(g));
  const grads: Parity['grads'] = [], zeroGrads: Parity['zeroGrads'] = [];
  for (const [name, grad] of named) {
    const tg = torchGrads.get(name);
    assert.ok(tg, `torch returned no gradient for ${name}`);
    assert.equal(grad.length, tg.length, `untie computed no gradient for ${name}`);
    if (ZERO_GRAD.test(name)) zeroGrads.push({ name, rel: Math.max(maxAbs(grad), maxAbs(tg)) / largest });
    else grads.push({ name, rel: relError(grad, tg) });
  }
  return { loss: { untie: side.loss, torch: res.loss, rel: Math.abs(side.loss - res.loss) / Math.abs(res.loss) }, grads, zeroGrads };
}

const backends: Kernels[] = [reference];
const nat = nativeKernels(), wasm = wasmKernels();
if (nat) backends.push(nat);
if (wasm) backends.push(wasm);
const cases = backends.flatMap((K) => (['post', 'pre'] as const).map((norm) => ({ K, norm })));

/**
 * Every case's untie side, then one python run over all of them (importing
 * torch takes seconds), memoised for the tests below.
 */
let results: Parity[] | null = null;
function allResults(): Parity[] {
  if (results) return results;
  const sides = cases.map(({ K, norm }) => untieSide(K, norm));
  try {
    const run = spawnSync(python!, [join(here, 'torch_parity.py'), ...sides.map((s) => s.dir)], {
      encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    });
    assert.equal(run.status, 0, `test/torch_parity.py failed:\n${run.stderr}`);
    results = sides.map(compare);
    return results;
  } finally {
    for (const s of sides) rmSync(s.dir, { recursive: true, force: true });
  }
}

for (const [i, { K, norm }] of cases.entries()) {
  const name = `tiny BertForMaskedLM (${norm}-LN) matches PyTorch: loss and every gradient (${K.name} kernels)`;
  if (!python) {
    if (requireTorch) {
      test(name, () => assert.fail('UNTIE_REQUIRE_TORCH=1, but no python on this machine imports torch (install python3-torch, or set UNTIE_TORCH_PYTHON)'));
    } else {
      test.skip(`${name}: no python that imports torch (set UNTIE_TORCH_PYTHON to one)`, () => {});
    }
    continue;
  }
  test(name, (t) => {
    const r = allResults()[i];
    const worst = r.grads.reduce((w, g) => (g.rel > w.rel ? g : w));
    const median = [...r.grads].sort((a, b) => a.rel - b.rel)[r.grads.length >> 1].rel;
    t.diagnostic(`loss untie ${r.loss.untie.toFixed(7)} torch ${r.loss.torch.toFixed(7)} rel ${r.loss.rel.toExponential(2)}`);
    t.diagnostic(`gradients: ${r.grads.length} tensors, worst rel ${worst.rel.toExponential(2)} (${worst.name}); median ${median.toExponential(2)}`);
    const zeroWorst = Math.max(...r.zeroGrads.map((g) => g.rel));
    t.diagnostic(`key biases (zero gradient in exact arithmetic): max |grad| / largest gradient entry ${zeroWorst.toExponential(2)}`);
    assert.ok(r.loss.rel <= LOSS_RTOL, `loss: untie ${r.loss.untie} vs torch ${r.loss.torch} (rel ${r.loss.rel}, tolerance ${LOSS_RTOL})`);
    for (const g of r.grads) assert.ok(g.rel <= GRAD_RTOL, `${g.name}: relative gradient error ${g.rel} exceeds ${GRAD_RTOL}`);
    for (const g of r.zeroGrads) assert.ok(g.rel <= ZERO_GRAD_ATOL, `${g.name}: gradient should be ~0, is ${g.rel} of the largest gradient entry`);
  });
}
