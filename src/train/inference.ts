/**
 * Using a trained model: fill-mask predictions, as Hugging Face's fill-mask
 * pipeline gives them, and labels for new text from a fine-tuned classifier
 * (a label per text, or a tag per word).
 */
import { UntieError } from '../errors.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { encodeSequences, type TaskExample } from '../data/tasks/task.js';
import { CLS_ID, MASK_ID, SEP_ID, UNK_ID, type WordPieceTokenizer } from '../data/tokenizer.js';
import type { BertClassifier } from '../models/heads.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { taskBatch, type TaskBatch } from './finetune.js';
import { loadClassifier, resolveClassifierDir, type Loaded } from './load.js';

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

/** A fine-tuned classifier and what it needs to read new text. */
export interface Classifier {
  model: BertClassifier;
  tokenizer: WordPieceTokenizer;
  modelDir: string;
  /** Ids per sequence, [CLS] and [SEP] included: the length it was fine-tuned with (else the model's maximum). */
  maxLength: number;
}

/** Loads a fine-tuned classifier from a run folder, its finetune-<task> folder, or a model folder. */
export function openClassifier(target: string): Classifier {
  const { modelDir, maxLength } = resolveClassifierDir(target);
  const { model, tokenizer } = loadClassifier(modelDir);
  return { model, tokenizer, modelDir, maxLength: Math.min(maxLength ?? model.config.maxPositions, model.config.maxPositions) };
}

/** A text's label, as Hugging Face's text-classification pipeline gives it, with every label's probability. */
export interface TextPrediction {
  label: string;
  score: number;
  scores: Record<string, number>;
}

/** A word's tag (token classification: the prediction at the word's first piece). */
export interface WordPrediction {
  word: string;
  label: string;
  score: number;
}

function softmaxRow(logits: Float32Array, row: number, cols: number): number[] {
  const z = Array.from(logits.subarray(row * cols, (row + 1) * cols));
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function labelled(labels: readonly string[], p: number[]): { label: string; score: number } {
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
  return { label: labels[best], score: p[best] };
}

/** Logits of examples in batches, dropout off, without a tape. */
function logitsOf(model: BertClassifier, examples: readonly TaskExample[], batchSize: number, each: (batch: TaskBatch, logits: Float32Array, first: number) => void): void {
  const wasTraining = model.training;
  model.eval();
  try {
    for (let i = 0; i < examples.length; i += batchSize) {
      const batch = taskBatch(examples.slice(i, i + batchSize), model.kind);
      tidy(() => each(batch, noGrad(() => model.logits(batch)).data, i));
    }
  } finally {
    model.train(wasTraining);
  }
}

/** Labels texts with a sequence classifier (spam, classify); texts longer than it was fine-tuned with are cut as in fine-tuning. */
export async function classifyTexts(c: Classifier, texts: readonly string[], batchSize = 16): Promise<TextPrediction[]> {
  if (c.model.kind !== 'sequence') throw new UntieError(`${c.modelDir} tags words (${c.model.architecture}); use tagWords for it`);
  const examples = await encodeSequences(c.tokenizer, texts, texts.map(() => 0), c.maxLength);
  const out: TextPrediction[] = [];
  const L = c.model.labels.length;
  logitsOf(c.model, examples, batchSize, (batch, logits) => {
    for (let b = 0; b < batch.batchSize; b++) {
      const p = softmaxRow(logits, b, L);
      out.push({ ...labelled(c.model.labels, p), scores: Object.fromEntries(c.model.labels.map((l, k) => [l, p[k]])) });
    }
  });
  return out;
}

/**
 * The words of a text as the POS task has them: runs of letters and digits
 * (with inner apostrophes, hyphens and dots: "didn't", "long-term", "U.S")
 * and each other non-space character alone.
 */
export function splitWords(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+(?:['’.-][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** Tags every word of each text with a token classifier (pos); each word tokenized alone, as in fine-tuning. */
export async function tagWords(c: Classifier, texts: readonly string[], batchSize = 16): Promise<WordPrediction[][]> {
  if (c.model.kind !== 'token') throw new UntieError(`${c.modelDir} labels whole texts (${c.model.architecture}); use classifyTexts for it`);
  const room = c.maxLength - 2;
  const words = texts.map(splitWords);
  const distinct = [...new Set(words.flat())];
  const ids = await c.tokenizer.encodeBatch(distinct, { addSpecialTokens: false });
  const pieces = new Map(distinct.map((w, i) => [w, (ids[i].length > 0 ? ids[i] : [UNK_ID]).slice(0, room)]));
  // Words packed in order into sequences of at most maxLength ids; each sequence remembers its text and first word.
  const examples: TaskExample[] = [], owner: { text: number; firstWord: number }[] = [];
  words.forEach((ws, t) => {
    let seq: number[] = [], labels: number[] = [], first = 0;
    const flush = (next: number) => {
      if (seq.length > 0) {
        examples.push({ inputIds: Int32Array.from([CLS_ID, ...seq, SEP_ID]), labels: Int32Array.from([IGNORE_INDEX, ...labels, IGNORE_INDEX]) });
        owner.push({ text: t, firstWord: first });
      }
      seq = [];
      labels = [];
      first = next;
    };
    ws.forEach((w, k) => {
      const p = pieces.get(w)!;
      if (seq.length + p.length > room) flush(k);
      seq.push(...p);
      labels.push(0, ...new Array<number>(p.length - 1).fill(IGNORE_INDEX));
    });
    flush(ws.length);
  });
  const out: WordPrediction[][] = texts.map(() => []);
  const L = c.model.labels.length;
  logitsOf(c.model, examples, batchSize, (batch, logits, firstExample) => {
    for (let b = 0; b < batch.batchSize; b++) {
      const { text, firstWord } = owner[firstExample + b];
      let word = firstWord;
      for (let r = 0; r < batch.seqLen; r++) {
        if (batch.targets[b * batch.seqLen + r] === IGNORE_INDEX) continue;
        out[text].push({ word: words[text][word++], ...labelled(c.model.labels, softmaxRow(logits, b * batch.seqLen + r, L)) });
      }
    }
  });
  return out;
}
