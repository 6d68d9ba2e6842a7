// Downstream fine-tuning: the task readers (tags aligned to sub-tokens, one
// prediction per word, complete label sets, splits stable across runs and
// machines), the HF-named heads, tiny models beating the majority-class
// baseline on POS and spam, a classify run end to end on a CSV made here,
// the frozen probe, and the bad-input errors.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kernels } from '../src/backend/index.js';
import { loadBrown, sentenceText, splitDocuments, UNIVERSAL_TAGS, type Document } from '../src/data/corpus.js';
import { IGNORE_INDEX } from '../src/data/mlm.js';
import { CLS_ID, SEP_ID, UNK_ID, trainTokenizer, type WordPieceTokenizer } from '../src/data/tokenizer.js';
import { CLASSIFY_FRACTIONS, readLabelledFile } from '../src/data/tasks/classify.js';
import { DEV_DOCUMENTS, fullTagSet, packTagged, posDocumentSplit, readPosTask } from '../src/data/tasks/pos.js';
import { loadSpamAssassin, readSpamTask, SPAM_FRACTIONS, subjectAndBody, type SpamMessage } from '../src/data/tasks/spam.js';
import { examplesDigest, splitByKey, type TaskData } from '../src/data/tasks/task.js';
import { UntieError } from '../src/errors.js';
import { Rng } from '../src/tensor/rng.js';
import { finetune } from '../src/experiments/finetune.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig } from '../src/models/bert.js';
import { BertForSequenceClassification, BertForTokenClassification, newClassifier } from '../src/models/heads.js';
import { hfConfig, saveModelWeights } from '../src/train/checkpoint.js';
import { classWeightsOf, defaultRecipe, encoderFeatures, evaluateClassifier, probeEncoder, scorePredictions, searchAndTrain } from '../src/train/finetune.js';
import { openClassifier, splitWords, tagWords } from '../src/train/inference.js';
import { bagOfWords, fitLogisticRegression, majorityReference, references, type SparseRows } from '../src/train/references.js';
import { classWeightedCrossEntropy } from '../src/nn/losses.js';
import { Tensor, backward } from '../src/tensor/tensor.js';
import { CHROMIUM, checkPage } from '../scripts/chromium.js';
import { exportModel, loadClassifier } from '../src/train/load.js';
import { readSafetensors } from '../src/train/safetensors.js';
import { main } from '../src/cli/main.js';
import { assertSameFolder, snapshot } from './helpers.js';
import { spawnSync } from 'node:child_process';
import { cli } from './helpers.js';

let root: string;
let brown: Document[];
let tokenizer: WordPieceTokenizer;
let spam: SpamMessage[];
let checkpoint: string;
const chromiumMissing = !fs.existsSync(CHROMIUM);

function tinyConfig(): BertConfig {
  return { ...defaultBertConfig(), vocabSize: tokenizer.vocabSize, layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 64 };
}

before(async () => {
  kernels().setThreads(1);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-finetune-'));
  brown = loadBrown();
  tokenizer = await trainTokenizer(brown.slice(0, 30).flatMap((d) => d.sentences.map(sentenceText)), { vocabSize: 1000 });
  spam = loadSpamAssassin();
  // A "pre-trained" checkpoint folder as untie export writes one: weights, HF config, tokenizer.
  checkpoint = path.join(root, 'ckpt');
  fs.mkdirSync(checkpoint);
  saveModelWeights(checkpoint, new BertForMaskedLM(tinyConfig(), 3));
  tokenizer.save(checkpoint);
});

test('pos: each word labelled once, at its first sub-token; [UNK] for a word with no pieces', async () => {
  const doc: Document = {
    id: 'x',
    sentences: [
      { words: ['The', 'unbelievably', 'cat', '\u0007'], tags: ['at', 'ql', 'nn', 'nil'], universalTags: ['DET', 'ADV', 'NOUN', 'X'] },
      { words: ['It', "didn't", '.'], tags: ['pps', 'dod*', '.'], universalTags: ['PRON', 'VERB', '.'] },
    ],
  };
  const forms = ['The', 'unbelievably', 'cat', '\u0007', 'It', "didn't", '.'];
  const ids = await tokenizer.encodeBatch(forms, { addSpecialTokens: false });
  const pieces = new Map(forms.map((w, i) => [w, ids[i].length > 0 ? ids[i] : [UNK_ID]]));
  assert.ok(pieces.get('unbelievably')!.length > 1, 'the test needs a word of several pieces');
  assert.deepEqual(pieces.get('\u0007'), [UNK_ID]);
  const tagIds = [[10, 11, 12, 13], [20, 21, 22]];
  const [ex] = packTagged(doc, pieces, (s, w) => tagIds[s][w], 64);
  const expectIds = [CLS_ID], expectLabels = [IGNORE_INDEX];
  doc.sentences.forEach((s, si) => s.words.forEach((w, wi) => {
    const p = pieces.get(w)!;
    expectIds.push(...p);
    expectLabels.push(tagIds[si][wi], ...new Array<number>(p.length - 1).fill(IGNORE_INDEX));
  }));
  expectIds.push(SEP_ID);
  expectLabels.push(IGNORE_INDEX);
  assert.deepEqual(Array.from(ex.inputIds), expectIds);
  assert.deepEqual(Array.from(ex.labels), expectLabels);

  // Packing at a small maxLength: sentences move to the next sequence whole; nothing lost or repeated.
  const small = packTagged(doc, pieces, (s, w) => tagIds[s][w], 12);
  assert.ok(small.length >= 2 && small.every((e) => e.inputIds.length <= 12 && e.inputIds[0] === CLS_ID && e.inputIds.at(-1) === SEP_ID));
  assert.deepEqual(small.flatMap((e) => Array.from(e.labels).filter((l) => l !== IGNORE_INDEX)), tagIds.flat());
});

