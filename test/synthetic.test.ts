// Generated corpora (--corpus synthetic:NAME): every answer checked by an independent solver,
// the same seed gives the same corpus byte for byte, bad specs are one-line errors, the
// per-difficulty accuracy is logged, and a small model learns one hop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UntieError } from '../src/errors.js';
import { IGNORE_INDEX, type MlmBatch } from '../src/data/mlm.js';
import { MASK_ID } from '../src/data/tokenizer.js';
import {
  SyntheticDataset, checkFits, parseSyntheticCorpus, solveExpr, solveHops, syntheticTokenizer, syntheticValidation, type SyntheticTask,
} from '../src/data/synthetic/index.js';
import { Rng } from '../src/tensor/rng.js';
import { defaultRunConfig, mergeConfig, validateRunConfig, type RunConfig } from '../src/train/config.js';
import { prepareData } from '../src/train/data.js';
import { readMetrics } from '../src/train/metrics.js';
import { evaluate, train } from '../src/train/trainer.js';
import { load } from '../src/train/load.js';
import { main } from '../src/cli/main.js';
import { readRun } from '../src/report/read.js';
import { difficultyChart, round } from '../src/report/run.js';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-synthetic-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Row `row` of a batch as text: as the model sees it (`shown`), and with the answers in place (`filled`). */
function rowTokens(task: SyntheticTask, b: MlmBatch, row: number): { shown: string[]; filled: string[] } {
  const vocab = syntheticTokenizer(task).vocab;
  const shown: string[] = [], filled: string[] = [];
  for (let t = row * b.seqLen; t < (row + 1) * b.seqLen; t++) {
    if (b.attentionMask[t] === 0) break;
    shown.push(vocab[b.inputIds[t]]);
    filled.push(vocab[b.labels[t] !== IGNORE_INDEX ? b.labels[t] : b.inputIds[t]]);
  }
  return { shown, filled };
}

/** Every target of row `row`: position, label and difficulty. */
function rowTargets(b: MlmBatch, row: number): { position: number; answer: number; difficulty: number }[] {
  const out: { position: number; answer: number; difficulty: number }[] = [];
  for (let t = row * b.seqLen; t < (row + 1) * b.seqLen; t++) {
    if (b.labels[t] === IGNORE_INDEX) {
      assert.equal(b.difficulty![t], 0, 'no difficulty where there is no target');
      continue;
    }
    assert.notEqual(b.inputIds[t], b.labels[t], 'no target shows its answer');
    out.push({ position: t - row * b.seqLen, answer: b.labels[t], difficulty: b.difficulty![t] });
  }
  return out;
}

test('hops: every masked answer is where k steps of the listed function lead (an independent solver), k = 1..K equally often', () => {
  for (const [spec, seqLen] of [
    ['synthetic:hops', 64], ['synthetic:hops:symbols=5,hops=7,map=permutation', 48], ['synthetic:hops:symbols=12,hops=3,map=function', 40],
    ['synthetic:hops:symbols=2,hops=1', 7], ['synthetic:hops:symbols=26,hops=16', 128],
  ] as const) {
    const task = parseSyntheticCorpus(spec);
    const vocab = syntheticTokenizer(task).vocab;
    const batch = new SyntheticDataset(task, seqLen, 3).nextBatch(50);
    const perLevel = new Array<number>(task.levels + 1).fill(0);
    for (let r = 0; r < batch.batchSize; r++) {
      // The solver reads the sequence as shown: the pairs, then a query token "xK" at each answer's place.
      const tokens = rowTokens(task, batch, r).shown;
      assert.ok(tokens.length <= seqLen && tokens[0] === '[CLS]' && tokens[tokens.length - 1] === '[SEP]');
      const solved = solveHops(tokens);
      const targets = rowTargets(batch, r);
      assert.deepEqual(targets.map((t) => [t.position, vocab[t.answer], t.difficulty]), solved.map((s) => [s.position, s.answer, s.hops]), `${spec}, row ${r}: ${tokens.join(' ')}`);
      // The listed function, one token per pair: every symbol once as a first element; a cycle or permutation hits every symbol once.
      const pairs = tokens.slice(1, 1 + (task.params.symbols as number));
      const firsts = pairs.map((p) => p[0]), seconds = pairs.map((p) => p[1]);
      assert.equal(new Set(firsts).size, task.params.symbols);
      if (task.params.map !== 'function') assert.equal(new Set(seconds).size, task.params.symbols);
      for (const s of solved) {
        perLevel[s.hops]++;
        // On a cycle through n symbols, k < n steps never come back to the start.
        if (task.params.map === 'cycle' && s.hops % (task.params.symbols as number) !== 0) assert.notEqual(s.answer, tokens[s.position][0]);
      }
    }
    assert.ok(perLevel[1] > 0 && perLevel.slice(1).every((n) => n === perLevel[1]), `${spec}: targets per hop count ${perLevel.slice(1)}`);
  }
});

