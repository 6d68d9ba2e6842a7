/**
 * BERT for masked-LM pre-training, with Hugging Face's module tree so that
 * parameter names are BertForMaskedLM's ("bert.encoder.layer.3.attention.self.query.weight").
 *
 * Post-LN (as Hugging Face BERT, so export is exact) by default; Pre-LN (as
 * the paper) as an option, with a final LayerNorm after the stack.
 * The encoder's layers are declared as a RepeatedStack for src/sharing.
 */
import { UntieError } from '../errors.js';
import { DenseLayerNorm, Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import { MultiHeadSelfAttention } from '../nn/attention.js';
import { Module } from '../nn/module.js';
import type { RepeatedStack } from '../sharing/controller.js';
import { countCorrect, type LanguageModel, type LmBatch, type LmOutput, type TokenBatch } from './lm.js';
import { anomalyScope } from '../tensor/anomaly.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';

export interface BertConfig {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocabSize: number;
  /** hidden_dropout_prob */
  dropout: number;
  /** attention_probs_dropout_prob */
  attentionDropout: number;
  layerNormEps: number;
  initStd: number;
  /** 'post' (Hugging Face BERT) or 'pre' (the paper's Pre-LN). */
  norm: 'post' | 'pre';
  /**
   * Biases in the encoder's and the MLM transform's Linear layers (Hugging
   * Face BERT has them; Cramming drops them). LayerNorm and the decoder keep
   * theirs. Export writes zero biases, so either loads in Hugging Face.
   */
  bias: boolean;
  /**
   * How the (learned) position table starts: 'normal' (N(0, initStd), as
   * BERT) or 'sinusoidal' (the Transformer's sin/cos table, scaled to the
   * same RMS), which gives attention a notion of nearness from step 0. Only
   * the starting values differ: the table is trained either way, and the
   * model stays a Hugging Face BERT.
   */
  positionInit: 'normal' | 'sinusoidal';
}

export function defaultBertConfig(): BertConfig {
  return {
    vocabSize: 8192, hidden: 128, layers: 6, heads: 4, intermediate: 512, maxPositions: 128,
    typeVocabSize: 2, dropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12, initStd: 0.02, norm: 'post', bias: true, positionInit: 'normal',
  };
}

export function validateBertConfig(c: BertConfig): void {
  const positive = ['vocabSize', 'hidden', 'layers', 'heads', 'intermediate', 'maxPositions', 'typeVocabSize'] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new UntieError(`model setting ${k} must be a positive whole number, got ${c[k]}`);
  }
  if (c.hidden % c.heads !== 0) throw new UntieError(`hidden size ${c.hidden} is not divisible by heads ${c.heads}: pick heads that divide it`);
  for (const k of ['dropout', 'attentionDropout'] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) throw new UntieError(`${k} must be in [0, 1), got ${c[k]}`);
  }
  if (c.norm !== 'post' && c.norm !== 'pre') throw new UntieError(`norm must be "post" or "pre", got "${String(c.norm)}"`);
  if (typeof c.bias !== 'boolean') throw new UntieError(`bias must be true or false, got ${String(c.bias)}`);
  if (c.positionInit !== 'normal' && c.positionInit !== 'sinusoidal') throw new UntieError(`positionInit must be "normal" or "sinusoidal", got "${String(c.positionInit)}"`);
}

/**
 * How many numbers BertForMaskedLM(c) holds, computed without building it:
 * callers check a config against a weights file, or the machine's memory,
 * before allocating.
 */
export function bertParameterCount(c: BertConfig): number {
  const H = c.hidden, I = c.intermediate;
  const embeddings = (c.vocabSize + c.maxPositions + c.typeVocabSize) * H + 2 * H;
  const layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H;
  const head = H * H + H + 2 * H + c.vocabSize;
  return embeddings + c.layers * layer + (c.norm === 'pre' ? 2 * H : 0) + head;
}

export type { TokenBatch } from './lm.js';

/** A masked-LM batch: the original id at masked positions, -100 elsewhere. */
export type MlmBatch = LmBatch;