test('pos: on real Brown documents every word gets exactly one label, and both label sets are complete', async () => {
  const docs = brown.slice(0, 40);
  for (const tags of ['universal', 'full'] as const) {
    const data = await readPosTask(tokenizer, { maxLength: 64, maxTrain: 0, maxDev: 0, tags, splitSeed: 0, validationFraction: 0.1 }, docs);
    const split = posDocumentSplit(docs, { splitSeed: 0, validationFraction: 0.1 });
    for (const part of ['train', 'dev', 'test'] as const) {
      const words = split[part].flatMap((d) => d.sentences.flatMap((s) => (tags === 'universal' ? s.universalTags : s.tags.map((t) => t.toLowerCase()))));
      const labelled = data[part].flatMap((e) => Array.from(e.labels).filter((l) => l !== IGNORE_INDEX));
      assert.deepEqual(labelled.map((l) => data.labelNames[l]), words, `${tags} ${part}: one label per word, in order`);
      for (const e of data[part]) {
        assert.equal(e.labels.length, e.inputIds.length);
        assert.ok(e.inputIds.length <= 64);
      }
    }
  }
  const universal = await readPosTask(tokenizer, { maxLength: 64, maxTrain: 0, maxDev: 0, tags: 'universal', splitSeed: 0, validationFraction: 0.1 }, docs);
  assert.deepEqual(universal.labelNames, [...UNIVERSAL_TAGS]);
  // The full set is every tag of the whole corpus (not of one split), so no split can hold an unknown tag.
  const full = fullTagSet(brown);
  assert.equal(full.length, 472);
  for (const d of brown) for (const s of d.sentences) for (const t of s.tags) assert.ok(full.includes(t.toLowerCase()), t);
});

test('pos split: test = the documents pre-training validated on; fixed document lists on every machine', () => {
  const split = posDocumentSplit(brown, { splitSeed: 0, validationFraction: 0.05 });
  const pretraining = splitDocuments(brown, { seed: 0, validationFraction: 0.05 });
  assert.deepEqual(split.test.map((d) => d.id), pretraining.validation.map((d) => d.id));
  // Golden lists (the README states them): a change here changes every reported score.
  assert.deepEqual(split.test.map((d) => d.id), [
    'ca08', 'ca17', 'cb10', 'cc04', 'ce21', 'cf06', 'cf09', 'cg11', 'cg14', 'cg17', 'cg28', 'cg53', 'cj03',
    'cj13', 'cj15', 'cj17', 'cj49', 'cj56', 'cj58', 'ck12', 'cm04', 'cm05', 'cn10', 'cn11', 'cp01',
  ]);
  assert.deepEqual(split.dev.map((d) => d.id), ['ca30', 'cc02', 'cg31', 'ch10', 'ch21', 'cj10', 'cj29', 'ck21', 'cl09', 'cn09']);
  assert.equal(split.dev.length, DEV_DOCUMENTS);
  assert.equal(split.train.length, 465);
  const seen = new Set([...split.train, ...split.dev, ...split.test].map((d) => d.id));
  assert.equal(seen.size, 500, 'disjoint and complete');
});

test('spam: subject and body kept, other headers dropped; a fixed split on every machine', () => {
  const raw = 'From x@y  Mon Jan 1\nReceived: from a\n\tby b\nSubject: Cheap\n  pills now\nTo: z@w\n\nBuy now!\n\nReally.\n';
  assert.equal(subjectAndBody(raw), 'Cheap pills now\nBuy now!\n\nReally.');
  assert.equal(subjectAndBody('Subject: only a subject\n'), 'only a subject');
  assert.equal(spam.length, 6046);
  assert.equal(spam.filter((m) => m.label === 'spam').length, 1896);
  const split = splitByKey(spam, (m) => m.text, SPAM_FRACTIONS, 'spam');
  const sizes = (['train', 'dev', 'test'] as const).map((k) => [split[k].length, split[k].filter((m) => m.label === 'spam').length]);
  assert.deepEqual(sizes, [[4534, 1415], [756, 237], [756, 244]]);
  assert.deepEqual(split.test.slice(0, 3).map((m) => m.id), ['easy-ham-1/00001', 'easy-ham-1/00004', 'easy-ham-1/00005']);
  assert.deepEqual(split.dev.slice(0, 3).map((m) => m.id), ['easy-ham-1/00007', 'easy-ham-1/00027', 'easy-ham-1/00056']);
  // Identical texts (the corpus has some) never straddle two splits.
  const where = new Map<string, string>();
  for (const k of ['train', 'dev', 'test'] as const) {
    for (const m of split[k]) {
      assert.ok((where.get(m.text) ?? k) === k, `duplicate ${m.id} in two splits`);
      where.set(m.text, k);
    }
  }
});

test('splits do not depend on the order of the input', () => {
  const items = Array.from({ length: 200 }, (_, i) => `text ${i % 170}`); // some duplicates
  const a = splitByKey(items, (t) => t, { test: 0.2, dev: 0.1 }, 'salt');
  const shuffled = Rng.derive(1, 'order').shuffle([...items]);
  const reversed = [...items].reverse();
  for (const other of [reversed, shuffled]) {
    const b = splitByKey(other, (t) => t, { test: 0.2, dev: 0.1 }, 'salt');
    for (const k of ['train', 'dev', 'test'] as const) assert.deepEqual([...b[k]].sort(), [...a[k]].sort(), k);
  }
  assert.ok(a.test.length >= 40 && a.dev.length >= 20 && a.train.length > 0);
});

test('heads have Hugging Face names and config fields', () => {
  const c = tinyConfig();
  const tok = new BertForTokenClassification(c, ['A', 'B', 'C'], 0);
  const seq = new BertForSequenceClassification(c, ['ham', 'spam'], 0);
  const mlm = new BertForMaskedLM(c, 0);
  const encoderNames = mlm.namedParameters().map(([n]) => n).filter((n) => n.startsWith('bert.'));
  assert.deepEqual(tok.namedParameters().map(([n]) => n), [...encoderNames, 'classifier.weight', 'classifier.bias']);
  assert.deepEqual(seq.namedParameters().map(([n]) => n), [...encoderNames, 'bert.pooler.dense.weight', 'bert.pooler.dense.bias', 'classifier.weight', 'classifier.bias']);
  assert.deepEqual(tok.classifier.weight.shape, [3, 32]);
  const cfg = hfConfig(c, { architecture: seq.architecture, labels: seq.labels });
  assert.deepEqual(cfg.architectures, ['BertForSequenceClassification']);
  assert.deepEqual(cfg.id2label, { 0: 'ham', 1: 'spam' });
  assert.deepEqual(cfg.label2id, { ham: 0, spam: 1 });
  assert.equal(cfg.num_labels, 2);
  assert.equal(cfg.hidden_size, 32);
  assert.throws(() => new BertForTokenClassification(c, ['only'], 0), UntieError);

  // A model built without biases exports HF's zero biases for its own Linear layers only (the pooler, not the MLM transform).
  const dir = path.join(root, 'no-bias-seq');
  saveModelWeights(dir, new BertForSequenceClassification({ ...c, bias: false }, ['ham', 'spam'], 0), { hfBiases: true });
  const tensors = readSafetensors(path.join(dir, 'model.safetensors')).tensors;
  assert.deepEqual(tensors['bert.pooler.dense.bias'].data, new Float32Array(32));
  assert.ok(tensors['bert.encoder.layer.1.attention.self.query.bias'] && tensors['classifier.bias']);
  assert.ok(!Object.keys(tensors).some((n) => n.startsWith('cls.')));
});

