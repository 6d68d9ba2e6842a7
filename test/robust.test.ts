// Same seed, same run; whole output; nothing trusted that was not checked
// (issue 12): reproducible runs, the CLI's output and exit codes, odd paths
// and arguments, validate-then-write on resume, checksums, the run lock, a
// full disk, --detect-anomaly, Ctrl-C, and tokenizer files in checkpoints.
import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { UntieError } from '../src/errors.js';
import { BertForMaskedLM, bertParameterCount, defaultBertConfig } from '../src/models/bert.js';
import { commandAsRun } from '../src/cli/args.js';
import { main } from '../src/cli/main.js';
import { saveModelWeights } from '../src/train/checkpoint.js';
import type { RunConfig } from '../src/train/config.js';
import { checkCreatable, makeDirectory } from '../src/train/fsutil.js';
import { load } from '../src/train/load.js';
import { RunLock } from '../src/train/runlock.js';
import { threadCount, train } from '../src/train/trainer.js';
import { AnomalyError, setDetectAnomaly } from '../src/tensor/anomaly.js';
import { Rng } from '../src/tensor/rng.js';
import { parseCriterion } from '../src/sharing/criteria.js';
import * as ops from '../src/tensor/ops.js';
import { backward, parameter, clearTape } from '../src/tensor/tensor.js';
import { assertSameFolder, binShim, snapshot, tinyRunConfig } from './helpers.js';

const execFileAsync = promisify(execFile);
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
let root: string;
let corpus: string;
/** A finished run: checkpoints 4 and 8 (of 8 steps). */
let finished: string;
let brownTexts: string[][];

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-robust-'));
  corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  brownTexts = loadBrown().slice(0, 20).map((d) => d.sentences.map(sentenceText));
  brownTexts.forEach((texts, i) => fs.writeFileSync(path.join(corpus, `doc${i}.txt`), texts.join('\n') + '\n'));
  await train({ config: tinyConfig('finished'), progress: false });
  finished = path.join(root, 'finished');
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

function tinyConfig(name: string, patch: object = {}): RunConfig {
  return tinyRunConfig(root, corpus, name, patch);
}

