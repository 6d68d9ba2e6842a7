/**
 * `untie linear`: deep linear networks trained untied, shared and with SWE-A
 * at several depths; prints the steps-to-eps table and fitted slopes, or one
 * JSON object (--json), and writes report.html (--out DIR).
 */
import { join } from 'node:path';
import { UntieError } from '../errors.js';
import {
  TARGET_KINDS, VARIANTS, defaultAdamGrid, defaultLinearConfig, linearResultsJson, runLinearExperiment, variantLabel,
  type LinearConfig, type LinearResults, type Study, type TargetKind, type Variant,
} from '../experiments/linear.js';
import { linearReportHtml } from '../report/linear.js';
import { checkCreatable, makeDirectory, writeFileAtomic } from '../train/fsutil.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'deep linear networks: the theory of the method, simulated and plotted';

const defaults = defaultLinearConfig();

const flags: Flags = {
  L: { type: 'string', help: 'depths, comma-separated', default: defaults.depths.join(',') },
  d: { type: 'string', help: 'width of each W_l (d x d)', default: String(defaults.d) },
  seeds: { type: 'string', help: 'number of seeds (each draws its own target Phi); the lr search scores the worst seed', default: String(defaults.seeds.length) },
  eps: { type: 'string', help: 'a run is done when R <= eps * R(0)', default: String(defaults.eps) },
  'max-steps': { type: 'string', help: 'updates before a run counts as "never"', default: String(defaults.maxSteps) },
  targets: { type: 'string', help: `targets, comma-separated, from: ${TARGET_KINDS.join(', ')}`, default: defaults.targets.join(',') },
  methods: { type: 'string', help: `methods, comma-separated, from: ${VARIANTS.join(', ')}`, default: defaults.variants.join(',') },
  optimizer: { type: 'string', help: 'gd (plain gradient descent, the theorems) or adam', default: defaults.optimizer },
  'lr-grid': { type: 'string', help: 'learning rates for the search, comma-separated (default: 2^0..2^-10 for gd, 2^-2..2^-12 for adam)' },
  'equal-lr': { type: 'string', help: 'the one learning rate of the equal-lr study, or "none" to skip it', default: String(defaults.equalLr) },
  'swe-every': { type: 'string', help: 'SWE-A: check every K updates', default: String(defaults.swe.every) },
  'swe-threshold': { type: 'string', help: 'SWE-A: cosine threshold rho', default: String(defaults.swe.threshold) },
  'swe-patience': { type: 'string', help: 'SWE-A: consecutive checks below rho before untying', default: String(defaults.swe.patience) },
  full: { type: 'boolean', help: 'the full grid: 3 seeds, all four targets, 3000 max steps (several times slower)' },
  out: { type: 'string', help: 'write report.html (and results.json) into this folder' },
  json: { type: 'boolean', help: 'print the results as one JSON object on stdout' },
};

function list(name: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UntieError(`--${name} needs at least one value`);
  return items;
}

function numbers(name: string, text: string, integer: boolean, min: number): number[] {
  return list(name, text).map((s) => numberFlag(name, s, { integer, min })!);
}