/**
 * The Transformer's position table, PE[p, 2i] = sin(p / 10000^(2i/d)) and
 * PE[p, 2i+1] = cos(...), scaled so its RMS is `rms` (the raw table's is
 * 1/sqrt(2)). Written into `out` (positions x dim, row-major).
 */
export function sinusoidalTable(out: Float32Array, positions: number, dim: number, rms: number): void {
  const scale = rms * Math.SQRT2;
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < dim; i += 2) {
      const angle = p / Math.pow(10000, i / dim);
      out[p * dim + i] = scale * Math.sin(angle);
      if (i + 1 < dim) out[p * dim + i + 1] = scale * Math.cos(angle);
    }
  }
}

class Embeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  private readonly drop: Dropout;
  constructor(c: BertConfig, rng: Rng, dropRng: Rng) {
    super();
    this.word_embeddings = this.child('word_embeddings', new Embedding(c.vocabSize, c.hidden, rng, c.initStd));
    this.position_embeddings = this.child('position_embeddings', new Embedding(c.maxPositions, c.hidden, rng, c.initStd));
    if (c.positionInit === 'sinusoidal') sinusoidalTable(this.position_embeddings.weight.data, c.maxPositions, c.hidden, c.initStd);
    this.token_type_embeddings = this.child('token_type_embeddings', new Embedding(c.typeVocabSize, c.hidden, rng, c.initStd));
    this.LayerNorm = this.child('LayerNorm', new LayerNorm(c.hidden, c.layerNormEps));
    this.drop = this.child('dropout', new Dropout(c.dropout, dropRng));
  }
  forward(b: TokenBatch): Tensor {
    const { batchSize: B, seqLen: T } = b;
    const positions = new Int32Array(B * T);
    for (let i = 0; i < B; i++) for (let t = 0; t < T; t++) positions[i * T + t] = t;
    const x = ops.add(this.word_embeddings.forward(b.inputIds, [B, T]), this.position_embeddings.forward(positions, [B, T]));
    return this.drop.forward(this.LayerNorm.forwardAdd(x, this.token_type_embeddings.forward(b.tokenTypeIds, [B, T])));
  }
}

class DenseOnly extends Module {
  readonly dense: Linear;
  constructor(inF: number, outF: number, rng: Rng, std: number, bias: boolean) {
    super();
    this.dense = this.child('dense', new Linear(inF, outF, rng, { std, bias }));
  }
}

export class BertLayer extends Module {
  readonly attention: MultiHeadSelfAttention;
  readonly intermediate: DenseOnly;
  readonly output: DenseLayerNorm;
  private readonly drop1: Dropout;
  private readonly drop2: Dropout;
  constructor(readonly c: BertConfig, rng: Rng, dropRng: Rng) {
    super();
    this.attention = this.child('attention', new MultiHeadSelfAttention(c.hidden, c.heads, c.attentionDropout, rng, { std: c.initStd, eps: c.layerNormEps, dropoutRng: dropRng, bias: c.bias }));
    this.intermediate = this.child('intermediate', new DenseOnly(c.hidden, c.intermediate, rng, c.initStd, c.bias));
    this.output = this.child('output', new DenseLayerNorm(c.intermediate, c.hidden, rng, c.initStd, c.layerNormEps, c.bias));
    this.drop1 = this.child('dropout1', new Dropout(c.dropout, dropRng));
    this.drop2 = this.child('dropout2', new Dropout(c.dropout, dropRng));
  }

  /** x (B, T, C) -> (B, T, C). */
  forward(x: Tensor, keyMask: Float32Array | null): Tensor {
    const attnNorm = this.attention.output.LayerNorm, ffnNorm = this.output.LayerNorm;
    const ffn = (h: Tensor) => this.output.dense.forward(this.intermediate.dense.forwardGelu(h));
    if (this.c.norm === 'post') {
      const h = attnNorm.forwardAdd(x, this.drop1.forward(this.attention.forward(x, keyMask)));
      return ffnNorm.forwardAdd(h, this.drop2.forward(ffn(h)));
    }
    const h = ops.add(x, this.drop1.forward(this.attention.forward(attnNorm.forward(x), keyMask)));
    return ops.add(h, this.drop2.forward(ffn(ffnNorm.forward(h))));
  }
}

