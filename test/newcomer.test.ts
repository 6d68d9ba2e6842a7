// What a new user trips over in a first hour (issue 24): the messages of a
// mistyped command, resuming, small corpora, checkpoints that name what they
// are, the comparison's report, the runs list, and signals under npx.
import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { UntieError } from '../src/errors.js';
import { main, version } from '../src/cli/main.js';
import { closest } from '../src/cli/args.js';
import { formatSummary } from '../src/cli/compare.js';
import {
  majorityMark, runCompare, seedsText, settingsDiffer, summarize, targetWarning, taskHeading,
  type CompareOptions, type RunRecord,
} from '../src/experiments/compare.js';
import { compareView } from '../src/report/compare.js';
import { readRun } from '../src/report/read.js';
import { runView, runsIndexView, writeRunReport } from '../src/report/run.js';
import { mergeConfig, type RunConfig } from '../src/train/config.js';
import { UNTIE_PRE_LN_TYPE } from '../src/train/checkpoint.js';
import { load } from '../src/train/load.js';
import { readMetrics } from '../src/train/metrics.js';
import { train } from '../src/train/trainer.js';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';
import { assertSameFolder, binShim, snapshot, tinyRunConfig } from './helpers.js';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
let root: string;
let corpus: string;
/** A finished Pre-LN run of 8 steps, checkpoints at 4 and 8. */
let finished: string;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-newcomer-'));
  corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  loadBrown().slice(0, 20).forEach((d, i) => fs.writeFileSync(path.join(corpus, `doc${i}.txt`), d.sentences.map(sentenceText).join('\n') + '\n'));
  await train({ config: tinyConfig('finished'), progress: false });
  finished = path.join(root, 'finished');
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

function tinyConfig(name: string, patch: object = {}): RunConfig {
  return mergeConfig(tinyRunConfig(root, corpus, name, { data: { evalBatches: 2 } }), patch, 'config');
}

/** The tiny model's flags, for runs through the CLI. */
const TINY_FLAGS = ['--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--seq-len', '32', '--max-positions', '32',
  '--batch-size', '2', '--vocab-size', '600', '--eval-batches', '2', '--threads', '1'];

/** Runs the CLI in-process, capturing console output and what is written to stderr directly (progress, warnings). */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = mock.method(console, 'log', (...a: unknown[]) => void out.push(a.join(' ')));
  const error = mock.method(console, 'error', (...a: unknown[]) => void err.push(a.join(' ')));
  const write = mock.method(process.stderr, 'write', (chunk: string | Uint8Array) => {
    err.push(String(chunk).replace(/\n$/, ''));
    return true;
  });
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
    write.mock.restore();
  }
}

// ---- messages

test('mistyped input: one line naming the flag as typed, "did you mean" for flags and commands, --version', async () => {
  let r = await cli(['train', '--steps', '-1']);
  assert.equal(r.code, 1);
  assert.equal(r.err, 'untie train: error: --steps must be a whole number >= 1, got -1');
  r = await cli(['train', '--steps', '0']);
  assert.equal(r.err, 'untie train: error: --steps must be a whole number >= 1, got 0', 'the flag, not the config field train.steps');
  r = await cli(['train', '--lr', '-0.5', '--out', root]);
  assert.match(r.err, /^untie train: error: --lr must be > 0, got -0.5$/);
  r = await cli(['train', '--stesp', '3']);
  assert.match(r.err, /Unknown option '--stesp' \(did you mean --steps\?\)/);
  assert.equal(r.err.split('\n').length, 1);
  r = await cli(['serve', '--prot', '0']);
  assert.match(r.err, /did you mean --port\?/);
  r = await cli(['train', '--frobnicate', '1']);
  assert.ok(!r.err.includes('did you mean'), 'no guess when nothing is near');
  r = await cli(['trian']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^untie: unknown command "trian": did you mean "untie train"\?/);
  assert.equal(closest('fillmask', ['train', 'fill-mask', 'finetune']), 'fill-mask');
  r = await cli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.out, `untie ${JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version}`);
  assert.equal(version(), JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version);
});

// ---- resuming

