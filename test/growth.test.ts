// Progressive stacking: the layer copy, growth steps (untied and tied copies),
// resume across a growth step, checkpoints and exports at the depth a run has,
// the compare variants, and bad schedules refused before anything is written.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { UntieError } from '../src/errors.js';
import { stackSchedule, variantConfig } from '../src/experiments/compare.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../src/models/bert.js';
import { Optimizer, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { SharingController, type RepeatedStack, type SharingEvent } from '../src/sharing/controller.js';
import { copyLayer } from '../src/sharing/copy.js';
import { AdaptiveCriterion, FixedCriterion, NeverCriterion, type Criterion } from '../src/sharing/criteria.js';
import { growthDue, parseGrowth, SinceGrowth, type GrowthOptions } from '../src/sharing/growth.js';
import { describePlan } from '../src/sharing/plan.js';
import { defaultRunConfig, mergeConfig, validateRunConfig, type RunConfig } from '../src/train/config.js';
import { prepareData } from '../src/train/data.js';
import { exportModel, load } from '../src/train/load.js';
import { readMetrics, type MetricRecord } from '../src/train/metrics.js';
import { readSafetensors } from '../src/train/safetensors.js';
import { train } from '../src/train/trainer.js';
import { sharingSource } from '../src/train/crossover.js';
import { configFromFlags } from '../src/cli/train.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor, backward, noGrad } from '../src/tensor/tensor.js';

// ------------------------------------------------------------------ the layer copy

test('copyLayer: tensors bit for bit, optimizer state into separate buffers (copied, scaled or reset)', () => {
  const rng = new Rng(3);
  const rand = (k: number) => Float32Array.from({ length: k }, () => rng.normal());
  const layers = [0, 1].map(() => [['w', new Tensor(rand(6), [2, 3], true)], ['b', new Tensor(rand(3), [3], true)]] as [string, Tensor][]);
  const stack: RepeatedStack = { layers, prefix: (i) => `layer.${i}.` };
  const opt = new Optimizer(defaultOptimizerConfig());
  layers[0].forEach(([, t]) => opt.setState(t, { step: 7, m: rand(t.size), v: rand(t.size).map(Math.abs) }));

  copyLayer(stack, 0, 1, { optimizer: opt, rule: 'copy' });
  layers[1].forEach(([name, t], j) => {
    const src = layers[0][j][1];
    assert.deepEqual(t.data, src.data, `${name}: weights`);
    assert.notEqual(t.data, src.data);
    const a = opt.stateOf(src), b = opt.stateOf(t);
    assert.equal(b.step, 7);
    assert.deepEqual(b.m, a.m);
    assert.deepEqual(b.v, a.v);
    assert.ok(b.m !== a.m && b.v !== a.v, `${name}: the copy has buffers of its own`);
    // Updating the source's state leaves the copy's alone.
    const before = b.m[0];
    a.m[0] += 1;
    assert.equal(b.m[0], before);
  });

  copyLayer(stack, 0, 1, { optimizer: opt, rule: 'copy', scale: (j) => (j === 0 ? 2 : 0.5) });
  layers[1].forEach(([, t], j) => {
    const r = j === 0 ? 2 : 0.5, a = opt.stateOf(layers[0][j][1]), b = opt.stateOf(t);
    b.m.forEach((x, k) => assert.equal(x, Math.fround(a.m[k] * r)));
    b.v.forEach((x, k) => assert.equal(x, Math.fround(a.v[k] * r * r)));
  });

  copyLayer(stack, 0, 1, { optimizer: opt, rule: 'reset' });
  for (const [, t] of layers[1]) assert.equal(opt.hasState(t), false);
  // Tensors only: a tied member's copy keeps no state of its own.
  layers[0][0][1].data[0] = 42;
  copyLayer(stack, 0, 1);
  assert.equal(layers[1][0][1].data[0], 42);
  assert.equal(opt.hasState(layers[1][0][1]), false);
});

// ------------------------------------------------------------------ growth steps on a BERT

const tinyBert: BertConfig = { ...defaultBertConfig(), vocabSize: 60, hidden: 16, layers: 4, heads: 2, intermediate: 32, maxPositions: 16, dropout: 0, attentionDropout: 0, norm: 'pre' };

function batchOf(seed: number): MlmBatch {
  const B = 3, T = 12, rng = new Rng(seed);
  const inputIds = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  for (let i = 0; i < B * T; i++) {
    const id = 5 + (rng.nextU32() % 55);
    if (rng.nextU32() % 4 === 0) {
      labels[i] = id;
      inputIds[i] = 4;
    } else inputIds[i] = id;
  }
  return { inputIds, tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T).fill(1), labels, batchSize: B, seqLen: T };
}