class Encoder extends Module {
  readonly layer: BertLayer[] = [];
  readonly finalNorm: LayerNorm | null;
  /** Layers the forward pass runs: all of them, or the first few of a stack that grows (progressive stacking). */
  depth: number;
  constructor(c: BertConfig, rng: Rng, dropRng: Rng) {
    super();
    this.depth = c.layers;
    for (let i = 0; i < c.layers; i++) this.layer.push(this.child(`layer.${i}`, new BertLayer(c, rng, dropRng)));
    this.finalNorm = c.norm === 'pre' ? this.child('final_layer_norm', new LayerNorm(c.hidden, c.layerNormEps)) : null;
  }
}

/** BertPooler: dense + tanh on the first ([CLS]) token, as Hugging Face's (only the sequence classifier has one). */
class Pooler extends Module {
  readonly dense: Linear;
  constructor(c: BertConfig, rng: Rng) {
    super();
    this.dense = this.child('dense', new Linear(c.hidden, c.hidden, rng, { std: c.initStd, bias: c.bias }));
  }
}

/**
 * BertModel: embeddings and the encoder stack (and, when asked for, the
 * pooler), named as Hugging Face's, so every head (masked LM, token and
 * sequence classification) shares this one encoder and its parameter names.
 */
export class BertModel extends Module {
  readonly embeddings: Embeddings;
  readonly encoder: Encoder;
  readonly pooler: Pooler | null;
  constructor(readonly config: BertConfig, rng: Rng, dropRng: Rng, opts: { pooler?: boolean } = {}) {
    super();
    this.embeddings = this.child('embeddings', new Embeddings(config, rng, dropRng));
    this.encoder = this.child('encoder', new Encoder(config, rng, dropRng));
    this.pooler = opts.pooler ? this.child('pooler', new Pooler(config, rng)) : null;
  }

  /** Final hidden states (B, T, C). */
  encode(b: TokenBatch): Tensor {
    const c = this.config;
    if (b.seqLen > c.maxPositions) throw new UntieError(`sequence length ${b.seqLen} exceeds max positions ${c.maxPositions}`);
    if (b.inputIds.length !== b.batchSize * b.seqLen) throw new UntieError(`inputIds has ${b.inputIds.length} entries, expected batch ${b.batchSize} x seq ${b.seqLen}`);
    const keyMask = new Float32Array(b.attentionMask.length);
    for (let i = 0; i < keyMask.length; i++) keyMask[i] = b.attentionMask[i] > 0 ? 0 : -1e9;
    // anomalyScope names the part of the model in --detect-anomaly's messages (free when it is off).
    let x = anomalyScope('bert.embeddings', () => this.embeddings.forward(b));
    this.encoder.layer.slice(0, this.encoder.depth).forEach((layer, i) => {
      x = anomalyScope(`bert.encoder.layer.${i}`, () => layer.forward(x, keyMask));
    });
    const finalNorm = this.encoder.finalNorm;
    if (finalNorm) x = anomalyScope('bert.encoder.final_layer_norm', () => finalNorm.forward(x));
    return x;
  }

  /** The hidden state of each sequence's first ([CLS]) position: (B, C) from (B, T, C). */
  firstToken(hidden: Tensor, b: TokenBatch): Tensor {
    const first = Int32Array.from({ length: b.batchSize }, (_, i) => i * b.seqLen);
    return ops.embedding(ops.reshape(hidden, [b.batchSize * b.seqLen, this.config.hidden]), first);
  }

  /** The encoder's layers, for the sharing controller. */
  stack(): RepeatedStack {
    return {
      layers: this.encoder.layer.map((l) => l.namedParameters()),
      prefix: (i) => `bert.encoder.layer.${i}.`,
      setDepth: (depth) => {
        if (!Number.isInteger(depth) || depth < 1 || depth > this.config.layers) throw new UntieError(`the encoder has ${this.config.layers} layers; it cannot run ${depth}`);
        this.encoder.depth = depth;
      },
    };
  }
}

