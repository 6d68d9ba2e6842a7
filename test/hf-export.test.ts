// The Pre-LN export: a Pre-LN model (masked LM, token and sequence
// classifier, with and without biases) exported as Hugging Face's
// RoBERTa-PreLayerNorm folder: its config and tensor names, the shifted
// position table, untie reading it back to identical weights, the CLI naming
// the class. Then the evidence that the folder means what untie's model
// computes: test/hf_roberta_prelayernorm.py, a plain-PyTorch re-implementation
// of the Hugging Face classes that reads the exported folder by Hugging Face's
// names alone, gives untie's logits on a padded batch. That part is skipped
// when no python imports torch, and fails instead when UNTIE_REQUIRE_TORCH=1.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { CLS_ID, PAD_ID, SEP_ID, trainTokenizer, type WordPieceTokenizer } from '../src/data/tokenizer.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type TokenBatch } from '../src/models/bert.js';
import { BertForSequenceClassification, BertForTokenClassification } from '../src/models/heads.js';
import type { Module } from '../src/nn/module.js';
import { loadModelWeights, saveModelWeights } from '../src/train/checkpoint.js';
import { exportModel, load, loadClassifier, openCheckpoint, readWeights } from '../src/train/load.js';
import { readSafetensors } from '../src/train/safetensors.js';
import { Rng } from '../src/tensor/rng.js';
import { noGrad } from '../src/tensor/tensor.js';
import { main } from '../src/cli/main.js';
import { findTorchPython } from '../bench/torch-python.js';

/**
 * Per case: max |untie - re-implementation| over the largest |logit|, at real
 * (not padding) positions. Measured about 3e-7 on the development machine
 * (float32 rounding in different orders of summation); the margin covers
 * another BLAS.
 */
const LOGITS_RTOL = 1e-5;

const here = fileURLToPath(new URL('.', import.meta.url));
const python = findTorchPython();

let root: string;
let tokenizer: WordPieceTokenizer;

function tinyConfig(bias = true): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: tokenizer.vocabSize, hidden: 32, layers: 2, heads: 4, intermediate: 64, maxPositions: 16,
    dropout: 0.1, attentionDropout: 0.1, norm: 'pre', bias, layerNormEps: 1e-5,
  };
}

/** Moves every weight off its init (LayerNorm 1/0, zero biases), so every name that could be swapped is exercised. */
function perturb(model: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const [, p] of model.namedParameters()) for (let i = 0; i < p.size; i++) p.data[i] += 0.1 * rng.normal();
}

interface Case {
  name: string;
  kind: 'mlm' | 'token' | 'sequence';
  model: BertForMaskedLM | BertForTokenClassification | BertForSequenceClassification;
  /** The checkpoint-like folder (weights, HF config, tokenizer) untie export reads. */
  source: string;
  out: string;
}

const cases: Case[] = [];

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-hf-export-'));
  tokenizer = await trainTokenizer(loadBrown().slice(0, 4).flatMap((d) => d.sentences.map(sentenceText)), { vocabSize: 200 });
  const models: [string, Case['kind'], Case['model']][] = [
    ['mlm', 'mlm', new BertForMaskedLM(tinyConfig(), 1)],
    ['mlm-no-bias', 'mlm', new BertForMaskedLM(tinyConfig(false), 2)],
    ['token', 'token', new BertForTokenClassification(tinyConfig(), ['DET', 'NOUN', 'VERB'], 3)],
    ['sequence', 'sequence', new BertForSequenceClassification(tinyConfig(), ['ham', 'spam'], 4)],
  ];
  for (const [name, kind, model] of models) {
    perturb(model, 10 + cases.length);
    const source = path.join(root, name);
    fs.mkdirSync(source);
    saveModelWeights(source, model); // as a checkpoint (or finetune's best/) holds it
    tokenizer.save(source);
    cases.push({ name, kind, model: model.eval(), source, out: path.join(root, `${name}-hf`) });
  }
});

const caseNamed = (name: string) => cases.find((c) => c.name === name)!;

