/**
 * Training studies that compare configurations by steps: each named variant
 * is one `untie train` run (a child process, `--threads 1`), several side by
 * side, all on ONE tokenizer per vocabulary size (trained once, copied into
 * every run folder), so that only the setting under study differs.
 *
 *   node --import tsx scripts/study.ts PLAN [--out DIR] [--jobs 2] [--only a,b] [--time] [--report]
 *
 * Runs train in a work folder (DIR, default runs/studies/PLAN: checkpoints,
 * never committed); each finished run's records (config.json,
 * metrics.jsonl) are copied to studies/PLAN/runs/NAME/, which is committed,
 * so a new machine continues the study instead of starting over and the
 * results and report regenerate from the repository alone. An unfinished run
 * resumes from its checkpoint when the work folder still has it.
 *
 * Losses compare by steps and are exactly reproducible (same seed, same
 * thread count). Seconds do not compare between runs that share the cores,
 * so `--time` measures each variant's seconds per step separately, one at a
 * time on all cores (median of timed steps after warm-up, evaluation
 * excluded), and the summary maps every curve onto wall-clock with it.
 * A finished run is kept: rerunning the command only runs what is missing.
 *
 * Writes DIR/results.json (every eval point of every run, the timings) and
 * prints a table. `--report` also draws DIR/report.html (validation loss
 * against steps, and against minutes where timed, with the unigram line),
 * checks it in headless Chromium (no page error, every chart has data) and
 * keeps a screenshot, DIR/report.png. PLANs are defined below; each is a list of variants, each a
 * list of `untie train` flags added to the plan's common flags.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Block } from '../src/report/blocks.js';
import { escapeHtml } from '../src/report/html.js';
import { renderPage } from '../src/report/page.js';
import { checkPage } from './chromium.js';
import { TOKENIZER_FILES } from '../src/data/tokenizer.js';
import { readMetrics } from '../src/train/metrics.js';
import { DEPTH_CORPUS, DEPTH_LR, DEPTH_SEQ_LEN, DEPTH_STEPS, DEPTH_VARIANTS, TARGET, depthBlocks, depthTable, runName, summarizeDepth, variantFlags } from './depth-study.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'untie.js');

interface Plan {
  about: string;
  common: string[];
  variants: Record<string, string[]>;
  /** A plan's own analysis of all its runs (printed, kept in results.json, drawn in the report). */
  summarize?: (runs: RunResult[]) => { text: string; json: unknown; blocks: Block[] };
}

const PRE = ['--norm', 'pre'];
const NODROP = ['--dropout', '0'];
// The old default, spelled out, so the plan means the same whatever the presets' defaults are now.
const OLD = ['--norm', 'post', '--dropout', '0.1'];

/** The recipe study of issue 8: what the tiny preset's minutes buy. */
const PLANS: Record<string, Plan> = {
  'recipe-pilot': {
    about: 'tiny preset, 500 steps, one change at a time from the old default (Post-LN, dropout 0.1, lr 1e-3, 10% warmup, clip 1)',
    common: ['--preset', 'tiny', '--steps', '500', '--eval-every', '100', '--save-every', '0', '--seed', '0', '--untie', 'never', '--share', '6x1'],
    variants: {
      'old-default': [...OLD],
      'pre-ln': [...PRE, '--dropout', '0.1'],
      'pre-ln-nodrop': [...PRE, ...NODROP],
      'post-ln-nodrop': ['--norm', 'post', ...NODROP],
      'pre-nodrop-lr2e-3': [...PRE, ...NODROP, '--lr', '2e-3'],
      'pre-nodrop-lr4e-3': [...PRE, ...NODROP, '--lr', '4e-3'],
      'post-nodrop-lr2e-3': ['--norm', 'post', ...NODROP, '--lr', '2e-3'],
      'pre-nodrop-vocab4096': [...PRE, ...NODROP, '--vocab-size', '4096'],
      'pre-nodrop-lr4e-3-mask0.3': [...PRE, ...NODROP, '--lr', '4e-3', '--mask-prob', '0.3'],
      'pre-nodrop-lr8e-3': [...PRE, ...NODROP, '--lr', '8e-3'],
      // Half the batch, twice the steps: about the same seconds as 500 steps of batch 32.
      'pre-nodrop-lr4e-3-batch16': [...PRE, ...NODROP, '--lr', '4e-3', '--batch-size', '16', '--steps', '1000', '--eval-every', '200'],
      'pre-nodrop-batch16': [...PRE, ...NODROP, '--batch-size', '16', '--steps', '1000', '--eval-every', '200'],
      'pre-nodrop-mask0.3': [...PRE, ...NODROP, '--mask-prob', '0.3'],
      // Same tokens per step, half the sequence length: cheaper attention, more (shorter) sequences.
      'pre-nodrop-seq64': [...PRE, ...NODROP, '--seq-len', '64', '--batch-size', '64'],
      'pre-nodrop-sinpos': [...PRE, ...NODROP, '--position-init', 'sinusoidal'],
      'pre-nodrop-sinpos-lr2e-3': [...PRE, ...NODROP, '--position-init', 'sinusoidal', '--lr', '2e-3'],
      // A second seed of the three that matter, for the spread between seeds (a later --seed wins).
      'old-default-seed1': [...OLD, '--seed', '1'],
      'pre-ln-nodrop-seed1': [...PRE, ...NODROP, '--seed', '1'],
      'pre-nodrop-sinpos-lr2e-3-seed1': [...PRE, ...NODROP, '--position-init', 'sinusoidal', '--lr', '2e-3', '--seed', '1'],
    },
  },
  get 'recipe-confirm'() {
    return recipeConfirm();
  },
  get depth() {
    return depthPlan();
  },
};

