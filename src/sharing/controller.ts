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
 *      copy of the old group's optimizer state (`untieOptimizer`: 'copy'; or
 *      that copy rescaled to the new group's gradient scale, 'rescale'; or a
 *      fresh state, 'reset'). Groups that do not split keep their state.
 *
 * With a growth schedule (progressive stacking, growth.ts) the stack runs at
 * an active depth: the first `depth` positions take part, the others hold no
 * group, no gradient and no optimizer state until a growth step, after an
 * update, copies the stack on top of itself (`grow`).
 *
 * Steps are 0-based update indices: afterUpdate(step) runs after update
 * `step`, so `step + 1` updates are complete. The criterion is also asked once
 * before the first update (as decide(-1, ...)), so `step:0` never updates tied.
 */
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CheckStats, Criterion, Decision, PairStat } from './criteria.js';
import { copyLayer, scaleMoments } from './copy.js';
import { growthDue, growthSource, SinceGrowth, type GrowthOptions } from './growth.js';
import { describeGroups, splitGroup, untieAll, validateGroups, type Groups } from './plan.js';

/** What a model declares: its repeated layers, each as (name within layer, tensor) pairs. */
export interface RepeatedStack {
  /** layers[i] lists position i's parameters; names and shapes agree across positions. */
  layers: [string, Tensor][][];
  /** Prefix that turns a name within layer i into the model's full name, e.g. i => `bert.encoder.layer.${i}.`. */
  prefix(position: number): string;
  /** Runs the model on the first `depth` layers only (a stack that can grow: see growth.ts). */
  setDepth?(depth: number): void;
}

/**
 * What a group that splits does with its optimizer state:
 * - 'copy': each new group continues the old group's state (moments, step count);
 * - 'rescale': the same copy with the moments rescaled, per tensor, by the
 *   ratio of the new group's gradient to the old group's on the untie step
 *   (m by r, v by r^2, r = ||g_new|| / ||g_shared||): the moments describe
 *   the shared (mean or sum) gradient, whose size differs from each layer's
 *   own, and without rescaling Adam's steps stay off by that ratio for about
 *   1 / (1 - beta2) steps. The next step itself is unchanged (m / sqrt(v) is);
 * - 'reset': each new group starts from a fresh state.
 */
export type UntieOptimizer = 'copy' | 'rescale' | 'reset';

export interface SharingOptions {
  groups: Groups;
  criterion: Criterion;
  /** 'mean' (the paper) or 'sum' (ALBERT's autograd). */
  sharedGrad: 'mean' | 'sum';
  /** At untying, and at a growth step that makes untied copies: what each copy's optimizer state is. */
  untieOptimizer: UntieOptimizer;
  /** Progressive stacking: `groups` are of the first stage's depth, and the stack grows on this schedule. */
  growth?: GrowthOptions;
}

/**
 * A record of something the controller did, for metrics.jsonl. `step` is the
 * 0-based update after which it happened (-1: before the first update).
 */
export type SharingEvent =
  | {
      type: 'sharing_check'; step: number; pairs: PairStat[]; below: number; threshold?: number; decision: Decision['action'];
      /** With an alternative statistic: its name and the per-pair values compared with the threshold. */
      statistic?: string; values?: number[];
    }
  | { type: 'untie' | 'split'; step: number; groups: Groups; description: string; reason?: string }
  /** A growth step from `from` to `to` layers; `reason` says when the copies are tied. */
  | { type: 'grow'; step: number; from: number; to: number; groups: Groups; description: string; reason?: string };

export interface SharingState {
  groups: Groups;
  criterion: Record<string, unknown>;
  /** With growth: the stack's active depth. */
  depth?: number;
  /** With growth and 'rescale': the (source, copy) layers of the growth step just made, whose copies' moments the next update rescales. */
  pendingRescale?: [number, number][];
}

/** The two norms of one step's gradient (see `gradNorms`). */
export interface GradNorms {
  /** Of the gradient the optimizer applies: a tied group counts once, with its reduced (mean or sum) gradient. */
  update: number;
  /** Of every layer's own gradient, as an untied model would see it: the same quantity before and after untying. */
  layers: number;
}

