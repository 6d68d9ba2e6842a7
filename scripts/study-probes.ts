/**
 * Downstream scores of a study's runs, paired by seed: each run's final
 * checkpoint is probed (`untie finetune --frozen`: the encoder frozen, a
 * linear head trained on its features) on POS tagging and spam detection,
 * and a variant's scores are compared with the baseline's of the same
 * pre-training seed (mean difference and its 95% t-interval).
 *
 *   node --import tsx scripts/study-probes.ts PLAN --baseline NAME --variant NAME [--seeds 0,1,2] [--tasks pos,spam] [--jobs 2]
 *
 * NAME is a cell name without its seed (`L6-baseline` for L6-baseline-s0,
 * -s1, ...). The checkpoints live in the study's work folder
 * (runs/studies/PLAN/NAME-sSEED, never committed); each probe's results.json
 * is committed under studies/PLAN/downstream/NAME-sSEED-TASK.json, so the
 * table regenerates from the repository alone (a probe already recorded is
 * not run again), and `studies/PLAN/downstream/BASELINE-vs-VARIANT.json` holds
 * the pairs.
 *
 * A frozen probe rather than a full fine-tune: it measures what pre-training
 * put in the features (the full fine-tune of docs/finetune.md moves every
 * weight and mostly washes that out, at ten times the cost). One probe seed
 * and one learning rate a run (the rates the probe's dev grid chose in
 * docs/finetune.md: pos 1e-2, spam 3e-3); the spread comes from the
 * pre-training seeds, which are the unit the comparison pairs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { helpText, numberFlag, parse, type Flags } from '../src/cli/args.js';
import { UntieError } from '../src/errors.js';
import { machineName, stat } from '../src/experiments/compare.js';
import { pairedDifference, type PairedDiff } from '../src/experiments/speedup.js';
import { recordFinished } from '../src/experiments/study.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'untie.js');
const PROBE_LR: Record<string, string> = { pos: '1e-2', spam: '3e-3' };

interface ProbeResult {
  task: string;
  metric: string;
  score: number;
  lr: number;
  seconds: number;
  cpuSeconds: number;
  checkpoint: string;
  majority: { score: number };
  bow: { score: number };
}

const INVOCATION = 'node --import tsx scripts/study-probes.ts';
const PROBE_FLAGS: Flags = {
  baseline: { type: 'string', help: 'the baseline cell, without its seed (e.g. L6-baseline)' },
  variant: { type: 'string', help: 'the variant cell compared with it, without its seed (e.g. L6-swe-f)' },
  seeds: { type: 'string', help: 'pre-training seeds, paired', default: '0,1,2' },
  tasks: { type: 'string', help: 'probes to run (pos, spam)', default: 'pos,spam' },
  jobs: { type: 'string', help: 'probes side by side', default: '2' },
  out: { type: 'string', help: 'the study\'s work folder, which holds the checkpoints', default: 'runs/studies/PLAN' },
};

/** The parsed arguments, or null when only help was asked for (printed). Bad arguments throw one line that says what to do. */
function parseArgs(argv: string[]) {
  const { values, positionals } = parse('', argv, PROBE_FLAGS, INVOCATION);
  if (values.help) {
    console.log(helpText('', 'PLAN --baseline NAME --variant NAME [options]', PROBE_FLAGS, 'Frozen-encoder probes of a study\'s final checkpoints, paired by pre-training seed.', INVOCATION));
    return null;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const [plan, ...extra] = positionals;
  const baseline = str('baseline'), variant = str('variant');
  if (!plan || !baseline || !variant) throw new UntieError(`name a plan, --baseline and --variant: ${INVOCATION} PLAN --baseline NAME --variant NAME; --help lists the options`);
  if (extra.length > 0) throw new UntieError(`unexpected argument "${extra[0]}": give one plan, then options`);
  const tasks = (str('tasks') ?? 'pos,spam').split(',');
  for (const t of tasks) if (!PROBE_LR[t]) throw new UntieError(`--tasks: "${t}" is not pos or spam`);
  const seeds = (str('seeds') ?? '0,1,2').split(',').map((x) => numberFlag('seeds', x, { integer: true, min: 0 })!);
  return {
    plan, baseline, variant, tasks, seeds,
    jobs: numberFlag('jobs', str('jobs'), { integer: true, min: 1 }) ?? 2,
    out: str('out') ? path.resolve(str('out')!) : path.join(root, 'runs', 'studies', plan),
    records: path.join(root, 'studies', plan, 'downstream'),
  };
}

/** Whether a run's work folder holds the checkpoint of its last step (its config's steps) and its final evaluation. */
function finalCheckpoint(runDir: string): boolean {
  if (!recordFinished(runDir)) return false;
  const steps = (JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { train: { steps: number } }).train.steps;
  return fs.existsSync(path.join(runDir, `checkpoint-${steps}`));
}

function probe(out: string, run: string, task: string, record: string): Promise<void> {
  const runDir = path.join(out, run); // main checked that it holds its final checkpoint
  const dir = path.join(runDir, `probe-${task}`);
  const args = [cli, 'finetune', runDir, '--task', task, '--frozen', '--seeds', '1', '--lr-grid', PROBE_LR[task], '--threads', '1', '--quiet', '--out', dir, '--force'];
  console.error(`[probes] ${run} ${task} ...`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`probing ${run} on ${task} failed (exit ${code})`));
      const result = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ProbeResult;
      // The committed copy names the checkpoint relative to the repository, not this machine's folders.
      result.checkpoint = path.relative(root, result.checkpoint.startsWith('/') ? result.checkpoint : path.resolve(root, result.checkpoint));
      fs.writeFileSync(record, JSON.stringify(result, null, 1) + '\n');
      resolve();
    });
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args) return;
  fs.mkdirSync(args.records, { recursive: true });
  const recordOf = (run: string, task: string) => path.join(args.records, `${run}-${task}.json`);
  const todo: [string, string][] = [];
  for (const seed of args.seeds) for (const name of [args.baseline, args.variant]) for (const task of args.tasks) {
    const run = `${name}-s${seed}`;
    if (!fs.existsSync(recordOf(run, task))) todo.push([run, task]);
  }
  // Only a finished run is probed (a run still training has an early checkpoint that `finetune` would take for its last);
  // every run that is not ready is named at once, before any probe starts.
  const notReady = [...new Set(todo.map(([run]) => run))].filter((run) => !finalCheckpoint(path.join(args.out, run)));
  if (notReady.length > 0) {
    throw new UntieError(`no final checkpoint in ${path.relative(process.cwd(), args.out) || '.'} for ${notReady.join(', ')} (checkpoints are never committed, and a run still training is not finished): train them first with \`node --import tsx scripts/study.ts ${args.plan} --only ${notReady.join(',')} --rerun\` (a recorded run is trained again and checked against its record), then probe`);
  }
  const workers = Array.from({ length: Math.max(1, args.jobs) }, async () => {
    for (let job = todo.shift(); job; job = todo.shift()) await probe(args.out, job[0], job[1], recordOf(job[0], job[1]));
  });
  await Promise.all(workers);

  const rows: string[] = [];
  const pairs: Record<string, PairedDiff | null> = {};
  const scores: Record<string, Record<string, Record<number, number>>> = {};
  for (const task of args.tasks) {
    const read = (name: string) => new Map(args.seeds.map((s) => [s, JSON.parse(fs.readFileSync(recordOf(`${name}-s${s}`, task), 'utf8')) as ProbeResult]));
    const baseRuns = read(args.baseline), otherRuns = read(args.variant);
    const scoresOf = (m: Map<number, ProbeResult>) => new Map([...m].map(([s, r]) => [s, r.score]));
    const base = scoresOf(baseRuns), other = scoresOf(otherRuns);
    // The reference lines depend on the task's data only: any record's serve.
    const first = baseRuns.get(args.seeds[0])!;
    const d = pairedDifference(other, base);
    pairs[task] = d;
    scores[task] = { [args.baseline]: Object.fromEntries(base), [args.variant]: Object.fromEntries(other) };
    const pct = (x: number) => (100 * x).toFixed(2);
    const mean = (m: Map<number, number>) => stat([...m.values()]).mean;
    const interval = d && d.low !== null && d.high !== null ? ` [${pct(d.low)}, ${pct(d.high)}]` : '';
    rows.push(`| ${task} (${first.metric}, frozen probe, lr ${PROBE_LR[task]}) | ${pct(mean(base))} (${[...base.values()].map(pct).join(', ')}) | ${pct(mean(other))} (${[...other.values()].map(pct).join(', ')}) | ${d ? `${d.mean >= 0 ? '+' : ''}${pct(d.mean)}${interval}` : '-'} | ${pct(first.majority.score)} | ${pct(first.bow.score)} |`);
  }
  fs.writeFileSync(path.join(args.records, `${args.baseline}-vs-${args.variant}.json`), JSON.stringify({
    createdBy: `node --import tsx scripts/study-probes.ts ${args.plan} --baseline ${args.baseline} --variant ${args.variant} --seeds ${args.seeds.join(',')} --tasks ${args.tasks.join(',')}`,
    machine: machineName(), probeLearningRates: PROBE_LR, scores, pairedDifference: pairs,
  }, null, 1) + '\n');
  console.log(`| task | ${args.baseline} (per seed) | ${args.variant} (per seed) | paired difference, points (95%) | majority class | bag of words |\n|---|---|---|---|---|---|\n${rows.join('\n')}`);
}

main().catch((err: Error) => {
  console.error(`study-probes: ${err.message}`);
  process.exitCode = 1;
});
