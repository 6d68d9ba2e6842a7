/**
 * Untying criteria: small objects with one question each. Given the step
 * that just completed and, on check steps, the per-layer gradient statistics,
 * should the tied groups be untied (SWE-F, SWE-A) or split (SWE-M)?
 *
 * Every criterion's state is a plain JSON object, written into checkpoints,
 * and its decisions can be replayed from the logged statistics (`replay`).
 */
import { UntieError } from '../errors.js';
import type { Groups } from './plan.js';
import { StatisticTracker, type UntieStatistic } from './statistics.js';

/** Gradient agreement of two adjacent members of a group, measured on one step. */
export interface PairStat {
  /** Layer positions of the pair (a before b in the group). */
  a: number;
  b: number;
  /**
   * Cosine similarity of the two layers' whole gradients (all tensors
   * concatenated). It equals the per-tensor cosines averaged with weights
   * ||a_t|| ||b_t|| / (||a|| ||b||): each tensor counts by its gradient
   * energy, not by its size.
   */
  cosine: number;
  /** Cosine similarity per parameter tensor, by name within the layer. */
  perTensor: Record<string, number>;
}

export interface CheckStats {
  step: number;
  pairs: PairStat[];
}

export type Decision =
  | { action: 'none' }
  /** `reason` says what triggered it, for the log: "step", "correlation" or "deadline". */
  | { action: 'untie'; reason?: string }
  /** Split the group holding `a` between members a and b, for each pair listed. */
  | { action: 'split'; between: [number, number][] };

export interface Criterion {
  readonly kind: string;
  /** rho, for criteria that compare correlations with one (logged with each check). */
  readonly threshold?: number;
  /** The statistic compared with rho, when it is not the plain cosine (logged with each check). */
  readonly statistic?: UntieStatistic;
  /** The per-pair values the last decision compared with rho (same order as its pairs). */
  readonly lastValues?: number[];
  /**
   * True when the statistics of update `step` (0-based) should be computed.
   * `progress` is the fraction of the run done before this update (steps, or
   * seconds of a --budget run); criteria built for a budget schedule by it.
   */
  wantsStats(step: number, progress?: number): boolean;
  /**
   * Called after update `step` (0-based) completes, so `step + 1` updates are
   * done (`progress`: the fraction of the run done now), with its statistics
   * on check steps; and once with step = -1 and no statistics before the
   * first update, where only an untie is acted on (`step:0`: no update is
   * ever made tied).
   */
  decide(step: number, groups: Groups, stats: CheckStats | null, progress?: number): Decision;
  /** A JSON-able description of the settings, for config.json and logs. */
  describe(): Record<string, unknown>;
  getState(): Record<string, unknown>;
  setState(state: Record<string, unknown>): void;
}

export interface AdaptiveOptions {
  /** Correlation threshold rho (paper: 0.5). */
  threshold: number;
  /** Consecutive checks below threshold needed (paper: 3). */
  patience: number;
  /** Check every K steps. */
  every: number;
  /**
   * Budget runs: check at every this fraction of the run instead (the first
   * update that starts past each mark), when `every` was not set by the user.
   */
  everyFraction?: number | null;
  /** Budget runs: the deadline as a fraction of the run (instead of `deadline` steps). */
  deadlineFraction?: number | null;
  /**
   * Untie (everything still tied) after this many updates at the latest, if
   * the correlations have not asked for it by then; null = no deadline. The
   * paper found that "the sharing stage should not be too long".
   */
  deadline?: number | null;
  /** What is compared with rho (default 'cosine', the paper's; see statistics.ts). */
  statistic?: UntieStatistic;
}

/**
 * Checks that only observe: the adjacent layers' agreement measured (and
 * logged by the controller) every K updates while layers are tied, deciding
 * nothing. Without a check interval, none.
 */
class Observed {
  protected readonly marks: CheckMarks | null;
  constructor(readonly kind: string, readonly every: number | null, everyFraction: number | null) {
    this.marks = every !== null ? new CheckMarks(every, everyFraction) : null;
  }
  wantsStats(step: number, progress?: number): boolean {
    return this.marks !== null && this.marks.due(step, progress);
  }
  getState(): Record<string, unknown> {
    return this.marks ? { marks: this.marks.lastMark } : {};
  }
  /** A checkpoint from before these checks existed holds no marks: they start over. */
  setState(state: Record<string, unknown>): void {
    if (!this.marks) return noState(this.kind, state);
    if (typeof state !== 'object' || state === null || Object.keys(state).some((k) => k !== 'marks')) throw new UntieError(`the saved criterion state ${JSON.stringify(state)?.slice(0, 80)} does not belong to the ${this.kind} criterion, which keeps only "marks"`);
    this.marks.lastMark = markOf(state.marks ?? -1);
  }
}

