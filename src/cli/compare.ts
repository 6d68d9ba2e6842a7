/** `untie compare`: baseline vs ALBERT-style vs SWE-F/A/M on the same data, tokenizer, budget and seeds. */
import path from 'node:path';
import { UntieError } from '../errors.js';
import {
  VARIANTS, VARIANT_ABOUT, majorityMark, parseSweep, parseVariants, runCompare, targetWarning, taskHeading,
  type CompareOptions, type PointSummary, type Stat, type Variant,
} from '../experiments/compare.js';
import { finetune } from '../experiments/finetune.js';
import type { DownstreamJudge } from '../experiments/compare.js';
import type { PairedDiff } from '../experiments/speedup.js';
import { writeCompareReport } from '../report/compare.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';
import { configFromFlags, trainFlags } from './train.js';

export const summary = 'the headline experiment: baseline vs ALBERT-style vs SWE-F/A/M, in steps and seconds';

export const DEFAULT_VARIANTS: Variant[] = ['baseline', 'albert', 'swe-f', 'swe-a', 'swe-m', 'baseline-half'];

const flags: Flags = {
  preset: { type: 'string', help: 'model size (see untie train --help)', default: 'tiny' },
  steps: { type: 'string', help: 'training steps of every run (baseline-half: half)' },
  budget: { type: 'string', help: 'instead of --steps: the same wall-clock training time for every run (900s, 30m, 1h; baseline-half: half). Seconds then decide; runs do not repeat exactly' },
  seeds: { type: 'string', help: 'seeds per variant (mean and spread over them)', default: '1' },
  variants: { type: 'string', help: `comma-separated: ${VARIANTS.join(', ')}`, default: DEFAULT_VARIANTS.join(',') },
  sweep: { type: 'string', help: 'KEY=V1,V2,...: repeat the comparison for each value (layers, untie, share, hidden, steps, batch-size)' },
  'swe-f-fraction': { type: 'string', help: 'swe-f unties at this fraction of the run (the paper: 0.1)', default: '0.1' },
  evals: { type: 'string', help: 'validations per run (the resolution of time-to-target)', default: '20' },
  out: { type: 'string', help: 'folder for the runs, results.json and report.html', default: 'runs/compare' },
  threads: { type: 'string', help: 'kernel threads for every run (0 = all cores); runs go one after another', default: '0' },
  downstream: {
    type: 'string',
    help: 'judge each final checkpoint downstream: probe (a linear probe on the frozen encoder, ~30 CPU-s a task), finetune (untie finetune, one seed, ~5 CPU-min a task), or none',
    default: 'probe',
  },
  tasks: { type: 'string', help: 'downstream tasks (comma-separated): pos, spam', default: 'pos,spam' },
  json: { type: 'boolean', help: 'print the summary as JSON' },
  quiet: { type: 'boolean', help: 'no progress output' },
};

export async function run(argv: string[]): Promise<number> {
  const cut = argv.indexOf('--');
  const own = cut >= 0 ? argv.slice(0, cut) : argv;
  const trainArgs = cut >= 0 ? argv.slice(cut + 1) : [];
  const parsed = parse('compare', own, flags);
  const { positionals } = parsed;
  const values: Record<string, string | boolean | undefined> = { ...parsed.values };
  for (const [k, f] of Object.entries(flags)) values[k] ??= f.default;
  if (values.help) {
    console.log(helpText('compare', '[options] [-- TRAIN_FLAGS]', flags,
      `${summary}.\nVariants:\n${VARIANTS.map((v) => `  ${v.padEnd(14)} ${VARIANT_ABOUT[v]}`).join('\n')}\n` +
      'Flags after `--` are `untie train` flags applied to every run (e.g. -- --layers 12 --hidden 128).\n' +
      'Runs go one after another on all threads, so their seconds compare. Rerunning the same command resumes an interrupted comparison.'));
    return 0;
  }
  if (positionals.length > 0) throw new UntieError(`unexpected argument "${positionals[0]}" (train flags go after \`--\`)`);
  const forbidden = ['--resume', '--name', '--out', '--seed', '--share', '--untie', '--steps', '--budget', '--preset', '--threads'];
  for (const a of trainArgs) {
    const flag = a.split('=')[0];
    if (forbidden.includes(flag)) throw new UntieError(`${flag} after \`--\` is set by compare itself; use compare's own --${flag.slice(2)} (or --variants / --sweep) instead`);
  }
  const { values: trainValues, positionals: extra } = parse('train', trainArgs, trainFlags());
  if (extra.length > 0) throw new UntieError(`unexpected train argument "${extra[0]}"`);
  const base = configFromFlags({ ...trainValues, preset: values.preset as string, steps: values.steps as string | undefined, budget: values.budget as string | undefined, threads: values.threads as string });
  base.name = 'compare';
  base.outDir = values.out as string;
  const seeds = numberFlag('seeds', values.seeds, { integer: true, min: 1 })!;
  const evals = numberFlag('evals', values.evals, { integer: true, min: 2 })!;
  const sweFFraction = numberFlag('swe-f-fraction', values['swe-f-fraction'])!;
  if (!(sweFFraction > 0 && sweFFraction < 1)) throw new UntieError(`--swe-f-fraction must be in (0, 1), got ${sweFFraction}`);
  const options: CompareOptions = {
    out: path.resolve(values.out as string),
    variants: parseVariants(values.variants as string),
    seeds, sweFFraction, evalsPerRun: evals,
    sweep: typeof values.sweep === 'string' ? parseSweep(values.sweep) : null,
    progress: !values.quiet && !values.json,
  };
  const mode = values.downstream as string;
  if (!['probe', 'finetune', 'none'].includes(mode)) throw new UntieError(`--downstream must be probe, finetune or none, got "${mode}"`);
  const tasks = String(values.tasks).split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of tasks) if (t !== 'pos' && t !== 'spam') throw new UntieError(`--tasks: "${t}" is not a built-in task (pos, spam)`);
  const judge: DownstreamJudge | null = mode === 'none' || tasks.length === 0 ? null : async (runDir) => {
    const scores: Awaited<ReturnType<DownstreamJudge>> = {};
    for (const task of tasks) {
      const r = await finetune({ checkpoint: runDir, task: task as 'pos' | 'spam', seeds: 1, frozen: mode === 'probe', outDir: null, progress: false });
      scores[task] = { metric: r.metric, score: r.score, seconds: r.seconds, majority: r.baseline.score };
    }
    return scores;
  };
  const results = await runCompare(base, { ...options, downstream: judge ? `${mode}:${tasks.join(',')}` : 'none' }, judge);
  const report = writeCompareReport(results, options.out);
  if (values.json) {
    console.log(JSON.stringify({ out: options.out, machine: results.machine, threads: results.threads, interrupted: results.interrupted, summary: results.summary }));
  } else {
    console.log(formatSummary(results.summary, results.machine, results.threads));
    console.log(`results: ${path.join(options.out, 'results.json')}\nreport: ${report}`);
  }
  return results.interrupted ? 130 : 0;
}

