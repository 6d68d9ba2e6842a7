/**
 * Deep linear networks, simulated: the experiment behind `untie linear`.
 *
 * method.md section 3 argues for sharing with theorems about f(x) = W_L..W_1 x
 * trained on R = 1/2 ||W_L..W_1 - Phi||_F^2. Here the same DeepLinearNetwork
 * is trained untied, always shared, and with SWE-A, by the same
 * SharingController that ties BERT's layers (no second implementation of
 * tying), and we count gradient-descent updates until R <= eps * R(0).
 *
 * Two studies per target:
 * - `search`: each method and depth gets its own learning rate from a small
 *   grid (the issue's request: the best each method can do at each depth);
 * - `equal-lr`: every method and depth at one common, small learning rate
 *   (the gradient-flow regime the theorems' rates describe, where "steps" is
 *   time / lr).
 * Everything is deterministic given the seeds. Nothing here prints.
 */
import { UntieError } from '../errors.js';
import { DeepLinearNetwork, identity64, matMul64, type LinearInit } from '../models/linear.js';
import { Optimizer, defaultOptimizerConfig } from '../optim/optimizers.js';
import { SharingController } from '../sharing/controller.js';
import { AdaptiveCriterion, NeverCriterion, type AdaptiveOptions } from '../sharing/criteria.js';
import { parseShare, planGroups } from '../sharing/plan.js';
import { Rng } from '../tensor/rng.js';
import { Tensor, backward, clearTape } from '../tensor/tensor.js';

// ------------------------------------------------------------------ targets

/**
 * - `near`: symmetric PD, eigenvalues uniform in [0.8, 1.2] (Phi^{1/L} is a shared solution);
 * - `far`: symmetric PD, eigenvalues log-uniform in [0.2, 5];
 * - `negdet`: `near` with one eigenvalue negated (symmetric, det < 0: for even L
 *   no real W has W^L = Phi, since det(W^L) = det(W)^L >= 0);
 * - `negdet-asym`: a Householder reflection times a `near` matrix (det < 0 and
 *   not symmetric, so the layers' gradients can disagree while shared).
 */
export const TARGET_KINDS = ['near', 'far', 'negdet', 'negdet-asym'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export interface Target {
  kind: TargetKind;
  seed: number;
  d: number;
  /** Phi, row-major d x d, float64. */
  phi: Float64Array;
  /** Eigenvalues of the symmetric factor (for negdet-asym: of the PD factor before the reflection). */
  eigenvalues: number[];
  det: number;
  symmetric: boolean;
}

/** A Haar-ish random orthogonal matrix: Gram-Schmidt on Gaussian rows (rows are the basis). */
function randomOrthogonal(d: number, rng: Rng): Float64Array {
  const q = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (;;) {
      const v = new Float64Array(d);
      for (let k = 0; k < d; k++) v[k] = rng.normal();
      for (let j = 0; j < i; j++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += v[k] * q[j * d + k];
        for (let k = 0; k < d; k++) v[k] -= dot * q[j * d + k];
      }
      let n = 0;
      for (let k = 0; k < d; k++) n += v[k] * v[k];
      n = Math.sqrt(n);
      if (n < 1e-6) continue; // a (vanishingly rare) degenerate draw: redraw
      for (let k = 0; k < d; k++) q[i * d + k] = v[k] / n;
      break;
    }
  }
  return q;
}

/** Q^T diag(eigs) Q for Q with orthonormal rows. */
function symmetricFrom(eigs: number[], q: Float64Array, d: number): Float64Array {
  const m = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const e = eigs[k];
    for (let i = 0; i < d; i++) {
      const a = e * q[k * d + i];
      for (let j = 0; j < d; j++) m[i * d + j] += a * q[k * d + j];
    }
  }
  return m;
}

/**
 * Phi for `kind`, drawn deterministically from `seed` (eigenvalues and
 * eigenbasis both depend on it, so seeds give genuinely different problems).
 */
