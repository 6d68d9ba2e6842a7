/**
 * report.html of `untie compare`: the answer first (steps and seconds to the
 * baseline's final loss, quality at equal budget, seed spread), then the
 * curves of every run against steps and seconds with their untie markers,
 * the paper's Table 1 (and Tables 3-4 when swept) in its shape, and how the
 * adjacent layers' gradient agreement moved in every shared run, with when
 * each untie statistic would have fired. Built from results.json and the run
 * folders with the same blocks as the run report.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  VARIANT_ABOUT, majorityMark, seedsText, targetWarning, taskHeading,
  type CompareResults, type PointSummary, type RunRecord, type Stat, type Variant, type VariantSummary,
} from '../experiments/compare.js';
import type { Block, LineChart, LineSeries, Marker, View } from './blocks.js';
import { PALETTE, escapeHtml, formatNumber, formatSeconds, raw, table, type Cell } from './html.js';
import { renderPage } from './page.js';
import { readRun } from './read.js';
import { configForPage, cosineHeatmap } from './run.js';
import { writeFileAtomic } from '../train/fsutil.js';
import { objectiveOf } from '../train/config.js';
import type { ModelKind } from '../models/lm.js';
import { pairedVerdict, type PairedDiff } from '../experiments/speedup.js';

/**
 * One colour per variant, all different. The stacking pair sits away from
 * SWE-F's vermillion (Okabe-Ito's orange beside it read as the same line) and
 * off the palette's pale yellow: olive and a dark wine (Paul Tol's muted
 * scheme), both visible on white.
 */
const VARIANT_COLOR: Record<Variant, string> = {
  baseline: PALETTE[0], albert: PALETTE[6], 'swe-f': PALETTE[1], 'swe-a': PALETTE[2], 'swe-m': PALETTE[3], 'baseline-half': PALETTE[5],
  stack: '#999933', 'stack-swe': '#882255',
};

const fmt = (s: Stat | null | undefined, digits: number, scale = 1): string => {
  if (!s || !Number.isFinite(s.mean)) return '—';
  return `${(s.mean * scale).toFixed(digits)}${s.std !== null ? ` ± ${(s.std * scale).toFixed(digits)}` : ''}`;
};

/** "yes" / "no" / "—" for whether a difference from the baseline exceeds twice its standard error. */
function beyondSpread(v: VariantSummary, key: string): string {
  const d = v.vsBaseline[key];
  if (!d || v.variant === 'baseline') return '';
  const sign = d.diff >= 0 ? '+' : '';
  const verdict = d.exceedsSpread === null ? '' : d.exceedsSpread ? ' (beyond spread)' : ' (within spread)';
  return `${sign}${d.diff.toFixed(key === 'val_loss' ? 4 : 4)}${verdict}`;
}

function answerTable(p: PointSummary): string {
  const tasks = [...new Set(p.variants.flatMap((v) => Object.keys(v.downstream)))];
  const head: Cell[] = ['variant', 'steps to target', 'ratio', 'seconds to target', 'ratio', 'final val loss', 'vs baseline', 'val acc (%)', ...tasks.map((t) => taskHeading(p, t)), 'untied at (step)'];
  const rows = p.variants.map((v): Cell[] => [
    raw(`<span style="color:${VARIANT_COLOR[v.variant]}">■</span> <b>${escapeHtml(v.variant)}</b><br><small>${escapeHtml(VARIANT_ABOUT[v.variant])}</small>`),
    v.stepsToTarget ? fmt(v.stepsToTarget, 0) + (v.missed ? ` (${v.missed} seed(s) never)` : '') : v.missed ? 'never' : '—',
    fmt(v.stepsRatio, 2),
    v.secondsToTarget ? `${fmt(v.secondsToTarget, 0)} s` : '—',
    fmt(v.secondsRatio, 2),
    fmt(v.finalValLoss, 4),
    beyondSpread(v, 'val_loss'),
    fmt(v.finalValAcc, 2, 100),
    ...tasks.map((t) => fmt(v.downstream[t], 4) + majorityMark(p, t, v.downstream[t]) + (v.vsBaseline[t] && v.variant !== 'baseline' ? ` (${beyondSpread(v, t)})` : '')),
    v.untiedAt.map((u) => (u === null ? '—' : String(u))).join(', '),
  ]);
  return table(head, rows);
}

