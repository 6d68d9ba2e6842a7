// `untie export --onnx`: the ONNX graph untie writes, run by the runtimes
// everyone else deploys on. Tiny models (masked LM, token and sequence
// classifiers; Post-LN and Pre-LN; with and without biases), their weights
// moved off their init, exported through the CLI; then
//  - the file: plain ONNX ops at opset 17, Hugging Face's input and output
//    names with symbolic batch and sequence axes, the weights as untie has them;
//  - onnxruntime-node runs each graph on a padded batch (token type ids of 0
//    and 1), and its logits are untie's forward pass within 1e-4;
//  - transformers.js, offline (env.allowRemoteModels = false) and from the
//    exported folder, gives `untie fill-mask`'s top-k tokens and untie's
//    classifiers' labels;
//  - bad input is refused in one line before anything is written, and no
//    half-written folder is left behind.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { trainTokenizer, type WordPieceTokenizer } from '../src/data/tokenizer.js';
import { writeFolderWhole } from '../src/export/folder.js';
import { ONNX_INPUTS, ONNX_OPSET } from '../src/export/bert-onnx.js';
import { ONNX_MODEL_FILE } from '../src/export/onnx.js';
import { transformersJsConfig } from '../src/export/transformers-js.js';
import { decodeOnnx, ONNX_FLOAT } from '../src/export/onnx-proto.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type TokenBatch } from '../src/models/bert.js';
import { BertForSequenceClassification, BertForTokenClassification, type BertClassifier } from '../src/models/heads.js';
import { saveModelWeights } from '../src/train/checkpoint.js';
import { noGrad } from '../src/tensor/tensor.js';
import { main } from '../src/cli/main.js';
import { assertSameTopK, perturb, type Prediction } from './helpers.js';

/** max |onnxruntime - untie| over all logits (real and padding positions). Measured 6e-8 to 8e-7 on the development machine (AMD EPYC Zen 3, native kernels). */
const LOGITS_ATOL = 1e-4;

let root: string;
let tokenizer: WordPieceTokenizer;

interface Case {
  name: string;
  model: BertForMaskedLM | BertClassifier;
  /** A checkpoint-like folder (weights, HF config, tokenizer), as a run or finetune saves one. */
  source: string;
  /** What `untie export SOURCE OUT --onnx` wrote. */
  out: string;
  stdout: string;
}
const cases: Case[] = [];
const caseNamed = (name: string) => cases.find((c) => c.name === name)!;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = console.log, error = console.error;
  let out = '', err = '';
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
  try {
    return { code: await main(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function tinyConfig(norm: 'post' | 'pre', bias = true): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: tokenizer.vocabSize, hidden: 32, layers: 2, heads: 4, intermediate: 64, maxPositions: 24,
    dropout: 0.1, attentionDropout: 0.1, norm, bias, layerNormEps: 1e-5,
  };
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-onnx-'));
  tokenizer = await trainTokenizer(loadBrown().slice(0, 6).flatMap((d) => d.sentences.map(sentenceText)), { vocabSize: 300 });
  const tags = ['DET', 'NOUN', 'VERB', 'ADJ', '.'];
  const models: [string, Case['model']][] = [
    ['mlm-post', new BertForMaskedLM(tinyConfig('post'), 1)],
    ['mlm-pre', new BertForMaskedLM(tinyConfig('pre'), 2)],
    ['mlm-pre-no-bias', new BertForMaskedLM(tinyConfig('pre', false), 3)],
    ['token-post', new BertForTokenClassification(tinyConfig('post'), tags, 4)],
    ['token-pre', new BertForTokenClassification(tinyConfig('pre'), tags, 5)],
    ['sequence-post', new BertForSequenceClassification(tinyConfig('post'), ['ham', 'spam'], 6)],
    ['sequence-pre', new BertForSequenceClassification(tinyConfig('pre', false), ['ham', 'spam', 'other'], 7)],
  ];
  for (const [i, [name, model]] of models.entries()) {
    perturb(model, 10 + i);
    const source = path.join(root, name);
    fs.mkdirSync(source);
    saveModelWeights(source, model);
    tokenizer.save(source, { modelMaxLength: model.config.maxPositions });
    const out = path.join(root, 'exported', name);
    const r = await cli(['export', source, out, '--onnx']);
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    cases.push({ name, model: model.eval(), source, out, stdout: r.out });
  }
});