test('metrics: accuracy and F1 of the positive label, by hand', () => {
  // gold 1 1 1 0 0, predicted 1 0 1 1 0: tp 2, fp 1, fn 1 -> F1 = 4 / 6; accuracy 3 / 5.
  const s = scorePredictions([1, 0, 1, 1, 0], [1, 1, 1, 0, 0], { metric: 'f1', positiveLabel: 1 });
  assert.equal(s.accuracy, 0.6);
  assert.ok(Math.abs(s.f1! - 4 / 6) < 1e-12);
  assert.equal(s.score, s.f1);
  assert.equal(scorePredictions([0, 0], [1, 0], { metric: 'f1', positiveLabel: 1 }).f1, 0, 'no true positive: F1 0');
});

/** Fine-tunes a tiny random model on `data` at one lr and seed; returns its test score and the majority baseline. */
function quickRun(data: TaskData, epochs: number, lr: number) {
  const res = searchAndTrain(data, {
    recipe: { ...defaultRecipe(data.kind), epochs, batchSize: 8 }, lrGrid: [lr], seeds: [0], sharedEncoder: false,
    build: (seed) => newClassifier(data.kind, tinyConfig(), data.labelNames, seed),
  });
  return { test: res.runs[0].test!, majority: majorityReference(data) };
}

test('a tiny model fine-tuned a few steps beats the majority-class baseline on POS', async () => {
  const data = await readPosTask(tokenizer, { maxLength: 64, maxTrain: 48, maxDev: 16, tags: 'universal', splitSeed: 0, validationFraction: 0.1 }, brown.slice(0, 30));
  const { test: score, majority } = quickRun(data, 3, 3e-3);
  assert.equal(score.count, majority.count, 'every test word scored once');
  assert.ok(score.accuracy > majority.accuracy + 0.03, `POS accuracy ${score.accuracy} vs majority ${majority.accuracy}`);
});

test('the default recipe fine-tunes a randomly initialised encoder past the majority class on spam', async () => {
  // The recipe's defaults (balanced classes, at least 300 updates, the best dev evaluation kept), one lr of its grid;
  // only the training examples are capped, to keep the test short. The old recipe (3 epochs of these 200) stayed at F1 0.
  const r = await finetune({ checkpoint, task: 'spam', fromScratch: true, seeds: 1, lrGrid: [1e-3], maxTrain: 200, maxDev: 64, maxLength: 64, outDir: null, progress: false, threads: 1 });
  assert.equal(r.majority.label, 'ham');
  assert.equal(r.majority.score, 0, 'the majority class finds no spam: F1 0');
  assert.ok(r.updatesPerRun >= 300, `${r.updatesPerRun} updates`);
  assert.ok(r.score > 0.5, `spam F1 ${r.score} from a random encoder`);
  assert.ok(r.runs[0].test!.accuracy > r.majority.accuracy, `accuracy ${r.runs[0].test!.accuracy} vs majority ${r.majority.accuracy}`);
  assert.equal(r.runs[0].test!.count, r.splits.test.examples, 'every test message scored');
});

test('frozen: only the head trains; features computed once score like the full forward pass', async () => {
  const data = await readPosTask(tokenizer, { maxLength: 64, maxTrain: 24, maxDev: 8, tags: 'universal', splitSeed: 0, validationFraction: 0.1 }, brown.slice(0, 30));
  const encoder = new BertForMaskedLM(tinyConfig(), 5);
  const before = new Map(encoder.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data)]));
  const res = probeEncoder(encoder, data, { lrGrid: [1e-2], epochs: 4, batchSize: 8 });
  for (const [n, p] of encoder.namedParameters()) assert.deepEqual(p.data, before.get(n), `${n} changed`);
  const model = res.best.model;
  for (const [n, p] of model.namedParameters()) {
    if (n.startsWith('bert.')) assert.deepEqual(p.data, before.get(n), `probe encoder ${n} changed`);
  }
  const full = evaluateClassifier(model, data, data.test, 16);
  const cached = evaluateClassifier(model, data, encoderFeatures(model, data.test, 16), 16);
  assert.deepEqual(cached, full);
  assert.deepEqual(res.runs[0].test, full);
});