/**
 * `never`: stay tied to the end (ALBERT-style when the plan ties layers).
 * Given a check interval it still measures (and the controller logs) the
 * adjacent layers' agreement, so an always-tied run shows how it evolves.
 */
export class NeverCriterion extends Observed implements Criterion {
  declare readonly kind: 'never';
  constructor(every: number | null = null, everyFraction: number | null = null) {
    super('never', every, everyFraction);
  }
  decide(): Decision {
    return { action: 'none' };
  }
  describe() {
    return { kind: this.kind, every: this.every };
  }
}

/**
 * When checks happen: every K updates, or (budget runs) at the first update
 * that starts past each multiple of a fraction of the run. The last mark is
 * state, so a resumed run checks where the uninterrupted one would.
 */
export class CheckMarks {
  lastMark = -1;
  constructor(readonly every: number, readonly everyFraction: number | null = null) {}
  due(step: number, progress?: number): boolean {
    if (this.everyFraction === null || progress === undefined) return (step + 1) % this.every === 0;
    const mark = Math.floor(progress / this.everyFraction);
    if (mark <= this.lastMark || mark === 0) return false;
    this.lastMark = mark;
    return true;
  }
}

/**
 * SWE-F, `step:N`: the first N updates are made tied, every later one untied;
 * the untie comes after update N (N = 0: before the first update, so the
 * layers start from one shared draw and never update tied; N = the run's
 * length: after the last update, so every update was tied). Budget runs
 * (`fraction` set): untie once that fraction of the budget has been spent.
 * Given a check interval, the tied phase's agreement is measured and logged
 * as with `never`; the decision never reads it.
 */
export class FixedCriterion extends Observed implements Criterion {
  declare readonly kind: 'fixed';
  constructor(readonly untieAt: number, readonly fraction: number | null = null, every: number | null = null, everyFraction: number | null = null) {
    super('fixed', every, everyFraction);
    if (!Number.isInteger(untieAt) || untieAt < 0) throw new UntieError(`--untie step:N needs a whole number of steps >= 0, got ${untieAt}`);
  }
  decide(step: number, groups: Groups, _stats: CheckStats | null = null, progress?: number): Decision {
    const tied = groups.some((g) => g.length > 1);
    const due = this.fraction !== null && progress !== undefined ? progress >= this.fraction : step + 1 >= this.untieAt;
    return tied && due ? { action: 'untie', reason: 'step' } : { action: 'none' };
  }
  describe() {
    return { kind: this.kind, untieAt: this.untieAt, ...(this.fraction !== null ? { fraction: this.fraction } : {}), ...(this.every !== null ? { every: this.every } : {}) };
  }
}

/** Criteria without state take none back: a saved state with keys belongs to another criterion. */
function noState(kind: string, state: Record<string, unknown>): void {
  if (typeof state !== 'object' || state === null || Object.keys(state).length > 0) {
    throw new UntieError(`the saved criterion state ${JSON.stringify(state)?.slice(0, 80)} does not belong to the ${kind} criterion, which keeps none`);
  }
}

/** A saved streak: a count of consecutive checks, so a whole number >= 0. */
function streakOf(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new UntieError(`a saved criterion ${what} must be a whole number >= 0, got ${JSON.stringify(v)}`);
  return v as number;
}

/** A saved check mark: the last fraction-of-the-run mark checked, -1 before the first. */
function markOf(v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < -1) throw new UntieError(`a saved criterion "marks" must be a whole number >= -1, got ${JSON.stringify(v)}`);
  return v as number;
}

function checkAdaptive(o: AdaptiveOptions): void {
  if (!(o.threshold > -1 && o.threshold < 1)) throw new UntieError(`the untie threshold rho must be in (-1, 1), got ${o.threshold}`);
  if (!Number.isInteger(o.patience) || o.patience < 1) throw new UntieError(`the untie patience C must be a whole number >= 1, got ${o.patience}`);
  if (!Number.isInteger(o.every) || o.every < 1) throw new UntieError(`the check interval K must be a whole number >= 1, got ${o.every}`);
  if (o.deadline !== undefined && o.deadline !== null && (!Number.isInteger(o.deadline) || o.deadline < 1)) {
    throw new UntieError(`the untie deadline must be a whole number of steps >= 1, got ${o.deadline}`);
  }
}