/** Three sequences of different lengths, padded to the longest (pad id 0, mask 0), the second with token type 1 after its first [SEP]. */
async function paddedBatch(): Promise<TokenBatch> {
  const texts = ['the jury said it did not find that many of the voters', 'the city [MASK] of atlanta', 'he said'];
  const encoded = await Promise.all(texts.map((t) => tokenizer.encode(t)));
  encoded[1] = [...encoded[1], ...(await tokenizer.encode('it was a [MASK] election')).slice(1)];
  const T = Math.max(...encoded.map((e) => e.length)), B = encoded.length;
  const batch: TokenBatch = { inputIds: new Int32Array(B * T), tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T), batchSize: B, seqLen: T };
  encoded.forEach((ids, b) => {
    const firstSep = ids.indexOf(3);
    ids.forEach((id, t) => {
      batch.inputIds[b * T + t] = id;
      batch.attentionMask[b * T + t] = 1;
      batch.tokenTypeIds[b * T + t] = b === 1 && t > firstSep ? 1 : 0;
    });
  });
  assert.ok(encoded.some((e) => e.length < T) && T <= 24, 'the batch has padding and fits the models');
  return batch;
}

/** untie's own forward pass: logits in the graph's layout. */
function untieLogits(model: Case['model'], b: TokenBatch): Float32Array {
  return noGrad(() => {
    if ('kind' in model) return model.logits(b);
    return model.logitsAt(model.encode(b), Int32Array.from({ length: b.batchSize * b.seqLen }, (_, i) => i));
  }).data.slice();
}

test('the .onnx file: plain ops at opset 17, Hugging Face\'s names with symbolic batch and sequence axes, untie\'s weights', () => {
  const allowed = new Set([
    'Shape', 'Concat', 'Gather', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Cast', 'Unsqueeze', 'Reshape', 'Transpose',
    'Gemm', 'MatMul', 'LayerNormalization', 'Softmax', 'Erf', 'Tanh',
  ]);
  for (const c of cases) {
    const onnx = decodeOnnx(fs.readFileSync(path.join(c.out, ONNX_MODEL_FILE)));
    assert.deepEqual(onnx.opset_import.map((o) => [o.domain ?? '', o.version]), [['', ONNX_OPSET]], c.name);
    const ops = new Set(onnx.graph.node.map((n) => n.op_type));
    assert.deepEqual([...ops].filter((op) => !allowed.has(op)), [], `${c.name} uses only plain ONNX ops`);
    assert.ok(ops.has('Erf') && ops.has('LayerNormalization') && ops.has('Softmax'), c.name);
    assert.equal(ops.has('Tanh'), c.name.startsWith('sequence'), `${c.name}: only the pooler has a tanh`);
    assert.deepEqual(onnx.graph.input.map((i) => i.name), [...ONNX_INPUTS]);
    for (const input of onnx.graph.input) {
      assert.deepEqual(input.type.tensor_type.shape.dim, [{ dim_param: 'batch' }, { dim_param: 'sequence' }], `${c.name} ${input.name}`);
    }
    const [output] = onnx.graph.output;
    assert.equal(output.name, 'logits');
    const labels = 'labels' in c.model ? c.model.labels.length : c.model.config.vocabSize;
    const expected = c.name.startsWith('sequence') ? [{ dim_param: 'batch' }, { dim_value: labels }] : [{ dim_param: 'batch' }, { dim_param: 'sequence' }, { dim_value: labels }];
    assert.deepEqual(output.type.tensor_type.shape.dim, expected, c.name);
    // Every parameter is an initializer under its own name, with its values; the tied MLM decoder is the word table, stored once.
    const initializers = new Map(onnx.graph.initializer.map((t) => [t.name, t]));
    for (const [name, p] of c.model.namedParameters()) {
      const t = initializers.get(name);
      assert.ok(t, `${c.name}: ${name} is in the file`);
      assert.equal(t.data_type, ONNX_FLOAT);
      assert.deepEqual(t.dims, p.shape, name);
      const raw = t.raw_data;
      assert.deepEqual(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), p.data, name);
    }
    const floats = onnx.graph.initializer.filter((t) => t.data_type === ONNX_FLOAT && t.dims.length > 0);
    assert.equal(floats.length, c.model.namedParameters().length, `${c.name}: no weight is stored twice`);
  }
});

