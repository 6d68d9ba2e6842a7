/**
 * Multi-head self-attention, laid out as Hugging Face's BertAttention so its
 * parameters carry the same names: self.query/key/value, output.dense.
 * The residual and output.LayerNorm are applied by the caller, since Pre-LN and
 * Post-LN place them differently.
 */
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';
import { UntieError } from '../errors.js';
import { Module } from './module.js';
import { DenseLayerNorm, Dropout, Linear } from './layers.js';

class SelfProjections extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  constructor(hidden: number, rng: Rng, std: number, bias: boolean) {
    super();
    this.query = this.child('query', new Linear(hidden, hidden, rng, { std, bias }));
    this.key = this.child('key', new Linear(hidden, hidden, rng, { std, bias }));
    this.value = this.child('value', new Linear(hidden, hidden, rng, { std, bias }));
  }
}

export class MultiHeadSelfAttention extends Module {
  readonly self: SelfProjections;
  /** The output projection, and the LayerNorm the caller applies after the residual. */
  readonly output: DenseLayerNorm;
  private readonly attnDropout: Dropout;
  readonly headDim: number;
  /** Called with each forward's attention probabilities (B, H, T, T), for analysis (what a layer looks at); null in training. */
  watch: ((probs: Tensor) => void) | null = null;

  constructor(readonly hidden: number, readonly heads: number, dropoutP: number, rng: Rng, opts: { std?: number; eps?: number; dropoutRng?: Rng; bias?: boolean } = {}) {
    super();
    const std = opts.std ?? 0.02;
    if (hidden % heads !== 0) throw new UntieError(`hidden size ${hidden} is not divisible by the number of heads ${heads}`);
    this.headDim = hidden / heads;
    const bias = opts.bias ?? true;
    this.self = this.child('self', new SelfProjections(hidden, rng, std, bias));
    this.output = this.child('output', new DenseLayerNorm(hidden, hidden, rng, std, opts.eps ?? 1e-12, bias));
    this.attnDropout = this.child('attn_dropout', new Dropout(dropoutP, opts.dropoutRng ?? rng));
  }

  /**
   * x (B, T, C); keyMask (B, T) additive (0 to attend, -1e4 or -Infinity to
   * ignore) or null. Returns (B, T, C), before the residual.
   */
  forward(x: Tensor, keyMask: Float32Array | null): Tensor {
    const [B, T, C] = x.shape;
    const H = this.heads, D = this.headDim;
    // Q, K and V in one GEMM, each (B, H, T, D); the three Linears keep their own parameters and gradients.
    const { query, key, value } = this.self;
    const [q, k, v] = ops.linearHeads(x, [query.weight, key.weight, value.weight], [query.bias, key.bias, value.bias], H);
    const scores = ops.matmul(q, k, { transB: true }); // (B, H, T, T)
    const probs = this.attnDropout.forward(ops.softmax(scores, { scale: 1 / Math.sqrt(D), mask: keyMask, maskGroup: H * T }));
    this.watch?.(probs);
    const context = ops.matmul(probs, v); // (B, H, T, D)
    const merged = ops.reshape(ops.permute(context, [0, 2, 1, 3]), [B, T, C]);
    return this.output.dense.forward(merged);
  }
}