export class SharingController {
  groups: Groups;
  private pendingStats: CheckStats | null = null;
  /** Events that happened in beforeUpdate (the untie before the first update), returned by the next afterUpdate. */
  private pendingEvents: SharingEvent[] = [];
  /**
   * Of this step, measured in beforeUpdate for the members of tied groups:
   * each tensor's own gradient energy (sum of squares) before the reduction,
   * and each representative tensor's energy after it.
   */
  private ownSquares = new Map<Tensor, number>();
  private sharedSquares = new Map<Tensor, number>();
  /** With 'rescale': each tied representative's own gradient, kept before the reduction overwrites it. */
  private repOwnGrads = new Map<Tensor, Float32Array>();
  /** Positions in the stack, active or not. */
  readonly n: number;
  /** Positions that take part: the first `depth` (all n without growth). */
  depth: number;
  readonly criterion: Criterion;
  /** With growth and 'rescale': see SharingState.pendingRescale. */
  private pendingRescale: [number, number][] = [];

  constructor(readonly stack: RepeatedStack, readonly options: SharingOptions) {
    this.n = stack.layers.length;
    const growth = options.growth;
    this.depth = growth ? growth.stages[0].depth : this.n;
    if (this.n === 0) throw new UntieError('a repeated stack needs at least one layer');
    const names = stack.layers[0].map(([name]) => name).join('|');
    for (const layer of stack.layers) {
      if (layer.map(([name]) => name).join('|') !== names) throw new UntieError('the layers of a repeated stack must have the same parameters');
      layer.forEach(([name, t], j) => {
        const ref = stack.layers[0][j][1];
        if (t.shape.join() !== ref.shape.join()) throw new UntieError(`parameter ${name} differs in shape across the stack`);
      });
    }
    if (growth) {
      const depths = growth.stages.map((s) => s.depth);
      if (depths[depths.length - 1] !== this.n) throw new UntieError(`a growth schedule ends at ${depths[depths.length - 1]} layers, but the stack has ${this.n}`);
      if (!stack.setDepth) throw new UntieError('this model\'s stack cannot run at a depth below its own, so it cannot grow');
      stack.setDepth(this.depth);
    }
    validateGroups(options.groups, this.depth);
    // With tied growth the criterion counts from the latest growth step.
    this.criterion = growth?.tied ? new SinceGrowth(options.criterion) : options.criterion;
    if (options.sharedGrad !== 'mean' && options.sharedGrad !== 'sum') throw new UntieError(`sharedGrad must be "mean" or "sum", got "${String(options.sharedGrad)}"`);
    if (!['copy', 'rescale', 'reset'].includes(options.untieOptimizer)) {
      throw new UntieError(`untieOptimizer must be "copy", "rescale" or "reset", got "${String(options.untieOptimizer)}"`);
    }
    this.groups = options.groups.map((g) => [...g]);
  }

  /** True while some group has more than one member. */
  get tied(): boolean {
    return this.groups.some((g) => g.length > 1);
  }