export function buildTarget(kind: TargetKind, d: number, seed: number): Target {
  if (!TARGET_KINDS.includes(kind)) throw new UntieError(`unknown target "${String(kind)}": use one of ${TARGET_KINDS.join(', ')}`);
  const rng = Rng.derive(seed, `linear-target:${kind}`);
  const eigs: number[] = [];
  for (let i = 0; i < d; i++) {
    const u = rng.uniform();
    eigs.push(kind === 'far' ? 0.2 * Math.pow(25, u) : 0.8 + 0.4 * u);
  }
  eigs.sort((a, b) => a - b);
  if (kind === 'negdet') eigs[rng.int(d)] *= -1;
  const q = randomOrthogonal(d, rng);
  let phi = symmetricFrom(eigs, q, d);
  let det = eigs.reduce((p, e) => p * e, 1);
  if (kind === 'negdet-asym') {
    // H = I - 2 v v^T with a random unit v: det H = -1.
    const v = randomOrthogonal(d, rng).subarray(0, d);
    const h = identity64(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) h[i * d + j] -= 2 * v[i] * v[j];
    phi = matMul64(h, phi, d);
    det = -det;
  }
  return { kind, seed, d, phi, eigenvalues: eigs, det, symmetric: kind !== 'negdet-asym' };
}

// ------------------------------------------------------------------ methods

/**
 * What is trained. `untied` uses Wu et al.'s zero-asymmetric init (the
 * setting of the no-sharing theorem); `untied-identity` starts untied from the
 * identity (by Lemma 1 it then stays exactly shared on a symmetric target);
 * `shared` and `swe-a` start tied from the identity.
 */
export const VARIANTS = ['untied', 'untied-identity', 'shared', 'swe-a'] as const;
export type Variant = (typeof VARIANTS)[number];

export function variantLabel(v: Variant): string {
  return v === 'untied' ? 'untied (zero-asym init)' : v === 'untied-identity' ? 'untied (identity init)' : v === 'shared' ? 'shared (always)' : 'SWE-A';
}

export function variantMethod(v: Variant): 'untied' | 'shared' | 'swe-a' {
  return v === 'untied-identity' ? 'untied' : v;
}

export function variantInit(v: Variant): LinearInit {
  return v === 'untied' ? 'zero-asymmetric' : 'identity';
}

export interface LinearConfig {
  depths: number[];
  d: number;
  /** Seeds; each draws its own Phi. The lr search scores every seed. */
  seeds: number[];
  eps: number;
  maxSteps: number;
  targets: TargetKind[];
  variants: Variant[];
  /** 'gd': plain gradient descent (the theorems); 'adam': AdamW without weight decay. */
  optimizer: 'gd' | 'adam';
  /** Learning rates tried by the search, any order (scanned from largest to smallest). */
  lrGrid: number[];
  /** The common learning rate of the equal-lr study; null skips the study. */
  equalLr: number | null;
  /** SWE-A: check every K updates, untie when most adjacent cosines are below rho at C consecutive checks. */
  swe: AdaptiveOptions;
  /** Updates over which the per-layer gradients of identity-init runs are compared (Lemma 1). */
  lemmaSteps: number;
  /** A run stops as diverged once R > divergeFactor * R(0) or R is not finite. */
  divergeFactor: number;
}

/** Learning rates 2^0, 2^-1, ..., 2^-k. */
export function powersOfTwo(from: number, to: number): number[] {
  const out: number[] = [];
  for (let e = from; e >= to; e--) out.push(Math.pow(2, e));
  return out;
}

export function defaultLinearConfig(): LinearConfig {
  return {
    depths: [2, 4, 8, 16, 32],
    d: 16,
    seeds: [0, 1],
    eps: 1e-3,
    maxSteps: 1500,
    targets: ['near', 'far', 'negdet'],
    variants: [...VARIANTS],
    optimizer: 'gd',
    lrGrid: powersOfTwo(0, -10),
    equalLr: Math.pow(2, -9),
    // The paper's rho = 0.5 and C = 3; K = 1k of 500k steps there, 10 here,
    // where runs last tens to thousands of updates.
    swe: { threshold: 0.5, patience: 3, every: 10 },
    lemmaSteps: 20,
    divergeFactor: 1e4,
  };
}

