/**
 * The stacking study (issue 22, docs/stacking.md): `untie compare` of
 * baseline, swe-f, stack and stack-swe, with seconds a shared machine can
 * give.
 *
 *   node --import tsx scripts/stacking.ts NAME [--from COMPARE_OUT]
 *
 * With --from: copies each finished run's records (config.json,
 * metrics.jsonl; never checkpoints) from a compare folder into
 * studies/stacking/NAME/runs/RUN/. Then, from the committed records alone,
 * writes studies/stacking/NAME/results.json and prints the table.
 *
 * Steps compare exactly between runs (same seed and thread count, same
 * numbers). Seconds do not, when the runs were made hours apart on a machine
 * other jobs share; so next to the runs' own training seconds the table gives
 * modelled seconds: each run's updates, each priced at the CPU seconds per
 * step of the plan it ran in (its depth and tying), as bench/stacking.ts
 * measured them all in one interleaved run (studies/stacking/NAME/timing.json).
 * A stack run's early steps are cheaper because they run fewer layers; a
 * tied step costs about what an untied one does. Time to target is then read
 * off the modelled clock exactly as compare reads it off the real one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRecordFrom, summarize, VARIANTS, type RunRecord, type Stat, type Variant, type VariantSummary } from '../src/experiments/compare.js';
import { describePlan, type Groups } from '../src/sharing/plan.js';
import { initialGroups, readConfigFile, runConfigOf } from '../src/train/config.js';
import { readMetrics, type MetricRecord } from '../src/train/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RECORD_FILES = ['config.json', 'metrics.jsonl'];

interface Timing {
  machine: string;
  threads: number;
  load: { start: number; end: number };
  stages: { label: string; stepS: number; cpuS: number }[];
}

/** Copies the records of every finished run (its last evaluation at its planned step) of a compare folder. */
function collect(compareOut: string, records: string): void {
  const runsDir = path.join(compareOut, 'runs');
  for (const name of fs.readdirSync(runsDir).sort()) {
    const runDir = path.join(runsDir, name);
    const cfg = runConfigOf(readConfigFile(path.join(runDir, 'config.json')), runDir);
    const evals = readMetrics(path.join(runDir, 'metrics.jsonl')).filter((r) => r.type === 'eval');
    if (evals[evals.length - 1]?.step !== cfg.train.steps) {
      console.error(`[stacking] ${name}: not finished (last evaluation at step ${evals[evals.length - 1]?.step ?? 0} of ${cfg.train.steps}); not copied`);
      continue;
    }
    const dest = path.join(records, 'runs', name);
    fs.mkdirSync(dest, { recursive: true });
    for (const f of RECORD_FILES) fs.copyFileSync(path.join(runDir, f), path.join(dest, f));
  }
}

/**
 * The modelled training seconds after each number of updates: update t
 * costs the seconds per step of the plan in force during it (the run's first
 * plan, changed by each grow, untie and split record after that step).
 */
function modelledClock(records: MetricRecord[], first: Groups, costOf: (plan: string) => number): (step: number) => number {
  const changes = records.filter((r) => ['grow', 'untie', 'split'].includes(r.type)).map((r) => ({ step: r.step, groups: r.groups as Groups }));
  return (step: number) => {
    let seconds = 0, from = 0, groups = first;
    for (const c of changes) {
      if (c.step >= step) break;
      seconds += (c.step - from) * costOf(describePlan(groups));
      [from, groups] = [c.step, c.groups];
    }
    return seconds + (step - from) * costOf(describePlan(groups));
  };
}

const fmt = (s: Stat | null, digits: number) => (s === null || !Number.isFinite(s.mean) ? '—' : `${s.mean.toFixed(digits)}${s.std !== null ? ` ± ${s.std.toFixed(digits)}` : ''}`);

