/**
 * A study's results from its committed records alone: the runs of a long
 * comparison (many seeds, depths and settings, run side by side over several
 * sessions and machines) are kept as `RECORDS/runs/NAME/{config.json,
 * metrics.jsonl}`; this turns them into the same `CompareResults` that
 * `untie compare` writes, so the compare report and its analysis (levels,
 * paired differences) serve both.
 *
 * Seconds: runs that went side by side on a shared machine logged seconds
 * that do not compare. When the study measured each phase's cost per step
 * alone (`StudyTiming`), a run's seconds are its phases' steps times those
 * costs (`modelledSeconds`); otherwise the logged seconds stand, and the
 * report says which.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { readMetrics, type MetricRecord } from '../train/metrics.js';
import { growthOf, runConfigOf, type RunConfig } from '../train/config.js';
import { parseShare, planGroups } from '../sharing/plan.js';
import { runRecordFrom, summarize, type CompareResults, type DownstreamScores, type RunRecord, type Variant } from './compare.js';
import { costKey, modelledSeconds, type Phase } from './speedup.js';

/** One run of a study: which comparison (point) it belongs to, as which variant and seed. */
export interface StudyCell {
  name: string;
  point: string;
  variant: Variant;
  seed: number;
}

/** Each phase's cost per step, measured alone on one machine: shape -> `kind@depth` -> seconds per step. */
export interface StudyTiming {
  machine: string;
  /** How the costs were measured (threads, steps timed, load), for the report. */
  how: string;
  costs: Record<string, Record<string, number>>;
}

/** What sets a step's cost apart from its depth and phase: the tensor shapes. */
export function shapeOf(cfg: RunConfig): string {
  return `h${cfg.model.hidden}-i${cfg.model.intermediate}-b${cfg.train.batchSize}x${cfg.data.seqLen}-v${cfg.data.vocabSize}`;
}

/**
 * The cost kind of a tying plan: "untied" (every layer its own group),
 * "tied" (one group), else "tied-AxB" (a unit of A layers repeated B times,
 * as a --grow-tied growth makes it: group j holds j, j + A, ...).
 */
export function phaseKind(groups: number[][]): string {
  if (groups.every((g) => g.length === 1)) return 'untied';
  if (groups.length === 1) return 'tied';
  const size = groups[0].length;
  // Splits (SWE-M) leave uneven groups: priced as tied, as before their last split.
  return groups.every((g) => g.length === size) ? `tied-${groups.length}x${size}` : 'tied';
}

/**
 * A run's phases from its records: tied until its untie (or last split), then
 * untied; a growth step starts a phase at the new depth, tied as its copies
 * are (--grow-tied: "tied-AxB") until their untie. Untied runs are one phase.
 * Events at the same step (an untie, then a growth) leave the last plan.
 */
export function phasesOf(cfg: RunConfig, records: MetricRecord[]): Phase[] {
  const share = cfg.sharing.share || `1x${cfg.model.layers}`;
  const grows = records.filter((r) => r.type === 'grow');
  const tiedFromStart = !cfg.sharing.grow && share !== `${cfg.model.layers}x1`;
  let depth = grows.length > 0 ? Number(grows[0].from) : cfg.model.layers;
  let kind = tiedFromStart ? 'tied' : 'untied';
  const phases: Phase[] = [{ fromStep: 0, kind, depth }];
  const splits = records.filter((r) => r.type === 'split').map((r) => r.step);
  const lastSplit = splits.length > 0 ? Math.max(...splits) : null;
  // Record order is event order within a step (untie before growth); the sort is stable.
  const changes = records.filter((r) => r.type === 'grow' || r.type === 'untie' || (r.type === 'split' && r.step === lastSplit)).sort((a, b) => a.step - b.step);
  for (const r of changes) {
    if (r.type === 'grow') {
      depth = Number(r.to);
      kind = Array.isArray(r.groups) ? phaseKind(r.groups as number[][]) : 'untied';
    } else kind = 'untied';
    const last = phases[phases.length - 1];
    if (last.fromStep === r.step) phases[phases.length - 1] = { fromStep: r.step, kind, depth };
    else phases.push({ fromStep: r.step, kind, depth });
  }
  return phases;
}

/**
 * Every phase a run of `cfg` can pass through, with the --layers and --share
 * that time it alone (an `untie train` of that plan, never untied): the
 * untied and all-tied stack, or each depth of a --grow schedule untied and,
 * with --grow-tied, each growth's copies tied to their source (also to the
 * source of an earlier growth, when the run grows again before it unties).
 */
