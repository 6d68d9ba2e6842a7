/**
 * The depth study (issue 21): does sharing then untying reach a task that
 * needs depth sooner? Each run is one `untie train` of scripts/study.ts's
 * plan `depth` (--corpus synthetic:hops), and this module reads their
 * records into the answer: for each depth, the hardest hop count the untied
 * baseline learns, the steps (and training seconds) each variant takes to
 * reach TARGET accuracy on it, seed by seed, and the difference from the
 * baseline with its standard error; plus the tied stack's gradient agreement
 * (the adjacent-layer cosines the albert and swe-a runs log).
 */
import type { Block, LineSeries } from '../src/report/blocks.js';
import { escapeHtml } from '../src/report/html.js';

/** The task and run length, chosen by the pilot (docs/depth.md): the untied baseline at depth 8 learns its hardest hop count well within the run. */
export const DEPTH_CORPUS = 'synthetic:hops:symbols=6,hops=3';
export const DEPTH_SEQ_LEN = 32;
export const DEPTH_LR = '2e-3';
export const DEPTH_STEPS = 2000;

/** The accuracy a hop count must reach to count as learned. */
export const TARGET = 0.9;
export const DEPTH_VARIANTS = ['baseline', 'albert', 'swe-f', 'swe-a'] as const;
export type DepthVariant = (typeof DEPTH_VARIANTS)[number];

/** `untie train` flags of each variant at `layers` layers (as `untie compare` sets them). */
export function variantFlags(variant: DepthVariant, layers: number): string[] {
  const tied = ['--share', `1x${layers}`];
  switch (variant) {
    case 'baseline':
      return ['--share', `${layers}x1`, '--untie', 'never'];
    case 'albert':
      // Tied to the end. The adaptive criterion with rho just above -1 and no deadline never unties,
      // but logs the adjacent-layer cosines all run long: the tied stack's agreement, for free.
      return [...tied, '--untie', 'adaptive', '--untie-threshold=-0.999', '--untie-by', '0'];
    case 'swe-f':
      return [...tied, '--untie', 'fraction:0.1'];
    case 'swe-a':
      return [...tied, '--untie', 'adaptive'];
  }
}

/** A run's name in the plan: L8-swe-a-seed2. */
export function runName(layers: number, variant: DepthVariant, seed: number): string {
  return `L${layers}-${variant}-seed${seed}`;
}

export function parseRunName(name: string): { layers: number; variant: DepthVariant; seed: number } | null {
  const m = /^L(\d+)-(baseline|albert|swe-f|swe-a)-seed(\d+)$/.exec(name);
  return m ? { layers: Number(m[1]), variant: m[2] as DepthVariant, seed: Number(m[3]) } : null;
}

export interface DepthEval {
  step: number;
  elapsed?: number;
  val_acc_by_difficulty?: Record<string, number>;
}

export interface DepthRun {
  variant: string;
  evals: DepthEval[];
  untiedAt: number | null;
  /** Adjacent-layer cosine checks: step, mean and min over the pairs. */
  checks?: { step: number; mean: number; min: number }[];
}

interface Stat {
  mean: number;
  /** Sample standard deviation (null with one value). */
  std: number | null;
  n: number;
}

function stat(xs: number[]): Stat | null {
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : null;
  return { mean, std, n: xs.length };
}

/** The first evaluation at which hop count `level` reaches TARGET: its step and training seconds. */
export function reached(run: DepthRun, level: number): { step: number; seconds: number | null } | null {
  for (const e of run.evals) {
    const acc = e.val_acc_by_difficulty?.[String(level)];
    if (acc !== undefined && acc >= TARGET) return { step: e.step, seconds: e.elapsed ?? null };
  }
  return null;
}

function finalAcc(run: DepthRun, level: number): number | null {
  const last = run.evals[run.evals.length - 1];
  return last?.val_acc_by_difficulty?.[String(level)] ?? null;
}

