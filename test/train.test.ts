// Pre-training end to end on a small corpus: resume equality, checkpoint and
// export round trips, validation loss falling, and clear errors for bad input.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { UntieError } from '../src/errors.js';
import { defaultRunConfig, mergeConfig, validateRunConfig, type RunConfig } from '../src/train/config.js';
import { readMetrics } from '../src/train/metrics.js';
import { train, evaluate } from '../src/train/trainer.js';
import { exportModel, load } from '../src/train/load.js';
import { fillMask, topIndices } from '../src/train/inference.js';
import { readSafetensors, writeSafetensors, type WritableTensor } from '../src/train/safetensors.js';
import { prepareData, prepareValidation } from '../src/train/data.js';
import { main } from '../src/cli/main.js';
import { sha256File } from '../src/train/fsutil.js';
import { comparableMetrics, copyTokenizer, writeWordCorpus } from './helpers.js';
import { Rng } from '../src/tensor/rng.js';

let root: string;
let corpus: string;
let tokenizerDir: string;

/** A small real corpus: 40 Brown documents as plain-text files. */
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-train-'));
  corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, 40)) {
    fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  }
  // Train the tokenizer once; each run folder gets a copy, so no test retrains it.
  tokenizerDir = path.join(root, 'tok');
  await prepareData(tinyConfig('tok').data, 0, tokenizerDir, 4);
});

