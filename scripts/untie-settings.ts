/**
 * The measurement behind the defaults of --untie-optimizer, --shared-grad and
 * --clip-basis (docs/training.md, "The method's settings"): short runs of the tiny
 * preset on the Brown corpus that untie at a fixed step, one per setting, and
 * a table of the losses after the untie.
 *
 *   node --import tsx scripts/untie-settings.ts [--steps 400] [--untie-at 100] [--seeds 0] [--out runs/untie-settings] [--only mean-copy,sum-rescale,...]
 *
 * Runs one after another on one thread each (--threads 1), so they do not
 * disturb each other; a run folder that already holds a finished run is
 * reused, not retrained. Prints the commands it runs and a Markdown table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { closest, helpText, numberFlag, parse, type Flags } from '../src/cli/args.js';
import { machineName } from '../src/experiments/compare.js';
import { readMetrics, type MetricRecord } from '../src/train/metrics.js';
import { UntieError } from '../src/errors.js';

const INVOCATION = 'node --import tsx scripts/untie-settings.ts';
const FLAGS: Flags = {
  steps: { type: 'string', help: 'steps of each run', default: '400' },
  'untie-at': { type: 'string', help: 'the step after which every run unties', default: '100' },
  seeds: { type: 'string', help: 'comma-separated seeds, one run per setting and seed', default: '0' },
  out: { type: 'string', help: 'folder of the runs', default: 'runs/untie-settings' },
  only: { type: 'string', help: 'only these settings, by their run-folder names (mean-copy,sum-rescale,...)' },
};

/** The settings compared: name -> extra flags. */
const SETTINGS: [string, string[]][] = [
  ['mean, copy', ['--shared-grad', 'mean', '--untie-optimizer', 'copy']],
  ['mean, rescale', ['--shared-grad', 'mean', '--untie-optimizer', 'rescale']],
  ['mean, reset', ['--shared-grad', 'mean', '--untie-optimizer', 'reset']],
  ['sum, copy', ['--shared-grad', 'sum', '--untie-optimizer', 'copy']],
  ['sum, rescale', ['--shared-grad', 'sum', '--untie-optimizer', 'rescale']],
  ['sum, reset', ['--shared-grad', 'sum', '--untie-optimizer', 'reset']],
  ['mean, copy, clip layers', ['--shared-grad', 'mean', '--untie-optimizer', 'copy', '--clip-basis', 'layers']],
  ['never tied', ['--share', '6x1', '--untie', 'never']],
];
function slug(name: string): string {
  return name.replace(/[^a-z0-9]+/g, '-');
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean training loss over updates (from, to]. */
function trainLoss(records: MetricRecord[], from: number, to: number): number {
  return mean(records.filter((r) => r.type === 'train' && r.step > from && r.step <= to).map((r) => r.loss as number));
}

function valLoss(records: MetricRecord[], step: number): number {
  const r = records.find((x) => x.type === 'eval' && x.step === step);
  return r ? (r.val_loss as number) : NaN;
}

function meanOf(records: MetricRecord[], key: string, from: number, to: number): number {
  return mean(records.filter((r) => r.type === 'train' && r.step > from && r.step <= to).map((r) => r[key] as number));
}

/** The options, or null when only help was asked for (printed). A bad option throws one line that says what to do. */
function options(argv: string[]) {
  const { values, positionals } = parse('', argv, FLAGS, INVOCATION);
  if (values.help) {
    console.log(helpText('', '[options]', FLAGS, 'Short tiny-preset runs that untie at a fixed step, one per setting of --shared-grad, --untie-optimizer and --clip-basis, and a table of their losses.', INVOCATION));
    return null;
  }
  if (positionals.length > 0) throw new UntieError(`unexpected argument "${positionals[0]}": ${INVOCATION} takes only options; --help lists them`);
  const str = (k: string) => (values[k] as string | undefined) ?? (FLAGS[k].default as string);
  const steps = numberFlag('steps', str('steps'), { integer: true, min: 1 })!;
  const untieAt = numberFlag('untie-at', str('untie-at'), { integer: true, min: 0 })!;
  if (untieAt >= steps) throw new UntieError(`--untie-at ${untieAt} must be below --steps ${steps}: the runs must train after they untie`);
  const seeds = str('seeds').split(',').map((s) => numberFlag('seeds', s.trim(), { integer: true, min: 0 })!);
  const slugs = SETTINGS.map(([n]) => slug(n));
  const only = values.only ? new Set((values.only as string).split(',').map((s) => s.trim())) : null;
  for (const n of only ?? []) {
    if (!slugs.includes(n)) throw new UntieError(`--only: no setting "${n}"${closest(n, slugs) ? ` (did you mean ${closest(n, slugs)}?)` : ''}; settings: ${slugs.join(', ')}`);
  }
  return { steps, untieAt, seeds, outDir: str('out'), only };
}

async function run(argv: string[]): Promise<void> {
  const opts = options(argv);
  if (!opts) return;
  const { steps, untieAt, seeds, outDir, only } = opts;
  const rows: string[] = [];
  let unigram: number | null = null;
  // Windows and evaluations past the run's end are left out (a short run would show NaN columns).
  const windows = ([[untieAt, untieAt + 25], [untieAt + 25, untieAt + 100], [untieAt + 100, steps]] as [number, number][])
    .map(([a, b]): [number, number] => [a, Math.min(b, steps)]).filter(([a, b]) => b > a);
  const evalSteps = [...[untieAt, untieAt + 50, untieAt + 100].filter((s) => s < steps), steps];

  console.log(`machine: ${machineName()}`);
  for (const [name, flags] of SETTINGS) {
    if (only && !only.has(slug(name))) continue;
    const perSeed: number[][] = [];
    for (const seed of seeds) {
      const runName = `${slug(name)}-s${seed}`;
      const args = [
        'train', '--preset', 'tiny', '--steps', String(steps), '--untie', `step:${untieAt}`, '--seed', String(seed), '--threads', '1',
        '--eval-every', '50', '--log-every', '1', '--save-every', '0', '--out', outDir, '--name', runName, '--quiet', ...flags,
      ];
      const runDir = path.join(outDir, runName);
      const done = fs.existsSync(path.join(runDir, `checkpoint-${steps}`));
      console.log(`${done ? '(done) ' : ''}npx untie ${args.join(' ')}`);
      if (!done) {
        fs.rmSync(runDir, { recursive: true, force: true });
        const code = await main(args);
        if (code !== 0) throw new Error(`run ${runName} failed (exit ${code})`);
      }
      const m = readMetrics(path.join(runDir, 'metrics.jsonl'));
      unigram ??= (m.find((r) => r.type === 'eval')?.unigram_val_loss as number | undefined) ?? null;
      perSeed.push([
        ...windows.map(([a, b]) => trainLoss(m, a, b)),
        ...evalSteps.map((s) => valLoss(m, s)),
        meanOf(m, 'grad_norm', untieAt - 10, untieAt), meanOf(m, 'grad_norm', untieAt, untieAt + 10),
        meanOf(m, 'grad_norm_layers', untieAt - 10, untieAt),
      ]);
    }
    const avg = perSeed[0].map((_, i) => mean(perSeed.map((r) => r[i])));
    // The last validation loss of each seed, so the spread between seeds is in view.
    const finals = perSeed.map((r) => r[windows.length + evalSteps.length - 1].toFixed(3)).join(', ');
    rows.push(`| ${name} | ${avg.slice(0, windows.length + evalSteps.length).map((v) => v.toFixed(3)).join(' | ')} | ${finals} | ${avg.slice(-3).map((v) => v.toFixed(2)).join(' / ')} |`);
  }

  console.log(`\n${seeds.length} seed(s) (${seeds.join(', ')}), tiny preset, ${steps} steps, untie after step ${untieAt}; losses averaged over seeds.`);
  console.log(`| setting | train loss ${windows.map(([a, b]) => `${a + 1}-${b}`).join(' | train loss ')} | ${evalSteps.map((s) => `val @${s}`).join(' | ')} | val @${steps} per seed | grad norm tied / untied / tied per-layer |`);
  console.log(`|---|${windows.map(() => '---|').join('')}${evalSteps.map(() => '---|').join('')}---|---|`);
  for (const r of rows) console.log(r);
  if (unigram !== null) console.log(`\nThe unigram predictor's validation loss (the line to beat): ${unigram.toFixed(3)}.`);
}

run(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