test('a Pre-LN masked LM exports as RobertaPreLayerNormForMaskedLM: config, names, shifted position table', () => {
  const c = caseNamed('mlm');
  const r = exportModel(c.source, c.out);
  assert.deepEqual([r.architecture, r.modelType], ['RobertaPreLayerNormForMaskedLM', 'roberta-prelayernorm']);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) assert.ok(r.files.includes(f), f);
  const hf = JSON.parse(fs.readFileSync(path.join(c.out, 'config.json'), 'utf8'));
  assert.equal(hf.model_type, 'roberta-prelayernorm');
  assert.deepEqual(hf.architectures, ['RobertaPreLayerNormForMaskedLM']);
  assert.equal(hf.max_position_embeddings, 17); // 16 positions and RoBERTa's padding row
  assert.deepEqual([hf.pad_token_id, hf.bos_token_id, hf.eos_token_id], [PAD_ID, CLS_ID, SEP_ID]);
  assert.deepEqual([hf.hidden_act, hf.position_embedding_type, hf.tie_word_embeddings, hf.layer_norm_eps], ['gelu', 'absolute', true, 1e-5]);
  assert.deepEqual([hf.vocab_size, hf.hidden_size, hf.num_hidden_layers, hf.num_attention_heads, hf.intermediate_size, hf.type_vocab_size], [200, 32, 2, 4, 64, 2]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(c.out, 'tokenizer_config.json'), 'utf8')).tokenizer_class, 'BertTokenizerFast');

  const { tensors } = readSafetensors(path.join(c.out, 'model.safetensors'));
  const layer = (i: number) => [
    ...['query', 'key', 'value'].flatMap((p) => [`attention.self.${p}.weight`, `attention.self.${p}.bias`]),
    'attention.output.dense.weight', 'attention.output.dense.bias', 'attention.LayerNorm.weight', 'attention.LayerNorm.bias',
    'intermediate.LayerNorm.weight', 'intermediate.LayerNorm.bias', 'intermediate.dense.weight', 'intermediate.dense.bias',
    'output.dense.weight', 'output.dense.bias',
  ].map((n) => `roberta_prelayernorm.encoder.layer.${i}.${n}`);
  const expected = [
    ...['word_embeddings.weight', 'position_embeddings.weight', 'token_type_embeddings.weight', 'LayerNorm.weight', 'LayerNorm.bias'].map((n) => `roberta_prelayernorm.embeddings.${n}`),
    ...layer(0), ...layer(1),
    'roberta_prelayernorm.LayerNorm.weight', 'roberta_prelayernorm.LayerNorm.bias',
    'lm_head.dense.weight', 'lm_head.dense.bias', 'lm_head.layer_norm.weight', 'lm_head.layer_norm.bias', 'lm_head.bias',
  ];
  assert.deepEqual(Object.keys(tensors).sort(), expected.sort());

  // Where each of untie's Pre-LN norms went.
  const named = new Map(c.model.namedParameters());
  const same = (hfName: string, untieName: string) => assert.deepEqual(tensors[hfName].data, named.get(untieName)!.data, hfName);
  same('roberta_prelayernorm.encoder.layer.1.attention.LayerNorm.weight', 'bert.encoder.layer.1.attention.output.LayerNorm.weight');
  same('roberta_prelayernorm.encoder.layer.1.intermediate.LayerNorm.bias', 'bert.encoder.layer.1.output.LayerNorm.bias');
  same('roberta_prelayernorm.LayerNorm.weight', 'bert.encoder.final_layer_norm.weight');
  same('lm_head.layer_norm.weight', 'cls.predictions.transform.LayerNorm.weight');
  same('lm_head.bias', 'cls.predictions.bias');
  // Position row t + 1 is untie's position t; row 0, RoBERTa's padding position, is zero.
  const positions = tensors['roberta_prelayernorm.embeddings.position_embeddings.weight'];
  assert.deepEqual(positions.shape, [17, 32]);
  assert.deepEqual(positions.data.subarray(0, 32), new Float32Array(32));
  assert.deepEqual(positions.data.subarray(32), named.get('bert.embeddings.position_embeddings.weight')!.data);

  // untie reads the folder back to the same model (names, the table's padding row dropped).
  const back = load(c.out);
  assert.equal(back.model.config.maxPositions, 16);
  assert.equal(back.model.config.norm, 'pre');
  for (const [name, t] of back.model.namedParameters()) assert.deepEqual(t.data, named.get(name)!.data, name);
  // ... and so does finetune, which starts a classifier's encoder from it (the pooler optional, the classifier new).
  const info = openCheckpoint(c.out);
  const encoder = new BertForSequenceClassification(info.config, ['a', 'b'], 9);
  loadModelWeights(info.weightsFile, encoder, { wanted: (n) => !n.startsWith('classifier.'), optional: (n) => n.startsWith('bert.pooler.'), tensors: readWeights(info) });
  for (const [name, t] of encoder.namedParameters()) if (name.startsWith('bert.e')) assert.deepEqual(t.data, named.get(name)!.data, name);
});

