/**
 * The Hugging Face layout of untie's decoder: GPT2LMHeadModel (model_type
 * "gpt2"). untie's GptLMHeadModel computes what GPT-2 does op for op
 * (wte + wpe, dropout; each block x + attn(ln_1(x)), h + mlp(ln_2(h)); ln_f;
 * logits = h wte^T), with the exact (erf) GELU, which GPT-2's config names
 * "gelu" (its own default is the tanh approximation, "gelu_new").
 *
 * Two things differ in the weights, and this module converts them both ways:
 * - GPT-2's projections are Conv1D layers, whose weight is (in, out) and
 *   computes x W + b; untie's Linear stores (out, in) and computes x W^T + b,
 *   so every block matrix is transposed;
 * - GPT-2 fuses Q, K and V into one c_attn of weight (C, 3C), columns
 *   [q | k | v]; untie keeps three Linears (attn.query/key/value).
 * lm_head.weight is tied to transformer.wte.weight and not stored (Hugging
 * Face ties it on load). A model built without biases is written with zero
 * ones, since GPT-2 always has them.
 *
 * Checkpoints are written in this layout too, so a checkpoint folder is a
 * GPT2LMHeadModel folder as it stands.
 */
import { UntieError } from '../errors.js';
import { SEP_ID, PAD_ID } from '../data/tokenizer.js';
import type { GptConfig } from '../models/gpt.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ReadTensor, WritableTensor } from './safetensors.js';

export const GPT2_TYPE = 'gpt2';
export const GPT2_ARCHITECTURE = 'GPT2LMHeadModel';

/** A Hugging Face GPT2Config for `c` (the "untie_*" keys are kept by Hugging Face as attributes). */
export function gpt2Config(c: GptConfig): Record<string, unknown> {
  return {
    architectures: [GPT2_ARCHITECTURE],
    model_type: GPT2_TYPE,
    vocab_size: c.vocabSize,
    n_positions: c.maxPositions,
    n_embd: c.hidden,
    n_layer: c.layers,
    n_head: c.heads,
    n_inner: c.intermediate,
    activation_function: 'gelu',
    resid_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    attn_pdrop: c.attentionDropout,
    layer_norm_epsilon: c.layerNormEps,
    initializer_range: c.initStd,
    scale_attn_weights: true,
    // [SEP] ends every document in the training stream, as <|endoftext|> does in GPT-2's.
    bos_token_id: SEP_ID,
    eos_token_id: SEP_ID,
    pad_token_id: PAD_ID,
    tie_word_embeddings: true,
    use_cache: true,
    torch_dtype: 'float32',
    untie_bias: c.bias,
  };
}

/** Reads a GptConfig back from a GPT2Config (config.json); `source` names the file in errors. */
export function gptConfigFromHf(raw: Record<string, unknown>, source: string): GptConfig {
  const num = (k: string, fallback?: number): number => {
    const v = raw[k] ?? fallback;
    if (typeof v !== 'number') throw new UntieError(`${source}: "${k}" is missing or not a number`);
    return v;
  };
  if (raw.activation_function !== 'gelu') {
    throw new UntieError(`${source}: activation_function "${String(raw.activation_function)}" is not untie's (it computes the exact "gelu"; GPT-2's default "gelu_new" is the tanh approximation)`);
  }
  const hidden = num('n_embd');
  return {
    vocabSize: num('vocab_size'), hidden, layers: num('n_layer'), heads: num('n_head'), intermediate: num('n_inner', 4 * hidden),
    maxPositions: num('n_positions'), dropout: num('resid_pdrop', 0.1), attentionDropout: num('attn_pdrop', 0.1),
    layerNormEps: num('layer_norm_epsilon', 1e-5), initStd: num('initializer_range', 0.02),
    bias: raw.untie_bias !== false,
    positionInit: 'normal', // only the starting values of a trained table: irrelevant once weights are loaded
  };
}

/** `a` (rows, cols) transposed, as a new array. */
function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Each block's Conv1D layers (untie's Linears of the same name) with the Linear's (out, in). */
function conv1ds(c: GptConfig, i: number): [name: string, out: number, inF: number][] {
  const p = `transformer.h.${i}.`, C = c.hidden, I = c.intermediate;
  return [[`${p}attn.c_proj`, C, C], [`${p}mlp.c_fc`, I, C], [`${p}mlp.c_proj`, C, I]];
}

const QKV = ['query', 'key', 'value'] as const;

/**
 * untie's parameters (GptLMHeadModel's names and layouts), or anything
 * shaped like them (their gradients), as GPT2LMHeadModel's tensors.
 */