/** "+0.0120 [+0.0050, +0.0190]", with a verdict when the interval excludes zero. */
function pairedCell(d: PairedDiff | null | undefined, digits: number, scale = 1): string {
  if (!d) return '—';
  const f = (x: number) => `${x * scale >= 0 ? '+' : ''}${(x * scale).toFixed(digits)}`;
  if (d.low === null || d.high === null) return `${f(d.mean)} (1 seed: no interval)`;
  const v = pairedVerdict(d);
  return `${f(d.mean)} [${f(d.low)}, ${f(d.high)}]${v === '0' ? ' (includes 0)' : v === '+' ? ' (higher)' : ' (lower)'}`;
}

/**
 * The speed-up as a curve: for the baseline's loss at 25/50/75/100% of its
 * run, each variant's steps to it as a ratio to the baseline's, and the final
 * differences paired by seed with 95% intervals.
 */
function speedupBlocks(p: PointSummary, idp: string): Block[] {
  const others = p.variants.filter((v) => v.variant !== 'baseline');
  if (others.length === 0 || !p.variants.some((v) => v.variant === 'baseline')) return [];
  const fractions = others[0].levels.map((l) => l.fraction);
  const base = p.variants.find((v) => v.variant === 'baseline')!;
  const head: Cell[] = ['variant', ...fractions.map((f) => `to the baseline's loss at ${Math.round(100 * f)}% (steps ratio)`), 'seconds ratio at 100%', 'Δ final val loss, paired (95% CI)', 'Δ val acc, points, paired (95% CI)'];
  const rows = others.map((v): Cell[] => [
    raw(`<span style="color:${VARIANT_COLOR[v.variant]}">■</span> ${escapeHtml(v.variant)}`),
    ...v.levels.map((l) => (l.ratio ? fmt(l.ratio, 2) : l.missed ? 'never' : '—') + (l.ratio && l.missed ? ` (${l.missed} seed(s) never)` : '')),
    fmt(v.levels[v.levels.length - 1]?.secondsRatio, 2),
    pairedCell(v.paired.val_loss, 4),
    pairedCell(v.paired.val_acc, 2, 100),
  ]);
  const targets = `<p>Targets (the baseline's validation loss at each fraction of its run, mean over seeds): `
    + base.levels.map((l) => `${Math.round(100 * l.fraction)}%: ${fmt(l.target, 4)}`).join('; ') + '. '
    + 'Each ratio is per seed (variant against the baseline of the same seed), then averaged; ± is the spread over seeds. '
    + 'Differences are paired the same way; the interval is a t-interval over seeds, which with 2-3 seeds is wide: a difference is only established when it excludes 0.</p>';
  const chart: LineChart = {
    kind: 'line', id: `${idp}-speedup`, title: 'Steps to the baseline\'s loss at each point of its run, as a ratio to the baseline', xLabel: 'fraction of the baseline\'s run', yLabel: 'steps ratio (< 1: sooner)',
    xTicks: fractions, series: others.map((v) => ({ label: v.variant, color: VARIANT_COLOR[v.variant], points: true, x: fractions, y: v.levels.map((l) => l.ratio?.mean ?? null) })),
    refLines: [{ y: 1, label: 'baseline' }],
  };
  return [{ kind: 'html', html: targets + table(head, rows) }, chart];
}

/** The paper's Table 1, in its shape: the objective's accuracy and loss (MLM, or next token) and the downstream scores, one column per variant. */
function paperTable1(p: PointSummary, kind: ModelKind): string {
  const tasks = [...new Set(p.variants.flatMap((v) => Object.keys(v.downstream)))];
  const head: Cell[] = ['', ...p.variants.map((v) => v.variant)];
  const short = kind === 'gpt' ? 'Next-token' : 'MLM';
  const rows: Cell[][] = [
    [`${short} acc. (%)`, ...p.variants.map((v) => fmt(v.finalValAcc, 2, 100))],
    [`${short} loss`, ...p.variants.map((v) => fmt(v.finalValLoss, 4))],
    ...tasks.map((t): Cell[] => [taskHeading(p, t), ...p.variants.map((v) => fmt(v.downstream[t], 4) + majorityMark(p, t, v.downstream[t]))]),
  ];
  return table(head, rows);
}

