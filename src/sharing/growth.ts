/**
 * Progressive stacking (Gong et al., "Efficient Training of BERT by
 * Progressively Stacking", ICML 2019): train a shallow stack, copy its
 * layers on top of themselves, train on. A growth schedule lists the depths
 * and when each starts; the sharing controller makes the growth steps (see
 * SharingController.grow), with the layer copy of copy.ts.
 *
 * A growth step from depth k to depth K (a multiple of k) gives new layer i
 * (k <= i < K) the weights of layer i mod k: new layer i + k takes layer i's,
 * the paper's order, so the deeper model starts as the shallow one applied
 * K / k times over.
 *
 * With growth and sharing combined (`--grow-tied`), the copies a growth step
 * makes stay tied to the layer they were copied from, and the run's untie
 * criterion decides when to untie them, counting from that growth step
 * (`SinceGrowth`).
 */
import { UntieError } from '../errors.js';
import type { CheckStats, Criterion, Decision } from './criteria.js';
import type { Groups } from './plan.js';
import type { UntieStatistic } from './statistics.js';

/** One stage of a growth schedule: the depth, and when the stack grows to it. */
export interface GrowthStage {
  /** Layers in the stack from this stage on. */
  depth: number;
  /** A step-count run: grow after this many updates. */
  step?: number;
  /** A --budget run: grow once this fraction of the budget's seconds is spent. */
  fraction?: number;
}

export interface GrowthOptions {
  /** The stages in order, the first at 0 (the depth the run starts at), the last the full stack. */
  stages: GrowthStage[];
  /** The copies a growth step makes stay tied to the layer they were copied from, until the criterion unties them. */
  tied: boolean;
}

const EXAMPLE = '3@0,6@0.125,12@0.3';

/**
 * Parses `--grow`: comma-separated DEPTH@WHEN, WHEN a fraction of the run
 * (`6@0.125`) or a number of updates (`6@step:400`). Resolves a step-count
 * run's fractions to steps of `totalSteps`; a --budget run keeps fractions
 * (of its seconds) and takes no step:N. Every rule a schedule breaks is a
 * one-line UntieError, so a bad schedule fails before anything is written.
 */
export function parseGrowth(text: string, layers: number, run: { totalSteps: number; budget: boolean }): GrowthStage[] {
  const entries = text.split(',').map((e) => e.trim());
  const stages: GrowthStage[] = [];
  for (const entry of entries) {
    const m = /^(\d+)@(?:step:(\d+)|(\d*\.?\d+))$/.exec(entry);
    if (!m) throw new UntieError(`--grow "${text}": "${entry}" is not DEPTH@WHEN (WHEN: a fraction of the run, or step:N), e.g. ${EXAMPLE}`);
    const depth = Number(m[1]);
    if (depth < 1) throw new UntieError(`--grow: "${entry}" asks for ${depth} layers; a stage has at least one`);
    if (m[2] !== undefined) {
      if (run.budget) throw new UntieError(`--grow: "${entry}": a --budget run grows at fractions of its budget, not at step:N (e.g. ${depth}@0.3)`);
      const step = Number(m[2]);
      if (step >= run.totalSteps && stages.length > 0) throw new UntieError(`--grow: "${entry}" starts at or after the run's last step (${run.totalSteps}): a stage must start before the end`);
      stages.push({ depth, step });
    } else {
      const fraction = Number(m[3]);
      if (!(fraction < 1)) throw new UntieError(`--grow: "${entry}": a stage must start before the end of the run (a fraction below 1)`);
      stages.push(run.budget ? { depth, fraction } : { depth, step: Math.round(fraction * run.totalSteps) });
    }
  }
  if (stages.length < 2) throw new UntieError(`--grow "${text}" lists one depth, so nothing grows: list the depth the run starts at and each one it grows to, e.g. ${EXAMPLE}`);
  const when = (s: GrowthStage) => s.step ?? s.fraction!;
  if (when(stages[0]) !== 0) throw new UntieError(`--grow: the first entry is the depth the run starts at, so it is at 0 (${stages[0].depth}@0), not "${entries[0]}"`);
  for (let i = 1; i < stages.length; i++) {
    const [a, b] = [stages[i - 1], stages[i]];
    if (b.depth <= a.depth) throw new UntieError(`--grow: ${b.depth} layers after ${a.depth}: each stage must be deeper than the one before (stacking only adds layers)`);
    if (b.depth % a.depth !== 0) {
      throw new UntieError(`--grow: ${b.depth} layers is not a multiple of ${a.depth}: a growth step stacks copies of all ${a.depth} layers on top, so each depth must divide the next`);
    }
    if (when(b) <= when(a)) {
      const unit = b.step !== undefined ? ` (step ${b.step} after step ${a.step})` : '';
      throw new UntieError(`--grow: "${entries[i]}" does not start after "${entries[i - 1]}"${unit}: list the stages in the order they start, each later than the one before`);
    }
  }
  const last = stages[stages.length - 1].depth;
  if (last !== layers) throw new UntieError(`--grow ends at ${last} layers but the model has --layers ${layers}: the last entry is the full stack (e.g. ${layers}@0.3)`);
  return stages;
}

