/**
 * The headline experiment behind `untie compare`: does sharing then untying
 * pay, in seconds, at equal quality?
 *
 * Every variant is an ordinary `untie train` run (a run folder with its
 * metrics.jsonl and checkpoints) on the same data, the same tokenizer
 * (trained once and copied into every run folder), the same model shape,
 * budget and seeds; runs go one after another on all threads, so their
 * training seconds compare. A finished run is kept and an unfinished one
 * resumes from its checkpoint, so an interrupted comparison continues where
 * it stopped. The analysis (time to the baseline's final loss, quality at
 * equal budget, seed spread) is plain functions of the runs' records.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { TOKENIZER_FILES } from '../data/tokenizer.js';
import { readMetrics, type MetricRecord } from '../train/metrics.js';
import { listCheckpoints, readTrainerState } from '../train/checkpoint.js';
import { validateRunConfig, type RunConfig } from '../train/config.js';
import { prepareTokenizer } from '../train/data.js';
import { train } from '../train/trainer.js';
import { writeFileAtomic } from '../train/fsutil.js';
import { replayStatistics, type StatisticReplay } from './statistics.js';
import type { StudyTiming } from './study.js';
import { LEVELS, pairedDifference, valueAt, type PairedDiff } from './speedup.js';

export const VARIANTS = ['baseline', 'albert', 'swe-f', 'swe-a', 'swe-m', 'baseline-half', 'stack', 'stack-swe'] as const;
export type Variant = (typeof VARIANTS)[number];

export const VARIANT_ABOUT: Record<Variant, string> = {
  baseline: 'untied from the start (BERT, GPT)',
  albert: 'all layers tied to the end (ALBERT-style)',
  'swe-f': 'tied, untied at a fixed fraction of the run (SWE-F)',
  'swe-a': 'tied, untied when adjacent layers\' gradients disagree (SWE-A)',
  'swe-m': 'tied, groups split where adjacent layers disagree (SWE-M)',
  'baseline-half': 'the baseline with half the budget (the paper\'s control)',
  stack: 'progressive stacking (Gong et al. 2019): quarter, half, then full depth, each growth copying the stack on top of itself',
  'stack-swe': 'the stack schedule, each growth\'s copies tied to their source layer until adaptive untie (SWE-A)',
};

/**
 * When the stack variants grow, as fractions of the run: Gong et al.'s
 * released script (StackingBERT, reproduce_bert.sh) trains 3 layers for 50k
 * updates, then 6 for 70k, then 12. We keep its shape (quarter, half, full
 * depth) and its 50 : 70 split of the shallow stages, and reach full depth at
 * 30% of the run, so the full model trains for the remaining 70%: the stages
 * are 12.5%, 17.5% and 70% of the run.
 */
export const STACK_STAGES = { half: 0.125, full: 0.3 } as const;

/** The stack variants' --grow schedule for `layers` (quarter, half, full depth; half then full when 4 does not divide it: the tiny preset's 6 = 3 -> 6). */
export function stackSchedule(layers: number): string {
  if (layers % 4 === 0) return `${layers / 4}@0,${layers / 2}@${STACK_STAGES.half},${layers}@${STACK_STAGES.full}`;
  if (layers % 2 === 0) return `${layers / 2}@0,${layers}@${STACK_STAGES.full}`;
  throw new UntieError(`the stack variants grow from a quarter or half of the depth by copying; ${layers} layers is odd, so they cannot: pick an even --layers`);
}

/** What can be swept: one config field per key, several values. */
export const SWEEP_KEYS = ['layers', 'untie', 'share', 'hidden', 'steps', 'batch-size'] as const;
export type SweepKey = (typeof SWEEP_KEYS)[number];

export interface Sweep {
  key: SweepKey;
  values: string[];
}

export interface CompareOptions {
  /** Folder holding compare.json, results.json, the shared tokenizer and every run. */
  out: string;
  variants: Variant[];
  seeds: number;
  /** The untie point of swe-f, as a fraction of the run (the paper: 50k of 500k). */
  sweFFraction: number;
  /** Evaluations per run (the resolution of time-to-target). */
  evalsPerRun: number;
  sweep: Sweep | null;
  /** How runs are judged downstream (recorded, so a resumed comparison keeps it): e.g. "probe:pos,spam" or "none". */
  downstream?: string;
  /** Print progress lines. */
  progress?: boolean;
}

/** Downstream scores of one checkpoint, from `untie finetune` (task -> score record; majority: the majority class's score on the same test split). */
export type DownstreamScores = Record<string, { metric: string; score: number; std?: number; seconds?: number; majority?: number }>;

