/**
 * The Hugging Face layout of a Pre-LN model. Hugging Face's BERT is Post-LN
 * only, but its RoBERTa-PreLayerNorm (model_type "roberta-prelayernorm",
 * transformers >= 4.27) computes, op for op, what untie's Pre-LN BERT does:
 *
 *   embeddings: word + position + token type, LayerNorm, dropout
 *   each layer: x + attention(LN(x)), then h + FFN(LN(h)), FFN = dense, gelu, dense
 *   after the stack: a final LayerNorm
 *   MLM head: dense, gelu, LayerNorm, decoder tied to the word embeddings, bias
 *
 * Only names differ, and one thing in positions: RoBERTa numbers the
 * positions from the input ids, cumsum(ids != pad) * (ids != pad) + pad, so
 * with untie's [PAD] = 0 the real tokens of a sequence (padding is at the end
 * only) take positions 1..T where untie uses 0..T-1, and padding takes 0.
 * The exported position table therefore gains a leading row (the padding
 * row, zeros) and max_position_embeddings is maxPositions + 1. Padding
 * positions see another position vector than in untie, but they are masked
 * as keys, so no real position's output changes.
 *
 * The sequence classifier: untie's BertForSequenceClassification is
 * classifier(dropout(tanh(pooler.dense(h[CLS])))); RoBERTa's head is
 * out_proj(dropout(tanh(dense(dropout(h[0]))))). At inference (dropout off)
 * they are the same function, so bert.pooler.dense becomes classifier.dense
 * and classifier becomes classifier.out_proj. Fine-tuning further in Hugging
 * Face adds one dropout, on h[0], that untie's head does not have.
 */
import { UntieError } from '../errors.js';
import type { BertConfig } from '../models/bert.js';
import { CLS_ID, PAD_ID, SEP_ID } from '../data/tokenizer.js';
import type { ReadTensor, WritableTensor } from './safetensors.js';

export const ROBERTA_PRELN_TYPE = 'roberta-prelayernorm';
const POSITIONS = 'position_embeddings.weight';

/**
 * Name prefixes, untie's (BERT's) against RoBERTa-PreLayerNorm's; `*` is a
 * layer index. First match wins, in either direction, so the specific
 * renames come before the plain change of prefix.
 */
const RENAMES: readonly [bert: string, roberta: string][] = [
  ['bert.encoder.final_layer_norm.', 'roberta_prelayernorm.LayerNorm.'],
  ['bert.encoder.layer.*.attention.output.LayerNorm.', 'roberta_prelayernorm.encoder.layer.*.attention.LayerNorm.'],
  ['bert.encoder.layer.*.output.LayerNorm.', 'roberta_prelayernorm.encoder.layer.*.intermediate.LayerNorm.'],
  ['bert.pooler.dense.', 'classifier.dense.'],
  ['cls.predictions.transform.dense.', 'lm_head.dense.'],
  ['cls.predictions.transform.LayerNorm.', 'lm_head.layer_norm.'],
  ['cls.predictions.bias', 'lm_head.bias'],
  ['bert.', 'roberta_prelayernorm.'],
];
/** The sequence head's output layer; a token classifier's `classifier` keeps its name. */
const SEQUENCE_OUT: readonly [bert: string, roberta: string] = ['classifier.', 'classifier.out_proj.'];

function patternOf(prefix: string): RegExp {
  return new RegExp('^' + prefix.replace(/\./g, '\\.').replace('*', '(\\d+)'));
}

function rename(name: string, rules: readonly (readonly [string, string])[], from: 0 | 1): string {
  for (const rule of rules) {
    const m = patternOf(rule[from]).exec(name);
    if (m) return rule[1 - from].replace('*', m[1] ?? '') + name.slice(m[0].length);
  }
  return name;
}

/** The RoBERTa-PreLayerNorm class for untie's BERT class (BertForMaskedLM -> RobertaPreLayerNormForMaskedLM, ...). */
export function robertaArchitecture(bertArchitecture: string): string {
  return bertArchitecture.replace(/^Bert/, 'RobertaPreLayerNorm');
}