class PredictionHead extends Module {
  readonly transform: DenseLayerNorm;
  readonly bias: Tensor;
  constructor(c: BertConfig, rng: Rng) {
    super();
    this.transform = this.child('transform', new DenseLayerNorm(c.hidden, c.hidden, rng, c.initStd, c.layerNormEps, c.bias));
    this.bias = this.param('bias', Tensor.zeros([c.vocabSize]));
  }
}

class MlmHeads extends Module {
  readonly predictions: PredictionHead;
  constructor(c: BertConfig, rng: Rng) {
    super();
    this.predictions = this.child('predictions', new PredictionHead(c, rng));
  }
}

/** Masked-LM loss (mean over masked positions) and accuracy counts. */
export type MlmOutput = LmOutput;

/** BertForMaskedLM: encoder plus the MLM head, decoder tied to the word embeddings. */
export class BertForMaskedLM extends Module implements LanguageModel {
  readonly kind = 'bert';
  readonly bert: BertModel;
  readonly cls: MlmHeads;
  /** Every dropout mask draws its seed from this; its state goes into checkpoints. */
  readonly dropoutRng: Rng;

  /** Weights are drawn from `seed`'s "init" stream, dropout seeds from its "dropout" stream. */
  constructor(readonly config: BertConfig, seed: number) {
    super();
    validateBertConfig(config);
    const rng = Rng.derive(seed, 'init');
    this.dropoutRng = Rng.derive(seed, 'dropout');
    this.bert = this.child('bert', new BertModel(config, rng, this.dropoutRng));
    this.cls = this.child('cls', new MlmHeads(config, rng));
  }

  /** The encoder's layers, for the sharing controller. */
  stack(): RepeatedStack {
    return this.bert.stack();
  }

  /** Final hidden states (B, T, C). */
  encode(b: TokenBatch): Tensor {
    return this.bert.encode(b);
  }

  /**
   * MLM logits (positions.length, vocab) at the given flat positions of the
   * hidden states. Only the positions asked for are projected onto the vocab:
   * in training those are the ~15% masked ones.
   */
  logitsAt(hidden: Tensor, positions: Int32Array): Tensor {
    const C = this.config.hidden;
    const flat = ops.reshape(hidden, [hidden.size / C, C]);
    const rows = ops.embedding(flat, positions); // gather rows, scatter-add backward
    const t = this.cls.predictions.transform;
    const h = t.LayerNorm.forward(t.dense.forwardGelu(rows));
    return ops.linear(h, this.bert.embeddings.word_embeddings.weight, this.cls.predictions.bias);
  }

  /**
   * Masked-LM loss (mean over masked positions) and accuracy counts. The
   * argmax over the vocabulary costs a few ms, so training skips it
   * (`accuracy: false` leaves `correct` at 0).
   */
  mlm(b: MlmBatch, opts: { accuracy?: boolean } = {}): MlmOutput {
    const hidden = this.encode(b);
    const positions: number[] = [];
    for (let i = 0; i < b.labels.length; i++) if (b.labels[i] !== -100) positions.push(i);
    if (positions.length === 0) throw new UntieError('this batch has no masked positions: the masking probability or the sequences are too small');
    const pos = Int32Array.from(positions);
    const targets = Int32Array.from(positions, (p) => b.labels[p]);
    const logits = anomalyScope('cls.predictions', () => this.logitsAt(hidden, pos));
    const loss = anomalyScope('the MLM loss', () => ops.crossEntropy(logits, targets));
    // hits: per masked position, 1 where predicted correctly (accuracy by difficulty); all 0 without accuracy.
    const hits = new Uint8Array(targets.length);
    const correct = opts.accuracy !== false ? countCorrect(logits.data, targets, this.config.vocabSize, hits) : 0;
    return { loss, correct, count: targets.length, hits };
  }

  /** The trainer's name for the objective's loss: here, masked LM. */
  loss(b: LmBatch, opts: { accuracy?: boolean } = {}): LmOutput {
    return this.mlm(b, opts);
  }
}