/** A 4-layer BERT that starts at 2 layers and grows to 4 after update 3 (the 4th). */
function growing(growth: Partial<GrowthOptions>, untieOptimizer: 'copy' | 'rescale' | 'reset' = 'copy', criterion: Criterion = new NeverCriterion()) {
  const model = new BertForMaskedLM(tinyBert, 5);
  const opt = new Optimizer(defaultOptimizerConfig());
  const sharing = new SharingController(model.stack(), {
    groups: [[0], [1]], criterion, sharedGrad: 'mean', untieOptimizer,
    growth: { stages: [{ depth: 2, step: 0 }, { depth: 4, step: 4 }], tied: false, ...growth },
  });
  const named = model.namedParameters();
  const step = (i: number) => {
    model.zeroGrad();
    backward(model.mlm(batchOf(100 + i)).loss);
    sharing.beforeUpdate(i, undefined, opt);
    const trainable = sharing.trainable(named);
    opt.step(trainable.map(([, t]) => t), trainable.map(([n]) => n), 1e-2);
    return sharing.afterUpdate(i, opt);
  };
  return { model, opt, sharing, named, step };
}

/** The encoder's output computed by hand: the embeddings, then `order`'s layers, then the final norm. */
function encodeThrough(model: BertForMaskedLM, b: MlmBatch, order: number[]): Float32Array {
  return noGrad(() => {
    let x = model.bert.embeddings.forward(b);
    for (const i of order) x = model.bert.encoder.layer[i].forward(x, new Float32Array(b.batchSize * b.seqLen));
    return model.bert.encoder.finalNorm!.forward(x).data.slice();
  });
}

/** What a list of events says: type, step, description (and reason). */
const told = (events: SharingEvent[]) => events.map((e) => (e.type === 'sharing_check' ? [e.type, e.step] : [e.type, e.step, e.description, e.reason]));

const layerTensors = (model: BertForMaskedLM, i: number) => model.bert.encoder.layer[i].namedParameters();

test('a growth step: new layer i+k is layer i bit for bit, the deeper model computes the shallow stack twice over, and the copies own their optimizer state', () => {
  const g = growing({});
  const probe = batchOf(1);
  for (let i = 0; i < 3; i++) assert.deepEqual(g.step(i), []);
  assert.equal(g.sharing.depth, 2);
  const shallow = noGrad(() => g.model.encode(probe).data.slice());
  assert.deepEqual(shallow, encodeThrough(g.model, probe, [0, 1]), 'before growth the model runs its first 2 layers');
  const uniqueBefore = g.sharing.uniqueParameterCount(g.named);
  // Only the active layers train: layers 2 and 3 have no state yet.
  for (const [, t] of [...layerTensors(g.model, 2), ...layerTensors(g.model, 3)]) assert.equal(g.opt.hasState(t), false);

  const events = g.step(3);
  assert.equal(events.length, 1);
  assert.deepEqual({ ...events[0], groups: undefined }, { type: 'grow', step: 3, from: 2, to: 4, groups: undefined, description: '4 layers: [0] [1] [2] [3]' });
  assert.equal(g.sharing.depth, 4);
  for (const [copy, source] of [[2, 0], [3, 1]]) {
    layerTensors(g.model, copy).forEach(([name, t], j) => {
      const src = layerTensors(g.model, source)[j][1];
      assert.deepEqual(t.data, src.data, `layer ${copy} ${name} = layer ${source}`);
      const a = g.opt.stateOf(src), b = g.opt.stateOf(t);
      assert.equal(b.step, 4);
      assert.deepEqual(b.m, a.m);
      assert.deepEqual(b.v, a.v);
      assert.ok(b.m !== a.m && b.v !== a.v, `layer ${copy} ${name}: separate optimizer buffers`);
    });
  }
  const deep = noGrad(() => g.model.encode(probe).data.slice());
  assert.deepEqual(deep, encodeThrough(g.model, probe, [0, 1, 0, 1]), 'the grown model is the 2-layer stack applied twice');
  assert.notDeepEqual(deep, shallow);
  const perLayer = layerTensors(g.model, 0).reduce((n, [, t]) => n + t.size, 0);
  assert.equal(g.sharing.uniqueParameterCount(g.named), uniqueBefore + 2 * perLayer);

  // Each copy then trains on its own: after one more update layer 2 differs from layer 0.
  g.step(4);
  assert.notDeepEqual(layerTensors(g.model, 2)[0][1].data, layerTensors(g.model, 0)[0][1].data);
});