/** Runs the downstream judge on a finished run; injected by the caller (the CLI wires `untie finetune`). */
export type DownstreamJudge = (runDir: string, seed: number) => Promise<DownstreamScores>;

export interface EvalPoint {
  step: number;
  /** Training seconds at this evaluation (evaluation and checkpoint time excluded). */
  seconds: number;
  valLoss: number;
  valAcc: number;
  /** A generated corpus's accuracy per difficulty (hop count, depth), as metrics.jsonl logs it. */
  valAccByDifficulty?: Record<string, number>;
}

export interface RunRecord {
  /** The sweep value this run belongs to ("" without a sweep). */
  point: string;
  variant: Variant;
  seed: number;
  runDir: string;
  steps: number;
  threads: number;
  evals: EvalPoint[];
  unigramValLoss: number | null;
  unigramValAcc: number | null;
  /** Steps completed when the layers were untied (the last split for SWE-M); null if never. */
  untiedAt: number | null;
  events: { step: number; type: string; reason?: string; description?: string }[];
  /** Every adjacent-layer gradient check: step and each pair's pooled cosine. */
  checks: { step: number; cosines: number[]; pairs: [number, number][]; perTensor?: Record<string, number>[] }[];
  threshold: number | null;
  downstream: DownstreamScores | null;
  seconds: number;
  /**
   * The machine's 1-minute load average when the run started and ended
   * (os.loadavg; null on systems without one): seconds only compare between
   * runs made on an equally quiet machine.
   */
  load?: { start: number; end: number } | null;
}

export interface Stat {
  mean: number;
  std: number | null;
  n: number;
}

export interface VariantSummary {
  variant: Variant;
  /** Steps and training seconds to reach the baseline's final validation loss (per seed, mean). */
  stepsToTarget: Stat | null;
  secondsToTarget: Stat | null;
  /** Ratios to the baseline's own steps/seconds to that loss (< 1: faster). */
  stepsRatio: Stat | null;
  secondsRatio: Stat | null;
  /** Seeds whose run never reached the target. */
  missed: number;
  finalValLoss: Stat;
  finalValAcc: Stat;
  downstream: Record<string, Stat>;
  /** Difference from the baseline (variant - baseline) and whether it exceeds twice its standard error. */
  vsBaseline: Record<string, { diff: number; se: number | null; exceedsSpread: boolean | null }>;
  /** The same differences paired by seed (variant - baseline on the same seed), with a 95% t-interval: val_loss, val_acc, downstream tasks. */
  paired: Record<string, PairedDiff | null>;
  /** Steps (and seconds) to the baseline's loss at 25/50/75/100% of its run: the speed-up as a curve. */
  levels: LevelSummary[];
  untiedAt: (number | null)[];
  /** When each alternative untie statistic would have fired, replayed from this variant's logged checks (per seed). */
  statistics: StatisticReplay[][];
}

/** Reaching the baseline's validation loss at `fraction` of its run, seed by seed. */
export interface LevelSummary {
  fraction: number;
  /** The baseline's loss there (per seed: the target). */
  target: Stat;
  /** The variant's steps to each seed's target, and their ratio to the baseline's own steps to it (< 1: sooner). */
  steps: Stat | null;
  ratio: Stat | null;
  seconds: Stat | null;
  secondsRatio: Stat | null;
  /** Seeds whose run never reached the target. */
  missed: number;
}

export interface PointSummary {
  point: string;
  target: Stat | null;
  unigramValLoss: number | null;
  unigramValAcc: number | null;
  variants: VariantSummary[];
  /** Each downstream task's metric ("accuracy", "f1") and the majority class's score on its test split (null when not recorded). */
  tasks?: Record<string, { metric: string; majority: number | null }>;
}

export interface CompareResults {
  version: 1;
  createdBy: string;
  machine: string;
  threads: number;
  options: Omit<CompareOptions, 'progress' | 'out'>;
  base: RunConfig;
  runs: RunRecord[];
  summary: PointSummary[];
  /**
   * A study's runs went side by side (one thread each) and its seconds are
   * modelled from costs per step measured alone (see experiments/study.ts);
   * absent for `untie compare`, whose runs go one after another on all threads.
   */
  timing?: StudyTiming | null;
  /** Untimed steps this process trained before the first run of each model shape (see WARMUP_STEPS); absent in older results. */
  warmupSteps?: number;
}

// ------------------------------------------------------------------ configs