test('bias-free and fine-tuned Pre-LN models export as RobertaPreLayerNorm classes and load back identically', () => {
  const expect = { 'mlm-no-bias': 'RobertaPreLayerNormForMaskedLM', token: 'RobertaPreLayerNormForTokenClassification', sequence: 'RobertaPreLayerNormForSequenceClassification' };
  for (const [name, architecture] of Object.entries(expect)) {
    const c = caseNamed(name);
    assert.equal(exportModel(c.source, c.out).architecture, architecture);
    const hf = JSON.parse(fs.readFileSync(path.join(c.out, 'config.json'), 'utf8'));
    assert.deepEqual(hf.architectures, [architecture]);
    const back = c.kind === 'mlm' ? load(c.out).model : loadClassifier(c.out).model;
    const named = new Map(c.model.namedParameters());
    assert.equal(back.namedParameters().length, named.size);
    for (const [n, t] of back.namedParameters()) assert.deepEqual(t.data, named.get(n)!.data, `${name}: ${n}`);
  }
  const tensorsOf = (name: string) => readSafetensors(path.join(caseNamed(name).out, 'model.safetensors')).tensors;
  // Hugging Face's Linear layers always have biases: a bias-free model gets zeros.
  const noBias = tensorsOf('mlm-no-bias');
  assert.deepEqual(noBias['roberta_prelayernorm.encoder.layer.0.attention.self.query.bias'].data, new Float32Array(32));
  assert.deepEqual(noBias['lm_head.dense.bias'].data, new Float32Array(32));
  assert.equal(JSON.parse(fs.readFileSync(path.join(caseNamed('mlm-no-bias').out, 'config.json'), 'utf8')).untie_bias, false);
  // The token head keeps its name; the sequence head is RoBERTa's: the pooler is classifier.dense, the output layer classifier.out_proj.
  const token = Object.keys(tensorsOf('token'));
  assert.ok(token.includes('classifier.weight') && !token.some((n) => n.startsWith('lm_head.') || n.includes('pooler')));
  const seq = tensorsOf('sequence');
  const seqModel = new Map(caseNamed('sequence').model.namedParameters());
  assert.deepEqual(seq['classifier.dense.weight'].data, seqModel.get('bert.pooler.dense.weight')!.data);
  assert.deepEqual(seq['classifier.out_proj.bias'].data, seqModel.get('classifier.bias')!.data);
  assert.ok(!('classifier.weight' in seq));
  assert.equal(JSON.parse(fs.readFileSync(path.join(caseNamed('sequence').out, 'config.json'), 'utf8')).id2label[1], 'spam');
});