test('expr: every masked answer is the left-to-right value modulo the prime (an independent BigInt solver), depths 1..D equally often', () => {
  for (const [spec, seqLen] of [['synthetic:expr', 40], ['synthetic:expr:modulus=97,depth=6', 128], ['synthetic:expr:modulus=2,depth=1', 7]] as const) {
    const task = parseSyntheticCorpus(spec);
    const vocab = syntheticTokenizer(task).vocab;
    const batch = new SyntheticDataset(task, seqLen, 11).nextBatch(50);
    const perLevel = new Array<number>(task.levels + 1).fill(0);
    const answers = new Set<string>();
    for (let r = 0; r < batch.batchSize; r++) {
      const { shown, filled: tokens } = rowTokens(task, batch, r);
      assert.ok(rowTargets(batch, r).every((t) => shown[t.position] === '[MASK]'), 'expr asks with [MASK]');
      const solved = solveExpr(tokens, task.params.modulus as number);
      assert.deepEqual(rowTargets(batch, r).map((t) => [t.position, vocab[t.answer], t.difficulty]), solved.map((s) => [s.position, s.answer, s.depth]), `${spec}, row ${r}: ${tokens.join(' ')}`);
      for (const s of solved) (perLevel[s.depth]++, answers.add(s.answer));
    }
    assert.ok(perLevel.slice(1).every((n) => n === perLevel[1] && n > 0), `${spec}: targets per depth ${perLevel.slice(1)}`);
    if ((task.params.modulus as number) <= 5) assert.equal(answers.size, task.params.modulus, 'every residue turns up as an answer');
  }
});