  /** Makes every member hold its representative's weights (the "one random draw, copied" init). */
  tieWeights(): void {
    for (const g of this.groups) for (const pos of g.slice(1)) copyLayer(this.stack, g[0], pos);
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
   * `step` (0-based). Before the first update, asks the criterion whether to
   * untie at once (step:0). Measures the pair statistics when the criterion
   * asks, then reduces each group's gradients into its representative.
   * `optimizer`: needed by the update after a growth step with 'rescale'.
   */
  beforeUpdate(step: number, progress?: number, optimizer?: Optimizer): void {
    if (step === 0 && this.tied) this.untieBeforeFirstUpdate(progress);
    this.ownSquares.clear();
    this.sharedSquares.clear();
    this.repOwnGrads.clear();
    const K = kernels();
    for (const g of this.groups) {
      if (g.length > 1) for (const pos of g) this.stack.layers[pos].forEach(([name, t]) => this.ownSquares.set(t, K.sumSquares(this.requireGrad(t, name, pos))));
    }
    this.pendingStats = this.tied && this.criterion.wantsStats(step, progress) ? this.measure(step, this.ownSquares) : null;
    for (const g of this.groups) {
      if (g.length === 1) continue;
      const rep = this.stack.layers[g[0]];
      rep.forEach(([, t], j) => {
        const repGrad = t.grad!;
        if (this.options.untieOptimizer === 'rescale') this.repOwnGrads.set(t, repGrad.slice());
        for (const pos of g.slice(1)) K.axpy(repGrad, this.stack.layers[pos][j][1].grad!, 1);
        if (this.options.sharedGrad === 'mean') K.scale(repGrad, 1 / g.length, repGrad);
        this.sharedSquares.set(t, K.sumSquares(repGrad));
      });
    }
    if (this.pendingRescale.length > 0) this.rescaleGrown(optimizer);
  }

  /**
   * 'rescale' after a growth step: each copy's moments (a copy of its
   * source's) are rescaled, per tensor, by the ratio of the copy's own
   * gradient to the gradient its source's state describes (the source
   * group's reduced one), both of this, the first update at the new depth:
   * the analogue of untying's rescale, which a growth step itself cannot make
   * (the copies have no gradient before they first run).
   */
  private rescaleGrown(optimizer: Optimizer | undefined): void {
    if (!optimizer) throw new UntieError('the update after a growth step with untieOptimizer \'rescale\' needs the optimizer: pass it to beforeUpdate');
    const K = kernels();
    for (const [source, copy] of this.pendingRescale) {
      const rep = this.stack.layers[this.groups.find((g) => g.includes(source))![0]];
      this.stack.layers[copy].forEach(([name, t], j) => {
        const own = K.sumSquares(this.requireGrad(t, name, copy));
        const repTensor = rep[j][1];
        const described = this.sharedSquares.get(repTensor) ?? K.sumSquares(this.requireGrad(repTensor, name, source));
        scaleMoments(optimizer, t, own > 0 && described > 0 ? Math.sqrt(own / described) : 1);
      });
    }
    this.pendingRescale = [];
  }

  /**
   * Before the first update no optimizer state exists yet, so untying there
   * moves no state: it only makes every layer its own group.
   */
  private untieBeforeFirstUpdate(progress?: number): void {
    const decision = this.criterion.decide(-1, this.groups, null, progress);
    if (decision.action !== 'untie') return;
    this.groups = untieAll(this.groups);
    this.pendingEvents.push({ type: 'untie', step: -1, groups: this.groups, description: describeGroups(this.groups), reason: decision.reason });
  }

  /** A tied member without a gradient would silently shrink the group's mean: refuse it. */
  private requireGrad(t: Tensor, name: string, position: number): Float32Array {
    if (!t.grad) {
      throw new UntieError(`tied parameter ${this.stack.prefix(position)}${name} has no gradient: every member of a tied group must take part in the forward pass (was backward() called?)`);
    }
    return t.grad;
  }

  /**
   * Norms of this step's gradient over `params` (the trainable tensors), after
   * beforeUpdate. Gradient clipping can bound either; while layers are tied
   * `update` is the smaller one (a mean of n gradients that agree only
   * partly), and at untying it jumps to `layers`.
   */
  gradNorms(params: Tensor[]): GradNorms {
    const K = kernels();
    let update = 0, layers = 0;
    for (const p of params) {
      if (!p.grad) continue;
      const sq = K.sumSquares(p.grad);
      update += sq;
      if (!this.sharedSquares.has(p)) layers += sq;
    }
    for (const sq of this.ownSquares.values()) layers += sq;
    return { update: Math.sqrt(update), layers: Math.sqrt(layers) };
  }

  /**
   * Cosine similarities of adjacent group members' gradients, per tensor and
   * pooled: the pooled value is the cosine of the two layers' whole gradients
   * (all tensors concatenated). `norms`: each member tensor's gradient
   * energy (sum of squares) where already known this step; the rest are
   * computed into it.
   */
  measure(step: number, norms = new Map<Tensor, number>()): CheckStats {
    const K = kernels();
    const sq = (t: Tensor, name: string, pos: number) => {
      let v = norms.get(t);
      if (v === undefined) norms.set(t, (v = K.sumSquares(this.requireGrad(t, name, pos))));
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
          const na = sq(ta, name, g[i]), nb = sq(tb, name, g[i + 1]);
          const d = K.dot(ta.grad!, tb.grad!);
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
    this.tieWeights();
    const stats = this.pendingStats;
    this.pendingStats = null;
    const events = this.pendingEvents;
    this.pendingEvents = [];
    if (this.tied) this.decide(step, optimizer, stats, events, progress);
    const grown = this.options.growth ? this.growIfDue(step, optimizer, progress) : null;
    if (grown) events.push(grown);
    return events;
  }

  /** Asks the criterion about update `step` and unties or splits as it says, logging into `events`. */
  private decide(step: number, optimizer: Optimizer, stats: CheckStats | null, events: SharingEvent[], progress?: number): void {
    const decision = this.criterion.decide(step, this.groups, stats, progress);
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
  }

  /** After update `step`: grows the stack to the next stage of the growth schedule if it is due. */
  private growIfDue(step: number, optimizer: Optimizer, progress?: number): SharingEvent | null {
    const next = this.options.growth!.stages.find((s) => s.depth > this.depth);
    if (!next || !growthDue(next, step, progress)) return null;
    const from = this.depth;
    this.grow(next.depth, optimizer);
    if (this.criterion instanceof SinceGrowth) this.criterion.restart(step + 1, progress);
    const tied = this.options.growth!.tied;
    return { type: 'grow', step, from, to: this.depth, groups: this.groups, description: `${this.depth} layers: ${describeGroups(this.groups)}`, ...(tied ? { reason: 'tied copies' } : {}) };
  }

  /**
   * A growth step to `depth` layers (a multiple of the current depth k): new
   * layer i takes layer (i mod k)'s tensors (copyLayer). Tied growth puts it
   * in its source's group, whose state serves it; untied growth makes it its
   * own group with a copy of the source group's state ('copy'; 'rescale':
   * the same, rescaled at the next update, see rescaleGrown; 'reset': none).
   */
  grow(depth: number, optimizer: Optimizer): void {
    const from = this.depth;
    if (!Number.isInteger(depth) || depth <= from || depth > this.n || depth % from !== 0) {
      throw new UntieError(`the stack cannot grow from ${from} to ${depth} layers: the new depth must be a multiple of ${from}, at most ${this.n}`);
    }
    const groups = this.groups.map((g) => [...g]);
    const groupOf = (pos: number) => groups.find((g) => g.includes(pos))!;
    const rule = this.options.untieOptimizer;
    for (let pos = from; pos < depth; pos++) {
      const source = growthSource(pos, from);
      if (this.options.growth?.tied) {
        copyLayer(this.stack, source, pos);
        groupOf(source).push(pos);
        continue;
      }
      copyLayer(this.stack, source, pos, { optimizer, rule: rule === 'reset' ? 'reset' : 'copy', stateFrom: groupOf(source)[0] });
      groups.push([pos]);
      if (rule === 'rescale') this.pendingRescale.push([source, pos]);
    }
    validateGroups(groups, depth);
    this.groups = groups.sort((a, b) => a[0] - b[0]);
    this.depth = depth;
    this.stack.setDepth?.(depth);
  }

  /**
   * Moves to `next` groups (each a subset of an old group). A group that
   * splits hands its optimizer state to each of its parts, as
   * `untieOptimizer` says; a group that does not split keeps its own.
   * 'rescale' uses the gradients of the step just taken (call it after
   * beforeUpdate of that step, as afterUpdate does).
   */
  regroup(next: Groups, optimizer: Optimizer): void {
    validateGroups(next, this.depth);
    const oldGroupOf = new Map<number, number[]>();
    for (const g of this.groups) for (const p of g) oldGroupOf.set(p, g);
    const parts: { part: number[]; old: number[] }[] = [];
    for (const g of next) {
      const old = oldGroupOf.get(g[0])!;
      for (const p of g) if (oldGroupOf.get(p) !== old) throw new UntieError('a regrouping may only split groups, not merge them');
      if (old.length !== g.length) parts.push({ part: g, old }); // else the same group: same representative, same state
    }
    // A splitting group's representative is also its first part's: hand the
    // state to the other parts first, so every copy reads it as it was.
    parts.sort((a, b) => Number(a.part[0] === a.old[0]) - Number(b.part[0] === b.old[0]));
    const rule = this.options.untieOptimizer;
    for (const { part, old } of parts) {
      copyLayer(this.stack, old[0], part[0], {
        optimizer, rule: rule === 'reset' ? 'reset' : 'copy',
        scale: rule === 'rescale' ? (j, name) => this.rescaleRatio(old, part, j, name) : undefined,
      });
    }
    this.groups = next.map((g) => [...g]);
  }

  /**
   * ||g_new|| / ||g_shared|| for tensor j: the gradient part `g` of old group
   * `old` would have received on this step (its members' own gradients,
   * reduced by the same rule) over the one the old group did receive.
   */
  private rescaleRatio(old: number[], g: number[], j: number, name: string): number {
    const K = kernels();
    const repTensor = this.stack.layers[old[0]][j][1];
    const shared = this.sharedSquares.get(repTensor);
    const own = (pos: number): Float32Array | undefined => {
      const t = this.stack.layers[pos][j][1];
      return pos === old[0] ? this.repOwnGrads.get(t) : (t.grad ?? undefined);
    };
    if (shared === undefined || g.some((pos) => own(pos) === undefined)) {
      throw new UntieError(`untieOptimizer 'rescale' needs the gradients of the step that unties (${this.stack.prefix(g[0])}${name}): call regroup after beforeUpdate of that step`);
    }
    let energy: number;
    if (g.length === 1) {
      energy = K.sumSquares(own(g[0])!);
    } else {
      const reduced = own(g[0])!.slice();
      for (const pos of g.slice(1)) K.axpy(reduced, own(pos)!, 1);
      if (this.options.sharedGrad === 'mean') K.scale(reduced, 1 / g.length, reduced);
      energy = K.sumSquares(reduced);
    }
    return shared > 0 && energy > 0 ? Math.sqrt(energy / shared) : 1;
  }

  getState(): SharingState {
    return {
      groups: this.groups.map((g) => [...g]), criterion: this.criterion.getState(),
      ...(this.options.growth ? { depth: this.depth } : {}),
      ...(this.pendingRescale.length > 0 ? { pendingRescale: this.pendingRescale.map(([a, b]) => [a, b] as [number, number]) } : {}),
    };
  }

  setState(state: SharingState): void {
    const growth = this.options.growth;
    const depth = state.depth ?? this.n;
    if (growth ? !growth.stages.some((s) => s.depth === depth) : depth !== this.n) {
      const depths = growth ? growth.stages.map((s) => s.depth).join(', ') : String(this.n);
      throw new UntieError(`the saved sharing state is at depth ${JSON.stringify(state.depth)}, which this run's stack never has (${depths} layers): the state belongs to another run`);
    }
    validateGroups(state.groups, depth);
    const pending = state.pendingRescale ?? [];
    for (const pair of pending) {
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => Number.isSafeInteger(p) && p >= 0 && p < depth)) {
        throw new UntieError(`the saved sharing state's pendingRescale holds ${JSON.stringify(pair)?.slice(0, 40)}, not a pair of layer positions below ${depth}`);
      }
    }
    this.groups = state.groups.map((g) => [...g]);
    this.criterion.setState(state.criterion);
    this.depth = depth;
    this.pendingRescale = pending.map(([a, b]) => [a, b]);
    if (growth) this.stack.setDepth?.(depth);
  }
}

function cosine(dot: number, aSq: number, bSq: number): number {
  const denom = Math.sqrt(aSq) * Math.sqrt(bSq);
  return denom > 0 ? dot / denom : 0;
}