test('untie export names the Hugging Face class on stdout', async () => {
  const run = async (args: string[]) => {
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void out.push(a.join(' '));
    try {
      return { code: await main(args), out: out.join('\n') };
    } finally {
      console.log = log;
    }
  };
  const pre = await run(['export', caseNamed('mlm').source, path.join(root, 'cli-pre')]);
  assert.equal(pre.code, 0);
  assert.match(pre.out, /RobertaPreLayerNormForMaskedLM\.from_pretrained\(".*cli-pre"\) and AutoTokenizer\.from_pretrained/);
  assert.match(pre.out, /Pre-LN model, which Hugging Face's BERT classes cannot hold: it is written as RoBERTa-PreLayerNorm/);
  const seq = await run(['export', caseNamed('sequence').source, path.join(root, 'cli-seq')]);
  assert.match(seq.out, /RobertaPreLayerNormForSequenceClassification\.from_pretrained/);
  assert.match(seq.out, /same logits; fine-tuning it further in Hugging Face adds one dropout/);
  // A Post-LN model is still a BERT folder.
  const post = path.join(root, 'post');
  fs.mkdirSync(post);
  saveModelWeights(post, new BertForMaskedLM({ ...tinyConfig(), norm: 'post' }, 5));
  tokenizer.save(post);
  const r = await run(['export', post, path.join(root, 'cli-post')]);
  assert.match(r.out, /BertForMaskedLM\.from_pretrained/);
  assert.doesNotMatch(r.out, /Roberta/);
});

test('a RoBERTa-PreLayerNorm folder untie cannot read is refused in one line', () => {
  const c = caseNamed('mlm');
  exportModel(c.source, c.out);
  const broken = (name: string, edit: (hf: Record<string, unknown>) => void) => {
    const dir = path.join(root, name);
    fs.cpSync(c.out, dir, { recursive: true });
    const file = path.join(dir, 'config.json');
    const hf = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(hf);
    fs.writeFileSync(file, JSON.stringify(hf));
    return dir;
  };
  assert.throws(() => load(broken('pad1', (hf) => delete hf.pad_token_id)), /pad_token_id 1 numbers its positions from 2; untie reads only those with pad_token_id 0/);
  assert.throws(() => load(broken('relative', (hf) => (hf.position_embedding_type = 'relative_key'))), /position_embedding_type "relative_key" is not supported/);
  assert.throws(() => load(broken('cls', (hf) => (hf.architectures = ['RobertaPreLayerNormForCausalLM']))), /architecture "RobertaPreLayerNormForCausalLM" is not one untie reads for model_type "roberta-prelayernorm"/);
  assert.throws(() => load(broken('bertname', (hf) => (hf.architectures = ['BertForMaskedLM']))), /is not one untie reads for model_type "roberta-prelayernorm"/);
});

// ---- the Hugging Face side, re-implemented in PyTorch

/** Batch 3 x 16 (= max positions): one full-length row (the table's last row), two padded at the end, both token types. */
function paddedBatch(c: BertConfig): TokenBatch {
  const B = 3, T = c.maxPositions, lengths = [T, 11, 5], rng = new Rng(77);
  const inputIds = new Int32Array(B * T), tokenTypeIds = new Int32Array(B * T), attentionMask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]; t++) {
      const i = b * T + t;
      inputIds[i] = t === 0 ? CLS_ID : t === lengths[b] - 1 ? SEP_ID : 5 + (rng.nextU32() % (c.vocabSize - 5));
      tokenTypeIds[i] = t > lengths[b] / 2 ? 1 : 0;
      attentionMask[i] = 1;
    }
  }
  return { inputIds, tokenTypeIds, attentionMask, batchSize: B, seqLen: T };
}

/** untie's logits, rows of `width`: every position (masked LM, token) or every sequence. */
function untieLogits(c: Case, b: TokenBatch): Float32Array {
  return noGrad(() => {
    if (c.model instanceof BertForMaskedLM) {
      const all = Int32Array.from({ length: b.batchSize * b.seqLen }, (_, i) => i);
      return c.model.logitsAt(c.model.encode(b), all).data;
    }
    return c.model.logits(b).data;
  });
}

interface Parity {
  hfClass: string;
  positionIds: number[][];
  rel: number;
  rows: number;
}

let parity: Map<string, Parity> | null = null;