test('same seed, same corpus byte for byte: training stream, validation set, vocabulary; a resumed stream goes on identically', async () => {
  const cfg = (seed: number) => mergeConfig(defaultRunConfig('tiny'), {
    data: { corpus: 'synthetic:hops:symbols=6,hops=3', seqLen: 32, evalBatches: 2 }, train: { seed },
  }, 'config');
  const bytes = (b: MlmBatch) => Buffer.concat([b.inputIds, b.labels, b.attentionMask, b.difficulty!].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
  const draw = async (seed: number, dir: string) => {
    const d = await prepareData(cfg(seed).data, seed, path.join(root, dir), 8);
    return { train: [0, 1, 2].map(() => bytes(d.train.nextBatch(8))), validation: d.validation.map(bytes), unigram: d.unigram, dir: path.join(root, dir) };
  };
  const a = await draw(5, 'same-a'), b = await draw(5, 'same-b'), c = await draw(6, 'same-c');
  assert.deepEqual(a.train, b.train);
  assert.deepEqual(a.validation, b.validation);
  assert.notDeepEqual(a.train, c.train, 'another seed trains on other sequences');
  assert.deepEqual(a.validation, c.validation, 'the validation set comes from the split seed, the same for every training seed');
  assert.deepEqual(a.unigram, c.unigram);
  for (const f of fs.readdirSync(a.dir)) assert.ok(fs.readFileSync(path.join(a.dir, f)).equals(fs.readFileSync(path.join(b.dir, f))), `${f} is the same`);
  // No validation sequence's batch equals a training batch (different streams).
  for (const v of a.validation) assert.ok(!a.train.some((t) => t.equals(v)));
  // Resuming: a stream put at a saved state continues exactly.
  const task = parseSyntheticCorpus('synthetic:expr');
  const s1 = new SyntheticDataset(task, 40, 1);
  s1.nextBatch(4);
  const saved = JSON.parse(JSON.stringify(s1.getState()));
  const next = bytes(s1.nextBatch(4));
  const s2 = new SyntheticDataset(task, 40, 1);
  s2.setState(saved);
  assert.ok(bytes(s2.nextBatch(4)).equals(next));
  assert.throws(() => s2.setState({ epoch: 0, position: 3 } as never), /not a position in a generated corpus/);
});

test('the vocabulary is a real tokenizer: a sequence written as text encodes back to the same ids', async () => {
  for (const spec of ['synthetic:hops:symbols=26,hops=16', 'synthetic:expr:modulus=97,depth=3']) {
    const task = parseSyntheticCorpus(spec);
    const tokenizer = syntheticTokenizer(task);
    const ex = task.generate(new Rng(2), 128);
    const asked = ex.ids.slice();
    ex.targets.forEach((t, i) => (asked[t] = ex.shown?.[i] ?? MASK_ID));
    for (const ids of [ex.ids, asked]) {
      const text = Array.from(ids.slice(1, -1), (id) => tokenizer.vocab[id]).join(' ');
      assert.deepEqual(await tokenizer.encode(text), Array.from(ids), text);
    }
  }
});

test('bad specs are one-line errors naming the key and its range, before anything is written', async () => {
  const cases: [string, number, RegExp][] = [
    ['synthetic:hopz', 64, /unknown synthetic task "hopz": use one of hops, expr/],
    ['synthetic:hops:colors=3', 64, /synthetic:hops: unknown key "colors"; its keys are symbols \(a whole number in 2\.\.26, default 8\), hops .*map \(cycle \| permutation \| function/],
    ['synthetic:hops:symbols=27', 64, /synthetic:hops: symbols=27 is out of range: symbols must be a whole number in 2\.\.26/],
    ['synthetic:hops:hops=0', 64, /hops=0 is out of range: hops must be a whole number in 1\.\.16/],
    ['synthetic:hops:hops=2.5', 64, /hops=2\.5 is out of range/],
    ['synthetic:hops:map=tree', 64, /map=tree is not allowed: map must be one of cycle, permutation, function/],
    ['synthetic:hops:symbols=3,symbols=4', 64, /key "symbols" is given twice/],
    ['synthetic:hops:symbols', 64, /key "symbols" has no value/],
    ['synthetic:expr:modulus=9', 64, /modulus=9 is out of range: modulus must be a prime in 2\.\.97/],
    ['synthetic:hops:symbols=26,hops=16', 40, /symbols=26 and hops=16 need sequences of 44 tokens .* more than the sequence length 40: raise --seq-len to 44, or keep symbols in 2\.\.22 \(at hops=16\)/],
    ['synthetic:expr:depth=8', 64, /depth=8 needs sequences of 98 tokens .* raise --seq-len to 98, or keep depth in 1\.\.6/],
  ];
  for (const [corpus, seqLen, pattern] of cases) {
    const cfg: RunConfig = mergeConfig(defaultRunConfig('tiny'), { data: { corpus, seqLen } }, 'config');
    assert.throws(() => validateRunConfig(cfg), (err: unknown) => err instanceof UntieError && pattern.test(err.message) && !err.message.includes('\n'), corpus);
  }
  // Through the CLI: exit code 1, the message, and no run folder.
  const errs: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => errs.push(a.join(' '));
  try {
    assert.equal(await main(['train', '--corpus', 'synthetic:hops:hops=99', '--out', root, '--name', 'bad']), 1);
  } finally {
    console.error = orig;
  }
  assert.match(errs.join('\n'), /hops=99 is out of range: hops must be a whole number in 1\.\.16/);
  assert.ok(!fs.existsSync(path.join(root, 'bad')));
  assert.throws(() => checkFits(parseSyntheticCorpus('synthetic:hops:symbols=2,hops=1'), 4), /raise --seq-len to 5/);
});

/** A run config on a generated corpus: hidden 32, 2 layers, untied, no checkpoints. */
function syntheticConfig(name: string, corpus: string, patch: object = {}): RunConfig {
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir: root,
    model: { layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 24 },
    data: { corpus, seqLen: 24, evalBatches: 4 },
    train: { steps: 400, batchSize: 32, lr: 3e-3, threads: 1, logEvery: 50, evalEvery: 200, saveEvery: 0, seed: 0 },
    sharing: { share: '2x1', untie: 'never' },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

test('a small model learns one hop: it looks the start symbol up among the pairs (accuracy logged per hop count)', async () => {
  // Four symbols on a cycle: a model that ignores the pairs can at best rule out the start
  // symbol itself (1 in 3); only reading the pair that starts with it gives the answer.
  // (Measured: 100% by step 200-300 with seeds 0-3.)
  const cfg = syntheticConfig('one-hop', 'synthetic:hops:symbols=4,hops=1');
  const result = await train({ config: cfg, progress: false });
  assert.ok(result.unigramValAcc < 0.35, `unigram ${result.unigramValAcc}`);
  assert.ok(result.finalValAcc > 0.95, `validation accuracy ${result.finalValAcc} after ${result.steps} steps (a model blind to the pairs: at most 1/3)`);
  assert.equal(result.difficulty, 'hops');
  assert.deepEqual(result.finalValAccByDifficulty, { 1: result.finalValAcc });
  const evals = readMetrics(path.join(result.runDir, 'metrics.jsonl')).filter((r) => r.type === 'eval');
  assert.deepEqual(evals.map((e) => e.step), [200, 400]);
  for (const e of evals) assert.deepEqual(e.val_acc_by_difficulty, { 1: e.val_acc });
  // The run report draws the curve of each hop count.
  const chart = difficultyChart([readRun(result.runDir, 'report')], 'step')!;
  assert.equal(chart.title, 'Validation accuracy by hops against step');
  assert.deepEqual(chart.series.map((s) => [s.label, s.x, s.y]), [['hops 1', [200, 400], evals.map((e) => round(100 * (e.val_acc as number)))]]);
  // The run folder works like a text run's: its tokenizer loads with the model.
  const loaded = load(result.runDir);
  assert.equal(loaded.tokenizer.vocabSize, syntheticTokenizer(parseSyntheticCorpus(cfg.data.corpus)).vocabSize);
});

test('accuracy by difficulty: each target counted under its own hop count (recomputed from the logits here)', async () => {
  const cfg = syntheticConfig('by-hops', 'synthetic:hops:symbols=5,hops=3', { train: { steps: 40, evalEvery: 0 } });
  const result = await train({ config: cfg, progress: false });
  const { model } = load(result.runDir);
  const task = parseSyntheticCorpus(cfg.data.corpus);
  const batches = syntheticValidation(task, { seqLen: cfg.data.seqLen, batchSize: 16, count: 64, splitSeed: 0 });
  const hit = [0, 0, 0, 0], seen = [0, 0, 0, 0];
  for (const b of batches) {
    const positions: number[] = [];
    b.labels.forEach((l, i) => l !== IGNORE_INDEX && positions.push(i));
    const logits = model.logitsAt(model.encode(b), Int32Array.from(positions));
    const V = logits.shape[1];
    positions.forEach((p, r) => {
      const row = logits.data.subarray(r * V, (r + 1) * V);
      const best = row.indexOf(Math.max(...row));
      seen[b.difficulty![p]]++;
      if (best === b.labels[p]) hit[b.difficulty![p]]++;
    });
  }
  const ev = evaluate(model, batches);
  assert.deepEqual(Object.keys(ev.byDifficulty!), ['1', '2', '3']);
  for (const d of [1, 2, 3]) assert.ok(Math.abs(ev.byDifficulty![String(d)] - hit[d] / seen[d]) < 1e-12, `hops ${d}: ${ev.byDifficulty![String(d)]} vs ${hit[d]}/${seen[d]}`);
  assert.ok(Math.abs(ev.accuracy - (hit[1] + hit[2] + hit[3]) / (seen[1] + seen[2] + seen[3])) < 1e-12);
});
