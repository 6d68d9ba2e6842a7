/** Using a trained model: fill-mask predictions, as Hugging Face's fill-mask pipeline gives them. */
import { UntieError } from '../errors.js';
import { MASK_ID } from '../data/tokenizer.js';
import { noGrad } from '../tensor/tensor.js';
import type { Loaded } from './load.js';

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