function writeCsv(file: string, rows: string[][]): void {
  fs.writeFileSync(file, rows.map((r) => r.map((c) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')).join('\n') + '\n');
}

/** 60 short texts about two topics, with quoting that a naive split(',') would get wrong. */
function topicRows(): string[][] {
  const rows = [['id', 'sentence', 'topic']];
  const sport = ['the team won the game', 'a goal in the last minute', 'the players ran, and the crowd cheered', 'he said "play on" to the team'];
  const money = ['the bank raised its rates', 'prices fell on the market', 'the fund, they said, lost money', 'interest on the loan\nwent up'];
  for (let i = 0; i < 30; i++) {
    rows.push([`s${i}`, `${sport[i % 4]} ${i}`, 'sport']);
    rows.push([`m${i}`, `${money[i % 4]} ${i}`, 'money']);
  }
  return rows;
}

test('classify: a CSV made here, end to end: --json shape, results and the best model, exportable', async () => {
  const csv = path.join(root, 'topics.csv');
  writeCsv(csv, topicRows());
  const read = readLabelledFile(csv, { textColumn: 'sentence', labelColumn: 'topic' });
  assert.equal(read.examples.length, 60);
  assert.deepEqual(read.labels, ['money', 'sport']);
  assert.ok(read.examples.some((e) => e.text === 'interest on the loan\nwent up 3'), 'quoted line break kept');

  const out = path.join(root, 'ft-classify');
  const r = await cli(['finetune', checkpoint, '--task', 'classify', '--data', csv, '--text-column', 'sentence', '--label-column', 'topic',
    '--seeds', '2', '--lr-grid', '1e-3,3e-3', '--epochs', '4', '--batch-size', '8', '--threads', '1', '--out', out, '--json']);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json), ['task', 'metric', 'score', 'std', 'seeds', 'scores', 'lr', 'seconds', 'majority_score', 'bow_score', 'bow', 'out']);
  assert.equal(json.task, 'classify');
  assert.equal(json.metric, 'accuracy');
  assert.deepEqual(json.seeds, [0, 1]);
  const scores = json.scores as number[];
  assert.equal(scores.length, 2);
  assert.ok(Math.abs((json.score as number) - (scores[0] + scores[1]) / 2) < 1e-12);
  assert.ok(Math.abs((json.std as number) - Math.abs(scores[0] - scores[1]) / Math.SQRT2) < 1e-12);
  assert.ok([1e-3, 3e-3].includes(json.lr as number));

  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(json.out, out);
  assert.equal(json.majority_score, results.majority.score);
  assert.equal(json.bow_score, results.bow.score);
  assert.equal(results.recipe.lr, json.lr, 'the recipe records the chosen learning rate');
  assert.deepEqual(results.recipe.lrGrid, [1e-3, 3e-3]);
  assert.equal(results.recipe.seed, undefined, 'seeds are listed apart');
  assert.equal(results.grid.length, 2);
  assert.equal(results.splits.test.examples, 12);
  assert.equal(results.splits.dev.examples, 6);
  assert.ok(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').includes('"finetune_eval"'));
  assert.deepEqual(fs.readdirSync(path.dirname(out)).filter((n) => n.includes('.tmp-')), [], 'no temporary folder left');

  // The best model: an HF BertForSequenceClassification folder that loads back and scores as saved.
  const best = path.join(out, 'best');
  const exported = path.join(root, 'exported');
  exportModel(best, exported);
  const config = JSON.parse(fs.readFileSync(path.join(exported, 'config.json'), 'utf8'));
  assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
  assert.deepEqual(config.id2label, { 0: 'money', 1: 'sport' });
  assert.equal(config.num_labels, 2);
  const names = Object.keys(readSafetensors(path.join(exported, 'model.safetensors')).tensors);
  assert.ok(names.includes('classifier.weight') && names.includes('bert.pooler.dense.weight') && !names.some((n) => n.startsWith('cls.')));
  const loaded = loadClassifier(exported);
  assert.deepEqual(loaded.model.labels, ['money', 'sport']);
  const bestRun = results.runs.find((x: { seed: number }) => x.seed === results.bestSeed);
  const data = { metric: 'accuracy' as const, positiveLabel: null };
  const { readTask } = await import('../src/data/tasks/index.js');
  const task = await readTask('classify', loaded.tokenizer, results.limits, { data: csv, textColumn: 'sentence', labelColumn: 'topic' });
  assert.equal(evaluateClassifier(loaded.model, { ...task, ...data }, task.test, 16).score, bestRun.test.score);
});

test('bad input: one-line errors naming the file, row or field; nothing written', async () => {
  const bad = (name: string, content: string) => {
    const file = path.join(root, name);
    fs.writeFileSync(file, content);
    return file;
  };
  const good = topicRows().slice(1).map((r) => `${r[1].replace(/[\n,"]/g, ' ')},${r[2]}`).join('\n');
  const opts = { textColumn: 'text', labelColumn: 'label' };
  const cases: [string, RegExp, object?][] = [
    [bad('nocol.csv', `sentence,label\n${good}\n`), /nocol\.csv has no column "text" \(it has: sentence, label\)/],
    [bad('empty.csv', `text,label\n${good}\n   ,sport\n`), /empty\.csv line 62: the text \("text"\) is empty/],
    [bad('nolabel.csv', `text,label\n${good}\nsome text,\n`), /nolabel\.csv line 62: the label \("label"\) is missing/],
    [bad('unknown.csv', `text,label\n${good}\nsome text,weather\n`), /unknown\.csv line 62: unknown label "weather" \(known labels: money, sport\)/, { labels: ['money', 'sport'] }],
    [bad('quote.csv', `text,label\n"unclosed,sport\n`), /quote\.csv is not a valid CSV file/],
    [bad('rows.jsonl', '{"text": "a", "label": "x"}\n[1, 2]\n'), /rows\.jsonl line 2 is not a JSON object/],
    [bad('nolabel.jsonl', '{"text": "a", "label": "x"}\n{"text": "b"}\n'), /nolabel\.jsonl line 2: the label \("label"\) is missing/],
    [bad('few.csv', 'text,label\na,x\nb,y\n'), /few\.csv has 2 labelled row\(s\); at least 10/],
    [bad('one.csv', `text,label\n${good.replace(/,(sport|money)/g, ',sport')}\n`), /every row has the label "sport"/],
    [bad('data.txt', 'text,label\n'), /unknown file type "\.txt"/],
    [bad('semicolons.csv', `text;label\n${good.replace(/,/g, ';')}\n`), /semicolons\.csv separates its fields with ";"; untie reads comma-separated CSV/],
    [bad('tabs.csv', `text\tlabel\n${good.replace(/,/g, '\t')}\n`), /tabs\.csv separates its fields with tabs/],
    [path.join(root, 'missing.csv'), /missing\.csv does not exist/],
  ];
  for (const [file, message, extra] of cases) {
    assert.throws(() => readLabelledFile(file, { ...opts, ...extra }), (err: Error) => err instanceof UntieError && message.test(err.message) && !err.message.includes('\n'), `${file}: ${message}`);
  }
  // JSONL labels may be numbers.
  const jsonl = bad('num.jsonl', Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `t ${i}`, label: i % 3 })).join('\n'));
  assert.deepEqual(readLabelledFile(jsonl, opts).labels, ['0', '1', '2']);

  // Through the CLI: unknown task, a data file with a bad row, a checkpoint of another vocabulary or architecture.
  const runErr = async (args: string[], message: RegExp) => {
    const r = await cli(['finetune', ...args, '--threads', '1', '--quiet']);
    assert.equal(r.code, 1);
    assert.match(r.err, message);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  };
  await runErr([checkpoint, '--task', 'ner'], /unknown task "ner": use one of pos, spam, classify/);
  await runErr([checkpoint, '--task', 'classify'], /needs --data FILE/);
  await runErr([checkpoint, '--task', 'classify', '--data', path.join(root, 'empty.csv')], /empty\.csv line 62/);
  const otherVocab = path.join(root, 'other-vocab');
  fs.mkdirSync(otherVocab);
  saveModelWeights(otherVocab, new BertForMaskedLM({ ...tinyConfig(), vocabSize: tokenizer.vocabSize + 8 }, 0));
  tokenizer.save(otherVocab);
  await runErr([otherVocab, '--task', 'pos'], /vocab_size 1008 but .*tokenizer\.json has 1000 tokens/);
  const otherArch = path.join(root, 'gpt');
  fs.cpSync(checkpoint, otherArch, { recursive: true });
  fs.writeFileSync(path.join(otherArch, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 1000 }));
  await runErr([otherArch, '--task', 'pos'], /describes a GPT decoder \(GPT2LMHeadModel\), and this needs a BERT encoder: a decoder works with untie generate, eval and export/);
  for (const dir of [checkpoint, otherVocab, otherArch]) {
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('finetune-')), [], `nothing written in ${dir}`);
  }
});