export interface VariantRow {
  variant: DepthVariant;
  seeds: number[];
  /** Per seed: steps to the target (null: not reached), the seconds, the final accuracy on the target level. */
  steps: (number | null)[];
  seconds: (number | null)[];
  finalAcc: (number | null)[];
  untiedAt: (number | null)[];
  stepsStat: Stat | null;
  secondsStat: Stat | null;
  /** Mean steps minus the baseline's, its standard error, and whether |diff| > 2 SE (null when either has < 2 seeds reached). */
  vsBaseline: { diff: number; se: number; beyond2se: boolean } | null;
}

export interface DepthPoint {
  layers: number;
  /** The hardest hop count every baseline seed learned (>= TARGET at its last evaluation); null when none. */
  level: number | null;
  rows: VariantRow[];
}

/** The study's answer from its runs (any subset: a partial study summarises what finished). */
export function summarizeDepth(runs: DepthRun[]): DepthPoint[] {
  const byLayers = new Map<number, { run: DepthRun; variant: DepthVariant; seed: number }[]>();
  for (const run of runs) {
    const id = parseRunName(run.variant);
    if (!id || run.evals.length === 0) continue;
    if (!byLayers.has(id.layers)) byLayers.set(id.layers, []);
    byLayers.get(id.layers)!.push({ run, variant: id.variant, seed: id.seed });
  }
  const points: DepthPoint[] = [];
  for (const layers of [...byLayers.keys()].sort((a, b) => a - b)) {
    const all = byLayers.get(layers)!;
    const baselines = all.filter((r) => r.variant === 'baseline');
    const levels = Object.keys(baselines[0]?.run.evals[0]?.val_acc_by_difficulty ?? {}).map(Number).sort((a, b) => b - a);
    const level = baselines.length === 0 ? null : levels.find((k) => baselines.every((b) => (finalAcc(b.run, k) ?? 0) >= TARGET)) ?? null;
    const rows: VariantRow[] = [];
    for (const variant of DEPTH_VARIANTS) {
      const mine = all.filter((r) => r.variant === variant).sort((a, b) => a.seed - b.seed);
      if (mine.length === 0) continue;
      const hits = mine.map((r) => (level === null ? null : reached(r.run, level)));
      const steps = hits.map((h) => h?.step ?? null), seconds = hits.map((h) => h?.seconds ?? null);
      rows.push({
        variant, seeds: mine.map((r) => r.seed), steps, seconds,
        finalAcc: mine.map((r) => (level === null ? null : finalAcc(r.run, level))), untiedAt: mine.map((r) => r.run.untiedAt),
        stepsStat: stat(steps.filter((s): s is number => s !== null)), secondsStat: stat(seconds.filter((s): s is number => s !== null)), vsBaseline: null,
      });
    }
    const base = rows.find((r) => r.variant === 'baseline')?.stepsStat;
    for (const row of rows) {
      const s = row.stepsStat;
      if (row.variant === 'baseline' || !base || !s || base.std === null || s.std === null) continue;
      const se = Math.sqrt(base.std ** 2 / base.n + s.std ** 2 / s.n);
      row.vsBaseline = { diff: s.mean - base.mean, se, beyond2se: Math.abs(s.mean - base.mean) > 2 * se };
    }
    points.push({ layers, level, rows });
  }
  return points;
}

const fmt = (s: Stat | null, digits = 0) => (s === null ? '—' : `${s.mean.toFixed(digits)}${s.std !== null ? ` ± ${s.std.toFixed(digits)}` : ''}`);