function tinyConfig(name: string, patch: object = {}): RunConfig {
  const base = defaultRunConfig('tiny');
  const cfg = mergeConfig(base, {
    name, outDir: root,
    // Post-LN (the presets' default is Pre-LN): these runs export as Hugging Face's BertForMaskedLM.
    model: { layers: 4, hidden: 32, heads: 2, intermediate: 64, maxPositions: 32, norm: 'post' },
    data: { corpus, seqLen: 32, vocabSize: 1000, evalBatches: 3 },
    train: { steps: 12, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1, evalEvery: 6, saveEvery: 4, keepLast: 10 },
    sharing: { share: '1x4', untie: 'step:6' },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

function seedTokenizer(name: string): void {
  copyTokenizer(tokenizerDir, path.join(root, name));
}

test('an interrupted and resumed run equals the uninterrupted run, across the untie step', async () => {
  seedTokenizer('whole');
  seedTokenizer('cut');
  const whole = await train({ config: tinyConfig('whole'), progress: false });
  assert.equal(whole.untiedAt, 6);
  // Halt at step 10 without saving (as a crash would): the newest checkpoint is step 8.
  await train({ config: tinyConfig('cut'), haltAt: 10, progress: false });
  assert.ok(fs.existsSync(path.join(root, 'cut', 'checkpoint-8')));
  assert.ok(!fs.existsSync(path.join(root, 'cut', 'checkpoint-12')));
  const resumed = await train({ config: tinyConfig('cut'), resume: true, progress: false });
  assert.equal(resumed.finalValLoss, whole.finalValLoss);
  const a = readSafetensors(path.join(root, 'whole', 'checkpoint-12', 'model.safetensors'));
  const b = readSafetensors(path.join(root, 'cut', 'checkpoint-12', 'model.safetensors'));
  for (const name of Object.keys(a.tensors)) assert.deepEqual(b.tensors[name].data, a.tensors[name].data, name);
  assert.deepEqual(comparableMetrics(readMetrics(path.join(root, 'cut', 'metrics.jsonl'))), comparableMetrics(readMetrics(path.join(root, 'whole', 'metrics.jsonl'))));

  // Also resume from the checkpoint taken before the untie step (4).
  seedTokenizer('early');
  await train({ config: tinyConfig('early'), haltAt: 5, progress: false });
  const resumedEarly = await train({ config: tinyConfig('early'), resume: true, progress: false });
  assert.equal(resumedEarly.finalValLoss, whole.finalValLoss);
  assert.equal(resumedEarly.untiedAt, 6);
});

test('--stop-at: a run stopped after a step saves a checkpoint there, and resumed equals the uninterrupted run; a stop it cannot reach is refused before anything is written', async () => {
  seedTokenizer('parts');
  seedTokenizer('parts-whole');
  await train({ config: tinyConfig('parts-whole'), progress: false });
  const first = await train({ config: tinyConfig('parts'), stopAt: 5, progress: false }); // 5: between checkpoints 4 and 8, before the untie (6)
  assert.equal(first.steps, 5);
  assert.equal(first.interrupted, false);
  assert.deepEqual(fs.readdirSync(path.join(root, 'parts')).filter((f) => f.startsWith('checkpoint-')).sort(), ['checkpoint-4', 'checkpoint-5']);
  await assert.rejects(train({ config: tinyConfig('parts'), resume: true, stopAt: 5, progress: false }), /--stop-at 5: the run is already at step 5/);
  await assert.rejects(train({ config: tinyConfig('parts'), resume: true, stopAt: 12, progress: false }), /--stop-at 12: the run ends at step 12 anyway/);
  const whole = readMetrics(path.join(root, 'parts-whole', 'metrics.jsonl'));
  const resumed = await train({ config: tinyConfig('parts'), resume: true, progress: false });
  assert.equal(resumed.untiedAt, 6);
  assert.equal(resumed.finalValLoss, whole.filter((r) => r.type === 'eval').pop()!.val_loss);
  // The same records, but for the checkpoint the stop saved.
  const parts = readMetrics(path.join(root, 'parts', 'metrics.jsonl')).filter((r) => !(r.type === 'checkpoint' && r.step === 5));
  assert.deepEqual(comparableMetrics(parts), comparableMetrics(whole));
});

test('a checkpoint loads back with the same outputs, and the run folder is complete', async () => {
  const runDir = path.join(root, 'whole');
  for (const f of ['config.json', 'metrics.jsonl', 'tokenizer.json', 'vocab.txt']) assert.ok(fs.existsSync(path.join(runDir, f)), f);
  assert.ok(fs.readdirSync(runDir).some((f) => f.startsWith('events.out.tfevents.')));
  const loaded = load(runDir);
  assert.equal(path.basename(loaded.modelDir), 'checkpoint-12');
  const ev = evaluate(loaded.model, await prepareValidation(tinyConfig('whole').data, runDir, 4));
  const last = readMetrics(path.join(runDir, 'metrics.jsonl')).filter((r) => r.type === 'eval').pop()!;
  assert.equal(ev.loss, last.val_loss);
  const state = JSON.parse(fs.readFileSync(path.join(loaded.modelDir, 'trainer_state.json'), 'utf8'));
  assert.equal(state.step, 12);
  assert.deepEqual(state.sharing.groups, [[0], [1], [2], [3]]);
  // Both gradient norms are logged: while tied (updates 1-6) the applied one (a mean of 4 layers' gradients)
  // is below the per-layer one; once untied they are the same number.
  const trainRecords = readMetrics(path.join(runDir, 'metrics.jsonl')).filter((r) => r.type === 'train');
  assert.equal(trainRecords.length, 12);
  for (const r of trainRecords) {
    const update = r.grad_norm as number, layers = r.grad_norm_layers as number;
    if (r.step <= 6) assert.ok(update < layers, `step ${r.step}: ${update} vs ${layers}`);
    else assert.equal(update, layers, `step ${r.step}`);
  }
});

test('train --probe pos: a frozen-encoder POS probe after each validation, leaving the run itself unchanged', async () => {
  seedTokenizer('probed');
  await train({ config: tinyConfig('probed', { train: { probe: 'pos' } }), progress: false });
  const records = readMetrics(path.join(root, 'probed', 'metrics.jsonl'));
  const probes = records.filter((r) => r.type === 'probe');
  assert.deepEqual(probes.map((r) => r.step), [6, 12]);
  for (const p of probes) {
    assert.equal(p.task, 'pos');
    assert.ok((p.score as number) > 0 && (p.score as number) < 1, String(p.score));
  }
  // The probe trains its own copy: the run's weights and every other record equal the run without it.
  assert.deepEqual(comparableMetrics(records.filter((r) => r.type !== 'probe')), comparableMetrics(readMetrics(path.join(root, 'whole', 'metrics.jsonl'))));
  const a = readSafetensors(path.join(root, 'whole', 'checkpoint-12', 'model.safetensors'));
  const b = readSafetensors(path.join(root, 'probed', 'checkpoint-12', 'model.safetensors'));
  for (const name of Object.keys(a.tensors)) assert.deepEqual(b.tensors[name].data, a.tensors[name].data, name);
  assert.throws(() => validateRunConfig(tinyConfig('x', { train: { probe: 'ner' } })), /--probe must be "pos" or "spam"/);
});

test('export writes a Hugging Face BertForMaskedLM folder that loads back identically', async () => {
  const out = path.join(root, 'exported');
  const { files, architecture, modelType } = exportModel(path.join(root, 'whole', 'checkpoint-12'), out);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) assert.ok(files.includes(f), f);
  assert.deepEqual([architecture, modelType], ['BertForMaskedLM', 'bert']);
  const st = readSafetensors(path.join(out, 'model.safetensors'));
  assert.deepEqual(st.metadata, { format: 'pt' });
  assert.deepEqual(st.tensors['bert.encoder.layer.3.attention.self.query.weight'].shape, [32, 32]);
  assert.deepEqual(st.tensors['bert.encoder.layer.0.intermediate.dense.weight'].shape, [64, 32]); // Linear weights are [out, in]
  assert.ok(st.tensors['cls.predictions.transform.LayerNorm.weight']);
  const hf = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(hf.model_type, 'bert');
  assert.deepEqual(hf.architectures, ['BertForMaskedLM']);
  assert.equal(hf.num_hidden_layers, 4);
  assert.equal(hf.hidden_act, 'gelu');
  // Header bytes: 8-byte little-endian length, JSON padded to a multiple of 8.
  const bytes = fs.readFileSync(path.join(out, 'model.safetensors'));
  const headerLen = Number(bytes.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0);
  assert.equal(JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')).__metadata__.format, 'pt');
  // untie reads the exported folder back to the same model.
  const a = load(path.join(root, 'whole')), b = load(out);
  for (const [[name, ta], [, tb]] of a.model.namedParameters().map((p, i) => [p, b.model.namedParameters()[i]] as const)) assert.deepEqual(tb.data, ta.data, name);
});

test('fill-mask returns the top-k tokens per mask, most likely first', async () => {
  const preds = await fillMask(load(path.join(root, 'whole')), 'the jury said that the [MASK] was good .', 4);
  assert.equal(preds.length, 1);
  assert.equal(preds[0].length, 4);
  for (let i = 1; i < 4; i++) assert.ok(preds[0][i - 1].score >= preds[0][i].score);
  assert.ok(preds[0].reduce((s, p) => s + p.score, 0) <= 1 + 1e-6);
  await assert.rejects(fillMask(load(path.join(root, 'whole')), 'no mask here'), /no \[MASK\]/);
});

test('topIndices picks what a stable sort of the whole row puts first, ties in index order', () => {
  const rng = new Rng(5);
  for (const [n, k, levels] of [[8192, 5, 0], [50, 7, 4], [3, 5, 0], [10, 1, 2]] as const) {
    // levels > 0: values drawn from a few levels, so that ties are common
    const row = Float32Array.from({ length: n }, () => (levels > 0 ? Math.floor(rng.uniform() * levels) : rng.normal()));
    const sorted = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, k);
    assert.deepEqual(topIndices(row, k), sorted, `n ${n}, k ${k}`);
  }
});

test('validation loss of a tiny model falls over a short run', async () => {
  seedTokenizer('learn');
  await train({ config: tinyConfig('learn', { train: { steps: 60, evalEvery: 3, saveEvery: 0 }, sharing: { untie: 'never' } }), progress: false });
  const evals = readMetrics(path.join(root, 'learn', 'metrics.jsonl')).filter((r) => r.type === 'eval');
  const first = evals[0].val_loss as number, last = evals[evals.length - 1].val_loss as number;
  assert.ok(last < first - 0.5, `validation loss went from ${first} to ${last}`);
});

test('bad configs fail with a message saying what to change', () => {
  assert.throws(() => defaultRunConfig('huge'), /unknown preset "huge"/);
  assert.throws(() => mergeConfig(defaultRunConfig(), { train: { stepz: 3 } }, 'config'), /unknown config key "train.stepz"/);
  assert.throws(() => mergeConfig(defaultRunConfig(), { train: { steps: '3' } }, 'config'), /must be a number/);
  assert.throws(() => validateRunConfig(tinyConfig('x', { model: { hidden: 30, heads: 4 } })), /not divisible by heads/);
  assert.throws(() => validateRunConfig(tinyConfig('x', { data: { seqLen: 64 } })), /longer than the model's position table/);
  assert.throws(() => validateRunConfig(tinyConfig('x', { sharing: { share: '3x2' } })), UntieError);
});

test('resume errors: no checkpoint, corrupted checkpoint; nothing already saved is touched', async () => {
  fs.mkdirSync(path.join(root, 'empty'));
  await assert.rejects(train({ config: tinyConfig('empty'), resume: true, progress: false }), /no checkpoint-<step> folder to resume from/);
  // Copy a finished run and truncate its newest model file.
  const src = path.join(root, 'whole'), dst = path.join(root, 'broken');
  fs.cpSync(src, dst, { recursive: true });
  const model = path.join(dst, 'checkpoint-12', 'model.safetensors');
  const full = fs.readFileSync(model);
  fs.writeFileSync(model, full.subarray(0, full.length - 100));
  const before = fs.readFileSync(model);
  await assert.rejects(train({ config: tinyConfig('broken'), resume: true, extendTo: 16, progress: false }), /model\.safetensors does not match its SHA-256/);
  assert.deepEqual(fs.readFileSync(model), before);
  // Without the checksum file (a checkpoint of an older untie) the reader itself refuses it.
  fs.rmSync(path.join(dst, 'checkpoint-12', 'checksums.sha256'));
  await assert.rejects(train({ config: tinyConfig('broken'), resume: true, extendTo: 16, progress: false }), /truncated or corrupted/);
  assert.deepEqual(fs.readFileSync(model), before);
  assert.ok(fs.existsSync(path.join(dst, 'checkpoint-8', 'model.safetensors')));
});

test('a run that diverges stops before applying or saving the bad step, and names its last good checkpoint truthfully', async () => {
  seedTokenizer('nan');
  // lr = 1, 2, 3, ... (warmup towards 1000), no clipping: the loss climbs past 10 ln V within a few steps.
  const cfg = tinyConfig('nan', { train: { steps: 30, lr: 1000, warmupSteps: 1000, clip: 0, saveEvery: 1, keepLast: 30, evalEvery: 0 } });
  const err = await train({ config: cfg, progress: false }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof UntieError, `the run failed with an UntieError, not ${String(err)}`);
  const msg = err.message;
  const failedAt = Number(/^the loss became \S+(?: \(over 10 ln V = \d+\))? at step (\d+)\. Nothing from this step was applied or saved\./.exec(msg)?.[1]);
  assert.ok(failedAt >= 3, `${msg}`);
  assert.doesNotMatch(msg, /intact/);
  const runDir = path.join(root, 'nan');
  const steps = fs.readdirSync(runDir).filter((f) => f.startsWith('checkpoint-')).map((f) => Number(f.slice(11))).sort((a, b) => a - b);
  assert.deepEqual(steps, Array.from({ length: failedAt - 1 }, (_, i) => i + 1), 'every step before the failure was saved, nothing after it');
  // The newest checkpoint holds the weights that failed, and the message says so; the one before it is named as the last good one.
  assert.match(msg, new RegExp(`checkpoint-${failedAt - 1} holds the weights that led to this`));
  const good = /The last good checkpoint \(finite weights that trained on with a sane loss\) is (\S+)\. /.exec(msg)?.[1];
  assert.equal(good, path.join(runDir, `checkpoint-${failedAt - 2}`));
  const trainLoss = readMetrics(path.join(runDir, 'metrics.jsonl')).filter((r) => r.type === 'train');
  assert.ok((trainLoss.find((r) => r.step === failedAt - 1)!.loss as number) < 10 * Math.log(1000), 'the good checkpoint trained on with a sane loss');
  const ev = evaluate(load(good!).model, await prepareValidation(cfg.data, runDir, 4));
  assert.ok(Number.isFinite(ev.loss), 'the good checkpoint loads (finite weights) and evaluates');
});

test('a blow-up on the last update: train exits non-zero without saving it, and eval refuses diverged checkpoints', async () => {
  seedTokenizer('blowup');
  const errs: string[] = [];
  const origErr = console.error, origLog = console.log;
  console.error = (...a: unknown[]) => errs.push(a.join(' '));
  console.log = () => {};
  try {
    const code = await main(['train', '--out', root, '--name', 'blowup', '--corpus', corpus, '--steps', '1', '--lr', '1000000', '--clip', '0', '--layers', '2', '--hidden', '16',
      '--heads', '2', '--intermediate', '32', '--seq-len', '32', '--max-positions', '32', '--batch-size', '2', '--vocab-size', '1000', '--eval-batches', '1', '--threads', '1', '--quiet']);
    assert.equal(code, 1);
    assert.match(errs[0], /the validation loss after step 1 is \S+( \(over 10 ln V = 69\))?\. checkpoint-1 was not written\. No earlier checkpoint is kept\./);
    assert.ok(!fs.existsSync(path.join(root, 'blowup', 'checkpoint-1')));

    // eval: a checkpoint with a NaN weight, and one whose finite weights give a diverged loss.
    for (const [name, damage] of [['nan-weight', (x: Float32Array) => (x[3] = NaN)], ['huge-weight', (x: Float32Array) => x.forEach((v, i) => (x[i] = v * 1e6))]] as const) {
      const dir = path.join(root, `eval-${name}`);
      fs.cpSync(path.join(root, 'whole'), dir, { recursive: true });
      const file = path.join(dir, 'checkpoint-12', 'model.safetensors');
      const { tensors, metadata } = readSafetensors(file);
      const writable: Record<string, WritableTensor> = {};
      for (const [k, t] of Object.entries(tensors)) writable[k] = { dtype: 'F32', shape: t.shape, data: t.data as Float32Array };
      damage(writable['bert.embeddings.word_embeddings.weight'].data as Float32Array);
      writeSafetensors(file, writable, metadata);
      // As a run that saved its damage would have: the checksums describe the damaged file.
      const sums = path.join(dir, 'checkpoint-12', 'checksums.sha256');
      fs.writeFileSync(sums, fs.readFileSync(sums, 'utf8').replace(/^\S+(?=  model\.safetensors$)/m, sha256File(file)));
      errs.length = 0;
      assert.equal(await main(['eval', dir]), 1, name);
      assert.match(errs[0], name === 'nan-weight' ? /"bert\.embeddings\.word_embeddings\.weight" holds NaN at index \d+: the weights are not finite/ : /the validation loss is \S+ \(over 10 ln V = 69\): this model diverged/, name);
    }
  } finally {
    console.error = origErr;
    console.log = origLog;
  }
});

test('a resumed run keeps the schedule of its first start; --extend-to recomputes it and logs what changed', async () => {
  seedTokenizer('sched');
  // SWE-A with a deadline at half the run: 3 of 6 steps; warmup 10%: 1 step (rounded).
  const cfg = tinyConfig('sched', { train: { steps: 6, saveEvery: 2, evalEvery: 0 }, sharing: { untie: 'adaptive', untieBy: 0.5, threshold: -0.99 } });
  await train({ config: cfg, haltAt: 3, progress: false }); // the newest checkpoint: step 2
  // A different length on resume is refused: it would move the learning rate, deadline and check interval mid-run.
  await assert.rejects(train({ config: tinyConfig('sched', { ...cfg, train: { ...cfg.train, steps: 20 } }), resume: true, progress: false }), /planned for 6 steps.*--extend-to 20/);
  await assert.rejects(train({ config: cfg, extendTo: 20, progress: false }), /already holds checkpoints/);
  await assert.rejects(train({ config: cfg, resume: true, extendTo: 4, progress: false }), /above the run's planned 6/);
  const result = await train({ config: cfg, resume: true, extendTo: 20, progress: false });
  assert.equal(result.steps, 20);
  const records = readMetrics(path.join(root, 'sched', 'metrics.jsonl'));
  const ext = records.filter((r) => r.type === 'extend');
  assert.equal(ext.length, 1);
  assert.equal(ext[0].step, 2);
  assert.deepEqual(ext[0].from, { steps: 6, warmupSteps: 1, untieAt: null, untieDeadline: 3, checkEvery: 1 });
  assert.deepEqual(ext[0].to, { steps: 20, warmupSteps: 2, untieAt: null, untieDeadline: 10, checkEvery: 1 });
  assert.deepEqual(ext[0].changed, ['steps', 'warmupSteps', 'untieDeadline']);
  // The new schedule is in force: linear decay to 0 at step 20 after 2 warmup steps, the deadline at 10.
  const lr = (step: number) => records.find((r) => r.type === 'train' && r.step === step + 1)!.lr as number;
  assert.ok(Math.abs(lr(5) - 3e-3 * (20 - 5) / 18) < 1e-12, `lr at step 6: ${lr(5)}`);
  assert.equal(records.find((r) => r.type === 'untie')!.step, 10);
  const state = JSON.parse(fs.readFileSync(path.join(root, 'sched', 'checkpoint-20', 'trainer_state.json'), 'utf8'));
  assert.deepEqual(state.schedule, ext[0].to);
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'sched', 'config.json'), 'utf8')).train.steps, 20);
  // The CLI refuses --steps on --resume and points to --extend-to.
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => errs.push(a.join(' '));
  try {
    assert.equal(await main(['train', '--resume', path.join(root, 'sched'), '--steps', '30']), 1);
  } finally {
    console.error = origErr;
  }
  assert.match(errs[0], /--steps cannot change on --resume.*--extend-to N/);
});