function evalSeries(runs: RunRecord[], x: 'step' | 'seconds', field: 'valLoss' | 'valAcc'): LineSeries[] {
  return runs.map((r) => ({
    label: `${r.variant}${runs.some((o) => o.variant === r.variant && o.seed !== r.seed) ? ` seed ${r.seed}` : ''}`,
    color: VARIANT_COLOR[r.variant],
    ...(r.seed > 0 ? { dash: true } : {}),
    points: true,
    x: r.evals.map((e) => (x === 'step' ? e.step : e.seconds)),
    y: r.evals.map((e) => (field === 'valAcc' ? 100 * e.valAcc : e.valLoss)),
  }));
}

/** Untie/split events of every run, placed at their step or at the training second of that step. */
function markers(runs: RunRecord[], x: 'step' | 'seconds'): Marker[] {
  // One label for the same event of a variant in several seeds when they fall within 2% of the axis
  // of each other (SWE-F unties at one step in every seed; on the seconds axis each seed's second
  // differs a little): a line for each place, the label once, naming the seeds.
  const groups = new Map<string, { variant: Variant; what: string; places: { x: number; seed: number }[] }>();
  let span = 0;
  for (const r of runs) {
    for (const e of r.evals) {
      const at = x === 'step' ? e.step : e.seconds;
      if (Number.isFinite(at)) span = Math.max(span, at);
    }
    for (const e of r.events) {
      const at = x === 'seconds' ? secondsAt(r, e.step) : e.step;
      if (at === null) continue;
      const what = `${e.type}${e.reason ? ` (${e.reason})` : ''}`;
      const key = `${r.variant}|${what}`;
      const g = groups.get(key) ?? { variant: r.variant, what, places: [] };
      g.places.push({ x: at, seed: r.seed });
      groups.set(key, g);
    }
  }
  const seeded = new Set(runs.map((r) => r.seed)).size > 1;
  const near = 0.02 * span;
  const out: Marker[] = [];
  for (const { variant, what, places } of groups.values()) {
    const color = VARIANT_COLOR[variant];
    places.sort((a, b) => a.x - b.x);
    for (let i = 0; i < places.length; ) {
      let j = i;
      while (j + 1 < places.length && places[j + 1].x - places[i].x <= near) j++;
      const cluster = places.slice(i, j + 1);
      const xs = [...new Set(cluster.map((e) => e.x))];
      out.push({ x: xs[0], color, label: `${variant}${seeded ? ` s${seedList(cluster.map((e) => e.seed))}` : ''}: ${what}` });
      for (const at of xs.slice(1)) out.push({ x: at, color, label: '' });
      i = j + 1;
    }
  }
  return out;
}

/** Seeds as a short list: 0,1,2,3,4 -> "0-4", 0,1,3 -> "0,1,3" (runs of three or more become a range). */
export function seedList(seeds: number[]): string {
  const s = [...new Set(seeds)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    if (j - i >= 2) parts.push(`${s[i]}-${s[j]}`);
    else for (let k = i; k <= j; k++) parts.push(String(s[k]));
    i = j + 1;
  }
  return parts.join(',');
}

/** Training seconds at a step, interpolated between evaluations. */
function secondsAt(r: RunRecord, step: number): number | null {
  const pts = [{ step: 0, seconds: 0 }, ...r.evals];
  for (let i = 1; i < pts.length; i++) {
    if (pts[i].step >= step) {
      const a = pts[i - 1], b = pts[i];
      return a.seconds + ((step - a.step) / Math.max(1, b.step - a.step)) * (b.seconds - a.seconds);
    }
  }
  return null;
}

function curveCharts(p: PointSummary, runs: RunRecord[], idp: string): LineChart[] {
  const uniLoss = p.unigramValLoss, uniAcc = p.unigramValAcc;
  const mk = (x: 'step' | 'seconds', field: 'valLoss' | 'valAcc'): LineChart => ({
    kind: 'line', id: `${idp}-${field}-${x}`,
    title: `Validation ${field === 'valLoss' ? 'loss' : 'accuracy'} against ${x === 'step' ? 'steps' : 'training seconds'}`,
    xLabel: x === 'step' ? 'step' : 'training seconds', yLabel: field === 'valLoss' ? 'loss (nats)' : 'accuracy (%)',
    series: evalSeries(runs, x, field), markers: markers(runs, x),
    refLines: [
      ...(field === 'valLoss' && uniLoss !== null ? [{ y: uniLoss, label: `unigram ${uniLoss.toFixed(3)}` }] : []),
      ...(field === 'valAcc' && uniAcc !== null ? [{ y: 100 * uniAcc, label: `unigram ${(100 * uniAcc).toFixed(1)}%` }] : []),
      ...(field === 'valLoss' && p.target ? [{ y: p.target.mean, label: `target ${p.target.mean.toFixed(3)}`, color: VARIANT_COLOR.baseline }] : []),
    ],
  });
  return [mk('step', 'valLoss'), mk('seconds', 'valLoss'), mk('step', 'valAcc'), mk('seconds', 'valAcc')];
}