/** "3 -> 6 -> 12 layers at steps 0, 375, 900" (or "at 0, 12.5%, 30% of the budget"). */
export function describeGrowth(stages: GrowthStage[]): string {
  const depths = stages.map((s) => s.depth).join(' -> ');
  const budget = stages[0].fraction !== undefined;
  const at = stages.map((s) => (budget ? `${+(100 * s.fraction!).toFixed(2)}%` : String(s.step))).join(', ');
  return `${depths} layers at ${budget ? `${at} of the budget` : `steps ${at}`}`;
}

/**
 * Whether the stack grows to `stage` after update `step` (0-based, so
 * `step + 1` updates are done; `progress`: the fraction of a budget run now
 * spent): the first update that ends at or past the stage's start.
 */
export function growthDue(stage: GrowthStage, step: number, progress?: number): boolean {
  if (stage.fraction !== undefined) return progress !== undefined && progress >= stage.fraction;
  return step + 1 >= stage.step!;
}

/** The layer each position of a stack grown from `from` to `to` layers copies (the paper's order: i + from takes i). */
export function growthSource(position: number, from: number): number {
  return position % from;
}

/**
 * The run's untie criterion, counting from the latest growth step: `restart`
 * (at a growth step that makes tied copies) gives the criterion its fresh
 * state and makes that step its zero, so step:N unties N updates after the
 * growth, fraction:F after F of the run, adaptive checks every K updates
 * from it and meets its deadline that long after it.
 */
export class SinceGrowth implements Criterion {
  readonly kind: string;
  private readonly fresh: Record<string, unknown>;
  /** The update (0-based) that is the criterion's first, and the run's progress before it. */
  private start = 0;
  private startProgress = 0;

  constructor(readonly inner: Criterion) {
    this.kind = inner.kind;
    this.fresh = inner.getState();
  }

  get threshold(): number | undefined {
    return this.inner.threshold;
  }
  get statistic(): UntieStatistic | undefined {
    return this.inner.statistic;
  }
  get lastValues(): number[] | undefined {
    return this.inner.lastValues;
  }

  /** Counts from update `step` on (the first update at the new depth); `progress` is the run's before it. */
  restart(step: number, progress?: number): void {
    this.inner.setState(this.fresh);
    this.start = step;
    this.startProgress = progress ?? 0;
  }

  wantsStats(step: number, progress?: number): boolean {
    return this.inner.wantsStats(step - this.start, this.shift(progress));
  }

  decide(step: number, groups: Groups, stats: CheckStats | null, progress?: number): Decision {
    return this.inner.decide(step - this.start, groups, stats, this.shift(progress));
  }

  describe() {
    return { ...this.inner.describe(), countsFrom: 'the latest growth step' };
  }

  getState() {
    return { inner: this.inner.getState(), start: this.start, startProgress: this.startProgress };
  }

  setState(state: Record<string, unknown>) {
    const { inner, start, startProgress } = state;
    if (!Number.isSafeInteger(start) || (start as number) < 0 || typeof startProgress !== 'number' || !Number.isFinite(startProgress)) {
      throw new UntieError(`a saved growth criterion state needs "start" (a whole number of steps) and "startProgress" (a number), got ${JSON.stringify(state)?.slice(0, 80)}`);
    }
    if (typeof inner !== 'object' || inner === null) throw new UntieError('a saved growth criterion state has no "inner" criterion state');
    this.inner.setState(inner as Record<string, unknown>);
    this.start = start as number;
    this.startProgress = startProgress;
  }

  private shift(progress: number | undefined): number | undefined {
    return progress === undefined ? undefined : progress - this.startProgress;
  }
}