test('a tiny model learns what only context can tell: runs of one word, of random words', async () => {
  // Every sequence is [CLS] w1 x6, w2 x6, "." [SEP] with w1, w2 drawn from 20 words: a masked word is
  // the word next to it, while its frequency says nothing (each word 1/20).
  const dir = path.join(root, 'runs-corpus');
  writeWordCorpus(dir, 100, (a, b) => `${`${a} `.repeat(6)}${`${b} `.repeat(6)}.`, '\n\n');
  const cfg = tinyConfig('context', {
    model: { layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 16, dropout: 0, attentionDropout: 0 },
    data: { corpus: dir, seqLen: 16, vocabSize: 100, evalBatches: 4 },
    // The model sits on a plateau (~0.43: its own token and the ".") until it learns to read its neighbours,
    // then jumps to ~1.0; the jump comes between steps 150 and 400 depending on the seed and the position
    // start (scripts/context-probe.ts, 5 seeds each: at 250 steps 3/5 learned and 2/5 sinusoidal starts
    // had jumped; at 500 steps all 10 reached >= 0.985). 500 steps test the learning, not the seed's luck.
    train: { steps: 500, batchSize: 16, lr: 3e-3, logEvery: 50, evalEvery: 0, saveEvery: 0 },
    sharing: { share: '1x2', untie: 'step:100' },
  });
  const result = await train({ config: cfg, progress: false });
  // The best expected accuracy of a model blind to the neighbours, on these batches: right where the
  // masked position shows its own token (BERT keeps 10% unchanged) and on the "." (position 13),
  // and 1 in 20 on the words, which are uniform at every position.
  const batches = await prepareValidation(cfg.data, path.join(root, 'context'), 16);
  let masked = 0, blind = 0;
  for (const b of batches) {
    b.labels.forEach((label, i) => {
      if (label < 0) return;
      masked++;
      blind += b.inputIds[i] === label || i % b.seqLen === 13 ? 1 : 1 / 20;
    });
  }
  const blindAcc = blind / masked;
  assert.ok(masked > 100 && blindAcc < 0.3, `${masked} masked tokens; a context-blind model gets ${blindAcc}`);
  assert.ok(result.finalValAcc > 0.8 && result.finalValAcc > blindAcc + 0.5, `validation accuracy ${result.finalValAcc} (context-blind best ${blindAcc.toFixed(3)})`);
});