test('onnxruntime-node runs every exported graph on a padded batch and gives untie\'s logits within 1e-4', async () => {
  const b = await paddedBatch();
  const int64 = (a: ArrayLike<number>) => new ort.Tensor('int64', BigInt64Array.from(Array.from(a), (v) => BigInt(v)), [b.batchSize, b.seqLen]);
  const feeds = { input_ids: int64(b.inputIds), attention_mask: int64(b.attentionMask), token_type_ids: int64(b.tokenTypeIds) };
  for (const c of cases) {
    const session = await ort.InferenceSession.create(path.join(c.out, ONNX_MODEL_FILE));
    const { logits } = await session.run(feeds);
    const expected = untieLogits(c.model, b);
    const width = 'labels' in c.model ? c.model.labels.length : c.model.config.vocabSize;
    assert.deepEqual(logits.dims, c.name.startsWith('sequence') ? [b.batchSize, width] : [b.batchSize, b.seqLen, width], c.name);
    const got = logits.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    assert.ok(worst <= LOGITS_ATOL, `${c.name}: max |onnxruntime - untie| = ${worst}`);
    // The mask works: the shortest sequence alone, unpadded, gets the logits it had at its real positions in the batch.
    const last = b.batchSize - 1, n = b.attentionMask.subarray(last * b.seqLen, (last + 1) * b.seqLen).reduce((s, m) => s + m, 0);
    const alone = (a: ArrayLike<number>) => new ort.Tensor('int64', BigInt64Array.from(Array.from(a).slice(last * b.seqLen, last * b.seqLen + n), (v) => BigInt(v)), [1, n]);
    const unpadded = (await session.run({ input_ids: alone(b.inputIds), attention_mask: alone(b.attentionMask), token_type_ids: alone(b.tokenTypeIds) })).logits.data as Float32Array;
    const offset = c.name.startsWith('sequence') ? last * width : last * b.seqLen * width;
    for (let i = 0; i < unpadded.length; i++) assert.ok(Math.abs(unpadded[i] - got[offset + i]) <= LOGITS_ATOL, `${c.name}: unpadded logit ${i}`);
    await session.release();
  }
});

/** transformers.js, offline: the exported folder by its path, nothing fetched. */
async function transformers() {
  const t = await import('@huggingface/transformers');
  t.env.allowRemoteModels = false;
  t.env.allowLocalModels = true;
  // A Pre-LN folder's config.json names RobertaPreLayerNorm classes, and transformers.js warns that it falls back to its plain encoder (as it should).
  t.env.logLevel = t.LogLevel.ERROR;
  return t;
}

/** The pipeline options for an exported folder: a Pre-LN model's config with the model_type transformers.js knows. */
async function pipelineOptions(dir: string) {
  const { PretrainedConfig } = await transformers();
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  return config.model_type === 'bert' ? {} : { config: new PretrainedConfig(transformersJsConfig(config)) };
}

test('transformers.js\'s fill-mask pipeline, offline from the exported folder, gives untie fill-mask\'s top-k tokens (Post-LN and Pre-LN)', async () => {
  const { pipeline } = await transformers();
  const texts = ['the jury said it did not [MASK] that many of the voters', 'the [MASK] of atlanta'];
  for (const name of ['mlm-post', 'mlm-pre', 'mlm-pre-no-bias']) {
    const c = caseNamed(name);
    const fill = await pipeline('fill-mask', c.out, await pipelineOptions(c.out));
    // Both texts in one call: the pipeline pads the shorter one.
    const results = (await fill(texts, { top_k: 5 })) as unknown as Prediction[][];
    for (const [i, text] of texts.entries()) {
      const r = await cli(['fill-mask', c.out, text, '--top-k', '5', '--json']);
      assert.equal(r.code, 0, r.err);
      assertSameTopK(results[i], JSON.parse(r.out) as Prediction[], `${name}: "${text}"`);
    }
    await fill.dispose();
  }
});