/** Builds the experiment config from parsed flags. */
export function configFromFlags(values: Record<string, string | boolean | undefined>): LinearConfig {
  const c = defaultLinearConfig();
  if (values.full) {
    c.seeds = [0, 1, 2];
    c.targets = [...TARGET_KINDS];
    c.maxSteps = 3000;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (str('L') !== undefined) c.depths = numbers('L', str('L')!, true, 2);
  if (str('d') !== undefined) c.d = numberFlag('d', str('d'), { integer: true, min: 1 })!;
  if (str('seeds') !== undefined) {
    const n = numberFlag('seeds', str('seeds'), { integer: true, min: 1 })!;
    c.seeds = Array.from({ length: n }, (_, i) => i);
  }
  if (str('eps') !== undefined) c.eps = numberFlag('eps', str('eps'))!;
  if (str('max-steps') !== undefined) c.maxSteps = numberFlag('max-steps', str('max-steps'), { integer: true, min: 1 })!;
  if (str('targets') !== undefined) {
    c.targets = list('targets', str('targets')!).map((t) => {
      if (!(TARGET_KINDS as readonly string[]).includes(t)) throw new UntieError(`--targets: unknown target "${t}"; use some of ${TARGET_KINDS.join(', ')}`);
      return t as TargetKind;
    });
  }
  if (str('methods') !== undefined) {
    c.variants = list('methods', str('methods')!).map((v) => {
      if (!(VARIANTS as readonly string[]).includes(v)) throw new UntieError(`--methods: unknown method "${v}"; use some of ${VARIANTS.join(', ')}`);
      return v as Variant;
    });
  }
  const opt = str('optimizer');
  if (opt !== undefined) {
    if (opt !== 'gd' && opt !== 'adam') throw new UntieError(`--optimizer must be gd or adam, got "${opt}"`);
    c.optimizer = opt;
    if (opt === 'adam') c.lrGrid = defaultAdamGrid();
  }
  if (str('lr-grid') !== undefined) c.lrGrid = numbers('lr-grid', str('lr-grid')!, false, Number.MIN_VALUE);
  const eq = str('equal-lr');
  if (eq !== undefined) c.equalLr = eq === 'none' ? null : numberFlag('equal-lr', eq, { min: Number.MIN_VALUE })!;
  if (str('swe-every') !== undefined) c.swe.every = numberFlag('swe-every', str('swe-every'), { integer: true, min: 1 })!;
  if (str('swe-threshold') !== undefined) c.swe.threshold = numberFlag('swe-threshold', str('swe-threshold'))!;
  if (str('swe-patience') !== undefined) c.swe.patience = numberFlag('swe-patience', str('swe-patience'), { integer: true, min: 1 })!;
  return c;
}

function studyTable(study: Study, heading: string): string {
  const depths = [...new Set(study.runs.map((r) => r.L))].sort((a, b) => a - b);
  const variants = [...new Set(study.runs.map((r) => r.variant))];
  const head = ['method', ...depths.map((L) => `L=${L}`), 'slope'];
  const rows = variants.map((v) => [
    variantLabel(v),
    ...depths.map((L) => {
      const runs = study.runs.filter((r) => r.variant === v && r.L === L);
      const steps = runs.map((r) => (r.stepsToEps === null ? (r.diverged ? 'div' : 'never') : String(r.stepsToEps))).join('/');
      const lrs = [...new Set(runs.map((r) => r.lr))];
      return lrs.length === 1 && study.kind === 'search' ? `${steps} @2^${Math.log2(lrs[0]).toFixed(0)}` : steps;
    }),
    study.slopes[v] === null || study.slopes[v] === undefined ? '—' : study.slopes[v]!.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [heading, line(head), ...rows.map(line)].join('\n');
}

export function formatResults(res: LinearResults): string {
  const c = res.config;
  const out = [
    `deep linear networks, d=${c.d}, ${c.optimizer}, eps=${c.eps} (updates until R <= eps*R(0); never = not within ${c.maxSteps}), seeds ${c.seeds.join(',')}, ${res.seconds.toFixed(1)} s`,
    'cells: updates to eps per seed (@ chosen lr); slope: fit of log(updates) against log(L)',
  ];
  for (const t of res.targets) {
    out.push('', `== target ${t.target} ==`);
    out.push(studyTable(t.search, 'lr searched per method and depth:'));
    if (t.equalLr) out.push('', studyTable(t.equalLr, `one lr for all (${t.equalLr.lr}):`));
    const swe = [...t.search.runs, ...(t.equalLr?.runs ?? [])].filter((r) => r.variant === 'swe-a');
    if (swe.length > 0) {
      const untied = swe.filter((r) => r.untieStep !== null).length;
      out.push(`SWE-A untied in ${untied} of ${swe.length} runs${untied > 0 ? ` (after ${swe.filter((r) => r.untieStep !== null).map((r) => r.untieStep).join(', ')} updates)` : ''}`);
    }
    const spreads = Object.entries(t.lemma1.maxSpread).map(([v, s]) => `${v} ${s!.toExponential(1)}`);
    if (spreads.length > 0) out.push(`Lemma 1 (identity init, first ${t.lemma1.steps} updates, ${t.lemma1.study} runs), max ||g_l - g_1||/||g_1||: ${spreads.join(', ')}`);
  }
  return out.join('\n');
}

/** `write` receives everything meant for stdout (tests capture it there). */
export async function run(argv: string[], write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<number> {
  const { values, positionals } = parse('linear', argv, flags);
  if (values.help) {
    write(`${helpText('linear', '[options]', flags, 'Trains deep linear networks untied (zero-asymmetric and identity init), always shared, and with SWE-A, at several depths, and measures how the updates needed to reach eps scale with depth (method.md section 3).')}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UntieError(`unexpected argument "${positionals[0]}". Run \`untie linear --help\` for the options.`);
  const config = configFromFlags(values);
  if (typeof values.out === 'string') checkCreatable(values.out); // refuse an odd --out now, not after the run
  const progress = process.stderr.isTTY && !values.json ? (m: string) => process.stderr.write(`\r\x1b[K${m}`) : () => {};
  const res = runLinearExperiment(config, progress);
  if (process.stderr.isTTY && !values.json) process.stderr.write('\r\x1b[K');
  const json = linearResultsJson(res);
  if (typeof values.out === 'string') {
    makeDirectory(values.out);
    writeFileAtomic(join(values.out, 'report.html'), linearReportHtml(res));
    writeFileAtomic(join(values.out, 'results.json'), `${JSON.stringify(json, null, 1)}\n`);
  }
  if (values.json) {
    write(`${JSON.stringify(json)}\n`);
  } else {
    write(`${formatResults(res)}\n`);
    if (typeof values.out === 'string') write(`\nwrote ${join(values.out, 'report.html')}\n`);
  }
  return 0;
}