test('the CLI: --help lists every flag with its default, and --json prints the summary', async () => {
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    assert.equal(await main(['train', '--help']), 0);
    const help = logs.join('\n');
    for (const flag of ['--preset', '--config', '--corpus', '--out', '--steps', '--seed', '--eval-every', '--save-every', '--resume', '--threads', '--json', '--share', '--untie']) {
      assert.ok(help.includes(flag), `help lists ${flag}`);
    }
    assert.match(help, /--steps VALUE\s+training steps \(optimizer updates\) \(default: 1000\)/);
    logs.length = 0;
    seedTokenizer('cli');
    const code = await main(['train', '--json', '--out', root, '--name', 'cli', '--corpus', corpus, '--steps', '3', '--untie', 'step:0', '--layers', '2', '--hidden', '16',
      '--heads', '2', '--intermediate', '32', '--seq-len', '32', '--max-positions', '32', '--batch-size', '2', '--vocab-size', '1000', '--eval-batches', '1', '--threads', '1']);
    assert.equal(code, 0);
    const summary = JSON.parse(logs[logs.length - 1]);
    assert.deepEqual(Object.keys(summary).slice(0, 7), ['run_dir', 'steps', 'final_val_loss', 'final_val_acc', 'unigram_val_loss', 'unigram_val_acc', 'seconds']);
    assert.equal(summary.steps, 3);
    assert.ok(summary.unigram_val_loss > 0 && summary.unigram_val_acc >= 0 && summary.unigram_val_acc < 1, 'the unigram line is reported');
    assert.equal(summary.untied_at, 0, 'step:0: untied before the first update');
    const errs: string[] = [];
    const origErr = console.error;
    console.error = (...a: unknown[]) => errs.push(a.join(' '));
    try {
      assert.equal(await main(['train', '--preset', 'huge']), 1);
      assert.equal(await main(['train', '--stepz', '3']), 1);
      assert.equal(await main(['train', '--resume', path.join(root, 'nope')]), 1);
    } finally {
      console.error = origErr;
    }
    assert.match(errs[0], /unknown preset "huge"/);
    assert.match(errs[1], /Unknown option '--stepz'/);
    assert.match(errs[2], /nope does not exist/);
  } finally {
    console.log = orig;
  }
});

