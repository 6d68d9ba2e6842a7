// The GPT decoder: the causal mask, every gradient against finite
// differences, loss and gradients against GPT-2 in plain PyTorch read from
// the exported GPT2LMHeadModel files, the causal data, and end to end:
// exact resume, generate, export, a rule only context tells, bad input.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeKernels, reference, wasmKernels, type Kernels } from '../src/backend/index.js';
import { buildCausalValidationBatches, CausalDataset, causalWindows, makeCausalBatch, tokenStream } from '../src/data/causal.js';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { SEP_ID } from '../src/data/tokenizer.js';
import { unigramModel, unigramScore } from '../src/data/unigram.js';
import { GptLMHeadModel, defaultGptConfig, gptParameterCount, type GptConfig } from '../src/models/gpt.js';
import type { LmBatch } from '../src/models/lm.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, noGrad, tapeLength } from '../src/tensor/tensor.js';
import { defaultRunConfig, mergeConfig, type RunConfig } from '../src/train/config.js';
import { saveModelWeights } from '../src/train/checkpoint.js';
import { parametersAsGpt2 } from '../src/train/gpt2.js';
import { exportModel, loadDecoder } from '../src/train/load.js';
import { generate } from '../src/train/inference.js';
import { readMetrics } from '../src/train/metrics.js';
import { prepareData, prepareValidation } from '../src/train/data.js';
import { evaluate, train } from '../src/train/trainer.js';
import { readSafetensors, writeSafetensors } from '../src/train/safetensors.js';
import { writeRunReport } from '../src/report/run.js';
import { findTorchPython } from '../bench/torch-python.js';
import { assertClose, cli, comparableMetrics, copyTokenizer, withKernels, writeWordCorpus } from './helpers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const backends: Kernels[] = [reference];
const nat = nativeKernels(), wasm = wasmKernels();
if (nat) backends.push(nat);
if (wasm) backends.push(wasm);

function tinyGpt(patch: Partial<GptConfig> = {}): GptConfig {
  return { ...defaultGptConfig(), vocabSize: 40, hidden: 16, layers: 2, heads: 2, intermediate: 32, maxPositions: 12, ...patch };
}

/** B x T random token ids (never [PAD]), labels the next id; row 1 is right-padded after `padFrom` tokens when given. */
function randomBatch(c: GptConfig, B: number, T: number, seed: number, padFrom?: number): LmBatch {
  const rng = new Rng(seed);
  const windows = Array.from({ length: B }, (_, b) => {
    const n = b === 1 && padFrom !== undefined ? padFrom + 1 : T + 1;
    return Int32Array.from({ length: n }, () => 1 + (rng.nextU32() % (c.vocabSize - 1)));
  });
  return makeCausalBatch(windows, T);
}

/** Moves every parameter off its init (LayerNorm 1/0, zero biases) so that every term of every gradient is exercised. */
function perturb(model: GptLMHeadModel, seed: number, std: number): void {
  const noise = new Rng(seed);
  for (const [, p] of model.namedParameters()) for (let i = 0; i < p.size; i++) p.data[i] += std * noise.normal();
}

for (const K of backends) {
  test(`causal: changing token t+1 (or any later one) never changes the logits at positions <= t, and does change t+1's (${K.name} kernels)`, () => {
    withKernels(K, () => {
      const c = tinyGpt();
      const model = new GptLMHeadModel(c, 3).eval();
      perturb(model, 4, 0.2);
      const B = 2, T = 10, V = c.vocabSize;
      const batch = randomBatch(c, B, T, 5);
      const logitsOf = (b: LmBatch) => noGrad(() => model.logits(model.decode(b)).data.slice());
      const base = logitsOf(batch);
      for (let t = 0; t + 1 < T; t++) {
        const changed = { ...batch, inputIds: batch.inputIds.slice() };
        for (let b = 0; b < B; b++) {
          // A new token at t+1, and scrambled ones after it.
          for (let u = t + 1; u < T; u++) changed.inputIds[b * T + u] = 1 + ((changed.inputIds[b * T + u] + 7 * (u - t)) % (V - 1));
        }
        const out = logitsOf(changed);
        for (let b = 0; b < B; b++) {
          const row = (u: number) => (b * T + u) * V;
          assert.deepEqual(out.subarray(row(0), row(t + 1)), base.subarray(row(0), row(t + 1)), `row ${b}: positions 0..${t} moved when token ${t + 1} changed`);
          assert.notDeepEqual(out.subarray(row(t + 1), row(t + 2)), base.subarray(row(t + 1), row(t + 2)), `row ${b}: position ${t + 1} did not see its own token change`);
        }
      }
    });
  });
}