test('growth with --untie-optimizer reset gives the copies no state; rescale scales the copied moments by the first update\'s gradient ratio', () => {
  const reset = growing({}, 'reset');
  for (let i = 0; i < 4; i++) reset.step(i);
  for (const [, t] of [...layerTensors(reset.model, 2), ...layerTensors(reset.model, 3)]) assert.equal(reset.opt.hasState(t), false);
  for (const [, t] of layerTensors(reset.model, 0)) assert.equal(reset.opt.hasState(t), true);

  const g = growing({}, 'rescale');
  for (let i = 0; i < 4; i++) g.step(i);
  assert.deepEqual(g.sharing.getState().pendingRescale, [[0, 2], [1, 3]]);
  const copied = layerTensors(g.model, 2).map(([, t]) => g.opt.stateOf(t).m.slice());
  // The first update at depth 4, by hand up to the optimizer step.
  g.model.zeroGrad();
  backward(g.model.mlm(batchOf(104)).loss);
  g.sharing.beforeUpdate(4, undefined, g.opt);
  layerTensors(g.model, 2).forEach(([name, t], j) => {
    const src = layerTensors(g.model, 0)[j][1];
    const sq = (a: Float32Array) => a.reduce((s, x) => s + x * x, 0);
    const r = Math.sqrt(sq(t.grad!) / sq(src.grad!));
    const m = g.opt.stateOf(t).m;
    for (let k = 0; k < m.length; k += 7) assert.ok(Math.abs(m[k] - copied[j][k] * r) <= 1e-4 * Math.abs(copied[j][k] * r) + 1e-12, `${name}[${k}]: ${m[k]} vs ${copied[j][k] * r}`);
  });
  assert.equal(g.sharing.getState().pendingRescale, undefined);
});

test('tied growth: the copies join their source layer\'s group, stay bit-identical until the criterion (counting from the growth step) unties them, then diverge', () => {
  // step:2 counts from the growth after update 3: untie after updates 4 and 5.
  const g = growing({ tied: true }, 'copy', new FixedCriterion(2));
  assert.ok(g.sharing.criterion instanceof SinceGrowth);
  for (let i = 0; i < 3; i++) g.step(i);
  const uniqueBefore = g.sharing.uniqueParameterCount(g.named);
  const events = g.step(3);
  assert.deepEqual(told(events), [['grow', 3, '4 layers: [0,2] [1,3]', 'tied copies']]);
  assert.equal(g.sharing.uniqueParameterCount(g.named), uniqueBefore, 'tied copies add no parameters');
  for (const [, t] of layerTensors(g.model, 2)) assert.equal(g.opt.hasState(t), false, 'a tied copy is updated through its group\'s state');
  const same = () => [2, 3].every((c) => layerTensors(g.model, c).every(([, t], j) => t.data.every((x, k) => x === layerTensors(g.model, c - 2)[j][1].data[k])));
  assert.ok(same());
  assert.deepEqual(g.step(4), []);
  assert.ok(same(), 'tied after the first update at the new depth');
  assert.deepEqual(told(g.step(5)), [['untie', 5, '[0] [1] [2] [3]', 'step']]);
  assert.ok(same(), 'untying copies the state, not the weights: equal at the untie');
  g.step(6);
  assert.ok(!same(), 'untied copies diverge');
});