/**
 * Issue 20, part 1: the recipe study's winner (sinusoidal position start, lr
 * 2e-3; measured at 500 steps only) against the default (learned positions
 * from a normal start, lr 1e-3), untied, at 1,000 and 3,000 steps on 6 and
 * 12 layers (hidden 128), 2 seeds. Listed most useful first: a partial study
 * still answers the 12-layer, 3,000-step question.
 */
function recipeConfirm(): Plan {
  const variants: Record<string, string[]> = {};
  const recipes: Record<string, string[]> = { default: [], sinpos: ['--position-init', 'sinusoidal', '--lr', '2e-3'] };
  for (const [layers, steps, seed] of [[12, 3000, 0], [12, 3000, 1], [6, 3000, 0], [6, 3000, 1], [12, 1000, 0], [12, 1000, 1], [6, 1000, 0], [6, 1000, 1]]) {
    for (const [recipe, flags] of Object.entries(recipes)) {
      variants[`L${layers}-${steps}-${recipe}-seed${seed}`] = [
        '--layers', String(layers), '--share', `${layers}x1`, '--steps', String(steps), '--eval-every', String(steps / 30), '--seed', String(seed), ...flags,
      ];
    }
  }
  return {
    about: 'untied, hidden 128, batch 32 x 128, vocabulary 8,192: the default recipe (learned positions, lr 1e-3) against sinusoidal positions with lr 2e-3, at 1,000 and 3,000 steps, 6 and 12 layers, 2 seeds',
    common: ['--preset', 'tiny', '--hidden', '128', '--save-every', '500', '--untie', 'never'],
    variants,
  };
}

/**
 * Issue 21: a language that needs depth. Depths 4, 8 and 16 at hidden 64,
 * baseline, albert, swe-f and swe-a, on the generated corpus `hops`
 * (scripts/depth-study.ts reads the answer from the runs). Listed seed by
 * seed, depth 8 first: a partial study still compares every variant. Seeds 3
 * and 4 are for the points where the first three leave the difference within
 * two standard errors (`--only`).
 */
function depthPlan(): Plan {
  const variants: Record<string, string[]> = {};
  for (const seed of [0, 1, 2, 3, 4]) {
    for (const layers of [8, 4, 16]) {
      for (const variant of DEPTH_VARIANTS) variants[runName(layers, variant, seed)] = ['--layers', String(layers), '--seed', String(seed), ...variantFlags(variant, layers)];
    }
  }
  return {
    about: `${DEPTH_CORPUS}, sequences of ${DEPTH_SEQ_LEN} tokens, hidden 64 (4 heads, FFN 256), batch 32, lr ${DEPTH_LR}, ${DEPTH_STEPS} steps; target: ${100 * TARGET}% validation accuracy on the hardest hop count every baseline seed learns`,
    common: [
      '--corpus', DEPTH_CORPUS, '--seq-len', String(DEPTH_SEQ_LEN), '--max-positions', String(DEPTH_SEQ_LEN), '--hidden', '64', '--heads', '4', '--intermediate', '256',
      '--batch-size', '32', '--lr', DEPTH_LR, '--steps', String(DEPTH_STEPS), '--eval-every', String(DEPTH_STEPS / 40), '--eval-batches', '4', '--save-every', String(DEPTH_STEPS / 4),
    ],
    variants,
    summarize: (runs) => {
      const points = summarizeDepth(runs);
      return { text: depthTable(points), json: { target: TARGET, points }, blocks: depthBlocks(points, runs) };
    },
  };
}

