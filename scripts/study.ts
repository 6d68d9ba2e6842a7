/**
 * Training studies that compare configurations by steps: each named variant
 * is one `untie train` run (a child process, `--threads 1`), several side by
 * side, all on ONE tokenizer per vocabulary size (trained once, copied into
 * every run folder), so that only the setting under study differs.
 *
 *   node --import tsx scripts/study.ts PLAN [--out DIR] [--jobs 2] [--only a,b] [--time | --timing FILE] [--report]
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
 * `--timing FILE` prices a comparison's steps with costs measured another
 * way instead (a StudyTiming, e.g. bench/stacking.ts --json: CPU seconds per
 * step of each plan on one thread, which a shared machine does not stretch).
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
import { lockHolder } from '../src/train/runlock.js';
import { PLANS, type Plan } from './study-plans.js';
import { phasePlans, recordFinished, shapeOf, studyResults, type StudyTiming } from '../src/experiments/study.js';
import { machineName } from '../src/experiments/compare.js';
import { writeCompareReport } from '../src/report/compare.js';
import { formatSummary } from '../src/cli/compare.js';
import { configFromFlags, trainFlags } from '../src/cli/train.js';
import { closest, helpText, numberFlag, parse, type Flags } from '../src/cli/args.js';
import { UntieError } from '../src/errors.js';
import { runConfigOf, type RunConfig } from '../src/train/config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'untie.js');

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

const INVOCATION = 'node --import tsx scripts/study.ts';
const STUDY_FLAGS: Flags = {
  out: { type: 'string', help: 'work folder of the runs (checkpoints; never committed)', default: 'runs/studies/PLAN' },
  records: { type: 'string', help: 'where finished runs\' records, results.json and the report go', default: 'studies/PLAN' },
  jobs: { type: 'string', help: 'runs side by side, each on one thread', default: '2' },
  only: { type: 'string', help: 'train and summarise only these variants (comma-separated names of the plan)' },
  time: { type: 'boolean', help: 'time each variant\'s phases alone on all cores and write timing.json' },
  'time-steps': { type: 'string', help: 'steps timed per phase with --time', default: '12' },
  timing: { type: 'string', help: 'price steps with this StudyTiming file instead of timing.json' },
  report: { type: 'boolean', help: 'also draw report.html and figure.png and check them in Chromium' },
  list: { type: 'boolean', help: 'list the plan\'s variants, finished or not, and train nothing' },
  rerun: { type: 'boolean', help: 'train recorded runs (--only) again for their checkpoints, and check them against their records' },
};

/** The parsed arguments, or null when only help was asked for (printed). Bad arguments throw one line that says what to do. */
function parseArgs(argv: string[]) {
  const { values, positionals } = parse('', argv, STUDY_FLAGS, INVOCATION);
  const plans = Object.keys(PLANS).join(', ');
  if (values.help) {
    console.log(helpText('', 'PLAN [options]', STUDY_FLAGS, `Trains a plan's variants side by side (a finished run is kept) and summarises them.\nplans: ${plans}`, INVOCATION));
    return null;
  }
  const [plan, ...extra] = positionals;
  if (!plan) throw new UntieError(`name a plan (${plans}): ${INVOCATION} PLAN [options]; --help lists the options`);
  if (!PLANS[plan]) throw new UntieError(`no plan "${plan}"${closest(plan, Object.keys(PLANS)) ? ` (did you mean ${closest(plan, Object.keys(PLANS))}?)` : ''}; plans: ${plans}`);
  if (extra.length > 0) throw new UntieError(`unexpected argument "${extra[0]}": give one plan, then options`);
  const only = typeof values.only === 'string' ? values.only.split(',').filter((n) => n !== '') : undefined;
  const variants = Object.keys(PLANS[plan].variants);
  for (const n of only ?? []) {
    if (!variants.includes(n)) {
      const guess = closest(n, variants);
      throw new UntieError(`--only: "${n}" is not a variant of plan ${plan}${guess ? ` (did you mean ${guess}?)` : ''}; \`${INVOCATION} ${plan} --list\` lists them`);
    }
  }
  if (values.rerun && !only) throw new UntieError('--rerun trains recorded runs again: name them with --only (every recorded run of the plan would be hours)');
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  return {
    plan,
    out: str('out') ? path.resolve(str('out')!) : path.join(root, 'runs', 'studies', plan),
    records: str('records') ? path.resolve(str('records')!) : path.join(root, 'studies', plan),
    jobs: numberFlag('jobs', str('jobs'), { integer: true, min: 1 }) ?? 2,
    only,
    time: values.time === true,
    report: values.report === true,
    list: values.list === true,
    rerun: values.rerun === true,
    timeSteps: numberFlag('time-steps', str('time-steps'), { integer: true, min: 3 }) ?? 12,
    timing: str('timing') ? path.resolve(str('timing')!) : undefined,
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

/**
 * Copies a finished run's records (its config and metrics, no checkpoints) for committing. The
 * config names its output folder relative to the repository when it is inside it, so the records
 * name no folder of this machine (the metrics name checkpoints inside the run folder already).
 */
function copyRecords(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(from, 'config.json'), 'utf8'));
  if (typeof cfg.outDir === 'string' && path.isAbsolute(cfg.outDir) && cfg.outDir.startsWith(root + path.sep)) cfg.outDir = path.relative(root, cfg.outDir);
  fs.writeFileSync(path.join(to, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  fs.copyFileSync(path.join(from, 'metrics.jsonl'), path.join(to, 'metrics.jsonl'));
}

/** True when the run's records hold its final evaluation (a finished run). */
function isDone(recordDir: string, steps: number): boolean {
  return readRun(recordDir).evals.some((e) => e.step === steps);
}

/** Where a run's records are read from: the committed copy, else the work folder of a run still going. */
function recordsOf(args: { out: string; records: string }, name: string): string {
  const committed = path.join(args.records, 'runs', name);
  return fs.existsSync(path.join(committed, 'metrics.jsonl')) ? committed : path.join(args.out, name);
}

/** Whether a run's work folder holds any checkpoint (`untie train --resume` continues from its latest). */
function hasCheckpoint(runDir: string): boolean {
  return fs.existsSync(runDir) && fs.readdirSync(runDir).some((f) => /^checkpoint-\d+$/.test(f));
}

/** A rerun of a recorded run reproduces it: the same seed and thread count give the same losses, step for step. */
function checkRerun(name: string, recordDir: string, runDir: string): void {
  const was = readRun(recordDir).evals, now = readRun(runDir).evals;
  const i = was.findIndex((e, j) => now[j]?.step !== e.step || now[j].val_loss !== e.val_loss);
  if (i >= 0) throw new UntieError(`${name}: the rerun differs from its committed record at step ${was[i].step} (validation loss ${now[i]?.val_loss} against ${was[i].val_loss}); the record is kept, the rerun is in ${path.relative(root, runDir)}`);
  console.error(`[study] ${name}: the rerun matches its committed record at all ${was.length} evaluations`);
}

function runOne(out: string, records: string, name: string, flags: string[], rerun = false): Promise<void> {
  const runDir = path.join(out, name);
  const recordDir = path.join(records, 'runs', name);
  const steps = Number(flagValue(flags, 'steps'));
  // --rerun trains a recorded run again (for its checkpoint, which is never committed) and checks it against the record.
  const recorded = isDone(recordDir, steps);
  if (recorded && !(rerun && !isDone(runDir, steps))) return Promise.resolve();
  // Another study call training this run right now: starting it again would delete or resume under it.
  const holder = lockHolder(runDir);
  if (holder) return Promise.reject(new UntieError(`${name} is being trained right now (pid ${holder.pid}, since ${holder.started}): let that run finish, then run this again`));
  const keep = recorded ? () => checkRerun(name, recordDir, runDir) : () => copyRecords(runDir, recordDir);
  // Finished in the work folder but not yet recorded (a copy that failed, an older layout).
  if (isDone(runDir, steps)) return Promise.resolve(keep());
  // The same run, finished in another study (same config but its name): its records serve.
  const same = recorded ? null : sameFinishedRun(flags);
  if (same) {
    copyRecords(same, recordDir);
    fs.writeFileSync(path.join(recordDir, 'same-as.txt'), `${path.relative(root, same)}\n`);
    console.error(`[study] ${name}: the same run finished as ${path.relative(root, same)}; its records are copied`);
    return Promise.resolve();
  }
  const resume = hasCheckpoint(runDir);
  const args = resume
    ? [cli, 'train', '--resume', runDir, '--threads', '1', '--quiet']
    : (fs.rmSync(runDir, { recursive: true, force: true }), seedTokenizer(out, runDir, flags), [cli, 'train', ...flags, '--threads', '1', '--quiet', '--out', out, '--name', name]);
  // A run without any checkpoint restarts from scratch (its folder held only a tokenizer and partial logs).
  return new Promise((resolve, reject) => {
    const started = Date.now();
    console.error(`[study] ${name}: ${resume ? 'resuming' : 'starting'} (${flags.join(' ')})`);
    // UNTIE_BACKEND=native: a run that cannot load the addon (e.g. while `npm install` rebuilds it) fails
    // instead of quietly running 100x slower on the reference kernels.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, UNTIE_BACKEND: process.env.UNTIE_BACKEND ?? 'native' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      if (code === 0) {
        try {
          keep();
        } catch (e) {
          return reject(e);
        }
        console.error(`[study] ${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s; records in ${path.relative(root, recordDir)}`);
        resolve();
      } else reject(new Error(`${name} failed (exit ${code}):\n${err.slice(-2000)}`));
    });
  });
}