test('class-weighted cross-entropy: torch\'s weighted mean, and its gradient by finite differences', () => {
  const rows = 5, cols = 3;
  const values = Array.from({ length: rows * cols }, (_, i) => Math.sin(1.7 * i + 0.3) * 2);
  const targets = Int32Array.from([0, 2, 2, IGNORE_INDEX, 1]);
  const weights = [0.5, 2, 1.25];
  // sum_i w[y_i] * (logsumexp(z_i) - z_i[y_i]) / sum_i w[y_i], in float64.
  const direct = (z: number[]) => {
    let num = 0, den = 0;
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === IGNORE_INDEX) continue;
      const row = z.slice(r * cols, (r + 1) * cols), max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      num += weights[t] * (lse - row[t]);
      den += weights[t];
    }
    return num / den;
  };
  const logits = Tensor.from(values, [rows, cols], true);
  const loss = classWeightedCrossEntropy(logits, targets, weights, IGNORE_INDEX);
  assert.ok(Math.abs(loss.item() - direct(values)) < 1e-5, `${loss.item()} vs ${direct(values)}`);
  backward(loss);
  const eps = 1e-4;
  for (let i = 0; i < values.length; i++) {
    const up = [...values], down = [...values];
    up[i] += eps;
    down[i] -= eps;
    const numeric = (direct(up) - direct(down)) / (2 * eps);
    assert.ok(Math.abs(logits.grad![i] - numeric) < 1e-4, `d/dz${i}: ${logits.grad![i]} vs ${numeric}`);
  }
  for (let c = 0; c < cols; c++) assert.equal(logits.grad![3 * cols + c], 0, 'an ignored row gets no gradient');
  // Balanced weights from training labels: rows / (classes x rows of the class), absent classes 0.
  const train = [0, 0, 0, 1].map((l) => ({ inputIds: Int32Array.of(CLS_ID, SEP_ID), labels: Int32Array.of(l) }));
  assert.deepEqual(Array.from(classWeightsOf(train, 3, 'balanced')), [4 / 6, 4 / 2, 0]);
  assert.deepEqual(Array.from(classWeightsOf(train, 3, 'none')), [1, 1, 1]);
});

test('bag-of-words logistic regression: the closed-form optimum, a separable case, and a vanishing gradient', () => {
  // Two examples, one word each, one per class. By symmetry the optimum has bias 0 and weight +-u on each word,
  // where the objective log(1 + e^(-2u)) + 2 l2 u^2 is flat: sigmoid(-2u) = 2 l2 u.
  const l2 = 0.05;
  const x: SparseRows = { start: Int32Array.of(0, 1, 2), index: Int32Array.of(0, 1), value: Float64Array.of(1, 1), features: 2 };
  const fit = fitLogisticRegression(x, [0, 1], { classes: 2, l2, iterations: 5000, tolerance: 1e-10 });
  let lo = 0, hi = 10;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (1 / (1 + Math.exp(2 * mid)) > 2 * l2 * mid) lo = mid;
    else hi = mid;
  }
  const u = lo;
  assert.ok(fit.gradientMax < 1e-10, `converged: ${fit.gradientMax}`);
  const expected = [u, -u, -u, u]; // (class, word): class 0 likes word 0
  expected.forEach((w, i) => assert.ok(Math.abs(fit.weight[i] - w) < 1e-8, `weight ${i}: ${fit.weight[i]} vs ${w}`));
  assert.ok(Math.abs(fit.bias[0]) < 1e-8 && Math.abs(fit.bias[1]) < 1e-8);

  // Documents told apart by one word among shared noise: every held-out document right.
  const rng = Rng.derive(3, 'bow-test');
  const doc = (label: number) => {
    const words = rng.shuffle([10 + label, ...Array.from({ length: 6 }, () => 20 + rng.int(15))]);
    return { inputIds: Int32Array.from([CLS_ID, ...words, SEP_ID]), labels: Int32Array.of(label) };
  };
  const make = (n: number) => Array.from({ length: n }, (_, i) => doc(i % 3 === 0 ? 1 : 0));
  const data: TaskData = {
    task: 'classify', kind: 'sequence', labelNames: ['a', 'b'], metric: 'accuracy', positiveLabel: null, train: make(60), dev: make(15), test: make(30),
    splits: { train: { examples: 60, source: '' }, dev: { examples: 15, source: '' }, test: { examples: 30, source: '' } },
  };
  const refs = references(data, 'balanced');
  assert.equal(refs.bow.method, 'logistic regression on bag-of-words counts');
  assert.equal(refs.bow.accuracy, 1, `separable: accuracy ${refs.bow.accuracy}`);
  assert.equal(refs.majority.label, 'a');
  assert.ok(Math.abs(refs.majority.accuracy - 20 / 30) < 1e-12);

  // With class weights on a noisy problem: the fit is a stationary point of the objective, checked by an independent dense gradient.
  const noisy = make(40).map((e, i) => (i % 7 === 0 ? { ...e, labels: Int32Array.of(1 - e.labels[0]) } : e));
  const rowsX = bagOfWords(noisy, 40);
  const labels = noisy.map((e) => e.labels[0]);
  const rowWeights = labels.map((l) => (l === 1 ? 2 : 0.75));
  const m = fitLogisticRegression(rowsX, labels, { classes: 2, l2: 1e-2, rowWeights, iterations: 5000, tolerance: 1e-9 });
  const dense = (r: number) => {
    const v = new Array<number>(40).fill(0);
    for (let k = rowsX.start[r]; k < rowsX.start[r + 1]; k++) v[rowsX.index[k]] = rowsX.value[k];
    return v;
  };
  const gw = new Array<number>(80).fill(0), gb = [0, 0];
  const W = rowWeights.reduce((a, b) => a + b, 0);
  labels.forEach((y, r) => {
    const v = dense(r);
    const z = [0, 1].map((c) => m.bias[c] + v.reduce((s, xv, j) => s + m.weight[c * 40 + j] * xv, 0));
    const p = z.map((zc) => Math.exp(zc - Math.max(...z)));
    const sum = p[0] + p[1];
    for (const c of [0, 1]) {
      const g = (rowWeights[r] / W) * (p[c] / sum - (c === y ? 1 : 0));
      gb[c] += g;
      v.forEach((xv, j) => (gw[c * 40 + j] += g * xv));
    }
  });
  gw.forEach((g, i) => assert.ok(Math.abs(g + 1e-2 * m.weight[i]) < 1e-7, `d/dw${i} = ${g + 1e-2 * m.weight[i]}`));
  gb.forEach((g, c) => assert.ok(Math.abs(g) < 1e-7, `d/db${c} = ${g}`));
});