function pastDeadline(o: AdaptiveOptions, step: number, progress?: number): boolean {
  if (o.deadlineFraction !== undefined && o.deadlineFraction !== null && progress !== undefined) return progress >= o.deadlineFraction;
  return o.deadline !== undefined && o.deadline !== null && step + 1 >= o.deadline;
}

/**
 * SWE-A: every K steps, look at the adjacent-pair correlations of all tied
 * groups; when more than half are below rho at C consecutive checks, untie
 * everything. The decision uses the pooled cosine: the cosine of the two
 * layers' whole gradients, which is what "the correlation between the
 * gradients of two layers" means for a whole layer; it weighs each tensor by
 * its gradient energy (see PairStat.cosine), so tensors with small gradients
 * (biases, LayerNorm) barely move it. Per-tensor values are logged alongside
 * so the choice can be revisited.
 */
export class AdaptiveCriterion implements Criterion {
  readonly kind = 'adaptive';
  private streak = 0;
  private readonly tracker: StatisticTracker;
  private readonly marks: CheckMarks;
  lastValues?: number[];
  constructor(readonly options: AdaptiveOptions) {
    checkAdaptive(options);
    this.tracker = new StatisticTracker(options.statistic ?? 'cosine');
    this.marks = new CheckMarks(options.every, options.everyFraction ?? null);
  }
  get threshold(): number {
    return this.options.threshold;
  }
  get statistic(): UntieStatistic | undefined {
    return this.options.statistic && this.options.statistic !== 'cosine' ? this.options.statistic : undefined;
  }
  wantsStats(step: number, progress?: number): boolean {
    return this.marks.due(step, progress);
  }
  decide(step: number, groups: Groups, stats: CheckStats | null, progress?: number): Decision {
    if (!groups.some((g) => g.length > 1)) return { action: 'none' };
    if (stats && stats.pairs.length > 0) {
      const values = (this.lastValues = this.tracker.values(stats));
      const below = values.filter((v) => v < this.options.threshold).length;
      this.streak = below > stats.pairs.length / 2 ? this.streak + 1 : 0;
      if (this.streak >= this.options.patience) return { action: 'untie', reason: 'correlation' };
    }
    return pastDeadline(this.options, step, progress) ? { action: 'untie', reason: 'deadline' } : { action: 'none' };
  }
  describe() {
    return { kind: this.kind, ...this.options };
  }
  getState() {
    return { streak: this.streak, statistic: this.tracker.getState(), marks: this.marks.lastMark };
  }
  setState(state: Record<string, unknown>) {
    this.streak = streakOf(state.streak ?? 0, 'streak');
    this.marks.lastMark = markOf(state.marks ?? -1);
    this.tracker.setState(state.statistic as Parameters<StatisticTracker['setState']>[0]);
  }
}

/**
 * SWE-M: split a group between adjacent members a, b once their correlation
 * has been below rho at C consecutive checks (C = 1 is the paper's literal
 * rule; the default C matches SWE-A so one noisy check does not split).
 */
export class MultiCriterion implements Criterion {
  readonly kind = 'multi';
  private streaks: Record<string, number> = {};
  private readonly tracker: StatisticTracker;
  private readonly marks: CheckMarks;
  lastValues?: number[];
  constructor(readonly options: AdaptiveOptions) {
    checkAdaptive(options);
    this.tracker = new StatisticTracker(options.statistic ?? 'cosine');
    this.marks = new CheckMarks(options.every, options.everyFraction ?? null);
  }
  get threshold(): number {
    return this.options.threshold;
  }
  get statistic(): UntieStatistic | undefined {
    return this.options.statistic && this.options.statistic !== 'cosine' ? this.options.statistic : undefined;
  }
  wantsStats(step: number, progress?: number): boolean {
    return this.marks.due(step, progress);
  }
  decide(step: number, groups: Groups, stats: CheckStats | null, progress?: number): Decision {
    if (pastDeadline(this.options, step, progress) && groups.some((g) => g.length > 1)) return { action: 'untie', reason: 'deadline' };
    if (!stats) return { action: 'none' };
    const next: Record<string, number> = {};
    const between: [number, number][] = [];
    const values = (this.lastValues = this.tracker.values(stats));
    for (const [i, p] of stats.pairs.entries()) {
      const key = `${p.a}-${p.b}`;
      const streak = values[i] < this.options.threshold ? (this.streaks[key] ?? 0) + 1 : 0;
      if (streak >= this.options.patience) between.push([p.a, p.b]);
      else next[key] = streak;
    }
    this.streaks = next;
    return between.length > 0 ? { action: 'split', between } : { action: 'none' };
  }
  describe() {
    return { kind: this.kind, ...this.options };
  }
  getState() {
    return { streaks: { ...this.streaks }, statistic: this.tracker.getState(), marks: this.marks.lastMark };
  }
  setState(state: Record<string, unknown>) {
    const saved = state.streaks ?? {};
    if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) throw new UntieError(`a saved SWE-M state needs "streaks" as an object, got ${JSON.stringify(saved)}`);
    const streaks: Record<string, number> = {};
    for (const [pair, v] of Object.entries(saved)) {
      if (!/^\d+-\d+$/.test(pair)) throw new UntieError(`a saved SWE-M streak is for ${JSON.stringify(pair)}, not a layer pair "a-b"`);
      streaks[pair] = streakOf(v, `streaks.${pair}`);
    }
    this.streaks = streaks;
    this.marks.lastMark = markOf(state.marks ?? -1);
    this.tracker.setState(state.statistic as Parameters<StatisticTracker['setState']>[0]);
  }
}