const fmt = (s: Stat | null, digits: number, scale = 1) => {
  if (!s || !Number.isFinite(s.mean)) return '-';
  return `${(s.mean * scale).toFixed(digits)}${s.std !== null ? ` ±${(s.std * scale).toFixed(digits)}` : ''}`;
};

/** How far above the target a run that never reached it ended: " (+0.0035)". */
function gap(final: Stat | null, target: Stat | null): string {
  if (!final || !target || !Number.isFinite(final.mean) || !Number.isFinite(target.mean)) return '';
  return ` (+${(final.mean - target.mean).toFixed(4)})`;
}

/** The printed table: per sweep point, one line per variant. */
export function formatSummary(points: PointSummary[], machine: string, threads: number): string {
  const lines: string[] = [`${machine}, ${threads} thread(s); ratios < 1 mean faster than the baseline to the baseline's final validation loss`];
  for (const p of points) {
    lines.push('');
    lines.push(`${p.point ? `${p.point}: ` : ''}target (baseline final val loss) ${fmt(p.target, 4)}; unigram ${p.unigramValLoss?.toFixed(4) ?? '-'} / ${p.unigramValAcc !== null ? (100 * p.unigramValAcc).toFixed(2) + '%' : '-'}`);
    const warning = targetWarning(p);
    if (warning) lines.push(`warning: ${warning}`);
    const tasks = [...new Set(p.variants.flatMap((v) => Object.keys(v.downstream)))];
    const head = ['variant', 'steps to target', 'ratio', 'seconds to target', 'ratio', 'final val loss', 'val acc %', 'untied at', ...tasks.map((t) => taskHeading(p, t))];
    const rows = p.variants.map((v) => [
      v.variant,
      v.stepsToTarget ? fmt(v.stepsToTarget, 0) + (v.missed ? ` (${v.missed} missed)` : '') : v.missed ? `never${gap(v.finalValLoss, p.target)}` : '-',
      fmt(v.stepsRatio, 2),
      fmt(v.secondsToTarget, 0),
      fmt(v.secondsRatio, 2),
      fmt(v.finalValLoss, 4),
      fmt(v.finalValAcc, 2, 100),
      v.untiedAt.map((u) => (u === null ? '-' : String(u))).join(','),
      ...tasks.map((t) => fmt(v.downstream[t] ?? null, 4) + majorityMark(p, t, v.downstream[t])),
    ]);
    lines.push(...columns(head, rows));
    const others = p.variants.filter((v) => v.variant !== 'baseline');
    if (others.length > 0 && p.variants.some((v) => v.variant === 'baseline')) {
      lines.push('speed-up curve: steps to the baseline\'s loss at 25/50/75/100% of its run, as a ratio to the baseline\'s (mean ±sd over seeds; "k missed": seeds that never got there);');
      lines.push('final differences from the baseline paired by seed, with a 95% t-interval');
      const levelHead = ['variant', ...others[0].levels.map((l) => `@${Math.round(100 * l.fraction)}%`), 'Δ final val loss', 'Δ val acc (points)'];
      const levelRows = others.map((v) => [
        v.variant,
        ...v.levels.map((l) => (l.ratio ? fmt(l.ratio, 2) : '-') + (l.missed ? ` (${l.missed} missed)` : '')),
        formatPaired(v.paired.val_loss, 4),
        formatPaired(v.paired.val_acc, 2, 100),
      ]);
      lines.push(...columns(levelHead, levelRows));
    }
  }
  return lines.join('\n');
}

/** Left-aligned columns, two spaces apart. */
function columns(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

/** "+0.0120 [+0.0050, +0.0190]" (one seed: no interval). */
export function formatPaired(d: PairedDiff | null | undefined, digits: number, scale = 1): string {
  if (!d) return '-';
  const f = (x: number) => `${x * scale >= 0 ? '+' : ''}${(x * scale).toFixed(digits)}`;
  return d.low === null || d.high === null ? `${f(d.mean)} (1 seed)` : `${f(d.mean)} [${f(d.low)}, ${f(d.high)}]`;
}
