/**
 * untie's BERT (masked LM, token or sequence classifier; Post-LN or Pre-LN,
 * with or without Linear biases) as an ONNX inference graph of plain
 * operators that onnxruntime (node and web) runs: Gather, Slice, Shape,
 * Concat, Reshape, Transpose, Gemm, MatMul, Add, Sub, Mul, Div, Cast,
 * Unsqueeze, LayerNormalization, Softmax, Erf (the exact GELU), Tanh, at
 * opset 17 (the first with LayerNormalization).
 *
 * Inputs and output carry Hugging Face's names, with symbolic batch and
 * sequence axes:
 *   input_ids, attention_mask, token_type_ids   int64 (batch, sequence)
 *   logits   float32 (batch, sequence, vocab | labels), or (batch, labels)
 *            for a sequence classifier
 *
 * The graph is the model's forward pass in evaluation mode (no dropout), op
 * for op as src/models/bert.ts computes it: positions 0..T-1 (whatever the
 * Hugging Face layout of the folder: the RoBERTa-PreLayerNorm position
 * table's padding row is a PyTorch matter, not this graph's), an additive
 * key mask of -1e9 where attention_mask is 0, softmax(scale * scores + mask),
 * GELU as 0.5 x (1 + erf(x / sqrt 2)). Initializers keep untie's parameter
 * names; the MLM decoder reads the word-embedding table itself (tied), so
 * the file holds it once.
 */
import type { BertConfig, BertForMaskedLM } from '../models/bert.js';
import type { BertClassifier } from '../models/heads.js';
import type { Tensor } from '../tensor/tensor.js';
import { attr, GraphBuilder, tensorInfo } from './onnx-graph.js';
import { ONNX_FLOAT, ONNX_INT64, type OnnxModel } from './onnx-proto.js';

export const ONNX_OPSET = 17;
/** The IR version of ONNX 1.12, the release that introduced opset 17. */
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
export const ONNX_OUTPUT = 'logits';

/** A model the ONNX export writes. */
export type OnnxExportable = BertForMaskedLM | BertClassifier;

/** Mask value for padding keys: what BertModel.encode adds (see its keyMask). */
const MASKED = -1e9;