/** Writes each case's inputs, runs the Python side once for all of them, and compares. */
function allParity(): Map<string, Parity> {
  if (parity) return parity;
  const dirs = cases.map((c) => {
    exportModel(c.source, path.join(root, `torch-${c.name}`, 'model'));
    const b = paddedBatch(c.model.config);
    const rows = (a: Int32Array) => Array.from({ length: b.batchSize }, (_, i) => Array.from(a.subarray(i * b.seqLen, (i + 1) * b.seqLen)));
    const dir = path.join(root, `torch-${c.name}`);
    fs.writeFileSync(path.join(dir, 'inputs.json'), JSON.stringify({ input_ids: rows(b.inputIds), token_type_ids: rows(b.tokenTypeIds) }));
    return dir;
  });
  const run = spawnSync(python!, [path.join(here, 'hf_roberta_prelayernorm.py'), ...dirs], {
    encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
  });
  assert.equal(run.status, 0, `test/hf_roberta_prelayernorm.py failed:\n${run.stderr}${run.stdout}`);
  parity = new Map();
  for (const [k, c] of cases.entries()) {
    const b = paddedBatch(c.model.config);
    const res = JSON.parse(fs.readFileSync(path.join(dirs[k], 'hf.json'), 'utf8')) as { class: string; shape: number[]; position_ids: number[][] };
    const buf = fs.readFileSync(path.join(dirs[k], 'logits.f32'));
    const theirs = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const ours = untieLogits(c, b);
    assert.equal(theirs.length, ours.length, `${c.name}: logits of shape [${res.shape}] against untie's ${ours.length} numbers`);
    const width = res.shape[res.shape.length - 1];
    // Compare real positions only: at padding the two models look up different position rows, and nothing reads those outputs.
    const real = (row: number) => c.kind === 'sequence' || b.attentionMask[row] > 0;
    let diff = 0, scale = 0, rows = 0;
    for (let row = 0; row < ours.length / width; row++) {
      if (!real(row)) continue;
      rows++;
      for (let j = row * width; j < (row + 1) * width; j++) {
        diff = Math.max(diff, Math.abs(ours[j] - theirs[j]));
        scale = Math.max(scale, Math.abs(theirs[j]));
      }
    }
    parity.set(c.name, { hfClass: res.class, positionIds: res.position_ids, rel: Number.isNaN(diff) ? Infinity : diff / scale, rows });
  }
  return parity;
}

const requireTorch = process.env.UNTIE_REQUIRE_TORCH === '1';
const caseNames = ['mlm', 'mlm-no-bias', 'token', 'sequence'];
for (const name of caseNames) {
  const title = `a PyTorch re-implementation of Hugging Face's RobertaPreLayerNorm class, reading the exported folder, gives untie's logits (${name})`;
  if (!python && !requireTorch) {
    test.skip(`${title}: no python that imports torch (set UNTIE_TORCH_PYTHON to one)`, () => {});
    continue;
  }
  test(title, (t) => {
    assert.ok(python, 'UNTIE_REQUIRE_TORCH=1 but no python on this machine imports torch (apt-get install python3-torch, or set UNTIE_TORCH_PYTHON)');
    const r = allParity().get(name)!;
    t.diagnostic(`${r.hfClass}: ${r.rows} rows, max |untie - torch| / max |logit| = ${r.rel.toExponential(2)}`);
    assert.equal(r.hfClass, { mlm: 'RobertaPreLayerNormForMaskedLM', 'mlm-no-bias': 'RobertaPreLayerNormForMaskedLM', token: 'RobertaPreLayerNormForTokenClassification', sequence: 'RobertaPreLayerNormForSequenceClassification' }[name]);
    // RoBERTa's rule from the input ids: real tokens count 1..len, padding stays at 0.
    assert.deepEqual(r.positionIds.map((row) => row.join(' ')), [16, 11, 5].map((len) => Array.from({ length: 16 }, (_, t) => (t < len ? t + 1 : 0)).join(' ')));
    assert.ok(r.rel <= LOGITS_RTOL, `${name}: logits differ by ${r.rel} of the largest logit (tolerance ${LOGITS_RTOL})`);
  });
}