test('the POS reference line: each word\'s most frequent training tag, the majority tag for unseen words', () => {
  const ex = (ids: number[], labels: number[]) => ({ inputIds: Int32Array.from([CLS_ID, ...ids, SEP_ID]), labels: Int32Array.from([IGNORE_INDEX, ...labels, IGNORE_INDEX]) });
  const I = IGNORE_INDEX;
  // Words: [10] tagged 0 twice and 1 once; [11, 12] (two pieces) tagged 2; [11] alone is another word, tagged 1.
  const train = [ex([10, 11, 12, 11], [0, 2, I, 1]), ex([10, 10, 11, 12], [0, 1, 2, I]), ex([13, 13], [0, 0])];
  const test = [ex([10, 11, 12, 11, 99], [1, 2, I, 1, 2])];
  const data: TaskData = {
    task: 'pos', kind: 'token', labelNames: ['A', 'B', 'C'], metric: 'accuracy', positiveLabel: null, train, dev: [], test,
    splits: { train: { examples: 3, source: [] }, dev: { examples: 0, source: [] }, test: { examples: 1, source: [] } },
  };
  const refs = references(data, 'none');
  assert.equal(refs.bow.method, 'most frequent tag of each word');
  // Predicted: 10 -> A (wrong), [11,12] -> C (right), 11 -> B (right), 99 unseen -> A, the majority tag (wrong).
  assert.equal(refs.bow.count, 4);
  assert.equal(refs.bow.accuracy, 2 / 4);
  assert.equal(refs.majority.label, 'A');
  assert.equal(refs.majority.accuracy, 0);
});

/** `n` rows of two easily told classes, 60% "business", from two word lists among shared filler: a user's own small file. */
function twoClassRows(n: number): string[][] {
  const rng = Rng.derive(7, 'two-class');
  const topic = {
    business: ['money', 'bank', 'market', 'prices', 'fund', 'loan', 'interest', 'cost', 'tax', 'sales'],
    sport: ['game', 'team', 'players', 'ball', 'season', 'coach', 'won', 'field', 'play', 'score'],
  };
  const filler = ['the', 'of', 'and', 'a', 'in', 'was', 'he', 'it', 'that', 'to', 'for', 'on'];
  const rows = [['text', 'label']];
  for (let i = 0; i < n; i++) {
    const label = i % 5 < 3 ? 'business' : 'sport';
    const words = [...Array.from({ length: 3 }, () => topic[label][rng.int(10)]), ...Array.from({ length: 6 }, () => filler[rng.int(filler.length)])];
    rows.push([`${rng.shuffle(words).join(' ')} ${i}`, label]);
  }
  return rows;
}

/** The generated CSV (written once): 200 rows, "two class.csv" (a space in the name, as users' files have). */
function twoClassCsv(): string {
  const csv = path.join(root, 'two class.csv');
  if (!fs.existsSync(csv)) writeCsv(csv, twoClassRows(200));
  return csv;
}

/** Runs the CLI with stderr captured too (the progress notes). */
async function cliWithStderr(args: string[]): Promise<{ code: number; out: string; err: string; stderr: string }> {
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { ...(await cli(args)), stderr: written.join('') };
  } finally {
    process.stderr.write = write;
  }
}

test('a small generated two-class CSV, from a random encoder, with the defaults: above the majority class; a second run refuses to replace it', async () => {
  const model = path.join(root, 'ckpt-two');
  fs.cpSync(checkpoint, model, { recursive: true });
  const csv = twoClassCsv();
  const args = ['finetune', model, '--task', 'classify', '--data', csv, '--from-scratch', '--seeds', '1', '--lr-grid', '1e-3', '--max-length', '32', '--threads', '1'];
  const r = await cli([...args, '--json']);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as { score: number; majority_score: number; bow_score: number; out: string };
  // The folder is named after the data file, so another file's results land beside it.
  assert.equal(json.out, path.join(model, 'finetune-classify-two-class-scratch'));
  const testRows = splitByKey(readLabelledFile(csv, { textColumn: 'text', labelColumn: 'label' }).examples, (e) => e.text, CLASSIFY_FRACTIONS, 'classify').test;
  assert.equal(json.majority_score, testRows.filter((e) => e.label === 'business').length / testRows.length, 'the majority class of train, "business", on the test rows');
  assert.ok(json.score > json.majority_score + 0.2, `accuracy ${json.score} vs majority ${json.majority_score}`);
  assert.ok(json.bow_score >= 0.95, `the words alone tell the classes apart: ${json.bow_score}`);
  const results = JSON.parse(fs.readFileSync(path.join(json.out, 'results.json'), 'utf8'));
  assert.equal(results.splits.train.examples, 140);
  assert.equal(results.epochs, Math.ceil(300 / Math.ceil(140 / 16)), 'more epochs on a small file, to make 300 updates');
  assert.equal(results.recipe.classWeights, 'balanced');

  // The same command again: refused before any work, naming --force; the first results are untouched.
  const before = fs.readFileSync(path.join(json.out, 'results.json'), 'utf8');
  const again = await cli([...args, '--quiet']);
  assert.equal(again.code, 1);
  assert.match(again.err, /finetune-classify-two-class-scratch already exists .* Pass --force to replace it, or --out DIR/);
  assert.equal(fs.readFileSync(path.join(json.out, 'results.json'), 'utf8'), before);
  const forced = await cli([...args, '--epochs', '1', '--force', '--quiet']);
  assert.equal(forced.code, 0, forced.err);
  assert.equal(JSON.parse(fs.readFileSync(path.join(json.out, 'results.json'), 'utf8')).epochs, 1, 'replaced with --force');
});