/** The run config of one variant at one sweep point and seed. */
export function variantConfig(base: RunConfig, variant: Variant, seed: number, opts: Pick<CompareOptions, 'sweFFraction' | 'evalsPerRun'>, sweep?: { key: SweepKey; value: string }): RunConfig {
  const cfg: RunConfig = structuredClone(base);
  cfg.train.seed = seed;
  if (sweep) applySweep(cfg, sweep.key, sweep.value, variant);
  const L = cfg.model.layers;
  const tiedShare = sweep?.key === 'share' && variant !== 'baseline' && variant !== 'baseline-half' ? cfg.sharing.share : `1x${L}`;
  const untieSweep = sweep?.key === 'untie' ? sweep.value : null;
  cfg.sharing.grow = '';
  cfg.sharing.growTied = false;
  switch (variant) {
    case 'baseline':
    case 'baseline-half':
      cfg.sharing.share = `${L}x1`;
      cfg.sharing.untie = 'never';
      break;
    case 'albert':
      cfg.sharing.share = tiedShare;
      cfg.sharing.untie = 'never';
      break;
    case 'swe-f':
      cfg.sharing.share = tiedShare;
      cfg.sharing.untie = untieSweep ?? `fraction:${opts.sweFFraction}`;
      break;
    case 'swe-a':
      cfg.sharing.share = tiedShare;
      cfg.sharing.untie = 'adaptive';
      break;
    case 'swe-m':
      cfg.sharing.share = tiedShare;
      cfg.sharing.untie = 'multi';
      break;
    case 'stack':
    case 'stack-swe':
      // Untied at the first depth; stack-swe ties each growth's copies to their source until SWE-A unties them.
      cfg.sharing.share = `${L}x1`;
      cfg.sharing.grow = stackSchedule(L);
      cfg.sharing.growTied = variant === 'stack-swe';
      cfg.sharing.untie = variant === 'stack-swe' ? untieSweep ?? 'adaptive' : 'never';
      break;
  }
  if (cfg.train.budget > 0) {
    // A wall-clock comparison: every run gets the same seconds (baseline-half half of them) and
    // evaluates at every 1/evals of the full budget, so the curves share their time marks.
    const half = variant === 'baseline-half';
    if (half) cfg.train.budget /= 2;
    cfg.train.evalEvery = 0;
    cfg.train.evalPoints = half ? Math.max(1, Math.round(opts.evalsPerRun / 2)) : opts.evalsPerRun;
  } else {
    if (variant === 'baseline-half') cfg.train.steps = Math.max(1, Math.round(cfg.train.steps / 2));
    // Evaluate at the same steps in every variant (baseline-half included), so curves align.
    const fullSteps = variant === 'baseline-half' ? cfg.train.steps * 2 : cfg.train.steps;
    cfg.train.evalEvery = Math.max(1, Math.round(fullSteps / opts.evalsPerRun));
    cfg.train.saveEvery = Math.max(cfg.train.evalEvery, Math.round(fullSteps / 4));
  }
  validateRunConfig(cfg);
  return cfg;
}

function applySweep(cfg: RunConfig, key: SweepKey, value: string, variant: Variant): void {
  const whole = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UntieError(`--sweep ${key}=...: "${v}" is not a whole number >= 1`);
    return n;
  };
  switch (key) {
    case 'layers':
      cfg.model.layers = whole(value);
      cfg.sharing.share = '';
      break;
    case 'hidden':
      cfg.model.hidden = whole(value);
      break;
    case 'steps':
      if (cfg.train.budget > 0) throw new UntieError('--sweep steps=... with --budget: a budget run has no step count; sweep the budget by separate compare calls, or drop --budget');
      cfg.train.steps = whole(value);
      break;
    case 'batch-size':
      cfg.train.batchSize = whole(value);
      break;
    case 'share':
      // Tying plans apply to the shared variants; the baselines are untied whatever the plan.
      if (variant !== 'baseline' && variant !== 'baseline-half') cfg.sharing.share = value;
      break;
    case 'untie':
      break; // applied by variantConfig to swe-f
  }
}

export function parseSweep(text: string): Sweep {
  const m = /^([a-z-]+)=(.+)$/.exec(text.trim());
  if (!m || !(SWEEP_KEYS as readonly string[]).includes(m[1])) {
    throw new UntieError(`--sweep "${text}" is not KEY=V1,V2,... with KEY one of ${SWEEP_KEYS.join(', ')} (e.g. layers=6,12,24)`);
  }
  const values = m[2].split(',').map((v) => v.trim()).filter((v) => v.length > 0);
  if (values.length === 0) throw new UntieError(`--sweep ${m[1]}= lists no values`);
  return { key: m[1] as SweepKey, values };
}