/** Adam's step sizes live elsewhere: the grid used when --optimizer adam and no grid is given. */
export function defaultAdamGrid(): number[] {
  return powersOfTwo(-2, -12);
}

export function validateLinearConfig(c: LinearConfig): void {
  if (c.depths.length === 0) throw new UntieError('give at least one depth L');
  for (const L of c.depths) if (!Number.isInteger(L) || L < 2) throw new UntieError(`every depth L must be a whole number >= 2, got ${L}`);
  if (!Number.isInteger(c.d) || c.d < 1) throw new UntieError(`d must be a whole number >= 1, got ${c.d}`);
  if (c.seeds.length === 0) throw new UntieError('give at least one seed');
  if (!(c.eps > 0 && c.eps < 1)) throw new UntieError(`eps must be in (0, 1), got ${c.eps}`);
  if (!Number.isInteger(c.maxSteps) || c.maxSteps < 1) throw new UntieError(`max steps must be a whole number >= 1, got ${c.maxSteps}`);
  if (c.targets.length === 0) throw new UntieError('give at least one target');
  for (const t of c.targets) if (!TARGET_KINDS.includes(t)) throw new UntieError(`unknown target "${t}": use one of ${TARGET_KINDS.join(', ')}`);
  for (const v of c.variants) if (!VARIANTS.includes(v)) throw new UntieError(`unknown method "${v}": use one of ${VARIANTS.join(', ')}`);
  if (c.lrGrid.length === 0 || c.lrGrid.some((lr) => !(lr > 0) || !Number.isFinite(lr))) throw new UntieError('the learning-rate grid needs positive numbers');
  if (c.equalLr !== null && !(c.equalLr > 0)) throw new UntieError(`the equal learning rate must be positive, got ${c.equalLr}`);
  if (c.optimizer !== 'gd' && c.optimizer !== 'adam') throw new UntieError(`optimizer must be gd or adam, got "${String(c.optimizer)}"`);
}

// ------------------------------------------------------------------ one run

export interface RunSpec {
  target: Target;
  variant: Variant;
  L: number;
  lr: number;
  eps: number;
  maxSteps: number;
  optimizer: 'gd' | 'adam';
  swe: AdaptiveOptions;
  lemmaSteps?: number;
  divergeFactor?: number;
  /** Give up (as "not reached") after this many updates: the search's cut-off. Defaults to maxSteps. */
  cap?: number;
}

export interface RunResult {
  variant: Variant;
  method: 'untied' | 'shared' | 'swe-a';
  init: LinearInit;
  L: number;
  seed: number;
  lr: number;
  /** Updates made until R <= eps * R(0); null if never within the cap. */
  stepsToEps: number | null;
  /** Updates made in all. */
  steps: number;
  r0: number;
  /** R / R(0) when the run stopped. */
  finalRatio: number;
  diverged: boolean;
  /** SWE-A: updates made tied before untying (null: never untied). */
  untieStep: number | null;
  /** SWE-A: the smallest adjacent-layer gradient cosine seen at a check (null: no check). */
  minCosine: number | null;
  /** Largest ||g_l - g_1|| / ||g_1|| over layers and the first lemmaSteps updates (identity-init runs). */
  lemma1Spread: number | null;
  /** (updates made, R / R(0)), thinned to about 150 points. */
  curve: [number, number][];
}

function makeOptimizer(kind: 'gd' | 'adam'): Optimizer {
  return new Optimizer(kind === 'gd' ? { ...defaultOptimizerConfig(), kind: 'sgd', weightDecay: 0 } : { ...defaultOptimizerConfig(), kind: 'adamw', weightDecay: 0, eps: 1e-8 });
}