test('the reference lines train and score on the model\'s own split (capped by --max-examples); stdout and stderr print the score alike', async () => {
  const csv = twoClassCsv();
  const out = path.join(root, 'ft-refs');
  const r = await cliWithStderr(['finetune', checkpoint, '--task', 'classify', '--data', csv, '--max-examples', '40', '--seeds', '2', '--lr-grid', '1e-3',
    '--epochs', '2', '--max-length', '32', '--threads', '1', '--out', out]);
  assert.equal(r.code, 0, r.err);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(results.splits.train.examples, 40);
  for (const ref of [results.majority, results.bow]) {
    assert.equal(ref.trainExamples, 40);
    assert.equal(ref.trainDigest, results.splits.train.digest);
    assert.equal(ref.testExamples, results.splits.test.examples);
    assert.equal(ref.testDigest, results.splits.test.digest);
    for (const run of results.runs) assert.equal(ref.count, run.test.count, 'the same test rows scored');
  }
  // The digests name the examples: the same capped split read again matches; the whole training split does not.
  const { readTask } = await import('../src/data/tasks/index.js');
  const again = await readTask('classify', tokenizer, results.limits, { data: csv });
  assert.equal(examplesDigest(again.train), results.splits.train.digest);
  assert.equal(examplesDigest(again.test), results.splits.test.digest);
  const whole = await readTask('classify', tokenizer, { ...results.limits, maxTrain: 0 }, { data: csv });
  assert.notEqual(examplesDigest(whole.train), results.splits.train.digest);

  // "± x.xx%" the same on stdout and in the progress notes on stderr.
  const spread = `${(100 * results.score).toFixed(2)}% ± ${(100 * results.std).toFixed(2)}%`;
  assert.ok(r.out.includes(spread), r.out);
  assert.ok(r.stderr.includes(spread), r.stderr);
  assert.match(r.out, /reference lines on the same 40 test examples: majority class \("business"\) accuracy \d+\.\d\d%; logistic regression on bag-of-words counts accuracy \d+\.\d\d%/);
});

test('predict: labels for new text from a fine-tuned classifier, as its test score says; a tag per word from a token classifier', async () => {
  const model = path.join(root, 'ckpt-two');
  const folder = path.join(model, 'finetune-classify-two-class-scratch');
  // A text label with its probabilities, from the run folder (one classifier in it), the results folder or best/.
  for (const target of [model, folder, path.join(folder, 'best')]) {
    const r = await cli(['predict', target, 'the bank raised the interest on the loan', 'the team won the game', '--json']);
    assert.equal(r.code, 0, r.err);
    const preds = JSON.parse(r.out) as { label: string; score: number; scores: Record<string, number> }[];
    assert.equal(preds.length, 2);
    for (const p of preds) {
      assert.deepEqual(Object.keys(p.scores), ['business', 'sport']);
      assert.ok(Math.abs(p.scores.business + p.scores.sport - 1) < 1e-6);
      assert.equal(p.score, Math.max(p.scores.business, p.scores.sport));
      assert.equal(p.label, p.scores.business >= p.scores.sport ? 'business' : 'sport');
    }
  }
  // The test split's texts from a file: predict's accuracy is the test accuracy results.json records.
  const csv = twoClassCsv();
  const rows = readLabelledFile(csv, { textColumn: 'text', labelColumn: 'label' }).examples;
  const testRows = splitByKey(rows, (e) => e.text, CLASSIFY_FRACTIONS, 'classify').test;
  const file = path.join(root, 'texts.txt');
  fs.writeFileSync(file, testRows.map((e) => e.text).join('\n') + '\n');
  const r = await cli(['predict', folder, '--file', file]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.equal(lines.length, testRows.length);
  const correct = lines.filter((line, i) => line.split('\t')[0] === testRows[i].label && line.endsWith(`\t${testRows[i].text}`)).length;
  const results = JSON.parse(fs.readFileSync(path.join(folder, 'results.json'), 'utf8'));
  assert.equal(correct / testRows.length, results.runs[0].test.accuracy);

  // A token classifier: one tag per word of splitWords, each the argmax at the word's first piece.
  const tagger = path.join(root, 'tagger');
  const tokModel = new BertForTokenClassification(tinyConfig(), ['A', 'B', 'C', 'D'], 11);
  saveModelWeights(tagger, tokModel);
  tokenizer.save(tagger);
  const c = openClassifier(tagger);
  const text = "The jury didn't say, in the long-term, that the U.S. election was over.";
  assert.deepEqual(splitWords(text), ['The', 'jury', "didn't", 'say', ',', 'in', 'the', 'long-term', ',', 'that', 'the', 'U.S', '.', 'election', 'was', 'over', '.']);
  const long = Array.from({ length: 40 }, (_, i) => `word${i} and`).join(' '); // several sequences of 64 ids
  const [tags, longTags] = await tagWords(c, [text, long]);
  assert.deepEqual(tags.map((t) => t.word), splitWords(text));
  assert.deepEqual(longTags.map((t) => t.word), splitWords(long));
  const ids = await tokenizer.encodeBatch(splitWords(text), { addSpecialTokens: false });
  const inputIds = [CLS_ID], firsts: number[] = [];
  for (const p of ids) {
    firsts.push(inputIds.length);
    inputIds.push(...(p.length > 0 ? p : [UNK_ID]));
  }
  inputIds.push(SEP_ID);
  const logits = c.model.logits({ inputIds: Int32Array.from(inputIds), tokenTypeIds: new Int32Array(inputIds.length), attentionMask: new Float32Array(inputIds.length).fill(1), batchSize: 1, seqLen: inputIds.length }).data;
  firsts.forEach((row, w) => {
    const z = Array.from(logits.subarray(row * 4, row * 4 + 4));
    assert.equal(tags[w].label, ['A', 'B', 'C', 'D'][z.indexOf(Math.max(...z))], `word ${w}`);
  });
  const printed = await cli(['predict', tagger, text]);
  assert.equal(printed.out, tags.map((t) => `${t.word}/${t.label}`).join(' '));

  // Bad input: one line each.
  fs.writeFileSync(path.join(root, 'empty.txt'), '\n  \n');
  for (const [args, message] of [
    [[path.join(root, 'nowhere'), 'x'], /nowhere does not exist/],
    [[checkpoint, 'x'], /is a masked-LM model, not a fine-tuned classifier/],
    [[root, 'x'], /holds no fine-tuned classifier/],
    [[folder, '--file', path.join(root, 'no-such-texts.txt')], /no-such-texts\.txt does not exist/],
    [[folder, '--file', path.join(root, 'empty.txt')], /no text to label/],
    [[folder, 'x', '--file', file], /either as arguments or with --file/],
  ] as [string[], RegExp][]) {
    const bad = await cli(['predict', ...args]);
    assert.equal(bad.code, 1, args.join(' '));
    assert.match(bad.err, message);
    assert.equal(bad.err.trim().split('\n').length, 1, bad.err);
  }
});

test('what a new user gets wrong in finetune and predict: one line saying what to do, before anything is written; --force replaces only results', async () => {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const refused = async (args: string[], message: RegExp) => {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, message);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  };
  const quick = ['--seeds', '1', '--lr-grid', '1e-3', '--epochs', '1', '--batch-size', '8', '--max-length', '16', '--threads', '1', '--quiet'];
  const model = path.join(root, 'ckpt-edges');
  fs.cpSync(checkpoint, model, { recursive: true });
  const modelBefore = snapshot(model);

  // A misspelt task; a file where the model's folder goes; a folder of runs instead of a run.
  await refused(['finetune', model, '--task', 'spma', ...quick], /unknown task "spma": use one of pos, spam, classify \(did you mean --task spam\?\)/);
  const weights = path.join(model, 'model.safetensors');
  await refused(['finetune', weights, '--task', 'pos', ...quick], new RegExp(`model\\.safetensors is a file; pass the folder that holds the model: ${literal(model)}$`, 'm'));
  await refused(['predict', weights, 'some text'], new RegExp(`is a file; pass the folder that holds the model: ${literal(model)}$`, 'm'));
  const runs = path.join(root, 'runs-folder');
  for (const name of ['b-run', 'a-run']) fs.mkdirSync(path.join(runs, name, 'checkpoint-10'), { recursive: true });
  fs.writeFileSync(path.join(runs, 'notes.txt'), 'a file beside the runs');
  await refused(['finetune', runs, '--task', 'pos', ...quick], new RegExp(`runs-folder is a folder of runs \\(a-run, b-run\\), not a run\\. Pass one of them, e\\.g\\. ${literal(path.join(runs, 'a-run'))}`));

  // --data: a folder, an empty file, and a label that only dev or test hold (no model could learn it).
  const folder = path.join(root, 'data-folder.csv');
  fs.mkdirSync(folder, { recursive: true });
  await refused(['finetune', model, '--task', 'classify', '--data', folder, ...quick], /data-folder\.csv is a folder, not a file\. Pass --data with a \.csv or \.jsonl file/);
  const empty = path.join(root, 'blank.csv');
  fs.writeFileSync(empty, '\n \n');
  await refused(['finetune', model, '--task', 'classify', '--data', empty, ...quick], /blank\.csv is empty\. Pass --data with a \.csv file \(a header row/);
  // The split goes by a hash of the text: pick the first "weather" text that it keeps out of the training rows.
  const rows = topicRows().slice(1).map(([, text, label]) => ({ text, label }));
  const weather = Array.from({ length: 100 }, (_, j) => `a storm is coming with rain ${j}`)
    .find((text) => !splitByKey([...rows, { text, label: 'weather' }], (e) => e.text, CLASSIFY_FRACTIONS, 'classify').train.some((e) => e.label === 'weather'))!;
  const rare = path.join(root, 'rare.csv');
  writeCsv(rare, [['text', 'label'], ...rows.map((e) => [e.text, e.label]), [weather, 'weather']]);
  await refused(['finetune', model, '--task', 'classify', '--data', rare, ...quick],
    /rare\.csv: the label "weather" has no training row \(its rows went to (dev|test): 1\), so no model can learn it\. Add more "weather" rows, or remove or relabel them\./);
  assertSameFolder(modelBefore, model, 'the model folder after the refusals');

  // --out at what is not a results folder (the model's own folder, a file) is left alone, --force or not.
  const csv = path.join(root, 'topics-edges.csv');
  writeCsv(csv, [['text', 'label'], ...rows.map((e) => [e.text, e.label])]);
  const file = path.join(root, 'keep.txt');
  fs.writeFileSync(file, 'not results');
  for (const out of [model, file]) {
    for (const force of [[], ['--force']]) {
      await refused(['finetune', model, '--task', 'classify', '--data', csv, '--out', out, ...force, ...quick],
        /exists and is not a results folder of `untie finetune` \(it has no results\.json\), so it is left alone, --force or not\. Pass --out with a new folder\./);
    }
  }
  assertSameFolder(modelBefore, model, 'the model folder after --force --out at it');
  assert.equal(fs.readFileSync(file, 'utf8'), 'not results');

  // An empty --out folder is used. The temporary folder a killed fine-tune left there is removed; a running one's is kept.
  const out = path.join(root, 'ft-edges');
  fs.mkdirSync(out);
  const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited: its pid names no process now
  fs.mkdirSync(`${out}.tmp-${dead}`);
  fs.mkdirSync(`${out}.tmp-${process.ppid}`); // the process that started this test is running
  const r = await cli(['finetune', model, '--task', 'classify', '--data', csv, '--out', out, ...quick]);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(path.join(out, 'results.json')));
  assert.ok(!fs.existsSync(`${out}.tmp-${dead}`), 'a killed run\'s temporary folder is removed');
  assert.ok(fs.existsSync(`${out}.tmp-${process.ppid}`), 'a running process\'s temporary folder is kept');
  assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('ft-edges.tmp-')), [`ft-edges.tmp-${process.ppid}`], 'the run left none of its own');
});