export function parseVariants(text: string): Variant[] {
  const list = text.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
  for (const v of list) {
    if (!(VARIANTS as readonly string[]).includes(v)) throw new UntieError(`unknown variant "${v}": use some of ${VARIANTS.join(', ')}`);
  }
  if (list.length === 0) throw new UntieError('--variants lists no variant');
  return [...new Set(list)] as Variant[];
}

/** The runs a comparison makes: one per sweep point, variant and seed; identical configs run once. */
export function planRuns(base: RunConfig, opts: CompareOptions): { point: string; variant: Variant; seed: number; config: RunConfig; runDir: string }[] {
  const points = opts.sweep ? opts.sweep.values.map((v) => ({ key: opts.sweep!.key, value: v })) : [null];
  const plan: { point: string; variant: Variant; seed: number; config: RunConfig; runDir: string }[] = [];
  const byConfig = new Map<string, string>();
  for (const p of points) {
    for (const variant of opts.variants) {
      for (let seed = 0; seed < opts.seeds; seed++) {
        const config = variantConfig(base, variant, seed, opts, p ?? undefined);
        const pointName = p ? `${p.key}=${p.value}` : '';
        const key = JSON.stringify({ ...config, name: '', outDir: '' });
        let runDir = byConfig.get(key);
        if (!runDir) {
          runDir = path.join(opts.out, 'runs', ...(pointName ? [safeName(pointName)] : []), `${variant}-seed${seed}`);
          byConfig.set(key, runDir);
        }
        config.outDir = path.dirname(runDir);
        config.name = path.basename(runDir);
        plan.push({ point: pointName, variant, seed, config, runDir });
      }
    }
  }
  return plan;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9=._-]+/g, '_');
}

// ------------------------------------------------------------------ running

/**
 * Untimed training steps before the first run of each model shape in a
 * process: a process's first step pays once for compiling the code, filling
 * the buffer pool and starting the kernel threads (bench/warmup.ts: 6.8 s
 * against 1.2-1.5 s for the tiny preset on one thread). Without this warm-up,
 * whichever variant ran first would carry that cost in its seconds.
 */
export const WARMUP_STEPS = 3;

/** Trains WARMUP_STEPS of `config`'s shape in OUT/.warmup, then removes it; returns whether it was interrupted. */
async function warmUp(config: RunConfig, out: string, tokDir: string): Promise<boolean> {
  const dir = path.join(out, '.warmup');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of Object.values(TOKENIZER_FILES)) fs.copyFileSync(path.join(tokDir, f), path.join(dir, f));
  const t = config.train;
  const warm: RunConfig = { ...config, name: '.warmup', outDir: out, train: { ...t, steps: WARMUP_STEPS, budget: 0, warmupSteps: 1, evalEvery: 0, evalPoints: 0, saveEvery: 0, probe: '' } };
  try {
    return (await train({ config: warm, progress: false })).interrupted;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The settings that differ between a saved comparison's compare.json and this call's ("base.train.lr: 0.002 there, 0.001 here"). */
export function settingsDiffer(saved: unknown, now: unknown, at = ''): string[] {
  if (JSON.stringify(saved) === JSON.stringify(now)) return [];
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(saved) || !isObject(now)) return [`${at || 'the settings'}: ${JSON.stringify(saved)} there, ${JSON.stringify(now)} here`];
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  return keys.flatMap((k) => settingsDiffer(saved[k], now[k], at ? `${at}.${k}` : k));
}

/** What compare.json records, so a resumed comparison refuses different settings. */
function fingerprint(base: RunConfig, opts: CompareOptions, threads: number) {
  const { progress: _p, out: _o, ...rest } = opts;
  return { base: { ...base, name: '', outDir: '' }, options: rest, threads };
}

export function resolvedThreads(base: RunConfig): number {
  return base.train.threads > 0 ? base.train.threads : os.availableParallelism();
}

/**
 * Runs (or resumes) every run of the comparison, then the downstream judge
 * on each finished run, and writes results.json. Returns the results.
 */