/**
 * Each run's validation loss minus its own seed's baseline's at the same
 * step: the curves of a comparison lie within a few hundredths of a nat of
 * each other, so the answer is read from the differences, seed by seed.
 */
function pairedCurveChart(runs: RunRecord[], idp: string): LineChart | null {
  const series: LineSeries[] = [];
  for (const r of runs) {
    if (r.variant === 'baseline') continue;
    const base = runs.find((b) => b.variant === 'baseline' && b.seed === r.seed);
    if (!base) continue;
    const at = new Map(base.evals.map((e) => [e.step, e.valLoss]));
    const pts = r.evals.filter((e) => at.has(e.step));
    if (pts.length === 0) continue;
    series.push({
      label: `${r.variant} seed ${r.seed}`, color: VARIANT_COLOR[r.variant], ...(r.seed > 0 ? { dash: true } : {}), points: true,
      x: pts.map((e) => e.step), y: pts.map((e) => e.valLoss - at.get(e.step)!),
    });
  }
  if (series.length === 0) return null;
  return {
    kind: 'line', id: `${idp}-paired`, title: 'Validation loss minus the baseline\'s at the same seed and step (below 0: ahead of the baseline)',
    xLabel: 'step', yLabel: 'Δ loss (nats)', series, markers: markers(runs.filter((r) => r.variant !== 'baseline'), 'step'),
    refLines: [{ y: 0, label: 'baseline', color: VARIANT_COLOR.baseline }], width: 1000, height: 320,
  };
}

/** Per shared run: the cosine heatmap, and when each untie statistic would have fired (replayed from its checks). */
function agreementBlocks(p: PointSummary, runs: RunRecord[], idp: string): Block[] {
  const blocks: Block[] = [];
  const shared = runs.filter((r) => r.checks.length > 0);
  if (shared.length === 0) return [{ kind: 'html', html: '<p class="note">No run of this comparison logged adjacent-layer checks.</p>' }];
  const rows: Cell[][] = [];
  const statSeries: LineSeries[] = [];
  for (const r of shared) {
    const v = p.variants.find((x) => x.variant === r.variant);
    const seedIndex = v ? runs.filter((o) => o.variant === r.variant).sort((a, b) => a.seed - b.seed).findIndex((o) => o.seed === r.seed) : -1;
    const replays = v?.statistics[seedIndex] ?? [];
    const cos = r.checks.map((c) => c.cosines.reduce((a, b) => a + b, 0) / Math.max(1, c.cosines.length));
    rows.push([
      `${r.variant} seed ${r.seed}`,
      r.checks.length,
      `${Math.min(...r.checks.flatMap((c) => c.cosines)).toFixed(3)} – ${Math.max(...r.checks.flatMap((c) => c.cosines)).toFixed(3)}`,
      `${cos[0].toFixed(3)} → ${cos[cos.length - 1].toFixed(3)}`,
      r.untiedAt === null ? '—' : `${r.untiedAt} (${r.events.find((e) => e.type === 'untie' || e.type === 'split')?.reason ?? '?'})`,
      ...replays.map((s) => (s.untieStep === null ? 'never' : String(s.untieStep))),
    ]);
    replays.forEach((s, i) => statSeries.push({
      label: `${r.variant} s${r.seed}: ${s.statistic}`, color: PALETTE[i % PALETTE.length], ...(r.variant !== 'albert' ? { dash: true } : {}),
      x: s.meanValues.map(([x]) => x), y: s.meanValues.map(([, y]) => y),
    }));
  }
  const statNames = p.variants.flatMap((v) => v.statistics.flat()).map((s) => s.statistic).filter((s, i, a) => a.indexOf(s) === i);
  const rho = shared.find((r) => r.threshold !== null)?.threshold ?? 0.5;
  blocks.push({
    kind: 'html',
    html: `<p>Each check measures the cosine between adjacent tied layers' gradients. SWE-A unties when more than half of the pairs are below ρ = ${formatNumber(rho)} at 3 consecutive checks. `
      + 'The last columns replay the logged checks through the same criterion with each statistic of <code>--untie-statistic</code> (no deadline): the step at which each would have untied. '
      + 'The always-tied run (albert) is monitored for its whole length, so it shows where the statistics go when nothing unties.</p>'
      + table(['run', 'checks', 'pooled cosine range', 'mean cosine first → last', 'untied at (reason)', ...statNames.map((s) => `would untie: ${s}`)], rows),
  });
  blocks.push({
    kind: 'line', id: `${idp}-statistics`, title: 'Untie statistics against step (mean over adjacent pairs)', xLabel: 'step', yLabel: 'value compared with ρ',
    series: statSeries, refLines: [{ y: rho, label: `ρ = ${formatNumber(rho)}` }],
  });
  const heatmaps: Block[] = [];
  for (const r of shared) {
    if (!fs.existsSync(path.join(r.runDir, 'metrics.jsonl'))) continue;
    const hm = cosineHeatmap(readRun(r.runDir, 'compare'), `${idp}-heatmap-${r.variant}-${r.seed}`);
    heatmaps.push({ ...hm, title: `${r.variant} seed ${r.seed}: ${hm.title.toLowerCase()}` });
  }
  if (heatmaps.length) blocks.push({ kind: 'grid', blocks: heatmaps });
  return blocks;
}

