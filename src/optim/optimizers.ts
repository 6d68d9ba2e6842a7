/**
 * Optimizers: AdamW (as torch.optim.AdamW) and LAMB (You et al. 2019), with
 * per-parameter state (moments and step count) that can be read, copied and
 * restored. The sharing controller relies on that: while layers are tied one
 * state serves the whole group, and at untying each member gets a copy.
 */
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface ParamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export interface OptimizerConfig {
  /** 'sgd' is plain gradient descent (p -= lr * g, no momentum, no decay): the deep linear theory is about it. */
  kind: 'adamw' | 'lamb' | 'sgd';
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export function defaultOptimizerConfig(): OptimizerConfig {
  return { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 };
}

/** BERT's rule: no weight decay on biases and LayerNorm parameters. */
export function decays(name: string): boolean {
  return !(name.endsWith('.bias') || name.endsWith('bias') || /LayerNorm|layer_norm|layernorm/i.test(name));
}

export class Optimizer {
  private readonly state = new Map<Tensor, ParamState>();

  constructor(readonly config: OptimizerConfig) {
    if (config.kind !== 'adamw' && config.kind !== 'lamb' && config.kind !== 'sgd') {
      throw new UntieError(`unknown optimizer "${String(config.kind)}": use "adamw", "lamb" or "sgd"`);
    }
  }

  /** The state of `p`, created (zero moments, step 0) on first use. */
  stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = { step: 0, m: new Float32Array(p.size), v: new Float32Array(p.size) };
      this.state.set(p, s);
    }
    return s;
  }

  hasState(p: Tensor): boolean {
    return this.state.has(p);
  }

  setState(p: Tensor, s: ParamState): void {
    if (s.m.length !== p.size || s.v.length !== p.size) {
      throw new UntieError(`optimizer state for ${p.name || 'a parameter'} has ${s.m.length} entries, the parameter ${p.size}`);
    }
    this.state.set(p, s);
  }

  deleteState(p: Tensor): void {
    this.state.delete(p);
  }

  /**
   * One update of each parameter in `params` from its `.grad`, at learning
   * rate `lr`. `names` (same order) decide weight decay (see `decays`).
   */
  step(params: Tensor[], names: string[], lr: number): void {
    const K = kernels();
    const { beta1, beta2, eps, weightDecay } = this.config;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (!p.grad) continue;
      const s = this.stateOf(p);
      s.step += 1;
      if (this.config.kind === 'sgd') {
        // The state (unused moments) is kept so tying and untying copy it like any other.
        K.axpy(p.data, p.grad, -lr);
        continue;
      }
      const bc1 = 1 - Math.pow(beta1, s.step), bc2 = 1 - Math.pow(beta2, s.step);
      const wd = decays(names[i]) ? weightDecay : 0;
      if (this.config.kind === 'adamw') {
        K.adamwStep(p.data, p.grad, s.m, s.v, lr, beta1, beta2, eps, wd, bc1, bc2);
      } else {
        this.lambStep(p, s, lr, wd, bc1, bc2);
      }
    }
  }

  /**
   * LAMB: the Adam direction plus decoupled decay, scaled per tensor by the
   * trust ratio ||w|| / ||update|| (1 where either norm is zero).
   */
  private lambStep(p: Tensor, s: ParamState, lr: number, wd: number, bc1: number, bc2: number): void {
    // Plain loops: LAMB is the alternative optimizer, not the hot path, and
    // this way it reads like the paper's Algorithm 2.
    const { beta1, beta2, eps } = this.config;
    const g = p.grad!, w = p.data, m = s.m, v = s.v;
    const update = new Float32Array(p.size);
    let wSq = 0, uSq = 0;
    for (let i = 0; i < w.length; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const u = m[i] / bc1 / (Math.sqrt(v[i] / bc2) + eps) + wd * w[i];
      update[i] = u;
      wSq += w[i] * w[i];
      uSq += u * u;
    }
    const wNorm = Math.sqrt(wSq), uNorm = Math.sqrt(uSq);
    const trust = wNorm > 0 && uNorm > 0 ? wNorm / uNorm : 1;
    for (let i = 0; i < w.length; i++) w[i] -= lr * trust * update[i];
  }
}

/**
 * Global gradient norm over `params`; scales the gradients down so that this
 * norm is at most `maxNorm` (0 = no clipping). `norm`, when given, is the norm
 * to bound instead of the one of `params` (the sharing controller's per-layer
 * norm, say); the same factor scales `params`. Returns the norm before
 * clipping. A non-finite norm (a NaN or infinite gradient) is refused before
 * anything is scaled: `norm > maxNorm` is false for NaN, and clipping would
 * silently let it through to the weights.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, norm?: number): number {
  const K = kernels();
  if (norm === undefined) {
    let total = 0;
    for (const p of params) if (p.grad) total += K.sumSquares(p.grad);
    norm = Math.sqrt(total);
  }
  if (!Number.isFinite(norm)) throw new UntieError(`the gradient norm is ${norm}: some gradient holds NaN or infinite values, so no update can be made from it`);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) K.scale(p.grad, s, p.grad);
  }
  return norm;
}