/** A copy of the finished run to damage. */
function copyRun(name: string): string {
  const dir = path.join(root, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(finished, dir, { recursive: true });
  return dir;
}

async function rejectsUntie(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UntieError, `expected an UntieError, got ${String((err as Error)?.stack ?? err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

/** Runs the CLI in-process, capturing stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = mock.method(console, 'log', (...a: unknown[]) => void out.push(a.join(' ')));
  const error = mock.method(console, 'error', (...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

function shimBin(): string {
  return binShim(root);
}

// ---- same seed, same run

test('the same seed gives the same run: tokenizer, weights and optimizer state byte for byte', async () => {
  await train({ config: tinyConfig('again'), progress: false });
  const again = path.join(root, 'again');
  for (const f of ['tokenizer.json', 'vocab.txt', 'checkpoint-8/model.safetensors', 'checkpoint-8/optimizer.safetensors', 'checkpoint-8/tokenizer.json']) {
    assert.ok(fs.readFileSync(path.join(finished, f)).equals(fs.readFileSync(path.join(again, f))), `${f} differs between two runs with seed 0`);
  }
});

// ---- whole output

test('bin/untie.js: a >1 MB --json answer arrives whole through a pipe, and exit codes come through', async () => {
  // A model folder whose fill-mask answer is large: every token of the 600-token vocabulary for 16 masks.
  const modelDir = path.join(root, 'big-answer');
  const tokenizer = loadTokenizer(finished);
  const model = new BertForMaskedLM({ ...defaultBertConfig(), vocabSize: tokenizer.vocabSize, hidden: 16, heads: 2, intermediate: 32, layers: 1, maxPositions: 64 }, 1);
  fs.mkdirSync(modelDir);
  saveModelWeights(modelDir, model);
  tokenizer.save(modelDir);
  const bin = shimBin();
  const text = Array.from({ length: 16 }, () => 'the [MASK]').join(' ');
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', bin, 'fill-mask', modelDir, text, '--top-k', '600', '--json'], {
    cwd: repo, maxBuffer: 64 << 20, encoding: 'utf8',
  });
  assert.ok(stdout.length > 1_000_000, `the answer is ${stdout.length} bytes`);
  const preds = JSON.parse(stdout) as { token: number }[][];
  assert.equal(preds.length, 16);
  for (const list of preds) assert.equal(list.length, 600);
  await assert.rejects(execFileAsync(process.execPath, ['--import', 'tsx', bin, 'train', 'extra'], { cwd: repo }), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr ?? '', /unexpected argument "extra"/);
    return true;
  });
  await assert.rejects(execFileAsync(process.execPath, ['--import', 'tsx', bin, 'nope'], { cwd: repo }), (err: { code?: number }) => err.code === 2);
});

// ---- newcomer findings

test('train refuses extra arguments and odd --out paths in one line, creating nothing', async () => {
  const out = path.join(root, 'odd-out');
  fs.mkdirSync(out);
  let r = await cli(['train', 'extra', '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.err, /^untie train: error: unexpected argument "extra"/);
  const file = path.join(root, 'a-file.txt');
  fs.writeFileSync(file, 'not a folder');
  r = await cli(['train', '--out', path.join(file, 'sub'), '--corpus', corpus]);
  assert.equal(r.code, 1);
  assert.match(r.err, /a-file\.txt is a file, not a folder/);
  assert.equal(r.err.split('\n').length, 1);
  if (fs.existsSync('/proc/self')) {
    r = await cli(['train', '--out', '/proc/x', '--corpus', corpus]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot create the folder \/proc\/x.*ENOENT/);
    assert.throws(() => makeDirectory('/proc/x/y'), /cannot create the folder \/proc\/x/); // no endless loop in mkdir
  }
  assert.throws(() => checkCreatable(path.join(file, 'a', 'b')), /is a file, not a folder/);
  // Failed starts leave no run folder behind: a missing corpus, an empty folder, a binary file.
  const empty = path.join(root, 'empty-corpus');
  fs.mkdirSync(empty);
  const binary = path.join(root, 'binary.txt');
  fs.writeFileSync(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1, 2]));
  for (const bad of [path.join(root, 'missing'), empty, binary]) {
    r = await cli(['train', '--out', out, '--corpus', bad, '--threads', '1']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^untie train: error: /);
  }
  assert.deepEqual(fs.readdirSync(out), [], 'no run folder is created before the inputs are checked');
});

test('threads above the core count are capped with a note', () => {
  assert.deepEqual(threadCount(0, 4), { threads: 4, note: null });
  assert.deepEqual(threadCount(3, 4), { threads: 3, note: null });
  const capped = threadCount(999, 2);
  assert.equal(capped.threads, 2);
  assert.match(capped.note ?? '', /--threads 999 is more than the 2 cores here; using 2/);
});

test('the resume hint names the command as the user ran it', () => {
  assert.equal(commandAsRun('train', { npm_command: 'exec' }, ['node', '/x/node_modules/.bin/untie']), 'npx untie train');
  assert.equal(commandAsRun('train', { npm_lifecycle_event: 'start', npm_command: 'start' }, ['node', '/r/bin/untie.js'], '/r'), 'npm start --');
  assert.equal(commandAsRun('train', {}, ['node', '/usr/local/bin/untie']), 'untie train');
  assert.equal(commandAsRun('train', {}, ['node', '/r/bin/untie.js'], '/r'), 'node bin/untie.js train');
  assert.equal(commandAsRun('train', {}, ['node', '/elsewhere/bin/untie.js'], '/r'), 'node /elsewhere/bin/untie.js train');
});

test('a single text file is a corpus, and --validation-fraction sets the held-out share', async () => {
  const file = path.join(root, 'one-file.txt');
  fs.writeFileSync(file, brownTexts.slice(0, 10).flat().join('\n') + '\n');
  const r = await cli(['train', '--json', '--quiet', '--out', root, '--name', 'one-file', '--corpus', file, '--steps', '2', '--layers', '1', '--hidden', '16',
    '--heads', '2', '--intermediate', '32', '--seq-len', '32', '--max-positions', '32', '--batch-size', '2', '--vocab-size', '600', '--eval-batches', '1',
    '--threads', '1', '--validation-fraction', '0.2']);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).steps, 2);
  const saved = JSON.parse(fs.readFileSync(path.join(root, 'one-file', 'config.json'), 'utf8'));
  assert.equal(saved.data.validationFraction, 0.2);
  assert.equal((await cli(['train', '--validation-fraction', '1.5', '--corpus', file, '--out', root, '--name', 'bad-fraction'])).code, 1);
  assert.ok(!fs.existsSync(path.join(root, 'bad-fraction')));
});

test('checkpoints carry the tokenizer files, and eval/fill-mask use them', () => {
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    assert.ok(fs.readFileSync(path.join(finished, 'checkpoint-8', f)).equals(fs.readFileSync(path.join(finished, f))), f);
  }
  const lines = fs.readFileSync(path.join(finished, 'checkpoint-8', 'checksums.sha256'), 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.slice(66)), ['config.json', 'model.safetensors', 'optimizer.safetensors', 'special_tokens_map.json',
    'tokenizer.json', 'tokenizer_config.json', 'trainer_state.json', 'vocab.txt']);
  // A checkpoint copied out of its run still loads with its own tokenizer.
  const alone = path.join(root, 'alone');
  fs.cpSync(path.join(finished, 'checkpoint-8'), alone, { recursive: true });
  assert.equal(load(alone).tokenizer.vocabSize, 600);
});

test('eval and fill-mask verify checksums: a flipped bit in tensor data is named, not used', async () => {
  const dir = copyRun('flipped');
  flipByte(path.join(dir, 'checkpoint-8', 'model.safetensors'), -100);
  for (const args of [['eval', dir], ['fill-mask', dir, 'the [MASK] .']]) {
    const r = await cli(args);
    assert.equal(r.code, 1);
    assert.match(r.err, /checkpoint-8\/model\.safetensors does not match its SHA-256 in checksums\.sha256/);
  }
  // The same checkpoint intact evaluates.
  assert.equal((await cli(['eval', finished, '--json'])).code, 0);
});

test('a damaged config.json cannot make load() allocate more than the weights file holds', () => {
  for (const norm of ['post', 'pre'] as const) {
    const c = { ...defaultBertConfig(), vocabSize: 97, hidden: 12, heads: 3, intermediate: 20, layers: 3, maxPositions: 10, typeVocabSize: 3, norm };
    assert.equal(bertParameterCount(c), new BertForMaskedLM(c, 0).namedParameters().reduce((n, [, p]) => n + p.size, 0), norm);
  }
  const dir = path.join(root, 'huge-config');
  fs.cpSync(path.join(finished, 'checkpoint-8'), dir, { recursive: true });
  fs.rmSync(path.join(dir, 'checksums.sha256'));
  const file = path.join(dir, 'config.json');
  const hf = JSON.parse(fs.readFileSync(file, 'utf8'));
  hf.max_position_embeddings = 2 ** 50;
  fs.writeFileSync(file, JSON.stringify(hf));
  assert.throws(() => load(dir), /describes a model of [\d,]+ parameters, but .*model\.safetensors has only [\d,]+ bytes/);
});

// ---- validate, then write

test('resume checks every file before writing: each damage is refused and the run folder stays byte-identical', async () => {
  const state = (dir: string) => path.join(dir, 'checkpoint-8', 'trainer_state.json');
  const editState = (dir: string, edit: (s: Record<string, unknown>) => void) => {
    const s = JSON.parse(fs.readFileSync(state(dir), 'utf8'));
    edit(s);
    fs.writeFileSync(state(dir), JSON.stringify(s));
    fs.rmSync(path.join(dir, 'checkpoint-8', 'checksums.sha256')); // as a checkpoint of an older untie: the values are still checked
  };
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['run config.json not JSON', (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"preset": "tiny", '), /not valid JSON/],
    ['run config.json with a wrong type', (d) => {
      const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
      c.model.hidden = 'big';
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
    }, /model.hidden" must be a number/],
    ['negative step', (d) => editState(d, (s) => (s.step = -5)), /"step" must be a whole number >= 1, got -5/],
    ['step not the folder\'s', (d) => editState(d, (s) => (s.step = 7)), /"step" is 7 but the folder is checkpoint-8/],
    ['all-zero RNG', (d) => editState(d, (s) => (s.dropoutRng = [0, 0, 0, 0])), /dropoutRng/],
    ['optimizer steps beyond the step', (d) => editState(d, (s) => {
      const steps = s.optimizerSteps as Record<string, number>;
      steps[Object.keys(steps)[0]] = 99;
    }), /optimizerSteps.*\[1, 8\]/],
    ['a dropped optimizer entry', (d) => editState(d, (s) => {
      const steps = s.optimizerSteps as Record<string, number>;
      delete steps[Object.keys(steps)[0]];
    }), /has no optimizer steps for/],
    ['a data position past the end', (d) => editState(d, (s) => ((s.data as Record<string, unknown>).position = 1e9)), /data state .* does not fit/],
    ['a bad tying plan', (d) => editState(d, (s) => ((s.sharing as Record<string, unknown>).groups = [[0], [0]])), /tying plan/],
    ['a negative criterion streak', (d) => editState(d, (s) => ((s.sharing as Record<string, unknown>).criterion = { streak: -1 })), /streak/],
    ['NaN elapsed', (d) => editState(d, (s) => (s.elapsed = 'NaN')), /"elapsed"/],
    ['a schedule with no length', (d) => editState(d, (s) => ((s.schedule as Record<string, unknown>).steps = 0)), /"schedule" must hold/],
    ['a flipped bit in the weights', (d) => flipByte(path.join(d, 'checkpoint-8', 'model.safetensors'), -10), /model\.safetensors does not match its SHA-256/],
    ['a flipped bit in the optimizer state', (d) => flipByte(path.join(d, 'checkpoint-8', 'optimizer.safetensors'), -10), /optimizer\.safetensors does not match its SHA-256/],
    ['NaN weights in an unverified checkpoint', (d) => {
      const f = path.join(d, 'checkpoint-8', 'model.safetensors');
      const b = fs.readFileSync(f);
      b.writeFloatLE(NaN, b.length - 4);
      fs.writeFileSync(f, b);
      fs.rmSync(path.join(d, 'checkpoint-8', 'checksums.sha256'));
    }, /holds NaN .* not finite/],
    ['a missing optimizer file', (d) => fs.rmSync(path.join(d, 'checkpoint-8', 'optimizer.safetensors')), /optimizer\.safetensors is missing/],
    ['a damaged checksum file', (d) => fs.writeFileSync(path.join(d, 'checkpoint-8', 'checksums.sha256'), 'zz  model.safetensors\n'), /checksums\.sha256 is damaged/],
    ['the run\'s tokenizer replaced', (d) => {
      const f = path.join(d, 'tokenizer.json');
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('"the"', '"teh"'));
    }, /tokenizer\.json differs from .*tokenizer\.json/],
  ];
  for (const [what, damage, pattern] of cases) {
    const dir = copyRun('damaged');
    damage(dir);
    const before = snapshot(dir);
    const r = await cli(['train', '--resume', dir, '--extend-to', '12', '--quiet']);
    assert.equal(r.code, 1, `${what}: exit code`);
    assert.match(r.err, pattern, what);
    assert.equal(r.err.split('\n').length, 1, `${what}: one line`);
    assertSameFolder(before, dir, what);
  }
});

function flipByte(file: string, at: number): void {
  const b = fs.readFileSync(file);
  const i = at < 0 ? b.length + at : at;
  b[i] ^= 0x10;
  fs.writeFileSync(file, b);
}

test('criteria and the RNG take back their own saved state and refuse damaged ones', () => {
  const refuse = (c: { setState(s: Record<string, unknown>): void }, state: Record<string, unknown>) =>
    assert.throws(() => c.setState(state), UntieError, JSON.stringify(state));
  for (const kind of ['adaptive', 'multi'] as const) {
    const c = parseCriterion(kind, { totalSteps: 100, statistic: 'relative' });
    c.setState(c.getState());
    const good = c.getState();
    for (const bad of [{ streak: -1 }, { streak: 'x' }, { marks: -2 }, { marks: 1.5 }, { statistic: { ema: { '0-1': 5 } } },
      { statistic: { first: { '0-1': [0.1, 0.2, 0.3, 0.4] } } }, { statistic: 'x' }]) {
      if (kind === 'multi' && 'streak' in bad) continue;
      refuse(c, { ...good, ...bad });
    }
  }
  const multi = parseCriterion('multi', { totalSteps: 100 });
  for (const streaks of [{ x: 1 }, { '0-1': -1 }, [], 'x']) refuse(multi, { ...multi.getState(), streaks });
  const fixed = parseCriterion('step:5', { totalSteps: 100 });
  fixed.setState({});
  refuse(fixed, { streak: 1 });
  const never = parseCriterion('never', { totalSteps: 100 });
  never.setState(never.getState());
  refuse(never, { marks: 'x' });
  refuse(never, { streak: 1 });
  refuse(never, null as never);
  never.setState({}); // a checkpoint from before never kept its marks
  const rng = new Rng(1);
  for (const bad of [[0, 0, 0, 0], [1, 2, 3], [1, 2, 3, -4], [1, 2, 3, 2 ** 32], ['a', 1, 2, 3]]) assert.throws(() => rng.setState(bad as never), UntieError);
});

// ---- one writer per run folder

test('one writer per run folder: a live lock refuses, a stale one is taken over, the lock goes when the run ends', async () => {
  const dir = copyRun('locked');
  // Held by this (live) process.
  const held = RunLock.acquire(dir);
  const before = snapshot(dir);
  await rejectsUntie(train({ config: tinyConfig('locked'), resume: true, extendTo: 12, progress: false }), /is in use by another untie \(pid \d+/);
  assertSameFolder(before, dir, 'refused by the lock');
  held.release();
  assert.ok(!fs.existsSync(path.join(dir, 'train.lock')));
  // Two resumes at once: exactly one runs.
  const results = await Promise.allSettled([0, 1].map(() => train({ config: tinyConfig('locked'), resume: true, extendTo: 10, progress: false })));
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  assert.match(String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason), /in use by another untie/);
  assert.ok(!fs.existsSync(path.join(dir, 'train.lock')), 'released after the run');
  // A lock left by a process that is gone (kill -9) is stale.
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.on('exit', resolve));
  fs.writeFileSync(path.join(dir, 'train.lock'), JSON.stringify({ pid: dead.pid, host: os.hostname(), started: '2020-01-01T00:00:00Z' }));
  const resumed = await train({ config: tinyConfig('locked', { train: { steps: 10 } }), resume: true, extendTo: 12, progress: false });
  assert.equal(resumed.steps, 12);
  assert.ok(!fs.existsSync(path.join(dir, 'train.lock')));
});

// ---- a full disk

test('a failed checkpoint write (ENOSPC, EIO) keeps the earlier checkpoints, says how much space is needed, and resume then completes the run', async () => {
  for (const code of ['ENOSPC', 'EIO']) {
    const name = `full-${code}`;
    const dir = path.join(root, name);
    const doomed = new Set<number>();
    const openSync = fs.openSync;
    const open = mock.method(fs, 'openSync', (...args: Parameters<typeof fs.openSync>) => {
      const fd = openSync(...args);
      if (/\.tmp-checkpoint-8-/.test(String(args[0]))) doomed.add(fd);
      return fd;
    });
    const writeSync = fs.writeSync as (...a: unknown[]) => number;
    const write = mock.method(fs, 'writeSync', (...args: unknown[]) => {
      if (doomed.has(args[0] as number)) throw Object.assign(new Error(`${code}: injected`), { code, errno: -28, syscall: 'write' });
      return writeSync(...args);
    });
    try {
      await rejectsUntie(train({ config: tinyConfig(name), progress: false, command: 'npx untie train' }),
        new RegExp(`could not write checkpoint-8 in .*: .*\\(${code}\\)\\. A checkpoint needs about [\\d.]+ [KM]B; [\\d.]+ [KMG]B are free there\\. ` +
          'The checkpoints already saved are intact \\(newest: checkpoint-4\\)\\. Free some space, then continue with: npx untie train --resume '));
    } finally {
      open.mock.restore();
      write.mock.restore();
    }
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('checkpoint')), ['checkpoint-4'], 'no partial checkpoint left');
    for (const f of ['model.safetensors', 'optimizer.safetensors']) {
      assert.ok(fs.readFileSync(path.join(dir, 'checkpoint-4', f)).equals(fs.readFileSync(path.join(finished, 'checkpoint-4', f))), f);
    }
    // Space freed: the resumed run ends where the uninterrupted one did.
    await train({ config: tinyConfig(name), resume: true, progress: false });
    assert.ok(fs.readFileSync(path.join(dir, 'checkpoint-8', 'model.safetensors')).equals(fs.readFileSync(path.join(finished, 'checkpoint-8', 'model.safetensors'))));
  }
  // A failing metrics write is one line too, naming the step.
  const append = mock.method(fs, 'appendFileSync', () => {
    throw Object.assign(new Error('EIO: injected'), { code: 'EIO', syscall: 'write' });
  });
  try {
    await rejectsUntie(train({ config: tinyConfig('eio-metrics'), progress: false }), /writing in .* failed at step \d+: an input\/output error .*\(EIO\)/);
  } finally {
    append.mock.restore();
  }
});

// ---- where a NaN starts

test('--detect-anomaly names the first op, layer and tensor whose output or gradient is not finite', async () => {
  const inf = ops.reshape(parameter(Float32Array.from([Infinity, 1]), [2], 'a'), [2]);
  const zeros = parameter(Float32Array.from([0, 1]), [2], 'b');
  setDetectAnomaly(true);
  try {
    assert.throws(() => ops.mul(inf, zeros), (err: unknown) => {
      assert.ok(err instanceof AnomalyError);
      assert.match(err.message, /first non-finite value of the forward pass is NaN in the output of mul \(shape \[2\], element 0\) in the model/);
      return true;
    });
    clearTape();
    // A gradient that overflows in backward: d/dw sum(1e20 w) seeded with 1e20 is 1e40, infinite in float32.
    const w = parameter(Float32Array.from([1, 2]), [2], 'w');
    setDetectAnomaly(true, new Map([[w, 'encoder.layer.1.w']]));
    const { anomalyScope } = await import('../src/tensor/anomaly.js');
    const loss = anomalyScope('encoder.layer.1', () => ops.sum(ops.scale(w, 1e20)));
    assert.throws(() => backward(loss, 1e20), /first non-finite gradient is Infinity, written by the backward of scale in encoder\.layer\.1 into the gradient of parameter encoder\.layer\.1\.w/);
  } finally {
    setDetectAnomaly(false);
    clearTape();
  }
  // Off: the same op just computes.
  assert.ok(Number.isNaN(ops.mul(inf, zeros).data[0]));

  // In a run: an exploding learning rate is caught where the first non-finite number appears, with the layer named.
  await rejectsUntie(
    train({ config: tinyConfig('anomaly', { train: { lr: 1e30, clip: 0, warmupSteps: 1 } }), progress: false, detectAnomaly: true }),
    /--detect-anomaly: .*(bert\.|cls\.|MLM loss).* That was in step \d+\. Nothing from this step was saved\./,
  );
  // And without it, the NaN-loss error still stops the run.
  await rejectsUntie(train({ config: tinyConfig('no-anomaly', { train: { lr: 1e30, clip: 0, warmupSteps: 1 } }), progress: false }), /the loss became (NaN|Infinity)/);
});

// ---- Ctrl-C

test('Ctrl-C says at once that the run stops after the step, even while JS is busy; a second Ctrl-C quits', async (t) => {
  const script = path.join(root, 'busy.mts');
  fs.writeFileSync(script, [
    "import fs from 'node:fs';",
    `import { watchInterrupt } from ${JSON.stringify(path.join(repo, 'src', 'backend', 'native.ts'))};`,
    'let heard = false;',
    "process.once('SIGINT', () => { heard = true; });",
    "const unwatch = watchInterrupt('\\nSTOPPING AFTER THIS STEP\\n');",
    "console.log(unwatch ? 'ready' : 'no-native');",
    // Busy in synchronous code (as in a training step) until the parent says so.
    'const start = Date.now();',
    'while (!fs.existsSync(process.argv[2]) && Date.now() - start < 60_000) { /* a long step */ }',
    "console.log('step-done');",
    // The JS listener runs once the event loop turns (give it a few turns).
    'for (let i = 0; i < 100 && !heard; i++) await new Promise((resolve) => setTimeout(resolve, 20));',
    "console.log(heard ? 'listener-ran' : 'listener-missed');",
    'unwatch?.();',
  ].join('\n'));
  const runChild = async (signals: number) => {
    const flag = path.join(root, `flag-${signals}`);
    const child = spawn(process.execPath, ['--import', 'tsx', script, flag], { cwd: repo });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const until = async (cond: () => boolean) => {
      while (!cond() && child.exitCode === null && child.signalCode === null) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => /ready|no-native/.test(out));
    if (out.includes('no-native')) {
      child.kill();
      return null;
    }
    child.kill('SIGINT');
    await until(() => err.includes('STOPPING AFTER THIS STEP'));
    const busyWhenTold = !out.includes('step-done');
    if (signals === 2) child.kill('SIGINT');
    fs.writeFileSync(flag, '');
    return { ...(await exited), out, err, busyWhenTold };
  };
  const once = await runChild(1);
  if (once === null) return t.skip('the native addon is not built: Ctrl-C is then answered between steps');
  assert.ok(once.busyWhenTold, 'the message came while the step was still running');
  assert.equal(once.code, 0);
  assert.match(once.out, /step-done\nlistener-ran/);
  const twice = await runChild(2);
  assert.equal(twice?.signal, 'SIGINT', 'the second Ctrl-C ends the process at once');
  assert.ok(!twice?.out.includes('step-done'));
});

test('Ctrl-C in a run: saved checkpoint, exit 130, and the resume hint as the user typed it (npx)', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', shimBin(), 'train', '--quiet', '--out', root, '--name', 'ctrl-c', '--corpus', corpus,
    '--steps', '100000', '--save-every', '0', '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--seq-len', '32',
    '--max-positions', '32', '--batch-size', '2', '--vocab-size', '600', '--threads', '1', '--log-every', '1'], {
    cwd: repo, env: { ...process.env, npm_command: 'exec' },
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const metrics = path.join(root, 'ctrl-c', 'metrics.jsonl');
  while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('"train"')) && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  assert.equal(await exited, 130, err);
  assert.match(err, /Ctrl-C: stopping after the current step and saving a checkpoint/);
  const m = /interrupted: saved checkpoint-(\d+); continue with: npx untie train --resume (\S+)/.exec(err);
  assert.ok(m, err);
  assert.equal(m[2], path.join(root, 'ctrl-c'));
  assert.ok(fs.existsSync(path.join(root, 'ctrl-c', `checkpoint-${m[1]}`, 'checksums.sha256')));
  assert.ok(!fs.existsSync(path.join(root, 'ctrl-c', 'train.lock')));
});