test('SinceGrowth: adaptive checks every K updates from the growth step and meets its deadline that long after it', () => {
  const c = new SinceGrowth(new AdaptiveCriterion({ threshold: 0.5, patience: 3, every: 5, deadline: 10 }));
  c.restart(23);
  const due = Array.from({ length: 20 }, (_, i) => 23 + i).filter((s) => c.wantsStats(s));
  assert.deepEqual(due, [27, 32, 37, 42]);
  assert.deepEqual(c.decide(31, [[0, 1]], null), { action: 'none' });
  assert.deepEqual(c.decide(32, [[0, 1]], null), { action: 'untie', reason: 'deadline' });
  const saved = c.getState();
  const back = new SinceGrowth(new AdaptiveCriterion({ threshold: 0.5, patience: 3, every: 5, deadline: 10 }));
  back.setState(saved);
  assert.deepEqual(back.getState(), saved);
  assert.deepEqual(back.decide(31, [[0, 1]], null), { action: 'none' });
});

// ------------------------------------------------------------------ schedules

test('bad --grow schedules are one-line errors', () => {
  const run = { totalSteps: 100, budget: false };
  assert.deepEqual(parseGrowth('3@0,6@0.125,12@0.3', 12, run), [{ depth: 3, step: 0 }, { depth: 6, step: 13 }, { depth: 12, step: 30 }]);
  assert.deepEqual(parseGrowth('2@step:0,4@step:40', 4, run), [{ depth: 2, step: 0 }, { depth: 4, step: 40 }]);
  assert.deepEqual(parseGrowth('2@0,4@0.5', 4, { totalSteps: 100, budget: true }), [{ depth: 2, fraction: 0 }, { depth: 4, fraction: 0.5 }]);
  const cases: [string, RegExp][] = [
    ['4@0,2@0.5', /2 layers after 4: each stage must be deeper/],
    ['2@0,3@0.5', /3 layers is not a multiple of 2/],
    ['1@0,2@0.5,4@0.3', /"4@0.3" does not start after "2@0.5"/],
    ['1@0,2@step:50,4@step:50', /does not start after .*step 50 after step 50/],
    ['1@0,2@0.5', /ends at 2 layers but the model has --layers 4/],
    ['2@0.1,4@0.5', /the first entry is the depth the run starts at/],
    ['2@0,4@1', /before the end of the run/],
    ['2@0,4@step:100', /at or after the run's last step/],
    ['4@0', /lists one depth/],
    ['2@0;4@0.5', /is not DEPTH@WHEN/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseGrowth(text, 4, run), (err: Error) => err instanceof UntieError && message.test(err.message) && !err.message.includes('\n'), text);
  }
  assert.throws(() => parseGrowth('2@0,4@step:10', 4, { totalSteps: 100, budget: true }), /fractions of its budget, not at step:N/);
  // A step-count stage grows after the update that completes its step; a budget stage once its fraction is spent.
  assert.deepEqual([3, 4].map((step) => growthDue({ depth: 4, step: 5 }, step)), [false, true]);
  assert.deepEqual([0.49, 0.5].map((p) => growthDue({ depth: 4, fraction: 0.5 }, 1000, p)), [false, true]);
});

// ------------------------------------------------------------------ end to end

let root: string;
let corpus: string;
let tokenizerDir: string;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-growth-'));
  corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, 30)) fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  tokenizerDir = path.join(root, 'tok');
  await prepareData(runConfig('tok').data, 0, tokenizerDir, 4);
});