export async function runCompare(base: RunConfig, opts: CompareOptions, judge: DownstreamJudge | null): Promise<CompareResults & { interrupted: boolean }> {
  const threads = resolvedThreads(base);
  const log = (m: string) => {
    if (opts.progress) process.stderr.write(`[compare] ${m}\n`);
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const stamp = path.join(opts.out, 'compare.json');
  const fp = fingerprint(base, opts, threads);
  if (fs.existsSync(stamp)) {
    const saved = JSON.parse(fs.readFileSync(stamp, 'utf8'));
    if (JSON.stringify(saved) !== JSON.stringify(fp)) {
      const differ = settingsDiffer(saved, fp);
      const shown = differ.slice(0, 3).join('; ') + (differ.length > 3 ? `; and ${differ.length - 3} more` : '');
      const why = saved.threads !== threads ? `it ran on ${saved.threads} thread(s) and this call asks for ${threads}; seconds would not compare` : `its settings differ from this call's: ${shown}`;
      throw new UntieError(`${opts.out} holds a comparison made with other settings (${why}). Rerun with the same flags to resume it, or pick another --out.`);
    }
  } else {
    writeFileAtomic(stamp, JSON.stringify(fp, null, 2) + '\n');
  }

  const plan = planRuns({ ...base, train: { ...base.train, threads } }, opts);
  const tokDir = path.join(opts.out, 'tokenizer');
  log(`tokenizer: ${tokDir}`);
  await prepareTokenizer(base.data, tokDir);

  let interrupted = false;
  const done = new Set<string>();
  const warmShapes = new Set<string>();
  for (const [i, r] of plan.entries()) {
    if (done.has(r.runDir)) continue;
    done.add(r.runDir);
    if (runFinished(r.runDir, r.config)) {
      log(`run ${i + 1}/${plan.length} ${describe(r)}: finished earlier, kept`);
      continue;
    }
    const shape = JSON.stringify([r.config.model, r.config.data.seqLen, r.config.train.batchSize, r.config.train.gradAccum]);
    if (!warmShapes.has(shape)) {
      warmShapes.add(shape);
      log(`warm-up: ${WARMUP_STEPS} untimed steps of this model shape, so that no run's seconds include the process's start`);
      if (await warmUp(r.config, opts.out, tokDir)) {
        interrupted = true;
        log('interrupted: finished runs are kept; run the same command again to continue');
        break;
      }
    }
    const resume = listCheckpoints(r.runDir).length > 0;
    if (!resume) {
      fs.rmSync(r.runDir, { recursive: true, force: true });
      fs.mkdirSync(r.runDir, { recursive: true });
      for (const f of Object.values(TOKENIZER_FILES)) fs.copyFileSync(path.join(tokDir, f), path.join(r.runDir, f));
    }
    const length = r.config.train.budget > 0 ? `for ${r.config.train.budget} s` : `${r.config.train.steps} steps`;
    log(`run ${i + 1}/${plan.length} ${describe(r)}: ${resume ? 'resuming' : 'training'} ${length} in ${r.runDir}`);
    const loadStart = os.loadavg()[0];
    const result = await train({ config: r.config, resume, progress: opts.progress });
    if (os.platform() !== 'win32') writeFileAtomic(path.join(r.runDir, 'load.json'), JSON.stringify({ start: loadStart, end: os.loadavg()[0] }) + '\n');
    if (result.interrupted) {
      interrupted = true;
      log('interrupted: finished runs are kept; run the same command again to continue');
      break;
    }
  }

  const records: RunRecord[] = [];
  for (const r of plan) {
    if (!runFinished(r.runDir, r.config)) continue;
    const rec = readRun(r.runDir, r.point, r.variant, r.seed, r.config, threads);
    if (judge && !interrupted) {
      const cache = path.join(r.runDir, 'downstream.json');
      if (fs.existsSync(cache)) rec.downstream = JSON.parse(fs.readFileSync(cache, 'utf8')) as DownstreamScores;
      else {
        log(`downstream: ${describe(r)}`);
        rec.downstream = await judge(r.runDir, r.seed);
        writeFileAtomic(cache, JSON.stringify(rec.downstream, null, 2) + '\n');
      }
    }
    records.push(rec);
  }
  const results: CompareResults = {
    version: 1,
    createdBy: 'untie compare',
    machine: machineName(),
    threads,
    options: (({ progress: _p, out: _o, ...rest }) => rest)(opts),
    base,
    runs: records,
    summary: summarize(records, opts),
    warmupSteps: WARMUP_STEPS,
  };
  writeFileAtomic(path.join(opts.out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  return { ...results, interrupted };
}

/**
 * Whether a run of the comparison is complete: a step-count run has its last
 * step's checkpoint; a --budget run has a checkpoint whose training seconds
 * reach the budget (its last step is only known once it ran).
 */
export function runFinished(runDir: string, config: RunConfig): boolean {
  const all = listCheckpoints(runDir);
  if (config.train.budget <= 0) return all.some((c) => c.step === config.train.steps);
  const last = all[all.length - 1];
  if (!last) return false;
  try {
    return readTrainerState(last.dir).elapsed >= config.train.budget;
  } catch {
    return false; // unreadable: the run resumes (and restore reports what is wrong)
  }
}

function describe(r: { point: string; variant: string; seed: number }): string {
  return `${r.point ? `${r.point} ` : ''}${r.variant} seed ${r.seed}`;
}

/** A finished run's record, from its metrics.jsonl and config. */
export function readRun(runDir: string, point: string, variant: Variant, seed: number, config: RunConfig, threads: number): RunRecord {
  const records = readMetrics(path.join(runDir, 'metrics.jsonl'));
  const loadFile = path.join(runDir, 'load.json');
  const load = fs.existsSync(loadFile) ? JSON.parse(fs.readFileSync(loadFile, 'utf8')) as { start: number; end: number } : null;
  const rec = runRecordFrom(records, { runDir, point, variant, seed, steps: config.train.steps, threads });
  // A budget run's length is the steps it made: its last evaluation is at its last step.
  if (config.train.budget > 0) rec.steps = rec.evals[rec.evals.length - 1]?.step ?? 0;
  return { ...rec, load };
}

export function runRecordFrom(records: MetricRecord[], meta: { runDir: string; point: string; variant: Variant; seed: number; steps: number; threads: number }): RunRecord {
  const evals: EvalPoint[] = [];
  const events: RunRecord['events'] = [];
  const checks: RunRecord['checks'] = [];
  let unigramValLoss: number | null = null, unigramValAcc: number | null = null, untiedAt: number | null = null;
  let threshold: number | null = null, seconds = 0;
  for (const r of records) {
    if (r.type === 'eval') {
      evals.push({
        step: r.step, seconds: Number(r.elapsed ?? NaN), valLoss: Number(r.val_loss), valAcc: Number(r.val_acc),
        ...(r.val_acc_by_difficulty && typeof r.val_acc_by_difficulty === 'object' ? { valAccByDifficulty: r.val_acc_by_difficulty as Record<string, number> } : {}),
      });
      if (typeof r.unigram_val_loss === 'number') unigramValLoss = r.unigram_val_loss;
      if (typeof r.unigram_val_acc === 'number') unigramValAcc = r.unigram_val_acc;
    } else if (r.type === 'train') {
      if (typeof r.elapsed === 'number') seconds = Math.max(seconds, r.elapsed);
    } else if (r.type === 'untie' || r.type === 'split' || r.type === 'grow') {
      events.push({ step: r.step, type: r.type, reason: r.reason as string | undefined, description: r.description as string | undefined });
      if (r.type !== 'grow') untiedAt = r.step;
    } else if (r.type === 'sharing_check') {
      const pairs = (r.pairs as { a: number; b: number; cosine: number; perTensor?: Record<string, number> }[]) ?? [];
      checks.push({ step: r.step, cosines: pairs.map((p) => p.cosine), pairs: pairs.map((p) => [p.a, p.b]), perTensor: pairs.map((p) => p.perTensor ?? {}) });
      if (typeof r.threshold === 'number') threshold = r.threshold;
    }
  }
  for (const e of evals) seconds = Math.max(seconds, Number.isFinite(e.seconds) ? e.seconds : 0);
  return { ...meta, evals, unigramValLoss, unigramValAcc, untiedAt, events, checks, threshold, downstream: null, seconds };
}

// ------------------------------------------------------------------ analysis

/**
 * The first x at which a loss curve reaches `target` (loss <= target),
 * interpolating linearly between evaluations; null if it never does.
 * `points` are (x, loss) in increasing x; the curve starts at its first point.
 */
export function timeToTarget(points: readonly [number, number][], target: number): number | null {
  for (let i = 0; i < points.length; i++) {
    const [x, y] = points[i];
    if (!(y <= target)) continue;
    if (i === 0) return x;
    const [x0, y0] = points[i - 1];
    const t = (y0 - target) / (y0 - y); // y0 > target >= y
    return x0 + t * (x - x0);
  }
  return null;
}

/** The machine a result was measured on, as every results file names it: "CPU model, N cores". */
export function machineName(): string {
  return `${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores`;
}

export function stat(values: number[]): Stat {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: null, n: 0 };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null, n };
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(variance), n };
}