function table(summary: VariantSummary[], modelled: VariantSummary[]): string {
  const lines = [
    '| variant | steps to target | ratio | modelled s to target | ratio | run\'s own s to target | ratio | final val loss | missed |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const v of summary) {
    const m = modelled.find((x) => x.variant === v.variant)!;
    // As compare prints it: a variant that never reached the target, by how much it ended above it.
    const steps = v.stepsToTarget ? fmt(v.stepsToTarget, 0) : `never (${v.vsBaseline.val_loss.diff >= 0 ? '+' : ''}${v.vsBaseline.val_loss.diff.toFixed(4)})`;
    lines.push(`| ${v.variant} | ${steps} | ${fmt(v.stepsRatio, 3)} | ${fmt(m.secondsToTarget, 0)} | ${fmt(m.secondsRatio, 3)} | ` +
      `${fmt(v.secondsToTarget, 0)} | ${fmt(v.secondsRatio, 3)} | ${fmt(v.finalValLoss, 4)} | ${v.missed} of ${v.finalValLoss.n} |`);
  }
  return lines.join('\n');
}

function main(): void {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name.startsWith('-')) throw new Error('usage: node --import tsx scripts/stacking.ts NAME [--from COMPARE_OUT]');
  const records = path.join(root, 'studies', 'stacking', name);
  const from = rest.indexOf('--from') >= 0 ? rest[rest.indexOf('--from') + 1] : null;
  if (from) collect(from, records);

  const timing = JSON.parse(fs.readFileSync(path.join(records, 'timing.json'), 'utf8')) as Timing;
  // Steps are priced at their CPU seconds: on one thread, what the step costs whatever else the machine runs.
  const cost = new Map(timing.stages.map((s) => [s.label, s.cpuS]));
  const costOf = (plan: string) => {
    const c = cost.get(plan);
    if (c === undefined) throw new Error(`timing.json has no cost for "${plan}" (it has ${[...cost.keys()].join(', ')}): rerun bench/stacking.ts for this shape`);
    return c;
  };
  const runs: RunRecord[] = [], modelledRuns: RunRecord[] = [];
  for (const run of fs.readdirSync(path.join(records, 'runs')).sort()) {
    const dir = path.join(records, 'runs', run);
    const m = /^(.+)-seed(\d+)$/.exec(run);
    if (!m) continue;
    const cfg = runConfigOf(readConfigFile(path.join(dir, 'config.json')), dir);
    const metrics = readMetrics(path.join(dir, 'metrics.jsonl'));
    const rec = runRecordFrom(metrics, { runDir: path.relative(root, dir), point: '', variant: m[1] as Variant, seed: Number(m[2]), steps: cfg.train.steps, threads: cfg.train.threads });
    const clock = modelledClock(metrics, initialGroups(cfg), costOf);
    runs.push(rec);
    modelledRuns.push({ ...rec, evals: rec.evals.map((e) => ({ ...e, seconds: clock(e.step) })), seconds: clock(rec.steps) });
  }
  const variants = VARIANTS.filter((v) => runs.some((r) => r.variant === v));
  const [summary] = summarize(runs, { variants });
  const [modelled] = summarize(modelledRuns, { variants });
  const results = {
    createdBy: 'scripts/stacking.ts', timing, target: summary.target, unigramValLoss: summary.unigramValLoss,
    variants: summary.variants, modelled: modelled.variants.map(({ variant, secondsToTarget, secondsRatio }) => ({ variant, secondsToTarget, secondsRatio })),
    runs: modelledRuns.map((r) => ({ variant: r.variant, seed: r.seed, steps: r.steps, modelledSeconds: r.seconds, ownSeconds: runs.find((x) => x.runDir === r.runDir)!.seconds, untiedAt: r.untiedAt, events: r.events })),
  };
  fs.writeFileSync(path.join(records, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  console.log(`target (baseline's final val loss): ${fmt(summary.target, 4)}; unigram ${summary.unigramValLoss?.toFixed(4) ?? '—'}`);
  console.log(`modelled seconds: ${timing.machine}, ${timing.threads} thread(s), load average ${timing.load.start.toFixed(1)} -> ${timing.load.end.toFixed(1)}; ` +
    timing.stages.map((s) => `${s.label} ${s.cpuS.toFixed(3)} CPU s/step`).join(', '));
  console.log(table(summary.variants, modelled.variants));
}

main();
