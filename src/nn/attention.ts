/**
 * Multi-head self-attention, laid out as Hugging Face's BertAttention so its
 * parameters carry the same names: self.query/key/value, output.dense.
 * The residual and output.LayerNorm are applied by the caller, since Pre-LN and
 * Post-LN place them differently. `attend` is the computation itself, shared
 * with the decoder (src/models/gpt.ts), which gives it a causal mask.
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
    const [, T] = x.shape;
    return this.output.dense.forward(attend(x, this.self, this.heads, this.attnDropout, keyMask, this.heads * T, this.watch));
  }
}

/**
 * The heads' attention of x (B, T, C) with Q, K and V from `proj`: the
 * context (B, T, C) before the output projection. `mask` is additive, one row
 * of T per `maskGroup` consecutive rows of the (B, H, T, T) scores: a key
 * mask (B, T) with maskGroup H*T, or a full (B*H*T, T) mask with maskGroup 1
 * (the decoder's causal one).
 */
export function attend(
  x: Tensor, proj: { query: Linear; key: Linear; value: Linear }, heads: number, attnDropout: Dropout, mask: Float32Array | null, maskGroup: number,
  watch?: ((probs: Tensor) => void) | null,
): Tensor {
  const [B, T, C] = x.shape;
  const D = C / heads;
  // Q, K and V in one GEMM, each (B, H, T, D); the three Linears keep their own parameters and gradients.
  const { query, key, value } = proj;
  const [q, k, v] = ops.linearHeads(x, [query.weight, key.weight, value.weight], [query.bias, key.bias, value.bias], heads);
  const scores = ops.matmul(q, k, { transB: true }); // (B, H, T, T)
  const probs = attnDropout.forward(ops.softmax(scores, { scale: 1 / Math.sqrt(D), mask, maskGroup }));
  watch?.(probs);
  const context = ops.matmul(probs, v); // (B, H, T, D)
  return ops.reshape(ops.permute(context, [0, 2, 1, 3]), [B, T, C]);
}

/**
 * The additive causal mask of (B, H, T, T) scores, one row per score row:
 * query t sees keys 0..t (0), not the later ones (-1e9, whose exp is exactly
 * 0, so later tokens change nothing at t). Kept for the last shape asked
 * (training asks for one shape every step).
 */
export function causalMask(B: number, H: number, T: number): Float32Array {
  if (cachedCausal && cachedCausal.key === `${B},${H},${T}`) return cachedCausal.mask;
  const mask = new Float32Array(B * H * T * T);
  for (let r = 0; r < B * H * T; r++) mask.fill(-1e9, r * T + (r % T) + 1, (r + 1) * T);
  cachedCausal = { key: `${B},${H},${T}`, mask };
  return mask;
}
let cachedCausal: { key: string; mask: Float32Array } | null = null;