/** ||a - b|| / ||b|| in float64. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] * b[i];
  }
  return den > 0 ? Math.sqrt(num / den) : num > 0 ? Infinity : 0;
}

/**
 * Trains one deep linear network. The loop is the library's training step:
 * zero grads, loss, backward, controller.beforeUpdate, optimizer step on the
 * controller's trainable tensors, controller.afterUpdate.
 */
export function runLinear(spec: RunSpec): RunResult {
  const { target, variant, L, lr, eps } = spec;
  const d = target.d;
  const cap = Math.min(spec.cap ?? spec.maxSteps, spec.maxSteps);
  const method = variantMethod(variant), init = variantInit(variant);
  const net = new DeepLinearNetwork(L, d, init);
  const tied = method !== 'untied';
  const ctrl = new SharingController(net.stack(), {
    groups: planGroups(parseShare(tied ? `1x${L}` : `${L}x1`, L)),
    criterion: method === 'swe-a' ? new AdaptiveCriterion(spec.swe) : new NeverCriterion(),
    sharedGrad: 'mean',
    untieOptimizer: 'copy',
  });
  ctrl.tieWeights();
  const opt = makeOptimizer(spec.optimizer);
  const phi = new Tensor(Float32Array.from(target.phi), [d, d]);
  const lemmaSteps = init === 'identity' ? (spec.lemmaSteps ?? 0) : 0;
  const divergeFactor = spec.divergeFactor ?? 1e4;

  const curve: [number, number][] = [];
  let nextCurveStep = 0;
  let r0 = NaN, ratio = NaN, stepsToEps: number | null = null, diverged = false;
  let untieStep: number | null = null, minCosine: number | null = null, lemma1Spread: number | null = lemmaSteps > 0 ? 0 : null;
  let trainableFor: unknown = null, trainableTensors: Tensor[] = [], trainableNames: string[] = [];
  let step = 0;
  for (; ; step++) {
    net.zeroGrad();
    const loss = net.loss(phi);
    const R = loss.item();
    if (step === 0) r0 = R;
    ratio = r0 > 0 ? R / r0 : R;
    if (step >= nextCurveStep) {
      curve.push([step, ratio]);
      nextCurveStep = Math.max(step + 1, Math.ceil(step * 1.04));
    }
    const done = R <= eps * r0;
    const bad = !Number.isFinite(R) || R > divergeFactor * r0;
    if (done || bad || step >= cap) {
      clearTape();
      if (done) stepsToEps = step;
      diverged = bad && !done;
      break;
    }
    backward(loss);
    if (step < lemmaSteps) {
      const g0 = net.layers[0].weight.grad!;
      for (let l = 1; l < L; l++) lemma1Spread = Math.max(lemma1Spread!, relDiff(net.layers[l].weight.grad!, g0));
    }
    ctrl.beforeUpdate(step);
    if (ctrl.groups !== trainableFor) {
      // The controller replaces `groups` when it unties: only then does the set change.
      trainableFor = ctrl.groups;
      const trainable = ctrl.trainable(net.namedParameters());
      trainableTensors = trainable.map(([, t]) => t);
      trainableNames = trainable.map(([n]) => n);
    }
    opt.step(trainableTensors, trainableNames, lr);
    for (const e of ctrl.afterUpdate(step, opt)) {
      if (e.type === 'sharing_check') for (const p of e.pairs) minCosine = minCosine === null ? p.cosine : Math.min(minCosine, p.cosine);
      if (e.type === 'untie') untieStep = e.step + 1;
    }
  }
  if (curve.length === 0 || curve[curve.length - 1][0] !== step) curve.push([step, ratio]);
  return {
    variant, method, init, L, seed: target.seed, lr, stepsToEps, steps: step, r0, finalRatio: ratio, diverged,
    untieStep, minCosine, lemma1Spread, curve,
  };
}

// ------------------------------------------------------------------ lr search