/** mean(a) - mean(b), its standard error, and whether |diff| > 2 SE (null when a spread is unknown). */
export function difference(a: number[], b: number[]): { diff: number; se: number | null; exceedsSpread: boolean | null } {
  const sa = stat(a), sb = stat(b);
  const diff = sa.mean - sb.mean;
  if (sa.std === null || sb.std === null) return { diff, se: null, exceedsSpread: null };
  const se = Math.sqrt((sa.std * sa.std) / sa.n + (sb.std * sb.std) / sb.n);
  return { diff, se, exceedsSpread: Math.abs(diff) > 2 * se };
}

/** A downstream task's column heading, naming its metric: "pos accuracy", "spam F1". */
export function taskHeading(p: PointSummary, task: string): string {
  const metric = p.tasks?.[task]?.metric;
  return metric ? `${task} ${metric === 'f1' ? 'F1' : metric}` : task;
}

/** " (majority class)" where a mean score is no better than answering the majority class everywhere (a spam F1 of 0: every message called ham). */
export function majorityMark(p: PointSummary, task: string, score: Stat | null | undefined): string {
  const majority = p.tasks?.[task]?.majority;
  return typeof majority === 'number' && score && Number.isFinite(score.mean) && score.mean <= majority + 1e-9 ? ' (majority class)' : '';
}