/** A run's config as `untie train` would resolve these flags, without its folder and threads: what makes two runs the same. */
function resolvedConfig(flags: string[]): string {
  const { values } = parse('train', flags, trainFlags());
  return comparable(configFromFlags(values));
}

function comparable(cfg: RunConfig): string {
  // How often a run saves checkpoints and how many it keeps change no number it computes (a resumed run
  // repeats the uninterrupted one bit for bit), so a run that saved at other steps is the same run.
  return JSON.stringify({ ...cfg, name: '', outDir: '', train: { ...cfg.train, threads: 1, saveEvery: 0, keepLast: 0 } });
}

/** A finished run with the same resolved config in any study's committed records, or null. */
function sameFinishedRun(flags: string[]): string | null {
  const want = resolvedConfig(flags);
  const studies = path.join(root, 'studies');
  if (!fs.existsSync(studies)) return null;
  for (const plan of fs.readdirSync(studies)) {
    const runsDir = path.join(studies, plan, 'runs');
    if (!fs.existsSync(runsDir)) continue;
    for (const run of fs.readdirSync(runsDir)) {
      const dir = path.join(runsDir, run);
      if (fs.existsSync(path.join(dir, 'same-as.txt')) || !recordFinished(dir)) continue;
      try {
        // Merged over today's defaults: a record written before a config field existed still compares.
        const cfg = runConfigOf(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), dir);
        if (comparable(cfg) === want) return dir;
      } catch {
        // not a run's config
      }
    }
  }
  return null;
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
  if (!args) return;
  const plan = PLANS[args.plan];
  const names = Object.keys(plan.variants).filter((n) => !args.only || args.only.includes(n));
  if (args.list) return listPlan(args, names);
  fs.mkdirSync(args.out, { recursive: true });
  const flagsOf = (n: string) => [...plan.common, ...plan.variants[n]];

  const queue = [...names];
  const workers = Array.from({ length: Math.max(1, args.jobs) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await runOne(args.out, args.records, name, flagsOf(name), args.rerun);
  });
  await Promise.all(workers);

  fs.mkdirSync(args.records, { recursive: true });
  if (plan.cells) return compareStudy(args, plan, names, flagsOf);
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
  const machine = machineName();
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