/** The summary as text lines (the study's printout). */
export function depthTable(points: DepthPoint[]): string {
  const lines: string[] = [];
  for (const p of points) {
    lines.push(`depth ${p.layers}: target ${p.level === null ? '(no hop count learned by every baseline seed)' : `${100 * TARGET}% on ${p.level} hops`}`);
    for (const r of p.rows) {
      const per = r.steps.map((s, i) => `seed ${r.seeds[i]}: ${s ?? `never (${r.finalAcc[i] === null ? '—' : `${(100 * r.finalAcc[i]!).toFixed(1)}%`})`}`).join(', ');
      const vs = r.vsBaseline ? `  vs baseline ${r.vsBaseline.diff >= 0 ? '+' : ''}${r.vsBaseline.diff.toFixed(0)} (SE ${r.vsBaseline.se.toFixed(0)}${r.vsBaseline.beyond2se ? ', beyond 2 SE' : ', within 2 SE'})` : '';
      lines.push(`  ${r.variant.padEnd(8)} steps ${fmt(r.stepsStat).padEnd(12)} seconds ${fmt(r.secondsStat).padEnd(10)} ${per}${vs}`);
    }
  }
  return lines.join('\n');
}

/** The report's blocks: per depth, the target hop count's accuracy against steps, the table, the tied stacks' cosines. */
export function depthBlocks(points: DepthPoint[], runs: DepthRun[]): Block[] {
  const blocks: Block[] = [];
  const color: Record<DepthVariant, string> = { baseline: '#000000', albert: '#0072B2', 'swe-f': '#009E73', 'swe-a': '#D55E00' };
  for (const p of points) {
    if (p.level === null) continue;
    const series: LineSeries[] = [];
    for (const run of runs) {
      const id = parseRunName(run.variant);
      if (!id || id.layers !== p.layers) continue;
      const pts = run.evals.filter((e) => e.val_acc_by_difficulty?.[String(p.level)] !== undefined);
      series.push({ label: run.variant, color: color[id.variant], x: pts.map((e) => e.step), y: pts.map((e) => 100 * e.val_acc_by_difficulty![String(p.level)]) });
    }
    blocks.push({
      kind: 'line', id: `depth-${p.layers}`, title: `${p.layers} layers: validation accuracy on ${p.level} hops`, xLabel: 'step', yLabel: 'accuracy (%)',
      series, refLines: [{ y: 100 * TARGET, label: `target ${100 * TARGET}%` }],
    });
    const cos: LineSeries[] = [];
    for (const run of runs) {
      const id = parseRunName(run.variant);
      if (!id || id.layers !== p.layers || !run.checks || run.checks.length === 0) continue;
      cos.push({ label: `${run.variant} (mean)`, color: color[id.variant], x: run.checks.map((c) => c.step), y: run.checks.map((c) => c.mean) });
    }
    if (cos.length > 0) {
      blocks.push({ kind: 'line', id: `cosine-${p.layers}`, title: `${p.layers} layers: mean adjacent-layer gradient cosine while tied`, xLabel: 'step', yLabel: 'cosine', series: cos, refLines: [{ y: 0.5, label: 'ρ = 0.5 (swe-a)' }] });
    }
  }
  const rows = points.flatMap((p) => p.rows.map((r) => `<tr><td>${p.layers}</td><td>${p.level ?? '—'}</td><td>${r.variant}</td><td>${fmt(r.stepsStat)}</td><td>${r.steps.filter((s) => s !== null).length} / ${r.steps.length}</td>`
    + `<td>${fmt(r.secondsStat)}</td><td>${r.vsBaseline ? `${r.vsBaseline.diff >= 0 ? '+' : ''}${r.vsBaseline.diff.toFixed(0)} ± ${r.vsBaseline.se.toFixed(0)}${r.vsBaseline.beyond2se ? ' (beyond 2 SE)' : ''}` : '—'}</td>`
    + `<td>${escapeHtml(r.untiedAt.map((u) => u ?? '—').join(', '))}</td></tr>`));
  blocks.push({
    kind: 'html',
    html: `<table><tr><th>layers</th><th>target hops</th><th>variant</th><th>steps to ${100 * TARGET}% (mean ± sd)</th><th>seeds reaching it</th><th>training s (mean ± sd)</th><th>steps vs baseline (± SE)</th><th>untied at</th></tr>${rows.join('')}</table>`,
  });
  return blocks;
}