/** Said when the target (the baseline's final loss) is not below the unigram line: reaching it then says nothing about the method. */
export function targetWarning(p: PointSummary): string | null {
  if (!p.target || p.unigramValLoss === null || p.target.mean < p.unigramValLoss) return null;
  return `The target ${p.target.mean.toFixed(4)} is not below the unigram line ${p.unigramValLoss.toFixed(4)}: the baseline learned no more than word frequencies, ` +
    'so reaching its loss says nothing about the method. Train longer (--steps or --budget).';
}

/** "seed 0" or "seeds 0, 1, 2": the seeds every variant ran. */
export function seedsText(seeds: number): string {
  return seeds === 1 ? 'seed 0' : `seeds ${Array.from({ length: seeds }, (_, i) => i).join(', ')}`;
}

/** Per sweep point: the baseline's final losses are the targets; every variant is measured against them, seed by seed. */
export function summarize(runs: RunRecord[], opts: Pick<CompareOptions, 'variants'>): PointSummary[] {
  const points = [...new Set(runs.map((r) => r.point))];
  return points.map((point) => {
    const here = runs.filter((r) => r.point === point);
    const baselineBySeed = new Map(here.filter((r) => r.variant === 'baseline').map((r) => [r.seed, r]));
    const finalOf = (r: RunRecord) => r.evals[r.evals.length - 1];
    const targets = [...baselineBySeed.values()].map((r) => finalOf(r)?.valLoss).filter((v): v is number => v !== undefined);
    const baselineReach = (seed: number) => {
      const b = baselineBySeed.get(seed);
      const target = b && finalOf(b)?.valLoss;
      if (!b || target === undefined) return null;
      return {
        target,
        steps: timeToTarget(b.evals.map((e) => [e.step, e.valLoss]), target),
        seconds: timeToTarget(b.evals.map((e) => [e.seconds, e.valLoss]), target),
      };
    };
    const variants = opts.variants.filter((v) => here.some((r) => r.variant === v)).map((variant): VariantSummary => {
      const mine = here.filter((r) => r.variant === variant).sort((a, b) => a.seed - b.seed);
      const steps: number[] = [], secs: number[] = [], stepsRatio: number[] = [], secsRatio: number[] = [];
      let missed = 0;
      for (const r of mine) {
        const base = baselineReach(r.seed);
        if (!base) continue;
        const s = timeToTarget(r.evals.map((e) => [e.step, e.valLoss]), base.target);
        const t = timeToTarget(r.evals.map((e) => [e.seconds, e.valLoss]), base.target);
        if (s === null) {
          missed++;
          continue;
        }
        steps.push(s);
        if (base.steps) stepsRatio.push(s / base.steps);
        if (t !== null) {
          secs.push(t);
          if (base.seconds) secsRatio.push(t / base.seconds);
        }
      }
      const finals = mine.map(finalOf).filter((e): e is EvalPoint => e !== undefined);
      const baseFinals = [...baselineBySeed.values()].map(finalOf).filter((e): e is EvalPoint => e !== undefined);
      const tasks = [...new Set(mine.flatMap((r) => Object.keys(r.downstream ?? {})))];
      const downstream: Record<string, Stat> = {};
      const vsBaseline: VariantSummary['vsBaseline'] = {
        val_loss: difference(finals.map((e) => e.valLoss), baseFinals.map((e) => e.valLoss)),
        val_acc: difference(finals.map((e) => e.valAcc), baseFinals.map((e) => e.valAcc)),
      };
      for (const task of tasks) {
        const scores = mine.map((r) => r.downstream?.[task]?.score).filter((v): v is number => typeof v === 'number');
        downstream[task] = stat(scores);
        const baseScores = [...baselineBySeed.values()].map((r) => r.downstream?.[task]?.score).filter((v): v is number => typeof v === 'number');
        if (baseScores.length > 0) vsBaseline[task] = difference(scores, baseScores);
      }
      const paired: VariantSummary['paired'] = {
        val_loss: pairedDifference(bySeed(mine, (e) => e.valLoss), bySeed([...baselineBySeed.values()], (e) => e.valLoss)),
        val_acc: pairedDifference(bySeed(mine, (e) => e.valAcc), bySeed([...baselineBySeed.values()], (e) => e.valAcc)),
      };
      for (const task of tasks) {
        const score = (rs: RunRecord[]) => new Map(rs.flatMap((r) => (typeof r.downstream?.[task]?.score === 'number' ? [[r.seed, r.downstream[task].score] as [number, number]] : [])));
        paired[task] = pairedDifference(score(mine), score([...baselineBySeed.values()]));
      }
      return {
        variant,
        paired,
        levels: levelSummaries(mine, baselineBySeed),
        stepsToTarget: steps.length ? stat(steps) : null,
        secondsToTarget: secs.length ? stat(secs) : null,
        stepsRatio: stepsRatio.length ? stat(stepsRatio) : null,
        secondsRatio: secsRatio.length ? stat(secsRatio) : null,
        missed,
        finalValLoss: stat(finals.map((e) => e.valLoss)),
        finalValAcc: stat(finals.map((e) => e.valAcc)),
        downstream,
        vsBaseline,
        untiedAt: mine.map((r) => r.untiedAt),
        statistics: mine.map((r) => (r.checks.length > 0 ? replayStatistics(r.checks, r.threshold ?? 0.5) : [])),
      };
    });
    const uni = here.find((r) => r.unigramValLoss !== null);
    const tasks: NonNullable<PointSummary['tasks']> = {};
    for (const r of here) {
      for (const [task, d] of Object.entries(r.downstream ?? {})) tasks[task] ??= { metric: d.metric, majority: typeof d.majority === 'number' ? d.majority : null };
    }
    return { point, target: targets.length ? stat(targets) : null, unigramValLoss: uni?.unigramValLoss ?? null, unigramValAcc: uni?.unigramValAcc ?? null, variants, tasks };
  });
}