interface EvalPoint {
  step: number;
  val_loss: number;
  val_acc: number;
  unigram_val_loss?: number;
  unigram_val_acc?: number;
}

interface RunResult {
  variant: string;
  flags: string[];
  evals: EvalPoint[];
  untiedAt: number | null;
  secondsPerStep?: number;
  /** Adjacent-layer gradient checks of a tied run: step, mean and smallest cosine over the pairs. */
  checks?: { step: number; mean: number; min: number }[];
}

function parseArgs(argv: string[]) {
  const [plan, ...rest] = argv;
  const opt = (name: string) => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  if (!plan || !PLANS[plan]) {
    console.error(`usage: node --import tsx scripts/study.ts PLAN [--out DIR] [--jobs N] [--only a,b] [--time] [--report]\nplans: ${Object.keys(PLANS).join(', ')}`);
    process.exit(2);
  }
  return {
    plan,
    out: opt('out') ?? path.join(root, 'runs', 'studies', plan),
    records: path.join(root, 'studies', plan),
    jobs: Number(opt('jobs') ?? 2),
    only: opt('only')?.split(','),
    time: rest.includes('--time'),
    report: rest.includes('--report'),
    timeSteps: Number(opt('time-steps') ?? 12),
  };
}

function flagValue(flags: string[], name: string): string | undefined {
  const i = flags.lastIndexOf(`--${name}`);
  return i >= 0 ? flags[i + 1] : undefined;
}


/** One tokenizer per vocabulary size, trained once by a 1-step run, then copied into each run folder. */
function seedTokenizer(out: string, runDir: string, flags: string[]): void {
  const vocab = flagValue(flags, 'vocab-size') ?? '8192';
  const corpus = flagValue(flags, 'corpus') ?? 'brown';
  // A generated corpus brings its own vocabulary: every run builds the same one.
  if (corpus.startsWith('synthetic:')) {
    fs.mkdirSync(runDir, { recursive: true });
    return;
  }
  const source = path.join(out, `_tokenizer-${vocab}`);
  if (!fs.existsSync(path.join(source, 'tokenizer.json'))) {
    const res = spawnSync(process.execPath, [cli, 'train', '--steps', '1', '--eval-every', '0', '--save-every', '0', '--vocab-size', vocab, '--corpus', corpus,
      '--layers', '1', '--hidden', '16', '--heads', '1', '--intermediate', '16', '--threads', '1', '--quiet', '--out', out, '--name', `_tokenizer-${vocab}`], { stdio: 'inherit' });
    if (res.status !== 0) throw new Error(`training the ${vocab}-token tokenizer failed`);
  }
  fs.mkdirSync(runDir, { recursive: true });
  for (const f of Object.values(TOKENIZER_FILES)) if (!fs.existsSync(path.join(runDir, f))) fs.copyFileSync(path.join(source, f), path.join(runDir, f));
}

function readRun(runDir: string): { evals: EvalPoint[]; untiedAt: number | null; checks: RunResult['checks'] } {
  const records = readMetrics(path.join(runDir, 'metrics.jsonl'));
  const evals = records.filter((r) => r.type === 'eval') as unknown as EvalPoint[];
  const untie = records.find((r) => r.type === 'untie');
  const checks = records.filter((r) => r.type === 'sharing_check' && Array.isArray(r.pairs)).map((r) => {
    const cosines = (r.pairs as { cosine: number }[]).map((p) => p.cosine);
    return { step: r.step, mean: cosines.reduce((a, b) => a + b, 0) / cosines.length, min: Math.min(...cosines) };
  });
  return { evals, untiedAt: untie ? untie.step : null, checks };
}

/** A finished run's committed records: its config and metrics, no checkpoints. */
const RECORD_FILES = ['config.json', 'metrics.jsonl'];

/** True when the run's records hold its final evaluation (a finished run). */
function isDone(recordDir: string, steps: number): boolean {
  return readRun(recordDir).evals.some((e) => e.step === steps);
}

/** Where a run's records are read from: the committed copy, else the work folder of a run still going. */
function recordsOf(args: { out: string; records: string }, name: string): string {
  const committed = path.join(args.records, 'runs', name);
  return fs.existsSync(path.join(committed, 'metrics.jsonl')) ? committed : path.join(args.out, name);
}

