/**
 * The basic layers, with torch/Hugging Face parameter names and layouts:
 * Linear stores weight (out, in); LayerNorm has weight/bias; Embedding a
 * (vocab, dim) table.
 */
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';
import { Module } from './module.js';

/** BERT's initialiser: N(0, std) weights. */
export function normalInit(shape: number[], rng: Rng, std: number): Tensor {
  return Tensor.randn(shape, rng, std);
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, opts: { bias?: boolean; std?: number } = {}) {
    super();
    this.weight = this.param('weight', normalInit([outFeatures, inFeatures], rng, opts.std ?? 0.02));
    this.bias = opts.bias === false ? null : this.param('bias', Tensor.zeros([outFeatures]));
  }

  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }

  /** gelu(this.forward(x)), with the bias add and GELU in one pass. */
  forwardGelu(x: Tensor): Tensor {
    if (!this.bias) return ops.gelu(ops.linear(x, this.weight, null));
    return ops.biasGelu(ops.linear(x, this.weight, null), this.bias);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(readonly dim: number, readonly eps = 1e-12) {
    super();
    this.weight = this.param('weight', Tensor.full([dim], 1));
    this.bias = this.param('bias', Tensor.zeros([dim]));
  }

  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }

  /** this.forward(x + y), with the add in the same pass (a Post-LN residual). */
  forwardAdd(x: Tensor, y: Tensor): Tensor {
    return ops.addLayerNorm(x, y, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(readonly vocab: number, readonly dim: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.param('weight', normalInit([vocab, dim], rng, std));
  }

  forward(ids: Int32Array, idsShape: number[]): Tensor {
    return ops.embedding(this.weight, ids, idsShape);
  }
}

/** Dropout that is active only in training mode; draws its masks from `rng`. */
export class Dropout extends Module {
  constructor(readonly p: number, private readonly rng: Rng) {
    super();
  }

  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? ops.dropout(x, this.p, this.rng) : x;
  }
}

/**
 * A Linear followed (by the caller, after the residual) by a LayerNorm, named
 * `dense` and `LayerNorm` as in Hugging Face's BertSelfOutput, BertOutput and
 * the MLM head's transform.
 */
export class DenseLayerNorm extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(inF: number, outF: number, rng: Rng, std: number, eps: number, bias = true) {
    super();
    this.dense = this.child('dense', new Linear(inF, outF, rng, { std, bias }));
    this.LayerNorm = this.child('LayerNorm', new LayerNorm(outF, eps));
  }
}
