/**
 * A GPT decoder for next-token pre-training: GPT-2's layout (token and
 * learned position embeddings, Pre-LN blocks of causal self-attention and a
 * GELU MLP, a final LayerNorm, the output projection tied to the token
 * embeddings), so `untie export` writes it as Hugging Face's GPT2LMHeadModel.
 *
 * Parameter names follow GPT-2's module tree ("transformer.h.3.mlp.c_fc.weight")
 * with two differences that export undoes (src/train/gpt2.ts): each Linear
 * keeps torch's (out, in) layout where GPT-2's Conv1D stores (in, out), and
 * Q, K and V are three Linears (attn.query/key/value) where GPT-2 fuses them
 * into one c_attn. The blocks are declared as a RepeatedStack for src/sharing,
 * exactly as the encoder's layers.
 */
import { UntieError } from '../errors.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { attend, causalMask } from '../nn/attention.js';
import { Module } from '../nn/module.js';
import type { RepeatedStack } from '../sharing/controller.js';
import { anomalyScope } from '../tensor/anomaly.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';
import { sinusoidalTable } from './bert.js';
import { countCorrect, type LanguageModel, type LmBatch, type LmOutput, type TokenBatch } from './lm.js';

export interface GptConfig {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  /** The MLP's inner size (GPT-2's n_inner, 4 x hidden there). */
  intermediate: number;
  /** Rows of the position table: the longest context the model reads. */
  maxPositions: number;
  /** resid_pdrop and embd_pdrop */
  dropout: number;
  /** attn_pdrop */
  attentionDropout: number;
  layerNormEps: number;
  initStd: number;
  /** Biases in the blocks' Linear layers (GPT-2 has them; export writes zeros when off). */
  bias: boolean;
  /** How the learned position table starts: N(0, initStd), or the Transformer's sin/cos table at the same RMS. */
  positionInit: 'normal' | 'sinusoidal';
}

export function defaultGptConfig(): GptConfig {
  return {
    vocabSize: 8192, hidden: 128, layers: 6, heads: 4, intermediate: 512, maxPositions: 128,
    dropout: 0, attentionDropout: 0, layerNormEps: 1e-5, initStd: 0.02, bias: true, positionInit: 'normal',
  };
}

export function validateGptConfig(c: GptConfig): void {
  for (const k of ['vocabSize', 'hidden', 'layers', 'heads', 'intermediate', 'maxPositions'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new UntieError(`model setting ${k} must be a positive whole number, got ${c[k]}`);
  }
  if (c.hidden % c.heads !== 0) throw new UntieError(`hidden size ${c.hidden} is not divisible by heads ${c.heads}: pick heads that divide it`);
  for (const k of ['dropout', 'attentionDropout'] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) throw new UntieError(`${k} must be in [0, 1), got ${c[k]}`);
  }
  if (typeof c.bias !== 'boolean') throw new UntieError(`bias must be true or false, got ${String(c.bias)}`);
  if (c.positionInit !== 'normal' && c.positionInit !== 'sinusoidal') throw new UntieError(`positionInit must be "normal" or "sinusoidal", got "${String(c.positionInit)}"`);
}

/** How many numbers GptLMHeadModel(c) holds (the tied output projection counted once), without building it. */
export function gptParameterCount(c: GptConfig): number {
  const H = c.hidden, I = c.intermediate, b = c.bias ? 1 : 0;
  const block = 2 * H + 4 * (H * H + b * H) + 2 * H + (H * I + b * I) + (I * H + b * H);
  return (c.vocabSize + c.maxPositions) * H + c.layers * block + 2 * H;
}

class CausalSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly c_proj: Linear;
  private readonly attnDropout: Dropout;
  constructor(private readonly c: GptConfig, rng: Rng, dropRng: Rng) {
    super();
    const linear = (std: number) => new Linear(c.hidden, c.hidden, rng, { std, bias: c.bias });
    this.query = this.child('query', linear(c.initStd));
    this.key = this.child('key', linear(c.initStd));
    this.value = this.child('value', linear(c.initStd));
    this.c_proj = this.child('c_proj', linear(residualStd(c)));
    this.attnDropout = this.child('attn_dropout', new Dropout(c.attentionDropout, dropRng));
  }
  /** x (B, T, C) -> (B, T, C), position t attending to positions 0..t only. */
  forward(x: Tensor): Tensor {
    const [B, T] = x.shape, H = this.c.heads;
    return this.c_proj.forward(attend(x, this, H, this.attnDropout, causalMask(B, H, T), 1));
  }
}

class Mlp extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  constructor(c: GptConfig, rng: Rng) {
    super();
    this.c_fc = this.child('c_fc', new Linear(c.hidden, c.intermediate, rng, { std: c.initStd, bias: c.bias }));
    this.c_proj = this.child('c_proj', new Linear(c.intermediate, c.hidden, rng, { std: residualStd(c), bias: c.bias }));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(this.c_fc.forwardGelu(x));
  }
}

/**
 * GPT-2's init for the two projections that write into the residual stream:
 * std / sqrt(2 layers), so the stream's variance does not grow with depth.
 */
function residualStd(c: GptConfig): number {
  return c.initStd / Math.sqrt(2 * c.layers);
}