export function phasePlans(cfg: RunConfig): { kind: string; depth: number; layers: number; share: string }[] {
  const L = cfg.model.layers;
  const growth = growthOf(cfg);
  const untied = (d: number) => ({ kind: 'untied', depth: d, layers: d, share: `${d}x1` });
  if (!growth) {
    const tied = (cfg.sharing.share || `1x${L}`) !== `${L}x1`;
    const all = { kind: 'tied', depth: L, layers: L, share: `1x${L}` };
    return tied ? (cfg.sharing.untie === 'never' ? [all] : [all, untied(L)]) : [untied(L)];
  }
  const depths = growth.stages.map((s) => s.depth);
  const plans = depths.map(untied);
  if (growth.tied) {
    for (let i = 1; i < depths.length; i++) {
      for (let j = i - 1; j >= 0; j--) {
        const share = `${depths[j]}x${depths[i] / depths[j]}`;
        plans.push({ kind: phaseKind(planGroups(parseShare(share, depths[i]))), depth: depths[i], layers: depths[i], share });
      }
    }
  }
  return plans;
}

/** True when a run's records hold its final evaluation. */
export function recordFinished(dir: string): boolean {
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) return false;
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { train?: { steps?: number } };
  return readMetrics(path.join(dir, 'metrics.jsonl')).some((r) => r.type === 'eval' && r.step === cfg.train?.steps);
}

/**
 * The study's CompareResults from `recordsDir/runs/<cell>/`: finished runs
 * only (an unfinished one is left out and counted in `missing`).
 */
export function studyResults(opts: {
  recordsDir: string;
  cells: StudyCell[];
  variants: Variant[];
  createdBy: string;
  machine: string;
  timing?: StudyTiming | null;
}): CompareResults & { missing: string[] } {
  const runs: RunRecord[] = [];
  const missing: string[] = [];
  let base: RunConfig | null = null;
  for (const cell of opts.cells) {
    const dir = path.join(opts.recordsDir, 'runs', cell.name);
    if (!recordFinished(dir)) {
      missing.push(cell.name);
      continue;
    }
    const cfg = runConfigOf(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), dir);
    base ??= cfg;
    const records = readMetrics(path.join(dir, 'metrics.jsonl'));
    const rec = runRecordFrom(records, { runDir: dir, point: cell.point, variant: cell.variant, seed: cell.seed, steps: cfg.train.steps, threads: cfg.train.threads });
    const downstreamFile = path.join(dir, 'downstream.json');
    if (fs.existsSync(downstreamFile)) rec.downstream = JSON.parse(fs.readFileSync(downstreamFile, 'utf8')) as DownstreamScores;
    const costs = opts.timing?.costs[shapeOf(cfg)];
    if (opts.timing) {
      if (!costs) throw new UntieError(`the study's timing has no costs for shape ${shapeOf(cfg)} (run ${cell.name}): time it again (--time)`);
      const phases = phasesOf(cfg, records);
      const seconds = modelledSeconds(phases, costs, rec.evals.map((e) => e.step));
      const unknown = phases.find((p) => costs[costKey(p)] === undefined);
      if (unknown) throw new UntieError(`the study's timing has no cost for ${costKey(unknown)} at shape ${shapeOf(cfg)} (run ${cell.name}): time it again (--time)`);
      rec.evals = rec.evals.map((e, i) => ({ ...e, seconds: seconds[i]! }));
      rec.seconds = modelledSeconds(phases, costs, [cfg.train.steps])[0]!;
    }
    runs.push(rec);
  }
  if (!base) throw new UntieError(`${opts.recordsDir} holds no finished run of this study yet`);
  // A point where only the baseline has finished compares nothing yet (its baselines may stand in other points).
  const compared = new Set(runs.filter((r) => r.variant !== 'baseline').map((r) => r.point));
  const shown = compared.size > 0 ? runs.filter((r) => compared.has(r.point)) : runs;
  return {
    version: 1,
    createdBy: opts.createdBy,
    machine: opts.machine,
    threads: base.train.threads,
    options: {
      variants: opts.variants, seeds: Math.max(...runs.map((r) => r.seed)) + 1, sweFFraction: 0.1,
      evalsPerRun: Math.round(base.train.steps / Math.max(1, base.train.evalEvery)), sweep: null,
    },
    base,
    runs: shown,
    summary: summarize(shown, { variants: opts.variants }),
    timing: opts.timing ?? null,
    missing,
  };
}