export function toGpt2(named: readonly [string, Float32Array][], c: GptConfig): Record<string, WritableTensor> {
  const byName = new Map(named);
  const get = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new UntieError(`the model has no parameter "${name}": it is not a GPT decoder of this config`);
    return t;
  };
  const bias = (name: string, n: number) => byName.get(name) ?? new Float32Array(n);
  const C = c.hidden;
  const out: Record<string, WritableTensor> = {};
  const put = (name: string, shape: number[], data: Float32Array) => {
    out[name] = { dtype: 'F32', shape, data };
  };
  put('transformer.wte.weight', [c.vocabSize, C], get('transformer.wte.weight'));
  put('transformer.wpe.weight', [c.maxPositions, C], get('transformer.wpe.weight'));
  for (let i = 0; i < c.layers; i++) {
    const p = `transformer.h.${i}.`;
    for (const ln of ['ln_1', 'ln_2']) for (const k of ['weight', 'bias']) put(`${p}${ln}.${k}`, [C], get(`${p}${ln}.${k}`));
    const cAttn = new Float32Array(C * 3 * C), cAttnBias = new Float32Array(3 * C);
    QKV.forEach((proj, j) => {
      const w = get(`${p}attn.${proj}.weight`); // (out, in)
      for (let o = 0; o < C; o++) for (let k = 0; k < C; k++) cAttn[k * 3 * C + j * C + o] = w[o * C + k];
      cAttnBias.set(bias(`${p}attn.${proj}.bias`, C), j * C);
    });
    put(`${p}attn.c_attn.weight`, [C, 3 * C], cAttn);
    put(`${p}attn.c_attn.bias`, [3 * C], cAttnBias);
    for (const [name, outF, inF] of conv1ds(c, i)) {
      put(`${name}.weight`, [inF, outF], transposed(get(`${name}.weight`), outF, inF));
      put(`${name}.bias`, [outF], bias(`${name}.bias`, outF));
    }
  }
  for (const k of ['weight', 'bias']) put(`transformer.ln_f.${k}`, [C], get(`transformer.ln_f.${k}`));
  return out;
}

/** toGpt2 of a model's parameters (`grad`: of their gradients, zeros where none). */
export function parametersAsGpt2(named: readonly [string, Tensor][], c: GptConfig, grad = false): Record<string, WritableTensor> {
  return toGpt2(named.map(([n, t]) => [n, grad ? t.grad ?? new Float32Array(t.size) : t.data]), c);
}

/**
 * GPT2LMHeadModel's tensors under untie's names and layouts (what
 * loadModelWeights takes). Biases are converted whether or not the model has
 * them; a bias-free model simply does not ask for them. Tensors it does not
 * know (lm_head.weight, attention buffers) are left out.
 */
export function fromGpt2(tensors: Record<string, ReadTensor>, c: GptConfig, source: string): Record<string, ReadTensor> {
  const get = (name: string, shape: number[]): Float32Array => {
    const t = tensors[name];
    if (!t) throw new UntieError(`${source} has no tensor "${name}": it is not a GPT-2 checkpoint of this config`);
    if (t.shape.join() !== shape.join()) throw new UntieError(`${source}: "${name}" has shape [${t.shape}], a GPT-2 of this config has [${shape}]`);
    if (!(t.data instanceof Float32Array)) throw new UntieError(`${source}: "${name}" is ${t.dtype}, expected a float tensor`);
    return t.data;
  };
  const C = c.hidden;
  const out: Record<string, ReadTensor> = {};
  const put = (name: string, shape: number[], data: Float32Array) => {
    out[name] = { dtype: 'F32', shape, data };
  };
  const same = (name: string, shape: number[]) => put(name, shape, get(name, shape));
  same('transformer.wte.weight', [c.vocabSize, C]);
  same('transformer.wpe.weight', [c.maxPositions, C]);
  for (let i = 0; i < c.layers; i++) {
    const p = `transformer.h.${i}.`;
    for (const ln of ['ln_1', 'ln_2']) for (const k of ['weight', 'bias']) same(`${p}${ln}.${k}`, [C]);
    const cAttn = get(`${p}attn.c_attn.weight`, [C, 3 * C]), cAttnBias = get(`${p}attn.c_attn.bias`, [3 * C]);
    QKV.forEach((proj, j) => {
      const w = new Float32Array(C * C);
      for (let o = 0; o < C; o++) for (let k = 0; k < C; k++) w[o * C + k] = cAttn[k * 3 * C + j * C + o];
      put(`${p}attn.${proj}.weight`, [C, C], w);
      put(`${p}attn.${proj}.bias`, [C], cAttnBias.slice(j * C, (j + 1) * C));
    });
    for (const [name, outF, inF] of conv1ds(c, i)) {
      put(`${name}.weight`, [outF, inF], transposed(get(`${name}.weight`, [inF, outF]), inF, outF));
      put(`${name}.bias`, [outF], get(`${name}.bias`, [outF]));
    }
  }
  for (const k of ['weight', 'bias']) same(`transformer.ln_f.${k}`, [C]);
  return out;
}