test('a run folder\'s page shows its fine-tuning results beside both reference lines', async () => {
  // A run folder as untie train leaves it (config.json, metrics.jsonl), with a fine-tune written into it.
  const run = path.join(root, 'run-page');
  fs.mkdirSync(run);
  fs.writeFileSync(path.join(run, 'config.json'), JSON.stringify({ preset: 'tiny', model: { layers: 2, hidden: 32 }, train: { steps: 20 }, sharing: { share: '2x1', untie: 'never' } }));
  const records = [10, 20].flatMap((step) => [
    { type: 'train', step, loss: 7 - step / 10, acc: step / 100, lr: 1e-3, grad_norm: 1, tokens_per_s: 1000, elapsed: step },
    { type: 'eval', step, val_loss: 7 - step / 20, val_acc: step / 200, unigram_val_loss: 6.8, unigram_val_acc: 0.05, elapsed: step },
  ]);
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  fs.cpSync(path.join(root, 'ft-refs'), path.join(run, 'finetune-classify-two-class'), { recursive: true });
  fs.mkdirSync(path.join(run, 'finetune-pos'));
  fs.writeFileSync(path.join(run, 'finetune-pos', 'results.json'), '{"task": "pos", torn');
  const r = await cli(['report', run]);
  assert.equal(r.code, 0, r.err);
  const html = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
  const results = JSON.parse(fs.readFileSync(path.join(run, 'finetune-classify-two-class', 'results.json'), 'utf8'));
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  for (const text of ['Fine-tuning', 'finetune-classify-two-class', `${pct(results.score)} ± ${pct(results.std)}`, pct(results.majority.score), pct(results.bow.score), 'results.json is not valid JSON']) {
    assert.ok(html.includes(text), `the page shows ${text}`);
  }
  if (!chromiumMissing) await checkPage(path.join(run, 'report.html'), path.join(root, 'run-page.png'));
});