test('transformers.js\'s token- and text-classification pipelines give untie\'s classifiers\' labels', async () => {
  const { pipeline } = await transformers();
  const texts = ['the jury said it did not find that many of the voters', 'the city of atlanta'];
  const encoded = await Promise.all(texts.map((t) => tokenizer.encode(t)));
  const single = (ids: number[]): TokenBatch => ({
    inputIds: Int32Array.from(ids), tokenTypeIds: new Int32Array(ids.length), attentionMask: new Float32Array(ids.length).fill(1), batchSize: 1, seqLen: ids.length,
  });
  const softmaxArgmax = (row: ArrayLike<number>) => {
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
    let z = 0;
    for (let j = 0; j < row.length; j++) z += Math.exp(row[j] - row[best]);
    return { best, p: 1 / z };
  };
  for (const name of ['token-post', 'token-pre']) {
    const c = caseNamed(name);
    const labels = (c.model as BertClassifier).labels;
    const tag = await pipeline('token-classification', c.out, await pipelineOptions(c.out));
    const results = (await tag(texts, { ignore_labels: [] })) as unknown as { entity: string; score: number; index: number }[][];
    for (const [i, ids] of encoded.entries()) {
      const logits = untieLogits(c.model, single(ids));
      const L = labels.length;
      // One entry per token that is not [CLS] or [SEP], at its index, with untie's label and probability.
      assert.deepEqual(results[i].map((r) => r.index), ids.slice(1, -1).map((_, j) => j + 1), `${name}: text ${i}`);
      for (const r of results[i]) {
        const { best, p } = softmaxArgmax(logits.subarray(r.index * L, (r.index + 1) * L));
        assert.equal(r.entity, labels[best], `${name}: text ${i}, token ${r.index}`);
        assert.ok(Math.abs(r.score - p) < 1e-5, `${name}: text ${i}, token ${r.index}: p ${r.score} against ${p}`);
      }
    }
    await tag.dispose();
  }
  for (const name of ['sequence-post', 'sequence-pre']) {
    const c = caseNamed(name);
    const labels = (c.model as BertClassifier).labels;
    const classify = await pipeline('text-classification', c.out, await pipelineOptions(c.out));
    const results = (await classify(texts)) as unknown as { label: string; score: number }[];
    for (const [i, ids] of encoded.entries()) {
      const { best, p } = softmaxArgmax(untieLogits(c.model, single(ids)));
      assert.equal(results[i].label, labels[best], `${name}: text ${i}`);
      assert.ok(Math.abs(results[i].score - p) < 1e-5, `${name}: text ${i}: p ${results[i].score} against ${p}`);
    }
    await classify.dispose();
  }
});

test('untie export --onnx names the files and how transformers.js loads them; a Pre-LN config says how to load it as BERT', () => {
  const post = caseNamed('mlm-post'), pre = caseNamed('mlm-pre');
  for (const c of [post, pre]) {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', ONNX_MODEL_FILE]) {
      assert.ok(fs.existsSync(path.join(c.out, f)), `${c.name}: ${f}`);
    }
    const config = JSON.parse(fs.readFileSync(path.join(c.out, 'config.json'), 'utf8'));
    assert.deepEqual(config['transformers.js_config'], { dtype: 'fp32' });
    assert.match(c.stdout, /ONNX: .*onnx\/model\.onnx \([\d.]+ KB, opset 17; inputs input_ids, attention_mask, token_type_ids; output logits\)/);
  }
  assert.match(post.stdout, /transformers\.js: env\.allowRemoteModels = false; await pipeline\('fill-mask', ".*mlm-post"\) loads it/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(pre.out, 'config.json'), 'utf8')).model_type, 'roberta-prelayernorm');
  assert.match(pre.stdout, /transformers\.js has no RoBERTa-PreLayerNorm class; its BERT class feeds and reads this graph the same way: .*\{ config \}\), config being the folder's config\.json with model_type "bert"/);
  assert.match(caseNamed('token-post').stdout, /pipeline\('token-classification'/);
  assert.match(caseNamed('sequence-pre').stdout, /pipeline\('text-classification'/);
  // No staging folder is left beside the exports.
  assert.deepEqual(fs.readdirSync(path.join(root, 'exported')).filter((f) => f.startsWith('.')), []);
});