test('--resume of what is not a run says what it is: missing, a folder of runs (listed), a checkpoint', async () => {
  let r = await cli(['train', '--resume', path.join(root, 'nope')]);
  assert.match(r.err, /nope does not exist\./);
  r = await cli(['train', '--resume', root]);
  assert.match(r.err, /is a folder of runs, not a run: it holds finished/);
  assert.match(r.err, /--resume \S+finished/);
  r = await cli(['train', '--resume', path.join(finished, 'checkpoint-8')]);
  assert.match(r.err, /checkpoint-8 is a checkpoint; --resume takes its run folder.*--resume \S+finished$/);
});

test('resuming a finished run says it is finished and writes nothing; a resumed run says where it resumes from', async () => {
  const before = snapshot(finished);
  const r = await cli(['train', '--resume', finished]);
  assert.equal(r.code, 0);
  assert.match(r.out, /finished is finished: it trained all its 8 steps \(checkpoint-8\); final validation loss \d+\.\d{4} \(unigram \d+\.\d{4}\)\. Nothing to resume\. To train it longer: .* --extend-to 16/);
  assert.ok(!r.out.includes('run folder:'), 'not the summary of a new run');
  const json = await cli(['train', '--resume', finished, '--json']);
  assert.equal(JSON.parse(json.out).finished, true);
  // The library refuses too, before writing (no empty events file per call).
  await assert.rejects(train({ config: tinyConfig('finished'), resume: true, progress: false }), (e: unknown) => e instanceof UntieError && /is finished/.test(e.message));
  assertSameFolder(before, finished, 'resuming a finished run');

  const half = path.join(root, 'half');
  fs.cpSync(finished, half, { recursive: true });
  fs.rmSync(path.join(half, 'checkpoint-8'), { recursive: true });
  const resumed = await cli(['train', '--resume', half]);
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.err, /resuming from checkpoint-4 \(step 4 of 8\): training/);
});

// ---- what the run's data is

test('a small corpus says how much it validates on, the vocabulary built, the passes it makes, and a file held out whole', async () => {
  const small = path.join(root, 'small-corpus');
  fs.mkdirSync(small);
  const text = loadBrown()[0].sentences.slice(0, 40).map(sentenceText);
  for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(small, `part${i}.txt`), text.slice(10 * i, 10 * i + 10).join('\n') + '\n');
  const r = await cli(['train', '--out', root, '--name', 'small', '--corpus', small, '--steps', '1500', '--eval-every', '0', '--save-every', '0', ...TINY_FLAGS, '--vocab-size', '2000']);
  assert.equal(r.code, 0, r.err);
  const summary = /data: \S+: 3 training documents \(([\d,]+) tokens in (\d+) sequences\), 1 held out \((\d+\.\d)% of the text\): (\d+) masked validation tokens; vocabulary (\d+); 1,500 steps of 2 sequences = (\d+) passes/.exec(r.err);
  assert.ok(summary, r.err);
  const [, , sequences, share, masked, vocab, passes] = summary;
  assert.equal(Number(passes), Math.round(3000 / Number(sequences)));
  assert.ok(Number(share) > 10, 'one of four files is far more than 5%');
  assert.ok(Number(vocab) < 2000);
  assert.equal(load(path.join(root, 'small')).tokenizer.vocabSize, Number(vocab), 'the vocabulary actually built');
  assert.ok(Number(masked) < 1000);
  assert.equal(readMetrics(path.join(root, 'small', 'metrics.jsonl')).find((m) => m.type === 'eval')?.unigram_val_loss !== undefined, true);
  assert.match(r.err, new RegExp(`the vocabulary has ${vocab} tokens, not the 2,000 asked`));
  assert.match(r.err, new RegExp(`validation scores only ${masked} masked tokens .* cannot be trusted`));
  assert.match(r.err, /validation holds 1 of 4 documents, \d+% of the text, although --validation-fraction is 0.05/);
  assert.match(r.err, new RegExp(`pass over its training text ${passes} times`));
  // The default-sized validation of a larger corpus draws none of these warnings.
  const quiet = await cli(['train', '--out', root, '--name', 'enough', '--corpus', corpus, '--steps', '2', ...TINY_FLAGS, '--eval-batches', '0', '--validation-fraction', '0.25']);
  assert.equal(quiet.code, 0, quiet.err);
  assert.ok(!/cannot be trusted|held out whole|although --validation-fraction|times \(more than/.test(quiet.err), quiet.err);
});