export function bertOnnxModel(model: OnnxExportable, opts: { producerVersion?: string } = {}): OnnxModel {
  const c: BertConfig = model.config;
  const params = new Map<string, Tensor>(model.namedParameters());
  const g = new GraphBuilder();
  const written = new Set<string>();
  /** The parameter `name` as an initializer (once, however many nodes read it). */
  const w = (name: string): string => {
    const t = params.get(name);
    if (!t) throw new Error(`ONNX export: the model has no parameter "${name}"`);
    if (!written.has(name)) g.weight(name, t.data, [...t.shape]);
    written.add(name);
    return name;
  };
  const has = (name: string) => params.has(name);

  const H = c.hidden, heads = c.heads, D = H / heads;
  // (batch, sequence), and the shapes built from it at run time.
  const batchSeq = g.op('Shape', ['input_ids'], [], { hint: 'batch_sequence' });
  const seqLen = g.op('Shape', ['input_ids'], [attr.int('start', 1), attr.int('end', 2)], { hint: 'sequence' });
  const withTail = (tail: number[], hint: string) => g.op('Concat', [batchSeq, g.int64s(tail)], [attr.int('axis', 0)], { hint });
  const headsShape = withTail([heads, D], 'heads_shape'); // (B, T, heads, D)
  const rows = g.int64s([-1, H]); // (B * T, H): every Linear runs on rows

  /** x @ W^T + b on rows (B * T or B, in): untie's Linear (weight (out, in)), bias-free when the model has none. */
  const linear = (x: string, prefix: string) =>
    g.op('Gemm', [x, w(`${prefix}.weight`), has(`${prefix}.bias`) ? w(`${prefix}.bias`) : ''], [attr.int('transB', 1)], { hint: prefix });
  const layerNorm = (x: string, prefix: string) =>
    g.op('LayerNormalization', [x, w(`${prefix}.weight`), w(`${prefix}.bias`)], [attr.int('axis', -1), attr.float('epsilon', c.layerNormEps)], { hint: prefix });
  // 0.5 x (1 + erf(x / sqrt 2)), in the order onnxruntime's GELU fusion recognises.
  const gelu = (x: string) => {
    const erf = g.op('Erf', [g.op('Div', [x, g.scalar(Math.SQRT2)])]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.scalar(1)])]), g.scalar(0.5)], [], { hint: 'gelu' });
  };
  const add = (a: string, b: string) => g.op('Add', [a, b]);

  // Embeddings: LayerNorm(word + position + token type), positions 0..T-1.
  const e = 'bert.embeddings';
  const words = g.op('Gather', [w(`${e}.word_embeddings.weight`), 'input_ids'], [], { hint: 'word_embeddings' });
  const positions = g.op('Slice', [w(`${e}.position_embeddings.weight`), g.int64s([0]), seqLen, g.int64s([0])], [], { hint: 'position_embeddings' });
  const types = g.op('Gather', [w(`${e}.token_type_embeddings.weight`), 'token_type_ids'], [], { hint: 'token_type_embeddings' });
  let x = g.op('Reshape', [layerNorm(add(add(words, positions), types), `${e}.LayerNorm`), rows]);

  // The key mask, (B, 1, 1, T): 0 where attention_mask is 1, -1e9 where it is 0.
  const padding = g.op('Sub', [g.scalar(1), g.op('Cast', ['attention_mask'], [attr.int('to', ONNX_FLOAT)])]);
  const keyMask = g.op('Unsqueeze', [g.op('Mul', [padding, g.scalar(MASKED)]), g.int64s([1, 2])], [], { hint: 'key_mask' });

  const attention = (h: string, prefix: string) => {
    const split = (name: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [linear(h, `${prefix}.self.${name}`), headsShape])], [attr.ints('perm', perm)]);
    const q = split('query', [0, 2, 1, 3]); // (B, heads, T, D)
    const kT = split('key', [0, 2, 3, 1]); // (B, heads, D, T)
    const v = split('value', [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar(1 / Math.sqrt(D))]), keyMask], [], { hint: `${prefix}.scores` });
    const probs = g.op('Softmax', [scores], [attr.int('axis', -1)]);
    const context = g.op('Transpose', [g.op('MatMul', [probs, v])], [attr.ints('perm', [0, 2, 1, 3])]); // (B, T, heads, D)
    return linear(g.op('Reshape', [context, rows]), `${prefix}.output.dense`);
  };
  const ffn = (h: string, prefix: string) => linear(gelu(linear(h, `${prefix}.intermediate.dense`)), `${prefix}.output.dense`);

  for (let i = 0; i < c.layers; i++) {
    const p = `bert.encoder.layer.${i}`;
    const attnNorm = `${p}.attention.output.LayerNorm`, ffnNorm = `${p}.output.LayerNorm`;
    if (c.norm === 'post') {
      const h = layerNorm(add(x, attention(x, `${p}.attention`)), attnNorm);
      x = layerNorm(add(h, ffn(h, p)), ffnNorm);
    } else {
      const h = add(x, attention(layerNorm(x, attnNorm), `${p}.attention`));
      x = add(h, ffn(layerNorm(h, ffnNorm), p));
    }
  }
  if (c.norm === 'pre') x = layerNorm(x, 'bert.encoder.final_layer_norm');

  const batchSeqDims = ['batch', 'sequence'];
  let logitsDims: (number | string)[];
  if (!('kind' in model)) {
    // MLM head at every position; the decoder is the word-embedding table (tied).
    const t = layerNorm(gelu(linear(x, 'cls.predictions.transform.dense')), 'cls.predictions.transform.LayerNorm');
    const scores = g.op('Gemm', [t, w(`${e}.word_embeddings.weight`), w('cls.predictions.bias')], [attr.int('transB', 1)], { hint: 'mlm_scores' });
    g.op('Reshape', [scores, withTail([c.vocabSize], 'logits_shape')], [], { out: 'logits' });
    logitsDims = [...batchSeqDims, c.vocabSize];
  } else if (model.kind === 'token') {
    g.op('Reshape', [linear(x, 'classifier'), withTail([model.labels.length], 'logits_shape')], [], { out: 'logits' });
    logitsDims = [...batchSeqDims, model.labels.length];
  } else {
    // The pooler on [CLS] (position 0), then the classifier.
    const first = g.op('Gather', [g.op('Reshape', [x, withTail([H], 'hidden_shape')]), g.int64s([0], [])], [attr.int('axis', 1)], { hint: 'first_token' });
    const pooled = g.op('Tanh', [linear(first, 'bert.pooler.dense')]);
    g.op('Gemm', [pooled, w('classifier.weight'), w('classifier.bias')], [attr.int('transB', 1)], { out: 'logits' });
    logitsDims = ['batch', model.labels.length];
  }

  const architecture = 'architecture' in model ? model.architecture : 'BertForMaskedLM';
  return {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'untie',
    producer_version: opts.producerVersion ?? '',
    doc_string: `untie ${architecture}, ${c.norm === 'pre' ? 'Pre-LN' : 'Post-LN'}, ${c.layers} layers, hidden ${H}`,
    graph: {
      name: architecture,
      node: g.nodes,
      initializer: g.initializers,
      input: ONNX_INPUTS.map((name) => tensorInfo(name, ONNX_INT64, batchSeqDims)),
      output: [tensorInfo(ONNX_OUTPUT, ONNX_FLOAT, logitsDims)],
    },
    metadata_props: [{ key: 'untie_architecture', value: architecture }, { key: 'untie_norm', value: c.norm }],
  };
}