/** `--list`: the named variants, in the plan's order, with what the records and the work folder hold of each. */
function listPlan(args: { plan: string; out: string; records: string }, names: string[]): void {
  const width = Math.max(...names.map((n) => n.length));
  const lines = [`${args.plan}: ${PLANS[args.plan].about}`];
  let done = 0;
  for (const name of names) {
    const work = path.join(args.out, name);
    const last = fs.existsSync(work) ? readRun(work).evals.at(-1)?.step : undefined;
    const holder = lockHolder(work);
    let state = 'not started';
    if (recordFinished(path.join(args.records, 'runs', name))) {
      state = 'recorded';
      done++;
    } else if (holder) state = `training now (pid ${holder.pid}; last eval at step ${last ?? 'none yet'})`;
    else if (hasCheckpoint(work)) state = `unfinished: resumes from its checkpoint (last eval at step ${last ?? 0})`;
    else if (last !== undefined) state = `started (last eval at step ${last}), no checkpoint yet: would restart from scratch`;
    lines.push(`  ${name.padEnd(width)}  ${state}`);
  }
  lines.push(`${done} of ${names.length} recorded; \`${INVOCATION} ${args.plan} --only NAME,...\` trains the rest in this order`);
  console.log(lines.join('\n'));
}

/**
 * A comparison study's results: `untie compare`'s analysis and report, from
 * the committed records alone; seconds from each phase's cost per step
 * measured alone (`--time`, kept in timing.json), since the runs went side by
 * side.
 */