function runOne(out: string, records: string, name: string, flags: string[]): Promise<void> {
  const runDir = path.join(out, name);
  const recordDir = path.join(records, 'runs', name);
  const steps = Number(flagValue(flags, 'steps'));
  if (isDone(recordDir, steps)) return Promise.resolve();
  const keep = () => {
    fs.mkdirSync(recordDir, { recursive: true });
    for (const f of RECORD_FILES) fs.copyFileSync(path.join(runDir, f), path.join(recordDir, f));
  };
  // Finished in the work folder but not yet recorded (a copy that failed, an older layout).
  if (isDone(runDir, steps)) return Promise.resolve(keep());
  const hasCheckpoint = fs.existsSync(runDir) && fs.readdirSync(runDir).some((f) => /^checkpoint-\d+$/.test(f));
  const args = hasCheckpoint
    ? [cli, 'train', '--resume', runDir, '--threads', '1', '--quiet']
    : (fs.rmSync(runDir, { recursive: true, force: true }), seedTokenizer(out, runDir, flags), [cli, 'train', ...flags, '--threads', '1', '--quiet', '--out', out, '--name', name]);
  // A run without any checkpoint restarts from scratch (its folder held only a tokenizer and partial logs).
  return new Promise((resolve, reject) => {
    const started = Date.now();
    console.error(`[study] ${name}: ${hasCheckpoint ? 'resuming' : 'starting'} (${flags.join(' ')})`);
    // UNTIE_BACKEND=native: a run that cannot load the addon (e.g. while `npm install` rebuilds it) fails
    // instead of quietly running 100x slower on the reference kernels.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, UNTIE_BACKEND: process.env.UNTIE_BACKEND ?? 'native' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      if (code === 0) {
        keep();
        console.error(`[study] ${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s; records in ${path.relative(root, recordDir)}`);
        resolve();
      } else reject(new Error(`${name} failed (exit ${code}):\n${err.slice(-2000)}`));
    });
  });
}

