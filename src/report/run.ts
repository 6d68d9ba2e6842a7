/**
 * The charts and tables of training runs, built from their metrics.jsonl
 * records: loss and accuracy against steps and seconds (with the unigram
 * line), learning rate, gradient norm, throughput, the untie/split markers on
 * every chart, the adjacent-layer gradient cosines (heatmap and lines, with
 * rho), the tying plan over time, config and timings.
 *
 * Every chart function takes a list of runs, so the compare report can
 * overlay several; the run report and the live page pass one. Every record
 * field is optional: a chart draws what the records have.
 */
import path from 'node:path';
import type { MetricRecord } from '../train/metrics.js';
import { describeGroups, parseShare, planGroups, type Groups } from '../sharing/plan.js';
import { isSyntheticCorpus, parseSyntheticCorpus } from '../data/synthetic/index.js';
import type { Block, GroupBands, Heatmap, LineChart, LineSeries, Marker, View } from './blocks.js';
import { PALETTE, escapeHtml, formatNumber, formatSeconds, raw, table, type Cell } from './html.js';
import { renderPage } from './page.js';
import { readRun, type RunData } from './read.js';
import { writeFileAtomic } from '../train/fsutil.js';

export type XAxis = 'step' | 'seconds';

/** A finite number field of a record, or undefined. */
function num(r: MetricRecord | Record<string, unknown>, key: string): number | undefined {
  const v = r[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A value in the config tree, e.g. cfg(run, 'train', 'steps'). */
export function configValue(run: RunData, ...keys: string[]): unknown {
  let v: unknown = run.config;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function configNumber(run: RunData, ...keys: string[]): number | undefined {
  const v = configValue(run, ...keys);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Smallest and largest of many numbers (spreading 100k arguments into Math.min can overflow the stack). */
function extent(xs: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const x of xs) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * About six significant digits, so the page's JSON stays small at 100k
 * points (a scaled Math.round: toPrecision was the slowest part of a view).
 */
export function round(v: number): number {
  if (Number.isInteger(v) || !Number.isFinite(v)) return v;
  const digits = 5 - Math.floor(Math.log10(Math.abs(v)));
  if (digits > 22 || digits < -22) return v;
  return digits >= 0 ? Math.round(v * POW10[digits]) / POW10[digits] : Math.round(v / POW10[-digits]) * POW10[-digits];
}

/**
 * What the charts derive from a run's records (records by type, the parsed
 * checks, the clock), computed once per RunData: a view asks for each many
 * times, and a long run has 100k+ records. A RunData's records must not
 * change after its first use here (readers build a new one per change).
 */
const derived = new WeakMap<RunData, Map<string, unknown>>();
function memo<T>(run: RunData, key: string, compute: () => T): T {
  let m = derived.get(run);
  if (!m) derived.set(run, (m = new Map()));
  if (!m.has(key)) m.set(key, compute());
  return m.get(key) as T;
}

function recordsOf(run: RunData, type: string): MetricRecord[] {
  return memo(run, `records:${type}`, () => run.records.filter((r) => r.type === type));
}

/**
 * Training seconds at a step, interpolated between the train records'
 * `elapsed` (seconds of training, evaluation excluded); before the first
 * record, proportional to the step; after the last, at the last rate.
 */
export function secondsClock(run: RunData): (step: number) => number | null {
  return memo(run, 'clock', () => buildClock(run));
}

function buildClock(run: RunData): (step: number) => number | null {
  const pts: [number, number][] = [];
  for (const r of recordsOf(run, 'train')) {
    const e = num(r, 'elapsed');
    if (e !== undefined) pts.push([r.step, e]);
  }
  pts.sort((a, b) => a[0] - b[0]);
  if (pts.length === 0) return () => null;
  return (step) => {
    let lo = 0, hi = pts.length - 1;
    if (step <= pts[0][0]) return pts[0][0] > 0 ? (pts[0][1] * step) / pts[0][0] : pts[0][1];
    if (step >= pts[hi][0]) {
      const [s, e] = pts[hi];
      return s > 0 ? e + ((step - s) * e) / s : e;
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (pts[mid][0] <= step) lo = mid;
      else hi = mid;
    }
    const [s0, e0] = pts[lo], [s1, e1] = pts[hi];
    return s1 === s0 ? e1 : e0 + ((step - s0) * (e1 - e0)) / (s1 - s0);
  };
}

export interface SharingEventRecord {
  step: number;
  /** 'grow': a growth step of a --grow run (progressive stacking), with the groups after it. */
  type: 'untie' | 'split' | 'grow';
  reason: string | null;
  description: string;
  groups: Groups | null;
}

export function sharingEvents(run: RunData): SharingEventRecord[] {
  return memo(run, 'events', () => [...recordsOf(run, 'untie'), ...recordsOf(run, 'split'), ...recordsOf(run, 'grow')]
    .sort((a, b) => a.step - b.step)
    .map((r) => ({
      step: r.step,
      type: r.type as SharingEventRecord['type'],
      reason: typeof r.reason === 'string' ? r.reason : null,
      description: typeof r.description === 'string' ? r.description : '',
      groups: Array.isArray(r.groups) ? (r.groups as Groups) : null,
    })));
}

function runColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** Untie/split markers of every run, at their step or their training second. */
export function eventMarkers(runs: RunData[], x: XAxis): Marker[] {
  const out: Marker[] = [];
  runs.forEach((run, i) => {
    const clock = x === 'seconds' ? secondsClock(run) : null;
    for (const e of sharingEvents(run)) {
      const at = clock ? clock(e.step) : e.step;
      if (at === null) continue;
      const what = `${e.type}${e.reason ? ` (${e.reason})` : ''}`;
      out.push(runs.length > 1 ? { x: round(at), label: `${run.name}: ${what}`, color: runColor(i) } : { x: round(at), label: `${what} @${e.step}` });
    }
  });
  return out;
}

interface Metric {
  type: string;
  field: string;
  label: string;
  /** Values are fractions shown as percent. */
  percent?: boolean;
  dash?: boolean;
  points?: boolean;
  color: string;
  width?: number;
}

/** One series per run and metric; x from the step or the training seconds (a record's own `elapsed`, else interpolated). */
function metricSeries(runs: RunData[], metrics: Metric[], x: XAxis): LineSeries[] {
  const out: LineSeries[] = [];
  runs.forEach((run, i) => {
    const clock = x === 'seconds' ? secondsClock(run) : null;
    for (const m of metrics) {
      const xs: number[] = [], ys: number[] = [];
      for (const r of recordsOf(run, m.type)) {
        const y = num(r, m.field);
        if (y === undefined) continue;
        const at = clock ? num(r, 'elapsed') ?? clock(r.step) : r.step;
        if (at === null) continue;
        xs.push(round(at));
        ys.push(round(m.percent ? 100 * y : y));
      }
      if (xs.length === 0) continue;
      out.push({
        label: runs.length > 1 ? `${run.name} ${m.label}` : m.label,
        color: runs.length > 1 ? runColor(i) : m.color,
        ...(m.dash ? { dash: true } : {}),
        ...(m.points !== undefined ? { points: m.points } : {}),
        ...(m.width !== undefined ? { width: m.width } : {}),
        x: xs, y: ys,
      });
    }
  });
  return out;
}

const X_LABEL: Record<XAxis, string> = { step: 'step', seconds: 'training seconds' };

function chart(id: string, title: string, x: XAxis, yLabel: string, series: LineSeries[], runs: RunData[], extra: Partial<LineChart> = {}): LineChart {
  return { kind: 'line', id, title, xLabel: X_LABEL[x], yLabel, series, markers: eventMarkers(runs, x), ...extra };
}

const LOSS: Metric[] = [
  { type: 'train', field: 'loss', label: 'train', color: '#0072B2', width: 1 },
  { type: 'eval', field: 'val_loss', label: 'validation', color: '#D55E00', width: 2, points: true },
  { type: 'eval', field: 'unigram_val_loss', label: 'unigram (validation)', color: '#666666', dash: true },
];

const ACCURACY: Metric[] = [
  { type: 'train', field: 'acc', label: 'train', percent: true, color: '#0072B2', width: 1 },
  { type: 'eval', field: 'val_acc', label: 'validation', percent: true, color: '#D55E00', width: 2, points: true },
  { type: 'eval', field: 'unigram_val_acc', label: 'unigram (validation)', percent: true, color: '#666666', dash: true },
];

/** Whether the runs are decoders (their config says model.kind "gpt"): the charts then say next-token, not masked. */
function decoders(runs: RunData[]): boolean {
  return runs.length > 0 && runs.every((r) => configValue(r, 'model', 'kind') === 'gpt');
}

/** The objective's loss: training steps, validation evals, the unigram predictor's loss when logged. */
export function lossChart(runs: RunData[], x: XAxis, id = `loss-${x}`): LineChart {
  return chart(id, `${decoders(runs) ? 'Next-token' : 'Masked-LM'} loss against ${X_LABEL[x]}`, x, 'loss (nats)', metricSeries(runs, LOSS, x), runs);
}

export function accuracyChart(runs: RunData[], x: XAxis, id = `accuracy-${x}`): LineChart {
  return chart(id, `${decoders(runs) ? 'Next-token' : 'Masked-token'} accuracy against ${X_LABEL[x]}`, x, 'accuracy (%)', metricSeries(runs, ACCURACY, x), runs);
}

/** What a generated corpus's difficulties count ("hops", "depth"), from the run's --corpus; "difficulty" when unknown. */
function difficultyName(run: RunData): string {
  const corpus = configValue(run, 'data', 'corpus');
  if (typeof corpus !== 'string' || !isSyntheticCorpus(corpus)) return 'difficulty';
  try {
    return parseSyntheticCorpus(corpus).difficulty;
  } catch {
    return 'difficulty';
  }
}

/** The difficulties (hop counts, depths) a run's evaluations report accuracy for, in order. */
function difficultiesOf(run: RunData): string[] {
  return memo(run, 'difficulties', () => {
    const seen = new Set<string>();
    for (const r of recordsOf(run, 'eval')) {
      const by = r.val_acc_by_difficulty;
      if (by && typeof by === 'object') for (const k of Object.keys(by)) seen.add(k);
    }
    return [...seen].sort((a, b) => Number(a) - Number(b));
  });
}

/**
 * Validation accuracy of each difficulty of a generated corpus (hop count,
 * nesting depth) against steps: which difficulty a model has learned, and
 * when. Null for runs on text.
 */
export function difficultyChart(runs: RunData[], x: XAxis, id = `difficulty-${x}`): LineChart | null {
  const withLevels = runs.filter((r) => difficultiesOf(r).length > 0);
  if (withLevels.length === 0) return null;
  const name = difficultyName(withLevels[0]);
  const series: LineSeries[] = [];
  withLevels.forEach((run) => {
    const clock = x === 'seconds' ? secondsClock(run) : null;
    difficultiesOf(run).forEach((level, j) => {
      const xs: number[] = [], ys: number[] = [];
      for (const r of recordsOf(run, 'eval')) {
        const v = (r.val_acc_by_difficulty as Record<string, unknown> | undefined)?.[level];
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        const at = clock ? num(r, 'elapsed') ?? clock(r.step) : r.step;
        if (at === null) continue;
        xs.push(round(at));
        ys.push(round(100 * v));
      }
      const label = `${name} ${level}`;
      series.push({ label: runs.length > 1 ? `${run.name} ${label}` : label, color: runColor(j), points: true, x: xs, y: ys });
    });
  });
  return chart(id, `Validation accuracy by ${name} against ${X_LABEL[x]}`, x, 'accuracy (%)', series, runs);
}

export function learningRateChart(runs: RunData[], id = 'lr'): LineChart {
  return chart(id, 'Learning rate', 'step', 'learning rate', metricSeries(runs, [{ type: 'train', field: 'lr', label: 'lr', color: '#009E73' }], 'step'), runs);
}

/** The global gradient norm before clipping, with the clip level when the run clips. */
export function gradNormChart(runs: RunData[], id = 'grad-norm'): LineChart {
  const clips = [...new Set(runs.map((r) => configNumber(r, 'train', 'clip')).filter((c): c is number => c !== undefined && c > 0))];
  const series = metricSeries(runs, [{ type: 'train', field: 'grad_norm', label: 'grad norm', color: '#CC79A7' }], 'step');
  const ys = series.flatMap((s) => s.y.filter((v): v is number => v !== null && v > 0));
  // A log axis once the norm spans more than 30x (the first steps are often far above the rest).
  const [lo, hi] = extent(ys);
  const yLog = ys.length > 1 && hi / lo > 30;
  return chart(id, 'Gradient norm (before clipping)', 'step', 'global L2 norm', series, runs, {
    yLog, refLines: clips.map((c) => ({ y: c, label: `clip ${formatNumber(c)}` })),
  });
}

export function throughputChart(runs: RunData[], id = 'throughput'): LineChart {
  return chart(id, 'Training throughput', 'step', 'tokens / s', metricSeries(runs, [{ type: 'train', field: 'tokens_per_s', label: 'tokens/s', color: '#56B4E9', width: 1 }], 'step'), runs);
}

interface Check {
  step: number;
  /** `statistic`: an alternative statistic's value for the pair (e.g. an EMA of cosines), which the criterion compared with rho. */
  pairs: { a: number; b: number; cosine: number; perTensor: Record<string, number>; statistic?: number }[];
  threshold?: number;
  statistic?: string;
}

function checksOf(run: RunData): Check[] {
  return memo(run, 'checks', () => parseChecks(run));
}

function parseChecks(run: RunData): Check[] {
  const out: Check[] = [];
  for (const r of recordsOf(run, 'sharing_check')) {
    if (!Array.isArray(r.pairs)) continue;
    const pairs: Check['pairs'] = [];
    const values = Array.isArray(r.values) && typeof r.statistic === 'string' ? (r.values as unknown[]) : null;
    for (const [i, p] of (r.pairs as unknown[]).entries()) {
      if (p === null || typeof p !== 'object') continue;
      const q = p as Record<string, unknown>;
      const a = num(q, 'a'), b = num(q, 'b'), cosine = num(q, 'cosine');
      if (a === undefined || b === undefined || cosine === undefined) continue;
      const perTensor: Record<string, number> = {};
      if (q.perTensor && typeof q.perTensor === 'object') {
        for (const [k, v] of Object.entries(q.perTensor as Record<string, unknown>)) if (typeof v === 'number' && Number.isFinite(v)) perTensor[k] = v;
      }
      const v = values?.[i];
      pairs.push({ a, b, cosine, perTensor, ...(typeof v === 'number' && Number.isFinite(v) ? { statistic: v } : {}) });
    }
    out.push({
      step: r.step, pairs,
      ...(num(r, 'threshold') !== undefined ? { threshold: num(r, 'threshold') } : {}),
      ...(values ? { statistic: r.statistic as string } : {}),
    });
  }
  return out.sort((x, y) => x.step - y.step);
}

/** rho of a run: logged with its checks, else from its config. */
export function thresholdOf(run: RunData): number | undefined {
  for (const c of checksOf(run)) if (c.threshold !== undefined) return c.threshold;
  const untie = configValue(run, 'sharing', 'untie');
  return untie === 'adaptive' || untie === 'multi' ? configNumber(run, 'sharing', 'threshold') : undefined;
}

const pairLabel = (a: number, b: number) => `${a}–${b}`;

/**
 * Each adjacent pair's gradient cosine at each check: pooled over the
 * layer's tensors, and per tensor (chosen on the page), with rho as the
 * point where the colours turn from blue to red.
 */
export function cosineHeatmap(run: RunData, id = 'cosine-heatmap'): Heatmap {
  const checks = checksOf(run);
  const pairKeys = new Map<string, [number, number]>();
  const tensors: string[] = [];
  for (const c of checks) for (const p of c.pairs) {
    pairKeys.set(pairLabel(p.a, p.b), [p.a, p.b]);
    for (const t of Object.keys(p.perTensor)) if (!tensors.includes(t)) tensors.push(t);
  }
  const rows = [...pairKeys.entries()].sort((x, y) => x[1][0] - y[1][0] || x[1][1] - y[1][1]).map(([k]) => k);
  const rowIndex = new Map(rows.map((r, i) => [r, i]));
  const grid = (value: (p: Check['pairs'][number]) => number | undefined) => {
    const values = rows.map(() => checks.map((): number | null => null));
    checks.forEach((c, j) => {
      for (const p of c.pairs) {
        const v = value(p);
        if (v !== undefined) values[rowIndex.get(pairLabel(p.a, p.b))!][j] = round(v);
      }
    });
    return values;
  };
  const columns = checks.map((c) => c.step);
  const spacing = columns.length > 1 ? columns[columns.length - 1] - columns[columns.length - 2] : Math.max(1, columns[0] ?? 1);
  const events = sharingEvents(run);
  const xEnd = Math.max((columns[columns.length - 1] ?? 0) + spacing, ...events.map((e) => e.step + 1));
  const rho = thresholdOf(run);
  // With an alternative statistic (--untie-statistic), what the criterion compared with rho comes first.
  const statistic = checks.find((c) => c.statistic)?.statistic;
  const layers = [{ name: 'pooled (all tensors)', values: grid((p) => p.cosine) }, ...tensors.map((t) => ({ name: t, values: grid((p) => p.perTensor[t]) }))];
  if (statistic) layers.unshift({ name: `${statistic} (the statistic compared with ρ)`, values: grid((p) => p.statistic) });
  return {
    kind: 'heatmap', id, title: 'Gradient cosine of adjacent layers at each check', xLabel: 'step', rowLabel: 'layers',
    rows, columns, xEnd,
    layers,
    range: [null, 1],
    ...(rho !== undefined ? { pivot: { value: rho, label: `ρ = ${formatNumber(rho)}` } } : {}),
    markers: eventMarkers([run], 'step'),
  };
}

/** The pooled cosine of each adjacent pair against step, with rho drawn. */
export function cosineChart(run: RunData, id = 'cosine-lines'): LineChart {
  const checks = checksOf(run);
  const byPair = new Map<string, { a: number; x: number[]; y: number[] }>();
  for (const c of checks) for (const p of c.pairs) {
    const key = pairLabel(p.a, p.b);
    if (!byPair.has(key)) byPair.set(key, { a: p.a, x: [], y: [] });
    byPair.get(key)!.x.push(c.step);
    byPair.get(key)!.y.push(round(p.cosine));
  }
  const series: LineSeries[] = [...byPair.entries()].sort((p, q) => p[1].a - q[1].a).map(([key, s], i) => ({ label: `layers ${key}`, color: runColor(i), x: s.x, y: s.y }));
  const rho = thresholdOf(run);
  return chart(id, 'Gradient cosine of adjacent layers (pooled)', 'step', 'cosine', series, [run], {
    refLines: rho !== undefined ? [{ y: rho, label: `ρ = ${formatNumber(rho)}` }] : [],
  });
}

/** The tying plan a run started with, from its config (null when unknown). */
export function initialGroups(run: RunData): Groups | null {
  const layers = configNumber(run, 'model', 'layers');
  if (layers === undefined) return null;
  // A --grow run starts untied at its schedule's first depth.
  const grow = configValue(run, 'sharing', 'grow');
  if (typeof grow === 'string' && grow !== '') {
    const depth = Number(/^\s*(\d+)@/.exec(grow)?.[1]);
    return depth > 0 ? Array.from({ length: depth }, (_, i) => [i]) : null;
  }
  const share = configValue(run, 'sharing', 'share');
  try {
    return planGroups(parseShare(typeof share === 'string' && share !== '' ? share : `1x${layers}`, layers));
  } catch {
    return null;
  }
}

/** The last step the records reach. */
export function lastStep(run: RunData): number {
  let s = 0;
  for (const r of run.records) s = Math.max(s, r.step);
  return s;
}

/** Layer rows against steps, each cell coloured by its group: SWE-M's splits over time. */
export function groupBands(run: RunData, id = 'groups'): GroupBands {
  const layers = configNumber(run, 'model', 'layers') ?? 0;
  const spans: GroupBands['spans'] = [];
  let groups = initialGroups(run);
  let from = 0;
  const end = Math.max(lastStep(run), 1);
  const groupOf = (g: Groups) => {
    const of = new Array<number>(layers).fill(-1);
    for (const members of g) for (const p of members) if (p >= 0 && p < layers) of[p] = members[0];
    return of;
  };
  for (const e of sharingEvents(run)) {
    if (!groups || !e.groups) break;
    if (e.step > from) spans.push({ from, to: e.step, groupOf: groupOf(groups), description: describeGroups(groups) });
    groups = e.groups;
    from = e.step;
  }
  if (groups && end > from) spans.push({ from, to: end, groupOf: groupOf(groups), description: describeGroups(groups) });
  return {
    kind: 'bands', id, title: 'Tying plan over time (colour = tied group; grey = a layer on its own)', xLabel: 'step',
    rows: Array.from({ length: layers }, (_, i) => `layer ${i}`), spans, markers: eventMarkers([run], 'step'),
  };
}

export type RunStatus = 'finished' | 'running' | 'stopped' | 'starting';

/** How long a run is meant to be: a step count, or seconds of training for a --budget run. */
function plannedLength(run: RunData): { steps: number } | { seconds: number } | null {
  const budget = configNumber(run, 'train', 'budget');
  if (budget !== undefined && budget > 0) return { seconds: budget };
  const steps = configNumber(run, 'train', 'steps');
  return steps !== undefined ? { steps } : null;
}

/** finished: reached its planned steps (or budget); running: metrics changed in the last `activeMs`; else stopped. */
export function runStatus(run: RunData, now = Date.now(), activeMs = 120_000): RunStatus {
  const planned = plannedLength(run);
  const trained = Math.max(0, extent(recordsOf(run, 'train').map((r) => r.step))[1]);
  if (planned && 'steps' in planned && trained >= planned.steps) return 'finished';
  if (planned && 'seconds' in planned && (lastOf(run, 'train', 'elapsed') ?? 0) >= planned.seconds) return 'finished';
  if (run.metricsModified === null) return run.config ? 'starting' : 'stopped';
  return now - run.metricsModified < activeMs ? 'running' : 'stopped';
}

function lastOf(run: RunData, type: string, field: string): number | undefined {
  for (let i = run.records.length - 1; i >= 0; i--) {
    const r = run.records[i];
    if (r.type === type && num(r, field) !== undefined) return num(r, field);
  }
  return undefined;
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fixed = (v: number | undefined, digits: number, suffix = '') => (v === undefined ? '—' : `${v.toFixed(digits)}${suffix}`);

/** The columns of a run's summary: the run page's header, the live page's list of runs and `untie runs` show the same. */
export const SUMMARY_COLUMNS = ['run', 'status', 'corpus', 'steps', 'training time', 's / step', 'tokens / s (median)', 'last val loss', 'last val acc', 'unigram val loss', 'layers'] as const;

/** A corpus as a page names it: "brown", or the name of the user's file or folder (its path stays off the page). */
function corpusName(corpus: unknown): string {
  if (typeof corpus !== 'string' || corpus === '') return '—';
  return corpus === 'brown' || corpus.startsWith('synthetic:') ? corpus : path.basename(corpus);
}

/** What a run trains on (see corpusName). */
export function corpusOf(run: RunData): string {
  return corpusName(configValue(run, 'data', 'corpus'));
}

/** A run config as pages show it: the run's folder and its corpus by their names, not the machine's paths. */
export function configForPage(config: Record<string, unknown>): Record<string, unknown> {
  const shown = structuredClone(config);
  if (typeof shown.outDir === 'string') shown.outDir = path.basename(shown.outDir);
  const data = shown.data as Record<string, unknown> | undefined;
  if (data && typeof data === 'object' && 'corpus' in data) data.corpus = corpusName(data.corpus);
  return shown;
}

/** One run's summary as text, one cell per SUMMARY_COLUMNS: status, steps, training time, speed, final validation numbers, untying. */
export function summaryCells(run: RunData, now?: number): { status: RunStatus; cells: string[] } {
  const train = recordsOf(run, 'train');
  const steps = Math.max(0, extent(train.map((r) => r.step))[1]);
  const planned = plannedLength(run);
  const elapsed = lastOf(run, 'train', 'elapsed');
  const all = sharingEvents(run);
  const events = all.filter((e) => e.type !== 'grow'), grown = all.filter((e) => e.type === 'grow');
  const untie = events.find((e) => e.type === 'untie');
  const everTied = initialGroups(run)?.some((g) => g.length > 1) || grown.some((e) => e.groups?.some((g) => g.length > 1));
  const tying = (untie ? `untied @${untie.step}${untie.reason ? ` (${untie.reason})` : ''}`
    : events.length > 0 ? `${events.length} split${events.length > 1 ? 's' : ''}, last @${events[events.length - 1].step}`
      : (everTied ? 'tied' : 'never tied')) + (grown.length > 0 ? `; grown @${grown.map((e) => e.step).join(', @')}` : '');
  const status = runStatus(run, now);
  return {
    status,
    cells: [
      run.name, status, corpusOf(run), `${steps}${planned && 'steps' in planned ? ` / ${planned.steps}` : ''}`,
      `${elapsed === undefined ? '—' : formatSeconds(elapsed)}${planned && 'seconds' in planned ? ` / ${formatSeconds(planned.seconds)}` : ''}`, elapsed === undefined || steps === 0 ? '—' : `${(elapsed / steps).toFixed(3)}`,
      fixed(median(train.map((r) => num(r, 'tokens_per_s')).filter((v): v is number => v !== undefined)), 0),
      fixed(lastOf(run, 'eval', 'val_loss'), 4), fixed(percentOf(lastOf(run, 'eval', 'val_acc')), 2, '%'),
      fixed(lastOf(run, 'eval', 'unigram_val_loss'), 4), tying,
    ],
  };
}

/** One row per run (see summaryCells), the name linked when `link` is given, the status as a badge. */
export function summaryTable(runs: RunData[], opts: { link?: (run: RunData) => string; now?: number } = {}): string {
  const rows = runs.map((run): Cell[] => {
    const { status, cells } = summaryCells(run, opts.now);
    const name = opts.link ? raw(`<a href="${escapeHtml(opts.link(run))}">${escapeHtml(run.name)}</a>`) : run.name;
    return [name, raw(`<span class="badge ${status}">${status}</span>`), ...cells.slice(2)];
  });
  return table([...SUMMARY_COLUMNS], rows);
}

function percentOf(v: number | undefined): number | undefined {
  return v === undefined ? undefined : 100 * v;
}

/** Every untie and split, with its reason and the groups after it. */
export function eventsTable(run: RunData): string {
  const events = sharingEvents(run);
  if (events.length === 0) return '';
  const clock = secondsClock(run);
  return table(['step', 'training s', 'event', 'reason', 'groups after'], events.map((e) => {
    const s = clock(e.step);
    return [e.step, s === null ? '—' : s.toFixed(1), e.type, e.reason ?? '—', e.description];
  }));
}

/** config.json as a two-column table (section.key, value). */
export function configTable(run: RunData): string {
  if (!run.config) return `<p class="note">${escapeHtml(run.configError ?? 'no config.json')}</p>`;
  const rows: Cell[][] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, c] of Object.entries(v as Record<string, unknown>)) walk(prefix ? `${prefix}.${k}` : k, c);
    } else rows.push([prefix, typeof v === 'string' ? v : JSON.stringify(v)]);
  };
  walk('', configForPage(run.config));
  return table(['setting', 'value'], rows);
}

/**
 * The `untie finetune` results in the run folder: the test score over seeds
 * beside the two reference lines trained on the same split, so the page
 * says whether the encoder added anything.
 */
export function finetuneTable(run: RunData): string {
  const results = run.finetunes ?? [];
  if (results.length === 0) return '';
  const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(2)}%`);
  const rows = results.map((f): Cell[] => f.error
    ? [f.folder, raw(`<span class="note">${escapeHtml(f.error)}</span>`), '', '', '', '', '', '', '']
    : [
      f.folder, `${f.task} (${f.metric})`, f.mode, `${pct(f.score)} ± ${pct(f.std)}${f.seeds > 0 ? ` (${f.seeds} seed${f.seeds > 1 ? 's' : ''})` : ''}`,
      `${pct(f.majority)}${f.majorityLabel ? ` ("${f.majorityLabel}")` : ''}`, `${pct(f.bow)}${f.bowMethod ? ` (${f.bowMethod})` : ''}`,
      f.lr === null ? '—' : formatNumber(f.lr), `${f.trainExamples ?? '—'} × ${f.epochs ?? '—'}`, f.seconds === null ? '—' : formatSeconds(f.seconds),
    ]);
  return '<p>Test scores of <code>untie finetune</code> on this run (mean ± standard deviation over seeds), beside two reference lines trained and scored on the same split: '
    + 'the majority class, and a bag of words (spam, classify: logistic regression on WordPiece counts; pos: each word\'s most frequent training tag).</p>'
    + table(['folder', 'task (metric)', 'encoder', 'test score', 'majority class', 'bag of words', 'lr', 'train examples × epochs', 'time'], rows);
}

/** What the reader left out or could not read. */
function notes(run: RunData): string {
  const out: string[] = [];
  if (run.partialLine) out.push('The last line of metrics.jsonl is incomplete (the run is writing it); it is left out until it is whole.');
  if (run.skippedLines > 0) out.push(`${run.skippedLines} line${run.skippedLines > 1 ? 's' : ''} of metrics.jsonl ${run.skippedLines > 1 ? 'are' : 'is'} not a record and ${run.skippedLines > 1 ? 'were' : 'was'} left out.`);
  if (run.configError) out.push(`${run.configError}: the config table and the tying plan are missing.`);
  if (run.records.length === 0) out.push('No metrics yet: the charts fill in as the run logs its first steps.');
  return out.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
}

function describeRun(run: RunData): string {
  const c = (...k: string[]) => configValue(run, ...k);
  if (!run.config) return '';
  const layers = c('model', 'layers'), hidden = c('model', 'hidden');
  const share = c('sharing', 'share') || `1x${String(layers)}`;
  const untie = String(c('sharing', 'untie'));
  const rho = thresholdOf(run);
  const parts = [
    `${String(c('preset'))} preset: ${String(layers)} layers, hidden ${String(hidden)}`,
    `share ${String(share)}`,
    `untie ${untie}${rho !== undefined ? ` (ρ = ${formatNumber(rho)})` : ''}`,
    ...(c('sharing', 'grow') ? [`grow ${String(c('sharing', 'grow'))}${c('sharing', 'growTied') === true ? ' (copies tied)' : ''}`] : []),
    `${(configNumber(run, 'train', 'budget') ?? 0) > 0 ? `a budget of ${formatSeconds(configNumber(run, 'train', 'budget')!)}` : `${String(c('train', 'steps'))} steps`}, batch ${String(c('train', 'batchSize'))} × ${String(c('data', 'seqLen'))} tokens, lr ${String(c('train', 'lr'))}`,
    `corpus ${corpusOf(run)}`,
  ];
  return `<p>${escapeHtml(parts.join(' · '))}.</p>`;
}

/** The view of one run: the run report and the live page both draw this. */
export function runView(run: RunData, opts: { now?: number } = {}): View {
  const runs = [run];
  const blocks: Block[] = [
    { kind: 'html', html: describeRun(run) + notes(run) + summaryTable(runs, opts) },
    { kind: 'section', title: 'Loss and accuracy', blocks: [{ kind: 'grid', blocks: [lossChart(runs, 'step'), lossChart(runs, 'seconds'), accuracyChart(runs, 'step'), accuracyChart(runs, 'seconds')] }] },
  ];
  const finetunes = finetuneTable(run);
  if (finetunes) blocks.push({ kind: 'section', title: 'Fine-tuning', blocks: [{ kind: 'html', html: finetunes }] });
  const byDifficulty = [difficultyChart(runs, 'step'), difficultyChart(runs, 'seconds')].filter((c): c is LineChart => c !== null);
  if (byDifficulty.length > 0) blocks.push({ kind: 'section', title: `Accuracy by ${difficultyName(run)}`, blocks: [{ kind: 'grid', blocks: byDifficulty }] });
  blocks.push(
    { kind: 'section', title: 'Optimisation', blocks: [{ kind: 'grid', blocks: [learningRateChart(runs), gradNormChart(runs), throughputChart(runs)] }] },
  );
  const checks = recordsOf(run, 'sharing_check').length;
  const plan = initialGroups(run);
  const tied = (plan?.some((g) => g.length > 1) ?? false) || sharingEvents(run).some((e) => e.groups?.some((g) => g.length > 1));
  if (checks > 0 || sharingEvents(run).length > 0 || tied) {
    const rho = thresholdOf(run);
    const sharing: Block[] = [{
      kind: 'html',
      html: `<p>Untie criterion <code>${escapeHtml(String(configValue(run, 'sharing', 'untie') ?? '?'))}</code>. `
        + (checks > 0
          ? `${checks} check${checks > 1 ? 's' : ''} of the cosine between adjacent tied layers' gradients${rho !== undefined ? `; below ρ = ${formatNumber(rho)} counts as disagreeing (red in the heatmap)` : ''}. Choose a parameter tensor above the heatmap to see its own cosines.`
          : 'No gradient checks were logged: a run that untied before its first update makes none, and older versions of untie did not log them for SWE-F (step:N, fraction:F).')
        + '</p>' + eventsTable(run),
    }];
    if (checks > 0) sharing.push(cosineHeatmap(run), cosineChart(run));
    if (tied) sharing.push(groupBands(run));
    blocks.push({ kind: 'section', title: 'Layer sharing', blocks: sharing });
  }
  blocks.push({ kind: 'section', title: 'Config', collapsed: true, blocks: [{ kind: 'html', html: configTable(run) }] });
  return { title: `untie run: ${run.name}`, blocks };
}

/** The runs of a folder as a table linking to each run's page. */
export function runsIndexView(title: string, runs: RunData[], link: (run: RunData) => string, opts: { now?: number; empty?: string } = {}): View {
  const html = runs.length === 0
    ? `<p class="note">${escapeHtml(opts.empty ?? 'No runs yet.')}</p>`
    : summaryTable(runs, { link, now: opts.now });
  return { title, blocks: [{ kind: 'html', html }] };
}

/** report.html of a run: its view as one self-contained page. */
export function runReportHtml(run: RunData): string {
  return renderPage(runView(run));
}

/** Writes RUN/report.html (or `out`) and returns the path written. */
export function writeRunReport(dir: string, out?: string): string {
  const run = readRun(dir, 'report');
  const file = out ?? path.join(dir, 'report.html');
  writeFileAtomic(file, runReportHtml(run));
  return file;
}