test('bad input is refused in one line before anything is written, and no half-written folder is left', async () => {
  const c = caseNamed('mlm-post');
  const parent = path.join(root, 'bad');
  fs.mkdirSync(parent);
  const refused = async (args: string[], message: RegExp) => {
    const before = fs.readdirSync(parent).sort();
    const r = await cli(['export', ...args]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, message);
    assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    assert.deepEqual(fs.readdirSync(parent).sort(), before, 'nothing was written');
  };

  // A non-empty folder without --force; with --force it is replaced whole.
  const full = path.join(parent, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'notes.txt'), 'keep me');
  await refused([c.source, full, '--onnx'], /full is not empty \(notes\.txt\): choose an empty or new folder, or pass --force to replace it/);
  assert.equal(fs.readFileSync(path.join(full, 'notes.txt'), 'utf8'), 'keep me');
  assert.equal((await cli(['export', c.source, full, '--onnx', '--force'])).code, 0);
  assert.ok(fs.existsSync(path.join(full, ONNX_MODEL_FILE)) && !fs.existsSync(path.join(full, 'notes.txt')));
  // Not even --force replaces the model being exported, or a folder that holds it.
  const copy = path.join(parent, 'copy');
  fs.cpSync(c.source, copy, { recursive: true });
  await refused([copy, copy, '--onnx', '--force'], /copy holds the model being exported \(.*copy\): export into another folder/);
  await refused([copy, parent, '--onnx', '--force'], /bad holds the model being exported/);
  assert.ok(fs.existsSync(path.join(copy, 'model.safetensors')));
  // An empty folder is used as it is.
  const empty = path.join(parent, 'empty');
  fs.mkdirSync(empty);
  assert.equal((await cli(['export', c.source, empty, '--onnx'])).code, 0);

  // An architecture the exporter does not cover.
  const other = path.join(root, 'pretraining');
  fs.cpSync(c.source, other, { recursive: true });
  const config = JSON.parse(fs.readFileSync(path.join(other, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ ...config, architectures: ['BertForPreTraining'] }));
  await refused([other, path.join(parent, 'x1'), '--onnx'], /--onnx writes untie's BERT masked LMs and fine-tuned token and sequence classifiers .* is BertForPreTraining\. Export it without --onnx/);
  const gpt = path.join(root, 'gpt');
  fs.cpSync(c.source, gpt, { recursive: true });
  fs.writeFileSync(path.join(gpt, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 300 }));
  await refused([gpt, path.join(parent, 'x2'), '--onnx'], /is GPT2LMHeadModel\. Export it without --onnx/);

  // A model whose vocabulary is not its tokenizer's.
  const mismatched = path.join(root, 'mismatched');
  fs.cpSync(c.source, mismatched, { recursive: true });
  (await trainTokenizer(loadBrown().slice(0, 6).flatMap((d) => d.sentences.map(sentenceText)), { vocabSize: 250 })).save(mismatched);
  await refused([mismatched, path.join(parent, 'x3'), '--onnx'], /has vocab_size 300 but .*tokenizer\.json has 250 tokens: the model and the tokenizer do not belong together/);

  // A folder that cannot be made: a part of its path is a file.
  const file = path.join(parent, 'a-file');
  fs.writeFileSync(file, '');
  await refused([c.source, path.join(file, 'out'), '--onnx'], /cannot create the folder .*a-file is a file, not a folder/);
  await refused([c.source, file, '--onnx'], /a-file is a file, not a folder: choose a folder to export into/);
});

test('an export that fails half-way leaves neither a staging folder nor a changed destination', async () => {
  const parent = path.join(root, 'failing');
  fs.mkdirSync(parent);
  const out = path.join(parent, 'out');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'old.txt'), 'old');
  await assert.rejects(writeFolderWhole(out, { force: true }, (dir) => {
    fs.writeFileSync(path.join(dir, 'model.safetensors'), 'half');
    throw new Error('disk full');
  }), /disk full/);
  assert.deepEqual(fs.readdirSync(parent), ['out']);
  assert.deepEqual(fs.readdirSync(out), ['old.txt']);
});
