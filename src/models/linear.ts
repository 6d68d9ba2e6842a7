/**
 * The deep linear network of method.md section 3: f(x) = W_L ... W_1 x with
 * W_l in R^{d x d}, loss R = 1/2 ||W_L ... W_1 - Phi||_F^2 (whitened inputs,
 * so the data enter only through Phi). Its layers form a RepeatedStack, so it
 * is tied and untied by exactly the code that ties BERT's.
 */
import { UntieError } from '../errors.js';
import { Module } from '../nn/module.js';
import type { RepeatedStack } from '../sharing/controller.js';
import { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';

class LinearLayer extends Module {
  readonly weight: Tensor;
  constructor(init: Float32Array, d: number) {
    super();
    this.weight = this.param('weight', new Tensor(init, [d, d]));
  }
}

export type LinearInit = 'identity' | 'zero-asymmetric';

export class DeepLinearNetwork extends Module {
  readonly layers: LinearLayer[] = [];

  /**
   * `identity`: every W_l = I. `zero-asymmetric` (Wu et al. 2019):
   * W_1..W_{L-1} = I and W_L = 0.
   */
  constructor(readonly depth: number, readonly d: number, init: LinearInit) {
    super();
    if (!Number.isInteger(depth) || depth < 1) throw new UntieError(`depth L must be a positive whole number, got ${depth}`);
    if (!Number.isInteger(d) || d < 1) throw new UntieError(`width d must be a positive whole number, got ${d}`);
    for (let l = 0; l < depth; l++) {
      const w = new Float32Array(d * d);
      const zero = init === 'zero-asymmetric' && l === depth - 1;
      if (!zero) for (let i = 0; i < d; i++) w[i * d + i] = 1;
      this.layers.push(this.child(`layers.${l}`, new LinearLayer(w, d)));
    }
  }

  stack(): RepeatedStack {
    return { layers: this.layers.map((l) => l.namedParameters()), prefix: (i) => `layers.${i}.` };
  }

  /** The end-to-end matrix W_L ... W_1, as a differentiable tensor. */
  product(): Tensor {
    let p = this.layers[0].weight;
    for (let l = 1; l < this.depth; l++) p = ops.matmul(this.layers[l].weight, p);
    return p;
  }

  /** R = 1/2 ||W_L ... W_1 - Phi||_F^2. */
  loss(phi: Tensor): Tensor {
    const diff = ops.sub(this.product(), phi);
    return ops.scale(ops.sum(ops.mul(diff, diff)), 0.5);
  }
}

/** Plain (float64) d x d matrix helpers for the analytic side of the theory. */
export function matMul64(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) {
    const aik = a[i * d + k];
    for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j];
  }
  return out;
}

export function transpose64(a: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[j * d + i] = a[i * d + j];
  return out;
}

export function identity64(d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) out[i * d + i] = 1;
  return out;
}

/**
 * method.md's formula: grad_l R = (W_L..W_{l+1})^T (W_L..W_1 - Phi) (W_{l-1}..W_1)^T,
 * for l = 1..L (returned 0-based), in float64.
 */
export function analyticGradients(weights: Float64Array[], phi: Float64Array, d: number): Float64Array[] {
  const L = weights.length;
  const prefix: Float64Array[] = [identity64(d)]; // prefix[l] = W_l..W_1 (W_0..W_1 = I)
  for (let l = 0; l < L; l++) prefix.push(matMul64(weights[l], prefix[l], d));
  const suffix: Float64Array[] = new Array(L + 1); // suffix[l] = W_L..W_{l+1}
  suffix[L] = identity64(d);
  for (let l = L - 1; l >= 0; l--) suffix[l] = matMul64(suffix[l + 1], weights[l], d);
  const residual = prefix[L].map((v, i) => v - phi[i]);
  const grads: Float64Array[] = [];
  for (let l = 0; l < L; l++) {
    grads.push(matMul64(matMul64(transpose64(suffix[l + 1], d), residual, d), transpose64(prefix[l], d), d));
  }
  return grads;
}
