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
import { runConfigOf, type RunConfig } from '../train/config.js';
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
 * A run's phases from its records: tied until its untie (or last split), then
 * untied; a growth step starts a phase at the new depth. Untied runs are one
 * phase.
 */
export function phasesOf(cfg: RunConfig, records: MetricRecord[]): Phase[] {
  const share = cfg.sharing.share || `1x${cfg.model.layers}`;
  const tiedFromStart = share !== `${cfg.model.layers}x1`;
  const grows = records.filter((r) => r.type === 'grow');
  let depth = grows.length > 0 ? Number(grows[0].from) : cfg.model.layers;
  let kind = tiedFromStart ? 'tied' : 'untied';
  const phases: Phase[] = [{ fromStep: 0, kind, depth }];
  const untieSteps = records.filter((r) => r.type === 'untie' || r.type === 'split').map((r) => r.step);
  const lastUntie = untieSteps.length > 0 ? Math.max(...untieSteps) : null;
  const changes = [
    ...grows.map((r) => ({ step: r.step, depth: Number(r.to), kind: null as string | null })),
    ...(lastUntie !== null ? [{ step: lastUntie, depth: null as number | null, kind: 'untied' }] : []),
  ].sort((a, b) => a.step - b.step);
  for (const c of changes) {
    depth = c.depth ?? depth;
    kind = c.kind ?? kind;
    phases.push({ fromStep: c.step, kind, depth });
  }
  return phases;
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
    runs,
    summary: summarize(runs, { variants: opts.variants }),
    timing: opts.timing ?? null,
    missing,
  };
}