describe('every gradient of a small decoder against central finite differences', () => {
  for (const K of [reference, ...(nat ? [nat] : [])]) {
    test(`${K.name} kernels, with padding and biases`, () => {
      withKernels(K, () => {
        const c = tinyGpt({ vocabSize: 20, hidden: 8, intermediate: 16, maxPositions: 6 });
        const model = new GptLMHeadModel(c, 11);
        perturb(model, 12, 0.3);
        const batch = randomBatch(c, 2, 5, 13, 3);
        const lossOf = () => noGrad(() => model.loss(batch).loss.item());
        model.zeroGrad();
        backward(model.loss(batch).loss);
        assert.equal(tapeLength(), 0);
        const h = 1e-2;
        for (const [name, p] of model.namedParameters()) {
          assert.ok(p.grad, `${name} received no gradient`);
          const numeric = new Float64Array(p.size);
          for (let i = 0; i < p.size; i++) {
            const orig = p.data[i];
            p.data[i] = orig + h;
            const plus = lossOf();
            p.data[i] = orig - h;
            const minus = lossOf();
            p.data[i] = orig;
            numeric[i] = (plus - minus) / (2 * h);
          }
          // float32 losses near 3 differ by ~2e-7 between evaluations: ~3e-5 of noise in a difference quotient.
          assertClose(p.grad, numeric, 2e-2, 3e-4, name);
        }
      });
    });
  }
});

const python = findTorchPython();
const requireTorch = process.env.UNTIE_REQUIRE_TORCH === '1';
const parityName = 'loss and every gradient match GPT-2 in plain PyTorch, read from the GPT2LMHeadModel files untie writes';
if (!python) {
  if (requireTorch) test(parityName, () => assert.fail('UNTIE_REQUIRE_TORCH=1, but no python on this machine imports torch (install python3-torch, or set UNTIE_TORCH_PYTHON)'));
  else test.skip(`${parityName}: no python that imports torch (set UNTIE_TORCH_PYTHON to one)`, () => {});
} else {
  test(parityName, (t) => {
    // Both bias settings: without biases, the files carry zero ones (GPT-2 always has them).
    const cases = backends.flatMap((K) => [true, false].map((bias) => ({ K, bias })));
    const dirs: string[] = [];
    const sides = cases.map(({ K, bias }) => withKernels(K, () => {
      const c = tinyGpt({ vocabSize: 64, hidden: 32, layers: 2, heads: 4, intermediate: 64, maxPositions: 16, bias, positionInit: 'sinusoidal' });
      const model = new GptLMHeadModel(c, 1234);
      perturb(model, 99, 0.05);
      const batch = randomBatch(c, 3, 12, 7, 8);
      model.zeroGrad();
      const out = model.loss(batch);
      backward(out.loss);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-gpt2-parity-'));
      dirs.push(dir);
      saveModelWeights(dir, model);
      writeSafetensors(path.join(dir, 'inputs.safetensors'), {
        input_ids: { dtype: 'I32', shape: [3, 12], data: batch.inputIds }, labels: { dtype: 'I32', shape: [3, 12], data: batch.labels },
      });
      // Without biases, the files' zero biases are no parameters of the model: torch's gradients for them have nothing to match.
      const grads = Object.entries(parametersAsGpt2(model.namedParameters(), c, true)).filter(([name]) => bias || !/\.(c_attn|c_proj|c_fc)\.bias$/.test(name));
      return { name: `${K.name}, bias ${bias}`, dir, loss: out.loss.item(), grads: Object.fromEntries(grads) };
    }));
    try {
      const run = spawnSync(python, [path.join(here, 'torch_gpt2.py'), ...dirs], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } });
      assert.equal(run.status, 0, `test/torch_gpt2.py failed:\n${run.stderr}`);
      for (const side of sides) {
        const torchLoss = (JSON.parse(fs.readFileSync(path.join(side.dir, 'torch.json'), 'utf8')) as { loss: number }).loss;
        const torchGrads = readSafetensors(path.join(side.dir, 'grads.safetensors')).tensors;
        for (const name of Object.keys(side.grads)) assert.ok(torchGrads[name], `${side.name}: torch has no gradient for ${name}`);
        const lossRel = Math.abs(side.loss - torchLoss) / torchLoss;
        let worst = { name: '', rel: 0 };
        for (const [name, g] of Object.entries(side.grads)) {
          const tg = torchGrads[name].data as Float32Array;
          let diff = 0, scale = 0;
          for (let i = 0; i < tg.length; i++) {
            diff = Math.max(diff, Math.abs((g.data as Float32Array)[i] - tg[i]));
            scale = Math.max(scale, Math.abs(tg[i]));
          }
          const rel = scale === 0 ? diff : diff / scale;
          if (!(rel <= worst.rel)) worst = { name, rel };
        }
        t.diagnostic(`${side.name}: loss untie ${side.loss.toFixed(7)} torch ${torchLoss.toFixed(7)} (rel ${lossRel.toExponential(2)}); worst gradient rel ${worst.rel.toExponential(2)} (${worst.name})`);
        // The encoder's parity test's tolerances (float32 rounding in other summation orders is ~1e-7).
        assert.ok(lossRel <= 1e-6, `${side.name}: loss ${side.loss} vs torch ${torchLoss}`);
        assert.ok(worst.rel <= 1e-5, `${side.name}: ${worst.name}: relative gradient error ${worst.rel}`);
      }
    } finally {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  });
}