/** A 4-layer run of 12 steps that grows 2 -> 4 after step 4, checkpointing every 2 steps. */
function runConfig(name: string, patch: object = {}): RunConfig {
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir: root,
    model: { layers: 4, hidden: 32, heads: 2, intermediate: 64, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 1000, evalBatches: 2 },
    train: { steps: 12, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1, evalEvery: 6, saveEvery: 2, keepLast: 10 },
    sharing: { share: '', untie: 'never', grow: '2@0,4@step:4' },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

function seedTokenizer(name: string): void {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
}

function comparable(records: MetricRecord[]): unknown[] {
  return records.map(({ elapsed: _e, tokens_per_s: _t, path: _p, ...rest }) => rest);
}

const weightsAt = (name: string, step: number) => readSafetensors(path.join(root, name, `checkpoint-${step}`, 'model.safetensors')).tensors;

test('a growing run: checkpoints hold the depth the run has, and a run resumed across the growth step (and from the growth step itself, with rescale pending) repeats the uninterrupted one bit for bit', async () => {
  const patch = { sharing: { untieOptimizer: 'rescale' } };
  seedTokenizer('whole');
  const whole = await train({ config: runConfig('whole', patch), progress: false });
  const records = readMetrics(path.join(root, 'whole', 'metrics.jsonl'));
  assert.deepEqual(records.filter((r) => r.type === 'grow').map((r) => [r.step, r.from, r.to]), [[4, 2, 4]]);
  // The learning rate runs over the whole run: after warmup it decays every step, across the growth too.
  const lrs = records.filter((r) => r.type === 'train' && r.step >= 2).map((r) => r.lr as number);
  assert.ok(lrs.every((lr, i) => i === 0 || lr < lrs[i - 1]), `lr ${lrs.join(', ')}`);
  // checkpoint-2: 2 layers; checkpoint-4 (written right after the growth step): 4.
  const layersIn = (step: number) => new Set(Object.keys(weightsAt('whole', step)).map((n) => /layer\.(\d+)\./.exec(n)?.[1]).filter(Boolean)).size;
  assert.equal(layersIn(2), 2);
  assert.equal(layersIn(4), 4);
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'whole', 'checkpoint-2', 'config.json'), 'utf8')).num_hidden_layers, 2);
  const state4 = JSON.parse(fs.readFileSync(path.join(root, 'whole', 'checkpoint-4', 'trainer_state.json'), 'utf8'));
  assert.deepEqual([state4.sharing.depth, state4.sharing.pendingRescale], [4, [[0, 2], [1, 3]]]);

  for (const [name, from] of [['from2', 2], ['from4', 4]] as const) {
    seedTokenizer(name);
    await train({ config: runConfig(name, patch), haltAt: from + 1, progress: false }); // as a crash: the newest checkpoint is `from`
    assert.equal(fs.existsSync(path.join(root, name, `checkpoint-${from + 2}`)), false);
    const resumed = await train({ config: runConfig(name, patch), resume: true, progress: false });
    assert.equal(resumed.finalValLoss, whole.finalValLoss, name);
    const a = weightsAt('whole', 12), b = weightsAt(name, 12);
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const t of Object.keys(a)) assert.deepEqual(b[t].data, a[t].data, `${name}: ${t}`);
    assert.deepEqual(comparable(readMetrics(path.join(root, name, 'metrics.jsonl'))), comparable(readMetrics(path.join(root, 'whole', 'metrics.jsonl'))), name);
  }

  // A checkpoint from before the last growth step exports (and loads) at the depth it has.
  const out = path.join(root, 'export2');
  const r = exportModel(path.join(root, 'whole', 'checkpoint-2'), out);
  assert.deepEqual([r.layers, r.runLayers], [2, 4]);
  assert.equal(load(out).model.config.layers, 2);
  assert.equal(exportModel(path.join(root, 'whole'), path.join(root, 'export12')).layers, 4);
  // untie_torch does not grow: the crossing refuses a growing run before writing.
  assert.throws(() => sharingSource(path.join(root, 'whole')), /grows its stack \(--grow 2@0,4@step:4\)/);
});

test('--grow-tied end to end: the copies stay tied to their source until the untie (step:N counts from the growth step), then diverge; resume across the growth is exact', async () => {
  const patch = { sharing: { growTied: true, untie: 'step:3' } };
  seedTokenizer('tied');
  const whole = await train({ config: runConfig('tied', patch), progress: false });
  const events = readMetrics(path.join(root, 'tied', 'metrics.jsonl')).filter((r) => r.type === 'grow' || r.type === 'untie');
  assert.deepEqual(events.map((r) => [r.type, r.step, r.description]), [['grow', 4, '4 layers: [0,2] [1,3]'], ['untie', 7, '[0] [1] [2] [3]']]);
  assert.equal(whole.untiedAt, 7);
  const copiesEqual = (step: number) => {
    const w = weightsAt('tied', step);
    return Object.keys(w).filter((n) => /layer\.[23]\./.test(n)).every((n) => {
      const source = n.replace(/layer\.(\d)\./, (_, i) => `layer.${Number(i) - 2}.`);
      return w[n].data.every((x, k) => x === w[source].data[k]);
    });
  };
  assert.deepEqual([4, 6, 8, 12].map(copiesEqual), [true, true, false, false]);

  seedTokenizer('tied-cut');
  await train({ config: runConfig('tied-cut', patch), haltAt: 3, progress: false }); // newest checkpoint: 2, before the growth
  const resumed = await train({ config: runConfig('tied-cut', patch), resume: true, progress: false });
  assert.equal(resumed.finalValLoss, whole.finalValLoss);
  const a = weightsAt('tied', 12), b = weightsAt('tied-cut', 12);
  for (const t of Object.keys(a)) assert.deepEqual(b[t].data, a[t].data, t);
  assert.deepEqual(comparable(readMetrics(path.join(root, 'tied-cut', 'metrics.jsonl'))), comparable(readMetrics(path.join(root, 'tied', 'metrics.jsonl'))));
});