/** Seconds per training step of a variant, alone on all cores: a short run's train records, warm-up dropped. */
function timeOne(out: string, name: string, flags: string[], steps: number): number {
  const dir = path.join(out, '_timing');
  const runDir = path.join(dir, name);
  fs.rmSync(runDir, { recursive: true, force: true });
  seedTokenizer(out, runDir, flags);
  const timed = flags.slice();
  // Every occurrence: a variant may repeat a common flag (the later one wins in `untie train`).
  const set = (k: string, v: string) => {
    let found = false;
    timed.forEach((f, i) => {
      if (f === `--${k}`) (timed[i + 1] = v), (found = true);
    });
    if (!found) timed.push(`--${k}`, v);
  };
  set('steps', String(steps));
  set('eval-every', '0');
  set('save-every', '0');
  set('log-every', '1');
  const res = spawnSync(process.execPath, [cli, 'train', ...timed, '--threads', '0', '--quiet', '--out', dir, '--name', name], {
    stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, UNTIE_BACKEND: process.env.UNTIE_BACKEND ?? 'native' },
  });
  if (res.status !== 0) throw new Error(`timing ${name} failed`);
  const perStep: number[] = [];
  let prev = 0;
  for (const r of readMetrics(path.join(runDir, 'metrics.jsonl'))) {
    if (r.type !== 'train') continue;
    perStep.push(Number(r.elapsed) - prev);
    prev = Number(r.elapsed);
  }
  const kept = perStep.slice(2).sort((a, b) => a - b);
  return kept[Math.floor(kept.length / 2)];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const plan = PLANS[args.plan];
  fs.mkdirSync(args.out, { recursive: true });
  const names = Object.keys(plan.variants).filter((n) => !args.only || args.only.includes(n));
  const flagsOf = (n: string) => [...plan.common, ...plan.variants[n]];

  const queue = [...names];
  const workers = Array.from({ length: Math.max(1, args.jobs) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await runOne(args.out, args.records, name, flagsOf(name));
  });
  await Promise.all(workers);

  fs.mkdirSync(args.records, { recursive: true });
  const resultsFile = path.join(args.records, 'results.json');
  const previous = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as { runs: RunResult[] }) : { runs: [] };
  const runs: RunResult[] = names.map((variant) => {
    const { evals, untiedAt, checks } = readRun(recordsOf(args, variant));
    const old = previous.runs.find((r) => r.variant === variant);
    return { variant, flags: flagsOf(variant), evals, untiedAt, secondsPerStep: old?.secondsPerStep, ...(checks && checks.length > 0 ? { checks } : {}) };
  });
  if (args.time) {
    for (const r of runs) {
      console.error(`[study] timing ${r.variant} ...`);
      r.secondsPerStep = timeOne(args.out, r.variant, r.flags, args.timeSteps);
    }
  }
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores`;
  // Runs this call did not name (--only) stay in results.json as they were.
  const kept = previous.runs.filter((r) => !names.includes(r.variant));
  const summary = plan.summarize?.([...kept, ...runs]);
  fs.writeFileSync(resultsFile, JSON.stringify({ plan: args.plan, about: plan.about, common: plan.common, machine, ...(summary ? { summary: summary.json } : {}), runs: [...kept, ...runs] }, null, 1) + '\n');

  // The summary: the last eval of each run, its distance to the unigram line, and s/step where timed.
  const rows = runs.map((r) => {
    const last = r.evals[r.evals.length - 1];
    if (!last) return `${r.variant.padEnd(28)} (no eval yet)`;
    const gap = last.unigram_val_loss !== undefined ? (last.unigram_val_loss - last.val_loss).toFixed(3) : '-';
    const ratio = last.unigram_val_acc ? (last.val_acc / last.unigram_val_acc).toFixed(2) : '-';
    const curve = r.evals.map((e) => e.val_loss.toFixed(3)).join(' ');
    const sps = r.secondsPerStep !== undefined ? r.secondsPerStep.toFixed(3) : '-';
    return `${r.variant.padEnd(28)} step ${String(last.step).padStart(5)}  loss ${last.val_loss.toFixed(3)}  acc ${(100 * last.val_acc).toFixed(2)}%  unigram-gap ${gap}  acc/unigram ${ratio}  s/step ${sps}  curve ${curve}`;
  });
  console.log(`${args.plan}: ${plan.about}\n${machine}\n${rows.join('\n')}${summary ? `\n\n${summary.text}` : ''}`);
  if (args.report) await drawReport(args.records, args.plan, plan, machine, [...kept, ...runs], summary?.blocks ?? []);
}

/** DIR/report.html: the study's curves, checked in Chromium, with a screenshot beside it. */
async function drawReport(out: string, name: string, plan: Plan, machine: string, runs: RunResult[], planBlocks: Block[]): Promise<void> {
  const withEvals = runs.filter((r) => r.evals.length > 0);
  const unigram = withEvals.find((r) => r.evals[0].unigram_val_loss !== undefined)?.evals[0].unigram_val_loss;
  const refLines = unigram !== undefined ? [{ y: unigram, label: `unigram ${unigram.toFixed(3)}` }] : [];
  const series = (x: (r: RunResult, e: EvalPoint) => number, rs: RunResult[]) =>
    rs.map((r) => ({ label: r.variant, x: r.evals.map((e) => x(r, e)), y: r.evals.map((e) => e.val_loss) }));
  const timed = withEvals.filter((r) => r.secondsPerStep !== undefined);
  const blocks: Block[] = [
    { kind: 'html', html: `<p>${escapeHtml(plan.about)}. Common flags: <code>${escapeHtml(plan.common.join(' '))}</code>. ${escapeHtml(machine)}. `
      + 'Each curve is one run (<code>--threads 1</code>, several side by side); minutes are steps times the seconds per step measured for that variant alone on all cores (<code>--time</code>), evaluation excluded.</p>' },
    { kind: 'line', id: 'loss-step', title: 'Validation loss against steps', xLabel: 'step', yLabel: 'validation MLM loss', series: series((_r, e) => e.step, withEvals), refLines },
  ];
  if (timed.length > 0) {
    blocks.push({ kind: 'line', id: 'loss-minutes', title: 'Validation loss against training minutes', xLabel: 'minutes', yLabel: 'validation MLM loss',
      series: series((r, e) => (e.step * r.secondsPerStep!) / 60, timed), refLines });
  }
  const rows = withEvals.map((r) => {
    const last = r.evals[r.evals.length - 1];
    return `<tr><td>${escapeHtml(r.variant)}</td><td><code>${escapeHtml(plan.variants[r.variant].join(' '))}</code></td><td>${last.step}</td>`
      + `<td>${last.val_loss.toFixed(3)}</td><td>${(100 * last.val_acc).toFixed(2)}%</td><td>${r.secondsPerStep?.toFixed(3) ?? '-'}</td></tr>`;
  });
  blocks.push({ kind: 'html', html: `<table><tr><th>variant</th><th>flags</th><th>step</th><th>val loss</th><th>val acc</th><th>s/step</th></tr>${rows.join('')}</table>` });
  blocks.splice(1, 0, ...planBlocks);
  const file = path.join(out, 'report.html');
  fs.writeFileSync(file, renderPage({ title: `untie study: ${name}`, blocks }));
  await checkPage(file, path.join(out, 'report.png'), { waitFor: '[data-chart="loss-step"] canvas' });
  console.log(`report: ${file} (checked in Chromium; screenshot ${path.join(out, 'report.png')})`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
