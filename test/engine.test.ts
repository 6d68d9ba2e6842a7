// The engine end to end, in seconds: small models actually train with AdamW,
// runs repeat bit for bit, native, wasm and reference kernels agree on a
// whole training run, and the tape is empty after every backward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeKernels, reference, wasmKernels, type Kernels } from '../src/backend/index.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../src/models/bert.js';
import { Linear } from '../src/nn/layers.js';
import { Module } from '../src/nn/module.js';
import { Optimizer, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor, backward, tapeLength } from '../src/tensor/tensor.js';
import * as ops from '../src/tensor/ops.js';
import { withKernels } from './helpers.js';


// ---------------------------------------------------------------- a tiny MLP

class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(inF: number, hidden: number, classes: number, rng: Rng) {
    super();
    this.fc1 = this.child('fc1', new Linear(inF, hidden, rng, { std: 0.3 }));
    this.fc2 = this.child('fc2', new Linear(hidden, classes, rng, { std: 0.3 }));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ops.gelu(this.fc1.forward(x)));
  }
}

/** 64 points in 8-D, each labelled by which of 4 fixed random directions it points along most. */
function mlpTask(): { x: Tensor; y: Int32Array } {
  const rng = new Rng(3);
  const N = 64, D = 8, C = 4;
  const x = Tensor.randn([N, D], rng);
  const dirs = Tensor.randn([C, D], rng);
  const y = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    let best = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += x.data[n * D + d] * dirs.data[c * D + d];
      if (s > best) [best, y[n]] = [s, c];
    }
  }
  return { x, y };
}

test('a tiny MLP learns a fixed synthetic task with AdamW; the tape is empty after every backward', () => {
  const { x, y } = mlpTask();
  const model = new Mlp(8, 32, 4, new Rng(1));
  const named = model.namedParameters();
  const params = named.map(([, p]) => p), names = named.map(([n]) => n);
  const opt = new Optimizer(defaultOptimizerConfig());
  const losses: number[] = [];
  for (let step = 0; step < 100; step++) {
    model.zeroGrad();
    const loss = ops.crossEntropy(model.forward(x), y);
    losses.push(loss.item());
    backward(loss);
    assert.equal(tapeLength(), 0, `step ${step}: the tape still holds entries after backward`);
    opt.step(params, names, 1e-2);
  }
  const last = losses[losses.length - 1];
  assert.ok(last < 0.3 * losses[0], `MLP loss went from ${losses[0].toFixed(4)} to ${last.toFixed(4)}, expected below 30% of the start`);
});

// ---------------------------------------------------------------- a tiny BERT

function tinyBert(): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: 50, hidden: 32, layers: 2, heads: 2, intermediate: 64, maxPositions: 16,
    dropout: 0.1, attentionDropout: 0.1,
  };
}

/** A fixed batch 4 x 16 with ~25% masked positions and one padded tail. */
function fixedBatch(c: BertConfig): MlmBatch {
  const B = 4, T = 16, rng = new Rng(11);
  const inputIds = new Int32Array(B * T), tokenTypeIds = new Int32Array(B * T);
  const attentionMask = new Float32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    const len = b === 3 ? 11 : T;
    for (let t = 0; t < len; t++) {
      const i = b * T + t;
      const id = 5 + (rng.nextU32() % (c.vocabSize - 5));
      attentionMask[i] = 1;
      tokenTypeIds[i] = t >= len / 2 ? 1 : 0;
      if (rng.nextU32() % 4 === 0) {
        labels[i] = id;
        inputIds[i] = 4; // [MASK]
      } else {
        inputIds[i] = id;
      }
    }
  }
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize: B, seqLen: T };
}

interface Run {
  losses: number[];
  params: Float32Array[];
  tapeAfterBackward: number[];
}