test('causal data: every stream token is a target once, labels are the inputs shifted by one, and the stream position resumes exactly', () => {
  const docs = [[Int32Array.of(10, 11, 12), Int32Array.of(13)], [Int32Array.of(20, 21, 22, 23, 24)], [Int32Array.of(30)]];
  const stream = tokenStream(docs);
  assert.deepEqual([...stream], [10, 11, 12, 13, SEP_ID, 20, 21, 22, 23, 24, SEP_ID, 30, SEP_ID]);
  const T = 4;
  const batches = buildCausalValidationBatches(causalWindows(stream, T, { tail: true }), T, 2);
  const targets = batches.flatMap((b) => [...b.labels].filter((l) => l !== -100));
  assert.deepEqual(targets, [...stream.subarray(1)]);
  for (const b of batches) {
    for (let i = 0; i < b.batchSize * T; i++) {
      if (b.labels[i] === -100) assert.equal(b.attentionMask[i], 0);
      else if (i % T < T - 1 && b.labels[i + 1] !== -100) assert.equal(b.inputIds[i + 1], b.labels[i], 'the next input is this label');
    }
  }
  // Training takes full windows only; a resumed stream draws what the uninterrupted one does.
  assert.equal(causalWindows(stream, T).length, 3);
  const a = new CausalDataset(causalWindows(stream, T), T, 5), b = new CausalDataset(causalWindows(stream, T), T, 5);
  for (let i = 0; i < 4; i++) a.nextBatch(2);
  b.setState(JSON.parse(JSON.stringify(a.getState())));
  for (let i = 0; i < 5; i++) assert.deepEqual(b.nextBatch(2), a.nextBatch(2));
  assert.throws(() => b.setState({ epoch: 0, position: 99 }), /does not fit this dataset/);
  // The unigram line scores the same next-token targets, [SEP] included (it ends every document).
  const unigram = unigramModel(causalWindows(stream, T), 40, [0, 2, 4]);
  const score = unigramScore(unigram, batches);
  assert.equal(score.count, stream.length - 1);
  assert.ok(Number.isFinite(score.loss));
});

test('the parameter count is what the model holds', () => {
  for (const bias of [true, false]) {
    const c = tinyGpt({ bias });
    assert.equal(gptParameterCount(c), new GptLMHeadModel(c, 0).parameters().reduce((n, p) => n + p.size, 0));
  }
});

// ---------------------------------------------------------------- end to end