/** One Pre-LN block: x + attn(ln_1(x)), then h + mlp(ln_2(h)). */
export class GptBlock extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: Mlp;
  private readonly drop1: Dropout;
  private readonly drop2: Dropout;
  constructor(c: GptConfig, rng: Rng, dropRng: Rng) {
    super();
    this.ln_1 = this.child('ln_1', new LayerNorm(c.hidden, c.layerNormEps));
    this.attn = this.child('attn', new CausalSelfAttention(c, rng, dropRng));
    this.ln_2 = this.child('ln_2', new LayerNorm(c.hidden, c.layerNormEps));
    this.mlp = this.child('mlp', new Mlp(c, rng));
    this.drop1 = this.child('dropout1', new Dropout(c.dropout, dropRng));
    this.drop2 = this.child('dropout2', new Dropout(c.dropout, dropRng));
  }
  forward(x: Tensor): Tensor {
    const h = ops.add(x, this.drop1.forward(this.attn.forward(this.ln_1.forward(x))));
    return ops.add(h, this.drop2.forward(this.mlp.forward(this.ln_2.forward(h))));
  }
}

class Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: GptBlock[] = [];
  readonly ln_f: LayerNorm;
  readonly drop: Dropout;
  constructor(c: GptConfig, rng: Rng, dropRng: Rng) {
    super();
    this.wte = this.child('wte', new Embedding(c.vocabSize, c.hidden, rng, c.initStd));
    this.wpe = this.child('wpe', new Embedding(c.maxPositions, c.hidden, rng, c.initStd));
    if (c.positionInit === 'sinusoidal') sinusoidalTable(this.wpe.weight.data, c.maxPositions, c.hidden, c.initStd);
    this.drop = this.child('drop', new Dropout(c.dropout, dropRng));
    for (let i = 0; i < c.layers; i++) this.h.push(this.child(`h.${i}`, new GptBlock(c, rng, dropRng)));
    this.ln_f = this.child('ln_f', new LayerNorm(c.hidden, c.layerNormEps));
  }
}

/** GPT2LMHeadModel: the decoder and a next-token head tied to the token embeddings. */
export class GptLMHeadModel extends Module implements LanguageModel {
  readonly kind = 'gpt';
  readonly transformer: Transformer;
  /** Every dropout mask draws its seed from this; its state goes into checkpoints. */
  readonly dropoutRng: Rng;

  /** Weights are drawn from `seed`'s "init" stream, dropout seeds from its "dropout" stream. */
  constructor(readonly config: GptConfig, seed: number) {
    super();
    validateGptConfig(config);
    const rng = Rng.derive(seed, 'init');
    this.dropoutRng = Rng.derive(seed, 'dropout');
    this.transformer = this.child('transformer', new Transformer(config, rng, this.dropoutRng));
  }

  /** The blocks, for the sharing controller. */
  stack(): RepeatedStack {
    return {
      layers: this.transformer.h.map((block) => block.namedParameters()),
      prefix: (i) => `transformer.h.${i}.`,
    };
  }

  /**
   * Final hidden states (B, T, C), after ln_f. Position t depends on tokens
   * 0..t only. Padding must be at the end of a row (right padding): the
   * causal mask then keeps it out of every real position.
   */
  decode(b: TokenBatch): Tensor {
    const c = this.config, { batchSize: B, seqLen: T } = b;
    if (T > c.maxPositions) {
      throw new UntieError(`a sequence of ${T} tokens is longer than the model's position table (${c.maxPositions}): shorten it to at most ${c.maxPositions} tokens`);
    }
    if (b.inputIds.length !== B * T) throw new UntieError(`inputIds has ${b.inputIds.length} entries, expected batch ${B} x seq ${T}`);
    for (let i = 0; i < B; i++) {
      for (let t = 1; t < T; t++) {
        if (b.attentionMask[i * T + t] > 0 && !(b.attentionMask[i * T + t - 1] > 0)) {
          throw new UntieError(`row ${i} of the batch has padding before a real token: the decoder takes right-padded batches (padding at the end only)`);
        }
      }
    }
    const positions = new Int32Array(B * T);
    for (let i = 0; i < B; i++) for (let t = 0; t < T; t++) positions[i * T + t] = t;
    const tr = this.transformer;
    let x = anomalyScope('transformer.wte+wpe', () => tr.drop.forward(ops.add(tr.wte.forward(b.inputIds, [B, T]), tr.wpe.forward(positions, [B, T]))));
    tr.h.forEach((block, i) => {
      x = anomalyScope(`transformer.h.${i}`, () => block.forward(x));
    });
    return anomalyScope('transformer.ln_f', () => tr.ln_f.forward(x));
  }

  /**
   * Next-token logits (rows, V) of the hidden states: every position, or
   * only `positions` (flat indices; generation needs the last one alone).
   */
  logits(hidden: Tensor, positions?: Int32Array): Tensor {
    const C = this.config.hidden;
    const flat = ops.reshape(hidden, [hidden.size / C, C]);
    const rows = positions ? ops.embedding(flat, positions) : flat;
    return ops.linear(rows, this.transformer.wte.weight, null);
  }

  /** Next-token loss: mean cross-entropy over every labelled position (labels[t] is the token after t). */
  loss(b: LmBatch, opts: { accuracy?: boolean } = {}): LmOutput {
    let count = 0;
    for (let i = 0; i < b.labels.length; i++) if (b.labels[i] !== -100) count++;
    if (count === 0) throw new UntieError('this batch has no next-token targets: every position is padding');
    const logits = anomalyScope('lm_head', () => this.logits(this.decode(b)));
    const loss = anomalyScope('the next-token loss', () => ops.crossEntropy(logits, b.labels));
    const correct = opts.accuracy !== false ? countCorrect(logits.data, b.labels, this.config.vocabSize) : 0;
    return { loss, correct, count };
  }
}