test('untie train --grow / --grow-tied set the config', () => {
  const cfg = configFromFlags({ layers: '12', grow: '3@0,6@0.125,12@0.3', 'grow-tied': true, untie: 'step:50' });
  assert.deepEqual([cfg.sharing.grow, cfg.sharing.growTied, cfg.sharing.untie], ['3@0,6@0.125,12@0.3', true, 'step:50']);
  assert.equal(configFromFlags({ layers: '12', grow: '3@0,12@0.5' }).sharing.growTied, false);
});

test('bad growth settings are refused before anything is written', async () => {
  const bad: [object, RegExp][] = [
    [{ sharing: { grow: '4@0,2@0.5' } }, /each stage must be deeper/],
    [{ sharing: { grow: '2@0,3@0.5' } }, /not a multiple of 2/],
    [{ sharing: { grow: '1@0,2@0.5,4@0.3' } }, /does not start after/],
    [{ sharing: { grow: '1@0,2@0.5' } }, /has --layers 4/],
    [{ sharing: { grow: '2@0,4@0.5', share: '1x4' } }, /--share 1x4 with --grow/],
    [{ sharing: { grow: '', growTied: true } }, /add a --grow schedule/],
    [{ sharing: { grow: '2@0,4@0.5', growTied: true, untie: 'step:0' } }, /which is --grow without --grow-tied/],
  ];
  for (const [patch, message] of bad) {
    const cfg = runConfig('refused', patch);
    assert.throws(() => validateRunConfig(cfg), message);
    await assert.rejects(train({ config: cfg, progress: false }), (err: Error) => err instanceof UntieError && message.test(err.message) && !err.message.includes('\n'));
    assert.equal(fs.existsSync(path.join(root, 'refused')), false, 'nothing written');
  }
});

test('compare: stack and stack-swe grow quarter, half, then full depth at 12.5% and 30% of the run', () => {
  assert.equal(stackSchedule(12), '3@0,6@0.125,12@0.3');
  assert.equal(stackSchedule(6), '3@0,6@0.3');
  assert.throws(() => stackSchedule(5), /odd/);
  const base = mergeConfig(defaultRunConfig('tiny'), { model: { layers: 12 }, train: { steps: 400 } }, 'config');
  const opts = { sweFFraction: 0.1, evalsPerRun: 8 };
  const stack = variantConfig(base, 'stack', 0, opts), sweStack = variantConfig(base, 'stack-swe', 1, opts);
  assert.deepEqual([stack.sharing.grow, stack.sharing.growTied, stack.sharing.untie, stack.sharing.share], ['3@0,6@0.125,12@0.3', false, 'never', '12x1']);
  assert.deepEqual([sweStack.sharing.grow, sweStack.sharing.growTied, sweStack.sharing.untie], ['3@0,6@0.125,12@0.3', true, 'adaptive']);
  assert.equal(variantConfig(base, 'baseline', 0, opts).sharing.grow, '');
  // The plans a stack-swe run passes through, as bench/stacking.ts and scripts/stacking.ts name them.
  assert.equal(describePlan([[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]), '12 layers 3x4');
  assert.equal(describePlan([[0], [1], [2]]), '3 layers 3x1');
  assert.equal(describePlan([[0, 1], [2]]), '3 layers [0,1] [2]');
});