test('eval prints the unigram line of the run\'s validation positions; export says which checkpoint of a run it wrote', async () => {
  const r = await cli(['eval', finished, '--json']);
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out);
  const lastEval = readMetrics(path.join(finished, 'metrics.jsonl')).filter((m) => m.type === 'eval').at(-1)!;
  assert.equal(e.unigram_val_loss, lastEval.unigram_val_loss, 'the same unigram line training logged');
  assert.equal(e.val_loss, lastEval.val_loss);
  const text = await cli(['eval', finished]);
  assert.match(text.out, /validation loss \d+\.\d{4} \(unigram \d+\.\d{4}\), accuracy \d+\.\d\d% \(unigram \d+\.\d\d%\)/);
  const out = path.join(root, 'exported');
  const x = await cli(['export', finished, out]);
  assert.equal(x.code, 0, x.err);
  assert.match(x.out, new RegExp(`^wrote ${out} from ${path.join(finished, 'checkpoint-8')}:`));
});

// ---- checkpoints name what they are

test('a Pre-LN checkpoint does not pass for a Hugging Face BertForMaskedLM; untie still reads it', async () => {
  const pre = JSON.parse(fs.readFileSync(path.join(finished, 'checkpoint-8', 'config.json'), 'utf8'));
  assert.equal(pre.untie_norm, 'pre');
  assert.equal(pre.model_type, UNTIE_PRE_LN_TYPE, 'not "bert": transformers\' Auto classes refuse an unknown model_type');
  assert.match(pre.untie_note, /does not load in transformers as it is.*untie export/);
  assert.equal(load(path.join(finished, 'checkpoint-8')).model.config.norm, 'pre');
  await train({ config: tinyConfig('post', { model: { norm: 'post' }, train: { steps: 2, saveEvery: 0 } }), progress: false });
  const post = JSON.parse(fs.readFileSync(path.join(root, 'post', 'checkpoint-2', 'config.json'), 'utf8'));
  assert.equal(post.model_type, 'bert');
  assert.deepEqual(post.architectures, ['BertForMaskedLM']);
  assert.equal(post.untie_note, undefined);
});

// ---- the runs of a folder

test('untie runs lists a folder\'s runs with status, steps and corpus; the run page and the runs list name the corpus', async () => {
  const r = await cli(['runs', root, '--json']);
  assert.equal(r.code, 0, r.err);
  const rows = r.out.split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  const row = rows.find((x) => x.run === 'finished')!;
  assert.equal(row.status, 'finished');
  assert.equal(row.steps, '8 / 8');
  assert.equal(row.corpus, 'corpus');
  const table = await cli(['runs', root]);
  assert.match(table.out.split('\n')[0], /^run +status +corpus +steps/);
  assert.match(await cli(['runs', path.join(root, 'nope')]).then((x) => x.err), /does not exist/);
  const run = readRun(finished);
  const header = JSON.stringify(runView(run).blocks[0]);
  assert.match(header, /corpus corpus/, 'the header names the corpus');
  assert.ok(!header.includes(root), 'the header shows no path of the machine (the folder was there)');
  assert.match(JSON.stringify(runsIndexView('runs', [run], () => '/run/finished')), /<th>corpus<\/th>.*<td>corpus<\/td>/);
});

const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;

test('in Chromium: a run with one evaluation shows it as a dot large enough to see', { skip: chromiumMissing }, async () => {
  await train({ config: tinyConfig('one-eval', { train: { steps: 3, evalEvery: 0, saveEvery: 0 } }), progress: false });
  const report = writeRunReport(path.join(root, 'one-eval'));
  const { browser, close } = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`file://${report}`);
    await page.waitForSelector('[data-chart="loss-step"] canvas');
    const d = await page.locator('[data-chart="loss-step"]').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
    assert.equal(JSON.parse(d.points!).validation, 1);
    const sizes = JSON.parse(d.pointSizes!) as Record<string, number>;
    assert.ok(sizes.validation >= 2 * sizes.train, `the single validation point is drawn large: ${d.pointSizes}`);
  } finally {
    await close();
  }
});