/** Each run's final evaluation value, by seed. */
function bySeed(runs: RunRecord[], value: (e: EvalPoint) => number): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of runs) {
    const last = r.evals[r.evals.length - 1];
    if (last) out.set(r.seed, value(last));
  }
  return out;
}

/**
 * Per level of LEVELS: the baseline's validation loss at that fraction of its
 * run (interpolated between its evaluations) is each seed's target; the
 * variant's steps and seconds to it, and their ratios to the baseline's own.
 */
export function levelSummaries(mine: RunRecord[], baselineBySeed: Map<number, RunRecord>): LevelSummary[] {
  return LEVELS.map((fraction) => {
    const targets: number[] = [], steps: number[] = [], ratio: number[] = [], secs: number[] = [], secsRatio: number[] = [];
    let missed = 0;
    for (const r of mine) {
      const b = baselineBySeed.get(r.seed);
      if (!b || b.evals.length === 0) continue;
      const bCurve = b.evals.map((e): [number, number] => [e.step, e.valLoss]);
      const target = valueAt([[0, Infinity], ...bCurve], fraction * b.steps);
      if (target === null || !Number.isFinite(target)) continue;
      targets.push(target);
      const s = timeToTarget(r.evals.map((e) => [e.step, e.valLoss]), target);
      if (s === null) {
        missed++;
        continue;
      }
      steps.push(s);
      const bs = timeToTarget(bCurve, target);
      if (bs) ratio.push(s / bs);
      const t = timeToTarget(r.evals.map((e) => [e.seconds, e.valLoss]), target);
      const bt = timeToTarget(b.evals.map((e) => [e.seconds, e.valLoss]), target);
      if (t !== null && Number.isFinite(t)) {
        secs.push(t);
        if (bt) secsRatio.push(t / bt);
      }
    }
    const opt = (xs: number[]) => (xs.length ? stat(xs) : null);
    return { fraction, target: stat(targets), steps: opt(steps), ratio: opt(ratio), seconds: opt(secs), secondsRatio: opt(secsRatio), missed };
  });
}