/** The sweep as the paper's Tables 3-4 (rows: the swept value) and, for depth, the ratios against it. */
function sweepBlocks(res: CompareResults): Block[] {
  const sweep = res.options.sweep;
  if (!sweep) return [];
  const variants = res.options.variants;
  const head: Cell[] = [sweep.key, ...variants.flatMap((v) => [`${v} steps ratio`, `${v} final loss`, `${v} acc (%)`])];
  const rows = res.summary.map((p): Cell[] => [
    p.point.replace(/^[^=]*=/, ''),
    ...variants.flatMap((v) => {
      const s = p.variants.find((x) => x.variant === v);
      return [fmt(s?.stepsRatio, 2), fmt(s?.finalValLoss, 4), fmt(s?.finalValAcc, 2, 100)];
    }),
  ]);
  const blocks: Block[] = [{ kind: 'html', html: table(head, rows) }];
  const numeric = res.summary.map((p) => Number(p.point.replace(/^[^=]*=/, '')));
  if (numeric.every(Number.isFinite)) {
    const series: LineSeries[] = variants.filter((v) => v !== 'baseline').map((v) => ({
      label: v, color: VARIANT_COLOR[v], points: true, x: numeric,
      y: res.summary.map((p) => p.variants.find((x) => x.variant === v)?.stepsRatio?.mean ?? null),
    }));
    blocks.push({
      kind: 'line', id: 'sweep-ratio', title: `Steps to the baseline's final loss, as a ratio to the baseline, against ${sweep.key}`,
      xLabel: sweep.key, yLabel: 'ratio (< 1: faster)', xTicks: numeric, series, refLines: [{ y: 1, label: 'baseline' }],
    });
  }
  return blocks;
}

/** How busy the machine was while the runs trained: seconds made on a loaded machine are slower and noisier. */
function loadNote(res: CompareResults): string {
  const loads = res.runs.flatMap((r) => (r.load ? [r.load.start, r.load.end] : []));
  if (loads.length === 0) return '';
  const lo = Math.min(...loads), hi = Math.max(...loads);
  const busy = hi > res.threads + 0.5;
  return `<p>Load average (1 min) at the runs' starts and ends: ${lo.toFixed(1)}–${hi.toFixed(1)} on ${escapeHtml(res.machine)}`
    + (busy ? '. <b>Other work shared the machine</b>: seconds are slower than on a quiet machine and noisier between runs; steps are unaffected.</p>' : '.</p>');
}