export interface SearchTrial {
  lr: number;
  /** Per seed (in the order of the targets searched on). */
  stepsToEps: (number | null)[];
  /** The score: the most updates any seed needed; null if some seed never reached eps. */
  worstSteps: number | null;
  meanFinalRatio: number;
  /** True when some seed diverged. */
  diverged: boolean;
  /** The cut-off this trial ran under (the best score so far). */
  cap: number;
}

export interface LrSearch {
  variant: Variant;
  L: number;
  seeds: number[];
  chosen: number;
  trials: SearchTrial[];
  /** The chosen trial's runs, one per seed. */
  best: RunResult[];
}

/**
 * Scans the grid from the largest rate down, running every seed at each rate.
 * A rate is rejected if any seed diverges. The winner needs the fewest
 * updates to eps on its worst seed (ties: the larger rate, found first); if
 * no rate gets every seed to eps, the one with the lowest mean final R/R(0).
 * Scoring the worst seed keeps the choice off the edge of stability, where
 * one seed's best rate makes another's oscillate. Two shortcuts keep it
 * cheap, both stated in the report: a trial runs only up to the best score
 * so far (it cannot win after that), and the scan stops after two
 * consecutive non-diverged rates that do not improve on the best (updates to
 * eps grow like 1/lr once lr is small).
 */
export function searchLr(base: Omit<RunSpec, 'lr' | 'cap' | 'target'>, targets: Target[], grid: number[]): LrSearch {
  const lrs = [...new Set(grid)].sort((a, b) => b - a);
  const trials: SearchTrial[] = [];
  let best: { trial: SearchTrial; runs: RunResult[] } | null = null;
  let worse = 0;
  for (const lr of lrs) {
    const cap = best?.trial.worstSteps ?? base.maxSteps;
    const runs: RunResult[] = [];
    for (const target of targets) {
      const r = runLinear({ ...base, target, lr, cap });
      runs.push(r);
      if (r.diverged || (r.stepsToEps === null && cap < base.maxSteps)) break; // cannot win: skip the other seeds
    }
    const complete = runs.length === targets.length;
    const trial: SearchTrial = {
      lr, cap, stepsToEps: runs.map((r) => r.stepsToEps), diverged: runs.some((r) => r.diverged),
      worstSteps: complete && runs.every((r) => r.stepsToEps !== null) ? Math.max(...runs.map((r) => r.stepsToEps!)) : null,
      meanFinalRatio: runs.reduce((a, r) => a + r.finalRatio, 0) / runs.length,
    };
    trials.push(trial);
    if (trial.diverged) continue;
    const b = best?.trial;
    const better = complete && (b === undefined
      || (trial.worstSteps !== null && (b.worstSteps === null || trial.worstSteps < b.worstSteps))
      || (trial.worstSteps === null && b.worstSteps === null && trial.meanFinalRatio < b.meanFinalRatio));
    if (better) {
      best = { trial, runs };
      worse = 0;
    } else if (++worse >= 2) break;
  }
  if (!best) {
    // Every rate diverged: report the smallest one's runs so the table still has rows.
    const lr = lrs[lrs.length - 1];
    return { variant: base.variant, L: base.L, seeds: targets.map((t) => t.seed), chosen: lr, trials, best: targets.map((target) => runLinear({ ...base, target, lr })) };
  }
  return { variant: base.variant, L: base.L, seeds: targets.map((t) => t.seed), chosen: best.trial.lr, trials, best: best.runs };
}

// ------------------------------------------------------------------ studies

export type Slopes = Partial<Record<Variant, number | null>>;

export interface Study {
  /** 'search': lr per method and depth; 'equal-lr': one lr for all. */
  kind: 'search' | 'equal-lr';
  runs: RunResult[];
  /** Fitted slope of log(steps to eps) against log(L), per variant. */
  slopes: Slopes;
  /** The depths each slope was fitted on (those where every seed reached eps). */
  fittedDepths: Partial<Record<Variant, number[]>>;
}

