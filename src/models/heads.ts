/**
 * Task heads on the BERT encoder, with Hugging Face's class and parameter
 * names, so that a fine-tuned model exports like the masked-LM one:
 *
 * - BertForTokenClassification: dropout, then `classifier` (hidden -> labels)
 *   at every position (POS tagging labels the first sub-token of each word).
 * - BertForSequenceClassification: the pooler (`bert.pooler.dense`, tanh of
 *   the [CLS] position), dropout, then `classifier` (hidden -> labels).
 *
 * Both take the encoder's whole BertConfig (whatever fields it holds) and
 * build the same BertModel the masked-LM model uses, so an encoder setting
 * added there carries over to fine-tuning unchanged.
 */
import { UntieError } from '../errors.js';
import { Dropout, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { RepeatedStack } from '../sharing/controller.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import * as ops from '../tensor/ops.js';
import { BertModel, validateBertConfig, type BertConfig, type TokenBatch } from './bert.js';

export type ClassifierKind = 'token' | 'sequence';

export const ARCHITECTURES = {
  token: 'BertForTokenClassification',
  sequence: 'BertForSequenceClassification',
} as const;

/** What the fine-tuning loop needs of a classifier, whichever head it has. */
export abstract class BertClassifier extends Module {
  abstract readonly kind: ClassifierKind;
  readonly bert: BertModel;
  readonly classifier: Linear;
  readonly dropoutRng: Rng;
  protected readonly drop: Dropout;

  /**
   * Weights from `seed`'s "init" stream, dropout masks from its "dropout"
   * stream (as BertForMaskedLM). `labels` are the class names in id order
   * (id2label).
   */
  constructor(readonly config: BertConfig, readonly labels: readonly string[], seed: number, opts: { pooler: boolean }) {
    super();
    validateBertConfig(config);
    if (labels.length < 2) throw new UntieError(`a classifier needs at least 2 labels, got ${labels.length}`);
    if (new Set(labels).size !== labels.length) throw new UntieError('the label names of a classifier must be distinct');
    const rng = Rng.derive(seed, 'init');
    this.dropoutRng = Rng.derive(seed, 'dropout');
    this.bert = this.child('bert', new BertModel(config, rng, this.dropoutRng, { pooler: opts.pooler }));
    this.drop = this.child('dropout', new Dropout(config.dropout, this.dropoutRng));
    this.classifier = this.child('classifier', new Linear(config.hidden, labels.length, rng, { std: config.initStd }));
  }

  get architecture(): string {
    return ARCHITECTURES[this.kind];
  }

  /** The encoder's layers, for the sharing controller. */
  stack(): RepeatedStack {
    return this.bert.stack();
  }

  /**
   * What the encoder gives the head, (rows, hidden): the hidden state of
   * every position (token) or of [CLS] (sequence). It does not depend on
   * the head, so with a frozen encoder it is computed once and the head is
   * trained on it (a probe).
   */
  abstract encoderFeatures(b: TokenBatch): Tensor;

  /** Logits (rows, labels) from encoder features, with dropout in training mode. */
  abstract head(features: Tensor): Tensor;

  logits(b: TokenBatch): Tensor {
    return this.head(this.encoderFeatures(b));
  }

  /** The head's parameters (what a frozen-encoder probe trains). */
  isHeadParameter(name: string): boolean {
    return !name.startsWith('bert.embeddings.') && !name.startsWith('bert.encoder.');
  }
}

/** Dropout and `classifier` on every position's hidden state. */
export class BertForTokenClassification extends BertClassifier {
  readonly kind = 'token' as const;
  constructor(config: BertConfig, labels: readonly string[], seed: number) {
    super(config, labels, seed, { pooler: false });
  }

  /** (B * T, hidden) */
  encoderFeatures(b: TokenBatch): Tensor {
    return ops.reshape(this.bert.encode(b), [b.batchSize * b.seqLen, this.config.hidden]);
  }

  head(features: Tensor): Tensor {
    return this.classifier.forward(this.drop.forward(features));
  }
}

/** The pooler (dense + tanh on [CLS]), dropout, then `classifier`. */
export class BertForSequenceClassification extends BertClassifier {
  readonly kind = 'sequence' as const;
  constructor(config: BertConfig, labels: readonly string[], seed: number) {
    super(config, labels, seed, { pooler: true });
  }

  /** The hidden state of each sequence's [CLS], (B, hidden). */
  encoderFeatures(b: TokenBatch): Tensor {
    return this.bert.firstToken(this.bert.encode(b), b);
  }

  head(features: Tensor): Tensor {
    const pooled = ops.tanh(this.bert.pooler!.dense.forward(features));
    return this.classifier.forward(this.drop.forward(pooled));
  }
}

export function newClassifier(kind: ClassifierKind, config: BertConfig, labels: readonly string[], seed: number): BertClassifier {
  return kind === 'token' ? new BertForTokenClassification(config, labels, seed) : new BertForSequenceClassification(config, labels, seed);
}