test('--budget: stops within one step of the budget, keeps its clock across a resume, and the schedule reaches zero at it', async () => {
  const { learningRateAt } = await import('../src/optim/schedule.js');
  const { parseDuration } = await import('../src/train/config.js');
  const sched = { lr: 1e-3, warmupFraction: 0.1, kind: 'linear' as const };
  assert.equal(learningRateAt(0, sched), 0);
  assert.ok(Math.abs(learningRateAt(0.05, sched) - 5e-4) < 1e-15);
  assert.equal(learningRateAt(0.1, sched), 1e-3);
  assert.ok(Math.abs(learningRateAt(0.55, sched) - 5e-4) < 1e-15);
  assert.equal(learningRateAt(1, sched), 0);
  assert.equal(learningRateAt(1, { ...sched, kind: 'cosine' }), 0);
  assert.equal(learningRateAt(1, { ...sched, kind: 'constant' }), 0);
  assert.deepEqual(['900s', '30m', '2h', '1h30m', '90', '1.5h'].map(parseDuration), [900, 1800, 7200, 5400, 90, 5400]);
  for (const bad of ['', 'abc', '0', '-5m', '5 minutes', '0s']) assert.throws(() => parseDuration(bad), UntieError, bad);

  const budget = 1.5;
  const budgetConfig = (name: string) => tinyConfig(name, { train: { budget, steps: 1000, saveEvery: 5, evalEvery: 0, evalPoints: 4 }, sharing: { untie: 'fraction:0.5' } });
  seedTokenizer('budget');
  const res = await train({ config: budgetConfig('budget'), progress: false });
  const recs = readMetrics(path.join(root, 'budget', 'metrics.jsonl'));
  const trainRecs = recs.filter((r) => r.type === 'train');
  const lastElapsed = trainRecs[trainRecs.length - 1].elapsed as number, before = trainRecs[trainRecs.length - 2].elapsed as number;
  assert.ok(lastElapsed >= budget && before < budget, `the step that crossed the budget was the last: ${before} < ${budget} <= ${lastElapsed}`);
  assert.equal(res.steps, trainRecs[trainRecs.length - 1].step);
  assert.ok(fs.existsSync(path.join(root, 'budget', `checkpoint-${res.steps}`)), 'a final checkpoint at the budget');
  // Each step's learning rate is the schedule at the fraction of the budget spent before it (which reaches 0 at 1).
  const cfgTrain = budgetConfig('budget').train;
  trainRecs.forEach((r, i) => {
    const spent = i === 0 ? 0 : (trainRecs[i - 1].elapsed as number);
    const expected = learningRateAt(spent / budget, { lr: cfgTrain.lr, warmupFraction: cfgTrain.warmupFraction, kind: cfgTrain.schedule });
    assert.ok(Math.abs((r.lr as number) - expected) <= 1e-12 * cfgTrain.lr, `step ${r.step}: lr ${r.lr} is the schedule at ${spent / budget} of the budget (${expected})`);
  });
  const evals = recs.filter((r) => r.type === 'eval');
  assert.equal(evals.length, 4, 'an evaluation at each quarter of the budget');
  const untie = recs.find((r) => r.type === 'untie')!;
  const untieElapsed = trainRecs.find((r) => r.step === untie.step)!.elapsed as number;
  assert.ok(untieElapsed >= budget / 2 && untieElapsed < budget, 'fraction:0.5 unties at half the budget');

  // A crash and a resume: the clock continues from the checkpoint's elapsed time, it does not restart.
  seedTokenizer('budget-cut');
  const cutAt = Math.max(6, Math.floor(res.steps / 2));
  await train({ config: budgetConfig('budget-cut'), haltAt: cutAt, progress: false });
  const ck = listCheckpointSteps(path.join(root, 'budget-cut'));
  const state = JSON.parse(fs.readFileSync(path.join(root, 'budget-cut', `checkpoint-${ck[ck.length - 1]}`, 'trainer_state.json'), 'utf8'));
  assert.ok(state.elapsed > 0 && state.elapsed < budget);
  // --extend-to lengthens a step-count run; a budget run's schedule is fractions of its seconds, so it is refused, before anything is written.
  const metricsBefore = fs.readFileSync(path.join(root, 'budget-cut', 'metrics.jsonl'));
  await assert.rejects(
    train({ config: budgetConfig('budget-cut'), resume: true, extendTo: 2000, progress: false }),
    /--extend-to lengthens a step-count run; this one trains for a --budget of \S+, .*Resume it without --extend-to/,
  );
  assert.deepEqual(listCheckpointSteps(path.join(root, 'budget-cut')), ck);
  assert.deepEqual(fs.readFileSync(path.join(root, 'budget-cut', 'metrics.jsonl')), metricsBefore);
  const resumed = await train({ config: budgetConfig('budget-cut'), resume: true, progress: false });
  assert.ok(resumed.seconds >= budget, 'the resumed run ends at the budget');
  const after = readMetrics(path.join(root, 'budget-cut', 'metrics.jsonl')).filter((r) => r.type === 'train' && r.step > state.step);
  assert.ok((after[0].elapsed as number) > state.elapsed, 'the time already spent counts');
  assert.ok(resumed.seconds - state.elapsed < budget, 'the resumed part did not get a whole new budget');
});

function listCheckpointSteps(dir: string): number[] {
  return fs.readdirSync(dir).map((n) => /^checkpoint-(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m![1])).sort((a, b) => a - b);
}

test('--budget bad input: unparsable, not positive, or with --steps is a one-line error before anything is written', async () => {
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => errs.push(a.join(' '));
  const out = path.join(root, 'budget-bad');
  try {
    assert.equal(await main(['train', '--budget', 'soon', '--out', out]), 1);
    assert.equal(await main(['train', '--budget', '0s', '--out', out]), 1);
    assert.equal(await main(['train', '--budget', '5m', '--steps', '10', '--out', out]), 1);
  } finally {
    console.error = origErr;
  }
  assert.match(errs[0], /not a duration/);
  assert.match(errs[1], /positive/);
  assert.match(errs[2], /--budget and --steps/);
  assert.ok(errs.every((e) => !e.includes('\n')), 'one line each');
  assert.ok(!fs.existsSync(out), 'nothing written');
});