export interface TargetResult {
  target: TargetKind;
  /** The first seed's Phi, for the report. */
  example: { eigenvalues: number[]; det: number; symmetric: boolean };
  search: Study & { lrSearch: LrSearch[] };
  equalLr: (Study & { lr: number }) | null;
  /**
   * Largest per-layer gradient spread of identity-init runs over their first
   * lemmaSteps updates, from the equal-lr study (small steps, the lemma's
   * setting) or, without it, the searched runs.
   */
  lemma1: { steps: number; study: Study['kind']; maxSpread: Partial<Record<Variant, number>> };
}

export interface LinearResults {
  config: LinearConfig;
  targets: TargetResult[];
  seconds: number;
}

/** Least-squares slope of y against x. */
export function fitSlope(xs: number[], ys: number[]): number | null {
  if (xs.length < 2) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length, my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : null;
}

/**
 * Per variant: at each depth where every seed reached eps, the geometric mean
 * of the steps (at least 1, so a run done in 0 updates stays on a log axis);
 * the slope of log(that) against log(L).
 */
export function stepsByDepth(runs: RunResult[], variant: Variant): { L: number; steps: number }[] {
  const out: { L: number; steps: number }[] = [];
  const depths = [...new Set(runs.filter((r) => r.variant === variant).map((r) => r.L))].sort((a, b) => a - b);
  for (const L of depths) {
    const here = runs.filter((r) => r.variant === variant && r.L === L);
    if (here.some((r) => r.stepsToEps === null)) continue;
    const logMean = here.reduce((s, r) => s + Math.log(Math.max(1, r.stepsToEps!)), 0) / here.length;
    out.push({ L, steps: Math.exp(logMean) });
  }
  return out;
}

function study<K extends Study['kind']>(kind: K, runs: RunResult[], variants: Variant[]): Study & { kind: K } {
  const slopes: Slopes = {};
  const fittedDepths: Study['fittedDepths'] = {};
  for (const v of variants) {
    const pts = stepsByDepth(runs, v);
    slopes[v] = fitSlope(pts.map((p) => Math.log(p.L)), pts.map((p) => Math.log(p.steps)));
    fittedDepths[v] = pts.map((p) => p.L);
  }
  return { kind, runs, slopes, fittedDepths };
}

export interface Progress {
  (message: string): void;
}

/** Runs every target, study, method, depth and seed of `config`. Returns data only. */
export function runLinearExperiment(config: LinearConfig, progress: Progress = () => {}): LinearResults {
  validateLinearConfig(config);
  const t0 = performance.now();
  const out: TargetResult[] = [];
  for (const kind of config.targets) {
    const targets = config.seeds.map((s) => buildTarget(kind, config.d, s));
    const common = { eps: config.eps, maxSteps: config.maxSteps, optimizer: config.optimizer, swe: config.swe, lemmaSteps: config.lemmaSteps, divergeFactor: config.divergeFactor };
    const lemmaSpread: Partial<Record<Variant, number>> = {};
    const noteLemma = (r: RunResult) => {
      if (r.lemma1Spread !== null) lemmaSpread[r.variant] = Math.max(lemmaSpread[r.variant] ?? 0, r.lemma1Spread);
    };

    // Study 1: lr searched per method and depth (over all seeds together).
    const searches: LrSearch[] = [];
    const searchRuns: RunResult[] = [];
    for (const variant of config.variants) {
      for (const L of config.depths) {
        progress(`${kind}: lr search, ${variant}, L=${L}`);
        const s = searchLr({ ...common, variant, L }, targets, config.lrGrid);
        searches.push(s);
        searchRuns.push(...s.best);
        if (config.equalLr === null) s.best.forEach(noteLemma);
      }
    }

    // Study 2: one learning rate for every method and depth.
    let equal: TargetResult['equalLr'] = null;
    if (config.equalLr !== null) {
      const runs: RunResult[] = [];
      for (const variant of config.variants) {
        for (const L of config.depths) {
          progress(`${kind}: equal lr ${config.equalLr}, ${variant}, L=${L}`);
          for (const t of targets) {
            const r = runLinear({ ...common, target: t, variant, L, lr: config.equalLr });
            runs.push(r);
            noteLemma(r);
          }
        }
      }
      equal = { ...study('equal-lr', runs, config.variants), lr: config.equalLr };
    }

    out.push({
      target: kind,
      example: { eigenvalues: targets[0].eigenvalues, det: targets[0].det, symmetric: targets[0].symmetric },
      search: { ...study('search', searchRuns, config.variants), lrSearch: searches },
      equalLr: equal,
      lemma1: { steps: config.lemmaSteps, study: config.equalLr === null ? 'search' : 'equal-lr', maxSpread: lemmaSpread },
    });
  }
  return { config, targets: out, seconds: (performance.now() - t0) / 1000 };
}