/**
 * untie's tensors (BERT names, bias-free models already given their zero
 * biases) in RoBERTa-PreLayerNorm's names, with the padding row prepended
 * to the position table.
 */
export function toRobertaPreLn(tensors: Record<string, WritableTensor>, c: BertConfig, sequenceHead: boolean): Record<string, WritableTensor> {
  const rules = sequenceHead ? [SEQUENCE_OUT, ...RENAMES] : RENAMES;
  const out: Record<string, WritableTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const hfName = rename(name, rules, 0);
    if (hfName.endsWith(`embeddings.${POSITIONS}`) && t.dtype === 'F32') {
      const table = new Float32Array((c.maxPositions + 1) * c.hidden);
      table.set(t.data, c.hidden); // row 0: RoBERTa's padding position, never used by a real token
      out[hfName] = { dtype: 'F32', shape: [c.maxPositions + 1, c.hidden], data: table };
    } else {
      out[hfName] = t;
    }
  }
  return out;
}

/**
 * A RoBERTa-PreLayerNorm folder's tensors under untie's names, the padding
 * row dropped from the position table. Tensors untie has no use for
 * (lm_head.decoder.*, tied; a position_ids buffer) keep a name no model
 * parameter has, and the loader ignores them.
 */
export function fromRobertaPreLn(tensors: Record<string, ReadTensor>, source: string): Record<string, ReadTensor> {
  const rules = [[SEQUENCE_OUT[0], SEQUENCE_OUT[1]] as const, ...RENAMES];
  const out: Record<string, ReadTensor> = {};
  for (const [hfName, t] of Object.entries(tensors)) {
    const name = rename(hfName, rules, 1);
    if (name === `bert.embeddings.${POSITIONS}`) {
      if (t.shape.length !== 2 || t.shape[0] < 2 || t.dtype === 'I32' || t.dtype === 'I64') {
        throw new UntieError(`${source}: "${hfName}" has shape [${t.shape}] (${t.dtype}); a position table of at least 2 float rows was expected`);
      }
      out[name] = { dtype: t.dtype, shape: [t.shape[0] - 1, t.shape[1]], data: t.data.subarray(t.shape[1]) };
    } else {
      out[name] = t;
    }
  }
  return out;
}

/**
 * The RoBERTa-PreLayerNorm config.json, from the Hugging Face BertConfig
 * fields untie writes for the same model (`bertFields`).
 */
export function robertaPreLnConfig(bertFields: Record<string, unknown>, c: BertConfig): Record<string, unknown> {
  const architectures = (bertFields.architectures as string[]).map(robertaArchitecture);
  return {
    ...bertFields,
    architectures,
    model_type: ROBERTA_PRELN_TYPE,
    max_position_embeddings: c.maxPositions + 1,
    // RobertaPreLayerNormConfig defaults to RoBERTa's ids (pad 1, bos 0, eos 2); these are untie's vocabulary's.
    pad_token_id: PAD_ID,
    bos_token_id: CLS_ID,
    eos_token_id: SEP_ID,
  };
}

/**
 * maxPositions of a RoBERTa-PreLayerNorm config.json: what untie can read is
 * a model whose padding id is its [PAD] (0), so that the table's row 0 is the
 * padding row and rows 1.. are untie's positions 0...
 */
export function maxPositionsFromRoberta(raw: Record<string, unknown>, source: string): number {
  if (raw.pad_token_id !== PAD_ID) {
    throw new UntieError(
      `${source}: a ${ROBERTA_PRELN_TYPE} model with pad_token_id ${JSON.stringify(raw.pad_token_id ?? 1)} numbers its positions from ${Number(raw.pad_token_id ?? 1) + 1}; ` +
        `untie reads only those with pad_token_id ${PAD_ID} (its [PAD] id), as untie export writes them`,
    );
  }
  const n = raw.max_position_embeddings;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 2) throw new UntieError(`${source}: "max_position_embeddings" must be a whole number >= 2, got ${JSON.stringify(n)}`);
  return n - 1;
}