export function compareView(res: CompareResults, out: string): View {
  const o = res.options;
  const base = res.base;
  const length = base.train.budget > 0 ? `a budget of ${formatSeconds(base.train.budget)} of training` : `${base.train.steps} steps`;
  const kind = base.model.kind ?? 'bert'; // results.json written before decoders has no kind: encoders
  const seeds = [...new Set(res.runs.map((r) => r.seed))].sort((a, b) => a - b);
  const how = res.timing
    ? `<b>Runs went side by side, one thread each, on ${escapeHtml(res.machine)}</b>; their logged seconds do not compare, so every seconds figure here is steps times the cost per step of each phase (tied or untied, at its depth) measured alone: ${escapeHtml(res.timing.how)} `
      + `(${escapeHtml(res.timing.machine)}). `
    : `<b>Runs went one after another, each on all ${res.threads} thread(s) of ${escapeHtml(res.machine)}</b>, so their training seconds compare `
      + '(evaluation and checkpoint time excluded'
      + (res.warmupSteps ? `; before the first run of each model shape the process trained ${res.warmupSteps} untimed steps of it, so that no run's seconds include the process's start` : '')
      + '). ';
  const intro = `<p>Does sharing the layers' weights, then untying them, reach the baseline's quality sooner? <b>Objective: ${escapeHtml(objectiveOf(kind))}</b>. `
    + 'Every variant trained on the same data, '
    + `tokenizer, model shape (${base.model.layers} layers, hidden ${base.model.hidden}, ${kind === 'gpt' ? 'GPT-2\'s Pre-LN' : `${base.model.norm}-LN`}), ${length} per run (baseline-half: half) `
    + `and ${seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds.join(', ')}`}. ` + how
    + 'The target of each seed is the baseline\'s final validation loss at that seed; '
    + 'steps and seconds to reach it are interpolated between evaluations; ratios below 1 are faster than the baseline. '
    + 'A difference is "beyond spread" when it exceeds twice its standard error over seeds (with one seed there is no spread to judge by).</p>'
    + loadNote(res)
    + `<p>Every number here is in <code>results.json</code>, beside this page in the folder <code>${escapeHtml(path.basename(path.resolve(out)))}</code>.</p>`;
  const blocks: Block[] = [{ kind: 'html', html: intro }];
  res.summary.forEach((p, i) => {
    const idp = `p${i}`;
    const speedup = speedupBlocks(p, idp);
    const runs = res.runs.filter((r) => r.point === p.point);
    const title = p.point ? `${p.point}` : 'The answer';
    const warning = targetWarning(p);
    const paired = pairedCurveChart(runs, idp);
    const targetNote = `<p>Target (baseline final validation loss): <b>${fmt(p.target, 4)}</b>; unigram predictor: ${p.unigramValLoss?.toFixed(4) ?? '—'} / ${p.unigramValAcc !== null ? (100 * p.unigramValAcc).toFixed(2) + '%' : '—'}.</p>`
      + (warning ? `<p class="note"><b>${escapeHtml(warning)}</b></p>` : '');
    blocks.push({
      kind: 'section', title, blocks: [
        { kind: 'html', html: targetNote + answerTable(p) },
        ...(paired ? [paired] : []),
        { kind: 'grid', blocks: curveCharts(p, runs, idp) },
        ...(speedup.length ? [{ kind: 'section', level: 3, title: 'The speed-up as a curve, and paired differences', blocks: speedup } satisfies Block] : []),
        { kind: 'section', level: 3, title: 'In the shape of the paper\'s Table 1', blocks: [{ kind: 'html', html: paperTable1(p, kind) }] },
        { kind: 'section', level: 3, title: 'Adjacent layers\' gradient agreement', blocks: agreementBlocks(p, runs, idp) },
      ],
    });
  });
  const sweep = sweepBlocks(res);
  if (sweep.length) blocks.push({ kind: 'section', title: `Sweep over ${o.sweep!.key} (the paper's Tables 3-4 in shape)`, blocks: sweep });
  blocks.push({ kind: 'section', title: 'Settings', collapsed: true, blocks: [{ kind: 'html', html: `<pre>${escapeHtml(JSON.stringify({ options: o, base: configForPage(base as unknown as Record<string, unknown>) }, null, 2))}</pre>` }] });
  return { title: 'untie compare', blocks };
}

/** Writes OUT/report.html from OUT/results.json's contents; returns the path. The page names the folder as `shownAs`. */
export function writeCompareReport(res: CompareResults, out: string, shownAs = out): string {
  const file = path.join(out, 'report.html');
  writeFileAtomic(file, renderPage(compareView(res, shownAs)));
  return file;
}