/** `steps` AdamW steps of the tiny BERT on the fixed batch, dropout on. */
function trainTinyBert(steps: number, lr = 3e-3): Run {
  const c = tinyBert();
  const model = new BertForMaskedLM(c, 42);
  const batch = fixedBatch(c);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p), names = named.map(([n]) => n);
  const opt = new Optimizer(defaultOptimizerConfig());
  const losses: number[] = [], tapeAfterBackward: number[] = [];
  for (let step = 0; step < steps; step++) {
    model.zeroGrad();
    const { loss } = model.mlm(batch);
    losses.push(loss.item());
    backward(loss);
    tapeAfterBackward.push(tapeLength());
    opt.step(params, names, lr);
  }
  return { losses, params: params.map((p) => p.data.slice()), tapeAfterBackward };
}

test('a tiny 2-layer BertForMaskedLM (dropout on) fits a fixed batch in 30 AdamW steps', () => {
  const run = trainTinyBert(30);
  assert.deepEqual(run.tapeAfterBackward, new Array(30).fill(0), 'the tape still holds entries after backward');
  const first = run.losses[0], last = run.losses[run.losses.length - 1];
  assert.ok(Number.isFinite(last), `loss became ${last}`);
  assert.ok(last < 0.6 * first, `loss went from ${first.toFixed(4)} to ${last.toFixed(4)}, expected below 60% of the start`);
});

test('training is deterministic: two identical runs (same seed, same threads) give bit-identical parameters', () => {
  const a = trainTinyBert(5), b = trainTinyBert(5);
  assert.deepEqual(a.losses, b.losses);
  for (let i = 0; i < a.params.length; i++) {
    assert.ok(Buffer.from(a.params[i].buffer).equals(Buffer.from(b.params[i].buffer)), `parameter ${i} differs between identical runs`);
  }
});

const nat = nativeKernels();
test('native and reference kernels train the tiny BERT alike (same dropout masks, losses within 1e-4 relative)', { skip: nat ? false : 'native kernels not built' }, () => {
  const onReference = withKernels(reference, () => trainTinyBert(10));
  const onNative = withKernels(nat!, () => trainTinyBert(10));
  for (let i = 0; i < onReference.losses.length; i++) {
    const r = onReference.losses[i], n = onNative.losses[i];
    assert.ok(Math.abs(r - n) <= 1e-4 * Math.abs(r), `step ${i}: loss ${n} on native vs ${r} on reference`);
  }
});

const wasm = wasmKernels();
test('wasm and reference kernels train the tiny BERT alike (same dropout masks, losses within 1e-4 relative), and wasm repeats bit for bit', () => {
  assert.ok(wasm, 'the shipped wasm kernels did not load');
  const onReference = withKernels(reference, () => trainTinyBert(10));
  const onWasm = withKernels(wasm, () => trainTinyBert(10));
  for (let i = 0; i < onReference.losses.length; i++) {
    const r = onReference.losses[i], w = onWasm.losses[i];
    assert.ok(Math.abs(r - w) <= 1e-4 * Math.abs(r), `step ${i}: loss ${w} on wasm vs ${r} on reference`);
  }
  const again = withKernels(wasm, () => trainTinyBert(10));
  assert.deepEqual(again.losses, onWasm.losses);
  for (let i = 0; i < again.params.length; i++) {
    assert.ok(Buffer.from(again.params[i].buffer, again.params[i].byteOffset, again.params[i].byteLength)
      .equals(Buffer.from(onWasm.params[i].buffer, onWasm.params[i].byteOffset, onWasm.params[i].byteLength)), `parameter ${i} differs between identical wasm runs`);
  }
});

test('native kernels: deterministic at 1 and at 2 threads', { skip: nat ? false : 'native kernels not built' }, () => {
  const threads = nat!.getThreads();
  try {
    for (const n of [1, 2]) {
      nat!.setThreads(n);
      const a = withKernels(nat!, () => trainTinyBert(3)), b = withKernels(nat!, () => trainTinyBert(3));
      for (let i = 0; i < a.params.length; i++) {
        assert.ok(Buffer.from(a.params[i].buffer).equals(Buffer.from(b.params[i].buffer)), `${n} threads: parameter ${i} differs between identical runs`);
      }
    }
  } finally {
    nat!.setThreads(threads);
  }
});
