// The deploy example (examples/deploy/): a model exported by `untie export
// --onnx` beside the page, the page bundled as `npm run build:deploy` bundles
// it, served over HTTP, loaded in headless Chromium. transformers.js on
// onnxruntime-web answers in the page what untie answers in Node: the same
// top-k fill-mask tokens as `untie fill-mask` for a Pre-LN masked LM, the
// same label as untie's classifier for a Post-LN sequence classifier. The
// page fetches nothing but its own server's files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';
import { buildDeployExample } from '../scripts/build-deploy.js';
import { serveFolder } from '../scripts/static-server.js';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { trainTokenizer, type WordPieceTokenizer } from '../src/data/tokenizer.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig } from '../src/models/bert.js';
import { BertForSequenceClassification } from '../src/models/heads.js';
import type { Module } from '../src/nn/module.js';
import { saveModelWeights } from '../src/train/checkpoint.js';
import { noGrad } from '../src/tensor/tensor.js';
import { main } from '../src/cli/main.js';
import { assertSameTopK, perturb, type Prediction } from './helpers.js';

// CI (.ci/run) installs Chromium and sets UNTIE_REQUIRE_CHROMIUM, so there a missing browser fails instead of skipping.
const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;

let root: string;
let tokenizer: WordPieceTokenizer;

function tinyConfig(norm: 'post' | 'pre'): BertConfig {
  return { ...defaultBertConfig(), vocabSize: tokenizer.vocabSize, hidden: 32, layers: 2, heads: 4, intermediate: 64, maxPositions: 32, norm, layerNormEps: 1e-5 };
}

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const log = console.log;
  let out = '';
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  try {
    return { code: await main(args), out };
  } finally {
    console.log = log;
  }
}

/** `untie export SOURCE NAME --onnx` beside the page, SOURCE a checkpoint-like folder of `model`. */
async function exportBesidePage(name: string, model: Module & { config: BertConfig }): Promise<string> {
  const source = path.join(root, `${name}-source`);
  fs.mkdirSync(source);
  saveModelWeights(source, model);
  tokenizer.save(source, { modelMaxLength: model.config.maxPositions });
  assert.equal((await cli(['export', source, path.join(site, name), '--onnx'])).code, 0);
  return path.join(site, name);
}

/** Loads the page for the model folder `name`; its results once it is done, what it shows, and every URL it requested. */
async function answer(name: string, text: string): Promise<{ results: unknown; shown: string; requests: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [], requests: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('request', (r) => requests.push(r.url()));
  try {
    await page.goto(`${server.url}index.html?model=${name}&text=${encodeURIComponent(text)}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), undefined, { timeout: 120_000 });
    const state = await page.evaluate(() => ({ status: document.body.dataset.status, results: document.body.dataset.results ?? 'null', text: document.getElementById('status')!.textContent }));
    assert.equal(state.status, 'done', `the page ended with: ${state.text}; errors: ${errors.join(' | ')}`);
    assert.deepEqual(errors, []);
    return { results: JSON.parse(state.results), shown: await page.locator('body').innerText(), requests };
  } finally {
    await page.close();
  }
}

let site: string;
let server: Awaited<ReturnType<typeof serveFolder>>;
let browser: Awaited<ReturnType<typeof launchChromium>>['browser'];
let closeBrowser: () => Promise<void>;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-deploy-'));
  tokenizer = await trainTokenizer(loadBrown().slice(0, 6).flatMap((d) => d.sentences.map(sentenceText)), { vocabSize: 300 });
  const pageDir = await buildDeployExample();
  // The page and its bundle, with the exported models beside them (each test exports its own).
  site = path.join(root, 'site');
  fs.mkdirSync(site);
  fs.copyFileSync(path.join(pageDir, 'index.html'), path.join(site, 'index.html'));
  fs.symlinkSync(path.join(pageDir, 'dist'), path.join(site, 'dist'));
  if (chromiumMissing) return;
  server = await serveFolder(site);
  ({ browser, close: closeBrowser } = await launchChromium());
});

after(async () => {
  await closeBrowser?.();
  await server?.close();
});

test('in Chromium: the deploy page runs a Pre-LN masked LM exported by untie and gives untie fill-mask\'s top-k', { skip: chromiumMissing }, async () => {
  const model = new BertForMaskedLM(tinyConfig('pre'), 1);
  perturb(model, 11);
  const dir = await exportBesidePage('mlm', model);
  const text = 'the jury said it did not [MASK] that many of the voters';
  const { results, shown, requests } = await answer('mlm', text);
  const untie = await cli(['fill-mask', dir, text, '--top-k', '5', '--json']);
  assertSameTopK(results as Prediction[], JSON.parse(untie.out) as Prediction[], 'the page against untie fill-mask');
  assert.match(shown, /mlm\/: RobertaPreLayerNormForMaskedLM \(Pre-LN, 2 layers, hidden 32, vocabulary 300\); task: fill-mask; loaded in \d+ ms/);
  assert.match(shown, /answered in \d+ ms/);
  // Everything came from the page's own server: the bundle, onnxruntime's wasm, the model folder.
  assert.deepEqual(requests.filter((u) => !u.startsWith(server.url)), []);
  assert.ok(requests.some((u) => u.endsWith('/mlm/onnx/model.onnx')) && requests.some((u) => u.endsWith('.wasm')), requests.join(' '));
  assert.doesNotMatch(shown, new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the page shows no path of this machine');
});

test('in Chromium: the deploy page classifies with a Post-LN sequence classifier as untie does', { skip: chromiumMissing }, async () => {
  const labels = ['ham', 'spam', 'other'];
  const model = new BertForSequenceClassification(tinyConfig('post'), labels, 2);
  perturb(model, 12);
  model.eval();
  await exportBesidePage('sequence', model);
  const text = 'free money: reply now to claim your prize';
  const { results, shown } = await answer('sequence', text);
  assert.match(shown, /sequence\/: BertForSequenceClassification \(Post-LN, 2 layers, hidden 32, vocabulary 300\); task: text-classification/);
  const ids = await tokenizer.encode(text);
  const logits = noGrad(() => model.logits({
    inputIds: Int32Array.from(ids), tokenTypeIds: new Int32Array(ids.length), attentionMask: new Float32Array(ids.length).fill(1), batchSize: 1, seqLen: ids.length,
  })).data;
  const z = Array.from(logits).reduce((s, v) => s + Math.exp(v), 0);
  const expected = labels.map((label, i) => ({ label, score: Math.exp(logits[i]) / z })).sort((a, b) => b.score - a.score);
  const got = results as { label: string; score: number }[];
  assert.deepEqual(got.map((r) => r.label), expected.map((r) => r.label));
  got.forEach((r, i) => assert.ok(Math.abs(r.score - expected[i].score) < 1e-5, `${r.label}: p ${r.score} against untie's ${expected[i].score}`));
});