// ---- the comparison's report

function synth(variant: RunRecord['variant'], losses: number[], downstream: RunRecord['downstream']): RunRecord {
  return {
    point: '', variant, seed: 0, runDir: `/x/${variant}`, steps: 300, threads: 1, unigramValLoss: 6.85, unigramValAcc: 0.05,
    evals: losses.map((l, i) => ({ step: 100 * (i + 1), seconds: 10 * (i + 1), valLoss: l, valAcc: 0.05 })),
    untiedAt: null, events: [], checks: [], threshold: null, downstream, seconds: 30,
  };
}

test('the compare summary names each task\'s metric, marks a score at the majority class, and warns of a target above the unigram line', () => {
  const runs = [
    synth('baseline', [7.2, 7.0, 6.9], { pos: { metric: 'accuracy', score: 0.7, majority: 0.24 }, spam: { metric: 'f1', score: 0, majority: 0 } }),
    synth('albert', [7.3, 7.1, 7.0], { pos: { metric: 'accuracy', score: 0.69, majority: 0.24 }, spam: { metric: 'f1', score: 0.4, majority: 0 } }),
  ];
  const [p] = summarize(runs, { variants: ['baseline', 'albert'] });
  assert.equal(taskHeading(p, 'spam'), 'spam F1');
  assert.equal(taskHeading(p, 'pos'), 'pos accuracy');
  const base = p.variants.find((v) => v.variant === 'baseline')!, albert = p.variants.find((v) => v.variant === 'albert')!;
  assert.equal(majorityMark(p, 'spam', base.downstream.spam), ' (majority class)');
  assert.equal(majorityMark(p, 'spam', albert.downstream.spam), '');
  assert.match(targetWarning(p) ?? '', /target 6\.9000 is not below the unigram line 6\.8500/);
  const printed = formatSummary([p], 'a CPU', 1);
  assert.match(printed, /warning: The target 6\.9000 is not below the unigram line/);
  assert.match(printed, /pos accuracy +spam F1/);
  assert.match(printed, /0\.0000 \(majority class\)/);
  assert.equal(seedsText(1), 'seed 0');
  assert.equal(seedsText(3), 'seeds 0, 1, 2');
  // Below the unigram line, no warning.
  const [good] = summarize([synth('baseline', [7, 6.5, 6.2], null)], { variants: ['baseline'] });
  assert.equal(targetWarning(good), null);
  assert.deepEqual(settingsDiffer({ base: { train: { lr: 0.002, steps: 8 } } }, { base: { train: { lr: 0.001, steps: 8 } } }), ['base.train.lr: 0.002 there, 0.001 here']);
});

test('a comparison warms up untimed first, which changes no number; a refused one names the setting that differs', async () => {
  const base = tinyConfig('compare', { model: { layers: 2 }, sharing: { share: '', untie: 'adaptive' }, train: { steps: 6, saveEvery: 0, evalEvery: 0 } });
  const out = path.join(root, 'cmp');
  const opts: CompareOptions = { out, variants: ['baseline'], seeds: 1, sweFFraction: 0.1, evalsPerRun: 3, sweep: null };
  const res = await runCompare(base, opts, null);
  assert.equal(res.warmupSteps, 3);
  assert.ok(!fs.existsSync(path.join(out, '.warmup')), 'the warm-up leaves nothing behind');
  // The baseline trained after the warm-up equals the same config trained alone, loss for loss.
  const alone = { ...structuredClone(planConfig(out)), name: 'alone', outDir: root };
  await train({ config: alone, progress: false });
  const losses = (dir: string) => readMetrics(path.join(dir, 'metrics.jsonl')).filter((m) => m.type === 'train' || m.type === 'eval').map((m) => m.loss ?? m.val_loss);
  assert.deepEqual(losses(path.join(out, 'runs', 'baseline-seed0')), losses(path.join(root, 'alone')));
  const page = JSON.stringify(compareView(res, out));
  assert.match(page, /3 untimed steps/);
  assert.match(page, /and seed 0\./);
  assert.ok(!page.includes(root), 'the page shows no path of the machine');
  await assert.rejects(runCompare({ ...base, train: { ...base.train, lr: 0.002 } }, opts, null), (e: unknown) => e instanceof UntieError && /base\.train\.lr: 0\.003 there, 0\.002 here/.test(e.message));
});