// ------------------------------------------------------------------ JSON

export interface RunJson {
  method: 'untied' | 'shared' | 'swe-a';
  init: LinearInit;
  L: number;
  seed: number;
  lr: number;
  steps_to_eps: number | null;
  final_ratio: number;
  diverged: boolean;
  untie_step: number | null;
  min_cosine: number | null;
}

function runJson(r: RunResult): RunJson {
  return {
    method: r.method, init: r.init, L: r.L, seed: r.seed, lr: r.lr, steps_to_eps: r.stepsToEps,
    final_ratio: r.finalRatio, diverged: r.diverged, untie_step: r.untieStep, min_cosine: r.minCosine,
  };
}

/** `untied` is the zero-asymmetric run (the no-sharing theorem's); the identity-init one is `untied-identity`. */
function slopesJson(s: Slopes): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(s)) out[k] = v ?? null;
  return out;
}

function targetJson(t: TargetResult, c: LinearConfig): Record<string, unknown> {
  return {
    target: t.target,
    eps: c.eps,
    optimizer: c.optimizer,
    d: c.d,
    max_steps: c.maxSteps,
    phi_seed0: { eigenvalues: t.example.eigenvalues, det: t.example.det, symmetric: t.example.symmetric },
    runs: t.search.runs.map(runJson),
    slopes: slopesJson(t.search.slopes),
    lr_search: t.search.lrSearch.map((s) => ({
      method: variantMethod(s.variant), init: variantInit(s.variant), L: s.L, seeds: s.seeds, chosen: s.chosen,
      trials: s.trials.map((x) => ({ lr: x.lr, steps_to_eps: x.stepsToEps, worst_steps: x.worstSteps, mean_final_ratio: x.meanFinalRatio, diverged: x.diverged, cap: x.cap })),
    })),
    equal_lr: t.equalLr && { lr: t.equalLr.lr, runs: t.equalLr.runs.map(runJson), slopes: slopesJson(t.equalLr.slopes) },
    lemma1: { steps: t.lemma1.steps, study: t.lemma1.study, max_spread: t.lemma1.maxSpread },
  };
}

/**
 * The `--json` object: one target's object at the top level when one target
 * ran, else `{eps, targets: [...]}`. Runs list `method` ("untied" | "shared" |
 * "swe-a") with `init` telling the two untied runs apart.
 */
export function linearResultsJson(res: LinearResults): Record<string, unknown> {
  const c = res.config;
  const meta = {
    depths: c.depths, seeds: c.seeds, lr_grid: [...c.lrGrid].sort((a, b) => b - a), equal_lr: c.equalLr,
    swe_a: c.swe, seconds: Math.round(res.seconds * 10) / 10,
  };
  if (res.targets.length === 1) return { ...targetJson(res.targets[0], c), ...meta };
  return { eps: c.eps, optimizer: c.optimizer, d: c.d, max_steps: c.maxSteps, ...meta, targets: res.targets.map((t) => targetJson(t, c)) };
}