export interface CriterionDefaults {
  /** The run's total number of updates (for fraction:F and the default K). */
  totalSteps: number;
  threshold?: number;
  patience?: number;
  every?: number;
  /** SWE-A/SWE-M deadline as a fraction of totalSteps (0 or undefined: none). */
  untieBy?: number;
  /** SWE-A/SWE-M deadline in updates, already resolved (overrides untieBy; null: none). */
  deadline?: number | null;
  statistic?: UntieStatistic;
  /**
   * A --budget run: fractions (fraction:F, the deadline, the default check
   * interval) are fractions of the budget's seconds, not of totalSteps.
   */
  budget?: boolean;
}

/** The default check interval of a budget run, as a fraction of it: the step-count default's ~20 checks before 10%. */
export const DEFAULT_CHECK_FRACTION = 0.005;

/**
 * The default check interval: the paper checks every 1k of 500k steps and
 * would untie at 10% (50k), i.e. 50 checks before the fixed point. We keep at
 * least ~20 checks before 10% of the run.
 */
export function defaultCheckEvery(totalSteps: number): number {
  return Math.max(1, Math.floor((0.1 * totalSteps) / 20));
}

/**
 * Parses `--untie`: never | step:N | fraction:F | adaptive | multi.
 */
export function parseCriterion(text: string, d: CriterionDefaults): Criterion {
  const options: AdaptiveOptions = {
    threshold: d.threshold ?? 0.5,
    patience: d.patience ?? 3,
    every: d.every ?? defaultCheckEvery(d.totalSteps),
    deadline: d.deadline !== undefined ? d.deadline : d.untieBy ? Math.max(1, Math.round(d.untieBy * d.totalSteps)) : null,
    statistic: d.statistic ?? 'cosine',
    everyFraction: d.budget && d.every === undefined ? DEFAULT_CHECK_FRACTION : null,
    deadlineFraction: d.budget && d.untieBy ? d.untieBy : null,
  };
  if (d.untieBy !== undefined && !(d.untieBy >= 0 && d.untieBy <= 1)) throw new UntieError(`--untie-by must be a fraction of the run in [0, 1] (0 = no deadline), got ${d.untieBy}`);
  const t = text.trim();
  if (t === 'never') return new NeverCriterion(options.every, options.everyFraction ?? null);
  if (t === 'adaptive') return new AdaptiveCriterion(options);
  if (t === 'multi') return new MultiCriterion(options);
  const step = /^step:(\d+)$/.exec(t);
  if (step) return new FixedCriterion(Number(step[1]), null, options.every, options.everyFraction ?? null);
  const frac = /^fraction:([0-9]*\.?[0-9]+)$/.exec(t);
  if (frac) {
    const f = Number(frac[1]);
    if (!(f >= 0 && f <= 1)) throw new UntieError(`--untie fraction:F needs F in [0, 1], got ${f}`);
    return new FixedCriterion(Math.round(f * d.totalSteps), d.budget ? f : null, options.every, options.everyFraction ?? null);
  }
  throw new UntieError(`--untie "${text}" is not one of: never, step:N, fraction:F, adaptive, multi`);
}

/**
 * Re-runs a criterion's decisions from logged check statistics (as written to
 * metrics.jsonl), to audit a run: returns the step of every non-trivial decision.
 */
export function replay(criterion: Criterion, initialGroups: Groups, checks: CheckStats[]): { step: number; decision: Decision }[] {
  const out: { step: number; decision: Decision }[] = [];
  let groups = initialGroups;
  for (const c of checks) {
    const decision = criterion.decide(c.step, groups, c);
    if (decision.action !== 'none') {
      out.push({ step: c.step, decision });
      if (decision.action === 'untie') groups = groups.flat().map((p) => [p]);
    }
  }
  return out;
}