/** The config the comparison ran its baseline with (its run folder's config.json). */
function planConfig(out: string): RunConfig {
  return JSON.parse(fs.readFileSync(path.join(out, 'runs', 'baseline-seed0', 'config.json'), 'utf8')) as RunConfig;
}

// ---- signals under npx

/** Resolves when `child` has exited. */
function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Whether anything accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `untie ARGS` started as npm starts a package's bin: `sh -c` with npm's
 * environment, the shell staying in between (dash does not exec the last
 * command). Returns the shell, the node process under it, and its output.
 */
async function underNpm(args: string[], ready: (output: string) => boolean): Promise<{ shell: ChildProcess; node: number; output: () => string }> {
  const quote = (w: string) => `'${w.replace(/'/g, "'\\''")}'`;
  const command = [process.execPath, '--import', 'tsx', binShim(root), ...args].map(quote).join(' ');
  const shell = spawn('/bin/sh', ['-c', `${command}; exit $?`], { cwd: repo, env: { ...process.env, npm_command: 'exec' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  shell.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  shell.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await until(() => ready(output) || shell.exitCode !== null, 30_000, `untie ${args[0]} to start: ${output}`);
  const children = fs.readFileSync(`/proc/${shell.pid}/task/${shell.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(children.length, 1, 'the shell stays between npm and untie, as npm runs it');
  return { shell, node: children[0], output: () => output };
}

const noProc = fs.existsSync('/proc/self/task') ? false : 'needs /proc (Linux) to find the process under the shell';

test('SIGTERM to the shell npx puts in front of untie (what npm forwards) ends serve: no process left, the port closed', { skip: noProc }, async () => {
  const dir = path.join(root, 'serve-runs');
  fs.mkdirSync(dir, { recursive: true });
  const { shell, node, output } = await underNpm(['serve', dir, '--port', '0'], (o) => /serving .* at http:\/\/127\.0\.0\.1:\d+\//.test(o));
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(output())![1]);
  assert.ok(await listening(port));
  shell.kill('SIGTERM');
  await exited(shell);
  await until(() => !alive(node), 10_000, `untie serve (pid ${node}) to exit after its shell was terminated`);
  assert.equal(await listening(port), false, 'the port is closed');
});

test('SIGTERM to the bin itself stops serve; to the shell in front of train, the run saves a checkpoint and exits', { skip: noProc }, async () => {
  const dir = path.join(root, 'serve-runs');
  fs.mkdirSync(dir, { recursive: true });
  const direct = spawn(process.execPath, ['--import', 'tsx', binShim(root), 'serve', dir, '--port', '0'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  direct.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => /127\.0\.0\.1:\d+/.test(out), 30_000, 'serve to start');
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)![1]);
  direct.kill('SIGTERM');
  await exited(direct);
  assert.equal(direct.exitCode, 0);
  assert.equal(await listening(port), false);

  const { shell, node, output } = await underNpm(['train', '--out', root, '--name', 'sigterm', '--corpus', corpus, '--steps', '100000', '--save-every', '0',
    '--log-every', '1', ...TINY_FLAGS], () => readMetrics(path.join(root, 'sigterm', 'metrics.jsonl')).some((m) => m.type === 'train'));
  shell.kill('SIGTERM');
  await exited(shell);
  await until(() => !alive(node), 30_000, `untie train (pid ${node}) to stop after its shell was terminated`);
  assert.match(output(), /SIGTERM: stopping after the current step and saving a checkpoint/);
  const saved = fs.readdirSync(path.join(root, 'sigterm')).filter((f) => /^checkpoint-\d+$/.test(f));
  assert.equal(saved.length, 1, 'the run saved where it stopped');
  assert.ok(!fs.existsSync(path.join(root, 'sigterm', 'train.lock')));
});

