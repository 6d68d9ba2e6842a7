/**
 * Using a trained model: fill-mask predictions of an encoder, as Hugging
 * Face's fill-mask pipeline gives them, sampled text of a decoder, and labels
 * for new text from a fine-tuned classifier (a label per text, or a tag per word).
 */
import { UntieError } from '../errors.js';
import { IGNORE_INDEX } from '../data/mlm.js';
import { NOT_IN_STREAM } from '../data/causal.js';
import { encodeSequences, type TaskExample } from '../data/tasks/task.js';
import { CLS_ID, MASK_ID, SEP_ID, UNK_ID, type WordPieceTokenizer } from '../data/tokenizer.js';
import type { BertClassifier } from '../models/heads.js';
import { Rng } from '../tensor/rng.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { taskBatch, type TaskBatch } from './finetune.js';
import { loadClassifier, resolveClassifierDir, type Loaded, type LoadedDecoder } from './load.js';

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
