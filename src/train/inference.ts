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
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, topK);
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
