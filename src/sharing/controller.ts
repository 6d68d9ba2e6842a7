/**
 * The sharing controller: the method of method.md, for any model that
 * declares a stack of repeated layers.
 *
 * Every layer position keeps its own parameter tensors, so each layer's
 * gradient is readable after an ordinary backward pass. Tying is enforced by
 * the update instead of by aliasing:
 *   1. beforeUpdate: on check steps, measure how the adjacent members of each
 *      group agree (cosine of their gradients); then write the group's mean
 *      (or sum) gradient into its first member, the group's representative.
 *   2. the optimizer updates the representatives (and every untied tensor);
 *      one optimizer state serves a group.
 *   3. afterUpdate: copy each representative's new weights to the other
 *      members (so tied layers stay bit-identical), then let the criterion
 *      decide; on untie or split, each new group's representative gets its own
 *      copy of the old group's optimizer state (or a fresh one with
 *      `untieOptimizer: 'reset'`).
 */
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CheckStats, Criterion, Decision, PairStat } from './criteria.js';
import { describeGroups, splitGroup, untieAll, validateGroups, type Groups } from './plan.js';

/** What a model declares: its repeated layers, each as (name within layer, tensor) pairs. */
export interface RepeatedStack {
  /** layers[i] lists position i's parameters; names and shapes agree across positions. */
  layers: [string, Tensor][][];
  /** Prefix that turns a name within layer i into the model's full name, e.g. i => `bert.encoder.layer.${i}.`. */
  prefix(position: number): string;
}

export interface SharingOptions {
  groups: Groups;
  criterion: Criterion;
  /** 'mean' (the paper) or 'sum' (ALBERT's autograd). */
  sharedGrad: 'mean' | 'sum';
  /** 'copy' (default: each member continues the group's optimizer state) or 'reset'. */
  untieOptimizer: 'copy' | 'reset';
}

/** A record of something the controller did, for metrics.jsonl. */
export type SharingEvent =
  | {
      type: 'sharing_check'; step: number; pairs: PairStat[]; below: number; threshold?: number; decision: Decision['action'];
      /** With an alternative statistic: its name and the per-pair values compared with the threshold. */
      statistic?: string; values?: number[];
    }
  | { type: 'untie' | 'split'; step: number; groups: Groups; description: string; reason?: string };

export interface SharingState {
  groups: Groups;
  criterion: Record<string, unknown>;
}

export class SharingController {
  groups: Groups;
  private pendingStats: CheckStats | null = null;
  readonly n: number;

  constructor(readonly stack: RepeatedStack, readonly options: SharingOptions) {
    this.n = stack.layers.length;
    if (this.n === 0) throw new UntieError('a repeated stack needs at least one layer');
    const names = stack.layers[0].map(([name]) => name).join('|');
    for (const layer of stack.layers) {
      if (layer.map(([name]) => name).join('|') !== names) throw new UntieError('the layers of a repeated stack must have the same parameters');
      layer.forEach(([name, t], j) => {
        const ref = stack.layers[0][j][1];
        if (t.shape.join() !== ref.shape.join()) throw new UntieError(`parameter ${name} differs in shape across the stack`);
      });
    }
    validateGroups(options.groups, this.n);
    this.groups = options.groups.map((g) => [...g]);
  }

  get criterion(): Criterion {
    return this.options.criterion;
  }

  /** True while some group has more than one member. */
  get tied(): boolean {
    return this.groups.some((g) => g.length > 1);
  }

  /** Makes every member hold its representative's weights (the "one random draw, copied" init). */
  tieWeights(): void {
    for (const g of this.groups) {
      const rep = this.stack.layers[g[0]];
      for (const pos of g.slice(1)) this.stack.layers[pos].forEach(([, t], j) => t.data.set(rep[j][1].data));
    }
  }

  /** Positions whose tensors the optimizer updates: each group's first member. */
  private representatives(): Set<number> {
    return new Set(this.groups.map((g) => g[0]));
  }

  /**
   * Of the model's parameters, those the optimizer should update this step:
   * everything outside the stack, and the representatives' tensors.
   */
  trainable(all: [string, Tensor][]): [string, Tensor][] {
    const reps = this.representatives();
    const excluded = new Set<Tensor>();
    this.stack.layers.forEach((layer, pos) => {
      if (!reps.has(pos)) for (const [, t] of layer) excluded.add(t);
    });
    return all.filter(([, t]) => !excluded.has(t));
  }

  /** Parameters in the model as the plan counts them: tied groups once. */
  uniqueParameterCount(all: [string, Tensor][]): number {
    return this.trainable(all).reduce((n, [, t]) => n + t.size, 0);
  }

  /**
   * Call after backward, before clipping and the optimizer step of update
   * `step` (0-based). Measures the pair statistics when the criterion asks,
   * then reduces each group's gradients into its representative.
   */
  beforeUpdate(step: number, progress?: number): void {
    this.pendingStats = this.tied && this.criterion.wantsStats(step, progress) ? this.measure(step) : null;
    const K = kernels();
    for (const g of this.groups) {
      if (g.length === 1) continue;
      const rep = this.stack.layers[g[0]];
      rep.forEach(([name, t], j) => {
        if (!t.grad) throw new UntieError(`tied parameter ${name} of layer ${g[0]} has no gradient: was backward() called?`);
        for (const pos of g.slice(1)) {
          const other = this.stack.layers[pos][j][1];
          if (other.grad) K.axpy(t.grad, other.grad, 1);
        }
        if (this.options.sharedGrad === 'mean') K.scale(t.grad, 1 / g.length, t.grad);
      });
    }
  }

