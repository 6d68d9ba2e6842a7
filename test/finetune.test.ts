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
import { readLabelledFile } from '../src/data/tasks/classify.js';
import { DEV_DOCUMENTS, fullTagSet, packTagged, posDocumentSplit, readPosTask } from '../src/data/tasks/pos.js';
import { loadSpamAssassin, readSpamTask, SPAM_FRACTIONS, subjectAndBody, type SpamMessage } from '../src/data/tasks/spam.js';
import { capItems, majorityLabel, splitByKey, type TaskData } from '../src/data/tasks/task.js';
import { UntieError } from '../src/errors.js';
import { Rng } from '../src/tensor/rng.js';
import { finetune } from '../src/experiments/finetune.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig } from '../src/models/bert.js';
import { BertForSequenceClassification, BertForTokenClassification, newClassifier } from '../src/models/heads.js';
import { hfConfig, saveModelWeights } from '../src/train/checkpoint.js';
import { defaultRecipe, encoderFeatures, evaluateClassifier, majorityScore, probeEncoder, scorePredictions, searchAndTrain } from '../src/train/finetune.js';
import { exportModel, loadClassifier } from '../src/train/load.js';
import { readSafetensors } from '../src/train/safetensors.js';
import { cli } from './helpers.js';

let root: string;
let brown: Document[];
let tokenizer: WordPieceTokenizer;
let spam: SpamMessage[];
let checkpoint: string;

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
    recipe: { ...defaultRecipe(), epochs, batchSize: 8 }, lrGrid: [lr], seeds: [0], sharedEncoder: false,
    build: (seed) => newClassifier(data.kind, tinyConfig(), data.labelNames, seed),
  });
  return { test: res.runs[0].test!, majority: majorityScore(data, data.test, majorityLabel(data)) };
}

test('a tiny model fine-tuned a few steps beats the majority-class baseline on POS', async () => {
  const data = await readPosTask(tokenizer, { maxLength: 64, maxTrain: 48, maxDev: 16, tags: 'universal', splitSeed: 0, validationFraction: 0.1 }, brown.slice(0, 30));
  const { test: score, majority } = quickRun(data, 3, 3e-3);
  assert.equal(score.count, majority.count, 'every test word scored once');
  assert.ok(score.accuracy > majority.accuracy + 0.03, `POS accuracy ${score.accuracy} vs majority ${majority.accuracy}`);
});

test('a tiny model fine-tuned a few steps beats the majority-class baseline on spam', async () => {
  const data = await readSpamTask(tokenizer, { maxLength: 64, maxTrain: 160, maxDev: 32 }, capItems(spam, 400, 'x'));
  const { test: score, majority } = quickRun(data, 5, 3e-3);
  assert.equal(majority.f1, 0, 'the majority label is ham: no spam found');
  assert.ok(score.f1! > 0.3, `spam F1 ${score.f1}`);
  assert.ok(score.accuracy > majority.accuracy, `spam accuracy ${score.accuracy} vs majority ${majority.accuracy}`);
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
  assert.deepEqual(Object.keys(json), ['task', 'metric', 'score', 'std', 'seeds', 'scores', 'lr', 'seconds']);
  assert.equal(json.task, 'classify');
  assert.equal(json.metric, 'accuracy');
  assert.deepEqual(json.seeds, [0, 1]);
  const scores = json.scores as number[];
  assert.equal(scores.length, 2);
  assert.ok(Math.abs((json.score as number) - (scores[0] + scores[1]) / 2) < 1e-12);
  assert.ok(Math.abs((json.std as number) - Math.abs(scores[0] - scores[1]) / Math.SQRT2) < 1e-12);
  assert.ok([1e-3, 3e-3].includes(json.lr as number));

  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
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