async function compareStudy(args: NonNullable<ReturnType<typeof parseArgs>>, plan: Plan, names: string[], flagsOf: (n: string) => string[]): Promise<void> {
  const machine = machineName();
  const timingFile = args.timing ?? path.join(args.records, 'timing.json');
  if (args.timing && !fs.existsSync(args.timing)) throw new Error(`--timing ${args.timing}: no such file`);
  if (args.timing && args.time) throw new Error('--timing FILE prices the runs with costs measured elsewhere; --time measures them: pick one');
  let timing = fs.existsSync(timingFile) ? (JSON.parse(fs.readFileSync(timingFile, 'utf8')) as StudyTiming) : null;
  if (args.time) {
    timing = timeStudy(args, plan, names, flagsOf, machine, timing);
    fs.writeFileSync(timingFile, JSON.stringify(timing, null, 1) + '\n');
  }
  const res = studyResults({
    recordsDir: args.records, cells: plan.cells!, variants: plan.order ?? ['baseline', 'swe-f'],
    createdBy: `node --import tsx scripts/study.ts ${args.plan}`, machine, timing,
  });
  const { missing, ...results } = res;
  // Committed: folders are named relative to the repository, never by this machine's paths. Each check's
  // per-tensor cosines stay in the records (metrics.jsonl) and the report: in results.json they were most of
  // its size (a run tied to the end logs 200 checks of 11 pairs x 16 tensors), and the pooled ones are kept.
  const relative = (key: string, v: unknown) =>
    key === 'perTensor' ? undefined : typeof v === 'string' && (v === root || v.startsWith(root + path.sep)) ? path.relative(root, v) : v;
  fs.writeFileSync(path.join(args.records, 'results.json'), JSON.stringify({ plan: args.plan, about: plan.about, missing, ...results }, relative, 1) + '\n');
  console.log(`${args.plan}: ${plan.about}\n${formatSummary(res.summary, machine, res.threads)}`);
  if (!timing) console.log('seconds: as logged by runs that went side by side (not comparable); run with --time to measure each phase\'s cost alone');
  if (missing.length > 0) console.log(`not finished yet (${missing.length}): ${[...new Set(missing)].join(', ')}\nrun the same command again to continue them`);
  if (args.report) {
    // Paths relative to the repository: the page shows no folder of the machine that made it.
    const file = writeCompareReport(results, args.records, path.relative(root, args.records));
    const figure = path.join(args.records, 'figure.png');
    const taken = await checkPage(file, path.join(args.records, 'report.png'), { waitFor: 'canvas', charts: { 'p0-paired': figure } });
    console.log(`report: ${path.relative(root, file)} (checked in Chromium; screenshot ${path.relative(root, path.join(args.records, 'report.png'))})`);
    if (taken.length > 0) console.log(`figure: ${path.relative(root, figure)} (the first comparison's paired differences, for the README)`);
  }
}

/**
 * Each (shape, phase, depth) the study's runs went through (phasePlans: the
 * stack tied and untied; a --grow run's depths, and with --grow-tied its
 * tied copies), timed alone on all cores: a short run of one of its cells'
 * flags at that plan's --layers and --share, never untied and not growing,
 * median seconds per step after warm-up. Costs already in `previous` are kept
 * unless their shape and key come up again.
 */
function timeStudy(args: NonNullable<ReturnType<typeof parseArgs>>, plan: Plan, names: string[], flagsOf: (n: string) => string[], machine: string, previous: StudyTiming | null): StudyTiming {
  const costs: Record<string, Record<string, number>> = structuredClone(previous?.costs ?? {});
  const loads: number[] = [];
  const done = new Set<string>();
  for (const name of names) {
    const flags = flagsOf(name);
    const cfg = configFromFlags(parse('train', flags, trainFlags()).values);
    const shape = shapeOf(cfg);
    for (const p of phasePlans(cfg)) {
      const key = `${shape}/${p.kind}@${p.depth}`;
      if (done.has(key)) continue;
      done.add(key);
      loads.push(os.loadavg()[0]);
      console.error(`[study] timing ${p.kind} ${p.depth} layers, ${shape} ...`);
      const timed = [...withoutGrowth(flags), '--layers', String(p.layers), '--share', p.share, '--untie', 'never'];
      (costs[shape] ??= {})[`${p.kind}@${p.depth}`] = timeOne(args.out, `${shape}-${p.kind}-${p.depth}`, timed, args.timeSteps);
      loads.push(os.loadavg()[0]);
    }
  }
  const how = `median seconds per step of ${args.timeSteps} steps (the first 2 dropped) of each phase alone on all ${os.availableParallelism()} cores, `
    + `evaluation excluded; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} while timing`;
  return { machine, how, costs };
}

/** A cell's flags without its growth schedule: a timing run trains one plan at one depth. */
function withoutGrowth(flags: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === '--grow') i++;
    else if (flags[i] !== '--grow-tied') out.push(flags[i]);
  }
  return out;
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