  /** Cosine similarities of adjacent group members' gradients (per tensor and pooled). */
  measure(step: number): CheckStats {
    const K = kernels();
    const norms = new Map<Tensor, number>();
    const sq = (t: Tensor) => {
      let v = norms.get(t);
      if (v === undefined) norms.set(t, (v = t.grad ? K.sumSquares(t.grad) : 0));
      return v;
    };
    const pairs: PairStat[] = [];
    for (const g of this.groups) {
      for (let i = 0; i + 1 < g.length; i++) {
        const A = this.stack.layers[g[i]], B = this.stack.layers[g[i + 1]];
        let dotSum = 0, aSum = 0, bSum = 0;
        const perTensor: Record<string, number> = {};
        A.forEach(([name, ta], j) => {
          const tb = B[j][1];
          const d = ta.grad && tb.grad ? K.dot(ta.grad, tb.grad) : 0;
          const na = sq(ta), nb = sq(tb);
          perTensor[name] = cosine(d, na, nb);
          dotSum += d;
          aSum += na;
          bSum += nb;
        });
        pairs.push({ a: g[i], b: g[i + 1], cosine: cosine(dotSum, aSum, bSum), perTensor });
      }
    }
    return { step, pairs };
  }

  /**
   * Call after the optimizer step of update `step`. Copies representatives to
   * members, asks the criterion, and unties or splits. Returns what happened.
   */
  afterUpdate(step: number, optimizer: Optimizer, progress?: number): SharingEvent[] {
    for (const g of this.groups) {
      const rep = this.stack.layers[g[0]];
      for (const pos of g.slice(1)) this.stack.layers[pos].forEach(([, t], j) => t.data.set(rep[j][1].data));
    }
    const stats = this.pendingStats;
    this.pendingStats = null;
    if (!this.tied) return [];
    const decision = this.criterion.decide(step, this.groups, stats, progress);
    const events: SharingEvent[] = [];
    if (stats) {
      const threshold = this.criterion.threshold;
      const statistic = this.criterion.statistic;
      const values = statistic ? this.criterion.lastValues : undefined;
      const compared = values ?? stats.pairs.map((p) => p.cosine);
      const below = threshold === undefined ? 0 : compared.filter((v) => v < threshold).length;
      events.push({ type: 'sharing_check', step, pairs: stats.pairs, below, threshold, decision: decision.action, ...(statistic ? { statistic, values } : {}) });
    }
    if (decision.action === 'untie') {
      this.regroup(untieAll(this.groups), optimizer);
      events.push({ type: 'untie', step, groups: this.groups, description: describeGroups(this.groups), reason: decision.reason });
    } else if (decision.action === 'split') {
      const next: Groups = [];
      for (const g of this.groups) {
        const cuts = decision.between.filter(([a, b]) => g.includes(a) && g.indexOf(b) === g.indexOf(a) + 1).map(([, b]) => g.indexOf(b));
        next.push(...splitGroup(g, cuts));
      }
      this.regroup(next, optimizer);
      events.push({ type: 'split', step, groups: this.groups, description: describeGroups(this.groups), reason: 'correlation' });
    }
    return events;
  }

  /**
   * Moves to `next` groups (each a subset of an old group). Every new group's
   * representative takes a copy of its old group's optimizer state.
   */
  regroup(next: Groups, optimizer: Optimizer): void {
    validateGroups(next, this.n);
    const oldRep = new Map<number, number>();
    for (const g of this.groups) for (const p of g) oldRep.set(p, g[0]);
    for (const g of next) {
      const from = oldRep.get(g[0])!;
      for (const other of g.slice(1)) {
        if (oldRep.get(other) !== from) throw new UntieError('a regrouping may only split groups, not merge them');
      }
      if (from === g[0] || this.options.untieOptimizer === 'reset') continue;
      this.stack.layers[g[0]].forEach(([, t], j) => {
        const src = this.stack.layers[from][j][1];
        if (optimizer.hasState(src)) {
          const s = optimizer.stateOf(src);
          optimizer.setState(t, { step: s.step, m: s.m.slice(), v: s.v.slice() });
        }
      });
    }
    if (this.options.untieOptimizer === 'reset') {
      for (const g of next) this.stack.layers[g[0]].forEach(([, t]) => optimizer.deleteState(t));
    }
    this.groups = next.map((g) => [...g]);
  }

  getState(): SharingState {
    return { groups: this.groups.map((g) => [...g]), criterion: this.criterion.getState() };
  }

  setState(state: SharingState): void {
    validateGroups(state.groups, this.n);
    this.groups = state.groups.map((g) => [...g]);
    this.criterion.setState(state.criterion);
  }
}

function cosine(dot: number, aSq: number, bSq: number): number {
  const denom = Math.sqrt(aSq) * Math.sqrt(bSq);
  return denom > 0 ? dot / denom : 0;
}
