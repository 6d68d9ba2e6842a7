/**
 * Using a trained model: fill-mask predictions of an encoder, as Hugging
 * Face's fill-mask pipeline gives them, and sampled text of a decoder.
 */
import { UntieError } from '../errors.js';
import { NOT_IN_STREAM } from '../data/causal.js';
import { MASK_ID, SEP_ID } from '../data/tokenizer.js';
import { Rng } from '../tensor/rng.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { Loaded, LoadedDecoder } from './load.js';

export interface MaskPrediction {
  score: number;
  token: number;
  token_str: string;
  sequence: string;
}

/**
 * The indices of the k largest values, largest first, ties in index order (as a stable sort of
 * the whole row would give them), in one pass: sorting a vocabulary of 8,192 per query cost
 * more than the model's forward pass.
 */
export function topIndices(row: ArrayLike<number>, k: number): number[] {
  const top: number[] = [];
  for (let v = 0; v < row.length; v++) {
    if (top.length === k && !(row[v] > row[top[k - 1]])) continue;
    const at = top.findIndex((t) => row[v] > row[t]);
    top.splice(at < 0 ? top.length : at, 0, v);
    if (top.length > k) top.pop();
  }
  return top;
}

/** For each [MASK] in `text`, the `topK` most likely tokens with their probabilities. */
export async function fillMask(loaded: Loaded, text: string, topK = 5): Promise<MaskPrediction[][]> {
  const { model, tokenizer } = loaded;
  const ids = await tokenizer.encode(text);
  const maxLen = model.config.maxPositions;
  if (ids.length > maxLen) throw new UntieError(`the text is ${ids.length} tokens long; this model takes at most ${maxLen}`);
  const masks = ids.flatMap((id, i) => (id === MASK_ID ? [i] : []));
  if (masks.length === 0) throw new UntieError('the text has no [MASK] token: write [MASK] where a word should be predicted');
  const batch = {
    inputIds: Int32Array.from(ids), tokenTypeIds: new Int32Array(ids.length), attentionMask: new Float32Array(ids.length).fill(1),
    batchSize: 1, seqLen: ids.length,
  };
  const logits = noGrad(() => model.logitsAt(model.encode(batch), Int32Array.from(masks)));
  const V = model.config.vocabSize;
  const out: MaskPrediction[][] = [];
  for (let m = 0; m < masks.length; m++) {
    const row = logits.data.subarray(m * V, (m + 1) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    const order = topIndices(row, topK);
    const preds: MaskPrediction[] = [];
    for (const token of order) {
      const filled = [...ids];
      filled[masks[m]] = token;
      preds.push({
        score: Math.exp(row[token] - max) / z, token, token_str: tokenizer.vocab[token],
        sequence: await tokenizer.decode(filled.slice(1, -1)),
      });
    }
    out.push(preds);
  }
  return out;
}

export interface GenerateOptions {
  /** Tokens to generate at most (default 50); generation stops earlier at a [SEP], a document's end. */
  maxTokens?: number;
  /** Divides the logits before sampling (default 0.8); 0 takes the most likely token every time (greedy). */
  temperature?: number;
  /** Sample among the k most likely tokens only (default 50; 0 = all). */
  topK?: number;
  /** The sampling seed (default 0): the same seed, prompt and model give the same text. */
  seed?: number;
}

export interface Generation {
  prompt: string;
  /** The prompt and its continuation, decoded together (so a word split across the two is joined). */
  text: string;
  /** The continuation alone. */
  continuation: string;
  /** The continuation's token ids. */
  tokens: number[];
  /** Why it stopped: a [SEP] (the end of a document) or maxTokens. */
  stopped: 'end' | 'length';
  seed: number;
}

/**
 * Continues `prompt` with a decoder, one sampled token at a time. The
 * context starts with [SEP], as every document of the training stream does
 * after the one before it; once it outgrows the position table, only the
 * last maxPositions tokens are read (a sliding window, as nanoGPT's sample).
 */
export async function generate(loaded: LoadedDecoder, prompt: string, opts: GenerateOptions = {}): Promise<Generation> {
  const { model, tokenizer } = loaded;
  const maxTokens = opts.maxTokens ?? 50, temperature = opts.temperature ?? 0.8, topK = opts.topK ?? 50, seed = opts.seed ?? 0;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new UntieError(`--max-tokens must be a whole number >= 1, got ${maxTokens}`);
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw new UntieError(`--temperature must be a number >= 0 (0 = always the most likely token), got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new UntieError(`--top-k must be a whole number >= 0 (0 = the whole vocabulary), got ${topK}`);
  if (!(Number.isSafeInteger(seed) && seed >= 0)) throw new UntieError(`--seed must be a whole number >= 0, got ${seed}`);
  const promptIds = await tokenizer.encode(prompt, { addSpecialTokens: false });
  const P = model.config.maxPositions;
  if (promptIds.length + 1 > P) {
    throw new UntieError(`the prompt is ${promptIds.length} tokens; with the [SEP] that starts it, this model's position table holds ${P}: shorten the prompt to at most ${P - 1} tokens`);
  }
  const rng = new Rng(seed);
  const context = [SEP_ID, ...promptIds];
  const tokens: number[] = [];
  let stopped: Generation['stopped'] = 'length';
  while (tokens.length < maxTokens) {
    const window = context.slice(-P);
    const T = window.length;
    const batch = { inputIds: Int32Array.from(window), tokenTypeIds: new Int32Array(T), attentionMask: new Float32Array(T).fill(1), batchSize: 1, seqLen: T };
    const logits = noGrad(() => tidy(() => model.logits(model.decode(batch), Int32Array.of(T - 1)).data.slice()));
    const next = sampleToken(logits, temperature, topK, rng);
    if (next === SEP_ID) {
      stopped = 'end';
      break;
    }
    tokens.push(next);
    context.push(next);
  }
  return {
    prompt, text: await tokenizer.decode([...promptIds, ...tokens]), continuation: await tokenizer.decode(tokens), tokens, stopped, seed,
  };
}

/**
 * One token from next-token logits: the argmax at temperature 0, else a
 * draw from softmax(logits / temperature) over the top k. Ids the training
 * stream never holds ([PAD], [CLS], [MASK]) are never drawn.
 */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, rng: Rng): number {
  const candidates: number[] = [];
  for (let id = 0; id < logits.length; id++) if (!NOT_IN_STREAM.includes(id)) candidates.push(id);
  // Most likely first, ties by id, so the order (and the draw) is the same on every machine.
  candidates.sort((a, b) => logits[b] - logits[a] || a - b);
  if (temperature === 0) return candidates[0];
  const kept = topK > 0 ? candidates.slice(0, topK) : candidates;
  const top = logits[kept[0]] / temperature;
  const weights = kept.map((id) => Math.exp(logits[id] / temperature - top));
  let u = rng.uniform() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < kept.length; i++) {
    u -= weights[i];
    if (u < 0) return kept[i];
  }
  return kept[kept.length - 1];
}