let root: string;
let corpus: string;
let tokenizerDir: string;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-gpt-'));
  corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, 40)) fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  tokenizerDir = path.join(root, 'tok');
  await prepareData(decoderConfig('tok').data, 0, tokenizerDir, 4, { kind: 'gpt' });
});

function decoderConfig(name: string, patch: object = {}): RunConfig {
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir: root,
    model: { kind: 'gpt', layers: 4, hidden: 32, heads: 2, intermediate: 64, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 1000, evalBatches: 3 },
    train: { steps: 12, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1, evalEvery: 6, saveEvery: 4, keepLast: 10 },
    sharing: { share: '1x4', untie: 'step:6' },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

function seedTokenizer(name: string): void {
  copyTokenizer(tokenizerDir, path.join(root, name));
}

test('a decoder run: interrupted and resumed, it equals the uninterrupted run across the untie step, and logs perplexity beside the unigram line', async () => {
  seedTokenizer('whole');
  seedTokenizer('cut');
  const whole = await train({ config: decoderConfig('whole'), progress: false });
  assert.equal(whole.untiedAt, 6);
  await train({ config: decoderConfig('cut'), haltAt: 10, progress: false });
  assert.ok(fs.existsSync(path.join(root, 'cut', 'checkpoint-8')) && !fs.existsSync(path.join(root, 'cut', 'checkpoint-12')));
  const resumed = await train({ config: decoderConfig('cut'), resume: true, progress: false });
  assert.equal(resumed.finalValLoss, whole.finalValLoss);
  const a = readSafetensors(path.join(root, 'whole', 'checkpoint-12', 'model.safetensors'));
  const b = readSafetensors(path.join(root, 'cut', 'checkpoint-12', 'model.safetensors'));
  for (const name of Object.keys(a.tensors)) assert.deepEqual(b.tensors[name].data, a.tensors[name].data, name);
  const records = readMetrics(path.join(root, 'whole', 'metrics.jsonl'));
  assert.deepEqual(comparableMetrics(readMetrics(path.join(root, 'cut', 'metrics.jsonl'))), comparableMetrics(records));
  const last = records.filter((r) => r.type === 'eval').pop()!;
  assert.equal(last.val_ppl, Math.exp(last.val_loss as number));
  assert.equal(last.unigram_val_ppl, Math.exp(last.unigram_val_loss as number));
  // The run's report says what the loss is: the next token's, not masked LM's.
  const page = fs.readFileSync(writeRunReport(path.join(root, 'whole')), 'utf8');
  assert.match(page, /Next-token loss against step/);
  assert.doesNotMatch(page, /Masked-LM loss/);
  // The checkpoint is a GPT2LMHeadModel folder, and it loads back to the validation loss the run logged.
  const config = JSON.parse(fs.readFileSync(path.join(root, 'whole', 'checkpoint-12', 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt2');
  const loaded = loadDecoder(path.join(root, 'whole'));
  assert.equal(evaluate(loaded.model, await prepareValidation(decoderConfig('whole').data, path.join(root, 'whole'), 4, undefined, 'gpt')).loss, last.val_loss);
  // untie eval gives the same loss, with the same unigram line on the same next-token targets.
  const ev = await cli(['eval', path.join(root, 'whole'), '--json']);
  assert.equal(ev.code, 0, ev.err);
  const printed = JSON.parse(ev.out);
  assert.deepEqual([printed.val_loss, printed.val_ppl, printed.unigram_val_loss, printed.unigram_val_acc], [last.val_loss, last.val_ppl, last.unigram_val_loss, last.unigram_val_acc]);
});

test('generate: the same seed gives the same text, greedy ignores the seed, and a prompt longer than the position table is refused', async () => {
  const loaded = loadDecoder(path.join(root, 'whole'));
  const first = await generate(loaded, 'the jury said', { maxTokens: 12, seed: 1 });
  assert.deepEqual(await generate(loaded, 'the jury said', { maxTokens: 12, seed: 1 }), first);
  assert.ok(first.tokens.length > 0 && first.text.startsWith('the jury said'));
  const others = await Promise.all([2, 3, 4].map((seed) => generate(loaded, 'the jury said', { maxTokens: 12, seed })));
  assert.ok(others.some((g) => g.continuation !== first.continuation), 'other seeds sample other text');
  const greedy = await Promise.all([1, 2].map((seed) => generate(loaded, 'the jury said', { maxTokens: 12, temperature: 0, seed })));
  assert.deepEqual(greedy[0].tokens, greedy[1].tokens);
  // Longer than the table: the context slides, so 40 new tokens after a 20-token prompt still come.
  const long = await generate(loaded, 'the jury said '.repeat(7), { maxTokens: 40, temperature: 0 });
  assert.ok(long.tokens.length === 40 || long.stopped === 'end');
  await assert.rejects(generate(loaded, 'the jury said '.repeat(20), {}), /the prompt is \d+ tokens; .*position table holds 32: shorten the prompt to at most 31 tokens/);
  const viaCli = await cli(['generate', path.join(root, 'whole'), 'the jury said', '--max-tokens', '12', '--seed', '1', '--json']);
  assert.equal(viaCli.code, 0, viaCli.err);
  assert.equal(JSON.parse(viaCli.out).text, first.text);
});

test('export: a GPT2LMHeadModel folder (Conv1D orientation, fused c_attn, no stored lm_head) that loads back to the same logits', async () => {
  const out = path.join(root, 'exported');
  const r = exportModel(path.join(root, 'whole'), out);
  assert.equal(r.architecture, 'GPT2LMHeadModel');
  assert.equal(r.modelType, 'gpt2');
  assert.deepEqual(r.files, ['config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual([config.n_embd, config.n_layer, config.n_head, config.n_inner, config.n_positions, config.activation_function], [32, 4, 2, 64, 32, 'gelu']);
  const { tensors } = readSafetensors(path.join(out, 'model.safetensors'));
  assert.deepEqual(tensors['transformer.h.0.attn.c_attn.weight'].shape, [32, 96]);
  assert.deepEqual(tensors['transformer.h.0.mlp.c_fc.weight'].shape, [32, 64]);
  assert.deepEqual(tensors['transformer.h.0.mlp.c_proj.weight'].shape, [64, 32]);
  assert.equal(tensors['lm_head.weight'], undefined);
  // c_attn's columns [q | k | v] are the Linears' rows: column C + j of c_attn is key's row j.
  const original = loadDecoder(path.join(root, 'whole')), back = loadDecoder(out);
  const key = original.model.transformer.h[0].attn.key.weight.data, cAttn = tensors['transformer.h.0.attn.c_attn.weight'].data as Float32Array;
  for (let j = 0; j < 32; j++) for (let k = 0; k < 32; k++) assert.equal(cAttn[k * 96 + 32 + j], key[j * 32 + k]);
  const batch = makeCausalBatch([Int32Array.from({ length: 20 }, (_, i) => 5 + i)], 19);
  const logits = (m: GptLMHeadModel) => noGrad(() => m.logits(m.decode(batch)).data.slice());
  assert.deepEqual(logits(back.model), logits(original.model));
});

test('a decoder learns a rule only context tells: "a b a b ..." runs of random word pairs, far below its unigram line', async () => {
  // Every sentence is a b a b ... (12 words) "." with a, b drawn from 20 words: after the first two words the next one
  // is the word two back, while every word's frequency is 1/20, so the unigram line stays near ln 20. The token before
  // says nothing about the next one either (b follows a at random), so only attention two tokens back beats it.
  const dir = path.join(root, 'pairs-corpus');
  writeWordCorpus(dir, 60, (a, b) => `${`${a} ${b} `.repeat(6)}.`);
  const cfg = decoderConfig('pairs', {
    model: { layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 16 },
    data: { corpus: dir, seqLen: 16, vocabSize: 100, evalBatches: 4 },
    train: { steps: 300, batchSize: 16, lr: 5e-3, logEvery: 50, evalEvery: 0, saveEvery: 0 },
    sharing: { share: '1x2', untie: 'step:50' },
  });
  const result = await train({ config: cfg, progress: false });
  assert.ok(result.unigramValLoss > 2.5, `unigram line ${result.unigramValLoss}`);
  assert.ok(result.finalValLoss < 0.5 * result.unigramValLoss, `validation loss ${result.finalValLoss} against the unigram line ${result.unigramValLoss}`);
  // 10 of a sentence's 13 tokens follow from the two before (measured: 0.74 at 300 steps; the unigram predictor: 0.08).
  assert.ok(result.finalValAcc > 0.6, `next-token accuracy ${result.finalValAcc} (unigram ${result.unigramValAcc})`);
});

test('compare --model gpt: every run a decoder, no downstream judge, and the summary and report name the objective', async () => {
  const out = path.join(root, 'compare');
  const r = await cli([
    'compare', '--model', 'gpt', '--variants', 'baseline,swe-f', '--steps', '6', '--evals', '2', '--threads', '1', '--out', out, '--quiet', '--',
    '--layers', '2', '--hidden', '32', '--heads', '2', '--intermediate', '64', '--max-positions', '32', '--seq-len', '32', '--vocab-size', '1000',
    '--corpus', corpus, '--eval-batches', '2', '--batch-size', '4',
  ]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.split('\n')[0], 'objective: next-token prediction (GPT decoder)');
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(results.base.model.kind, 'gpt');
  assert.equal(results.options.downstream, 'none');
  assert.equal(results.runs.length, 2);
  for (const run of results.runs) {
    assert.equal(JSON.parse(fs.readFileSync(path.join(run.runDir, 'config.json'), 'utf8')).model.kind, 'gpt');
    assert.ok(run.unigramValLoss > 0 && run.evals.length === 2);
  }
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /Objective: next-token prediction \(GPT decoder\)/);
  assert.match(html, /Next-token acc\. \(%\)/);
});

test('bad input: one-line errors that say what to do', async () => {
  const cases: [string[], RegExp][] = [
    [['train', '--model', 'gpt3'], /--model must be "bert" or "gpt"/],
    [['train', '--model', 'gpt', '--mask-prob', '0.15'], /--mask-prob \(data\.maskProb\) is a masked-LM setting.*drop --mask-prob, or train --model bert/],
    [['train', '--model', 'gpt', '--norm', 'post'], /--norm post \(model\.norm\) is an encoder setting.*drop --norm/],
    [['train', '--model', 'gpt', '--probe', 'pos'], /--probe \(train\.probe\) trains a classifier on a frozen BERT encoder/],
    [['compare', '--model', 'gpt', '--downstream', 'probe'], /--downstream probe fine-tunes classifiers on an encoder; .*drop --downstream/],
    [['generate', path.join(root, 'whole'), 'x', '--temperature=-1'], /--temperature must be a number >= 0/],
    [['fill-mask', path.join(root, 'whole'), 'the [MASK] said'], /describes a GPT decoder.*needs a BERT encoder: a decoder works with untie generate, eval and export/],
    [['finetune', path.join(root, 'whole'), '--task', 'pos'], /describes a GPT decoder/],
    [['export', path.join(root, 'whole'), path.join(root, 'no-onnx'), '--onnx'], /--onnx writes untie's BERT masked LMs .* is GPT2LMHeadModel\. Export it without --onnx/],
    [['export', path.join(root, 'whole'), path.join(root, 'no-sharing'), '--sharing'], /--sharing exports BERT runs.* is a GPT decoder \(--model gpt\)\. Export only its weights \(drop --sharing\)/],
  ];
  for (const [args, expected] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(' ')} exited ${r.code}`);
    assert.match(r.err, expected, args.join(' '));
    assert.equal(r.err.split('\n').length, 1, `one line: ${r.err}`);
  }
  // Refused before anything was written.
  for (const out of ['no-onnx', 'no-sharing']) assert.ok(!fs.existsSync(path.join(root, out)), `${out} was written`);
  // generate on an encoder: train a 2-step BERT on the same corpus.
  seedTokenizer('encoder');
  await train({ config: decoderConfig('encoder', { model: { kind: 'bert' }, train: { steps: 2, evalEvery: 0, saveEvery: 0 }, sharing: { untie: 'never' } }), progress: false });
  const r = await cli(['generate', path.join(root, 'encoder'), 'the jury']);
  assert.equal(r.code, 1);
  assert.match(r.err, /describes a BERT encoder.*needs a GPT decoder: train one with untie train --model gpt/);
});
