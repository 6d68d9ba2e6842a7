/**
 * What the browser example trains, with no DOM: a tiny BertForMaskedLM (2
 * layers, hidden 64) on pre-tokenized ids, AdamW, masked LM, on whatever
 * kernels are active (the page makes them the wasm kernels). Runs in Node
 * too, which is how its numbers can be checked without a browser.
 *
 * The ids: pre-tokenized, so the page needs no tokenizer and ships nothing
 * but code: 8 sentences of 30 words drawn uniformly from 59, each step a
 * batch of them with fresh masks. The loss starts at ln 59 = 4.08 (any word);
 * the position alone narrows a masked word to the 8 sentences' words there
 * (ln 8 = 2.08), and the unmasked words tell which sentence it is (towards
 * 0), so a falling loss shows the embeddings, then attention, learning.
 */
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../../src/models/bert.js';
import { Optimizer, defaultOptimizerConfig } from '../../src/optim/optimizers.js';
import { Rng } from '../../src/tensor/rng.js';
import { backward, tidy } from '../../src/tensor/tensor.js';

export const PAD = 0, CLS = 2, SEP = 3, MASK = 4, FIRST_WORD = 5, WORDS = 59;
const SEQ = 32, BATCH = 16, SENTENCES = 8, MASK_PROB = 0.15;

export function demoConfig(): BertConfig {
  return {
    ...defaultBertConfig(),
    vocabSize: FIRST_WORD + WORDS, hidden: 64, layers: 2, heads: 2, intermediate: 128, maxPositions: SEQ, dropout: 0, attentionDropout: 0,
  };
}

/** The pre-tokenized corpus: SENTENCES rows of SEQ ids, [CLS] w1 ... [SEP], words uniform at random. */
export function demoIds(seed = 1): Int32Array[] {
  const rng = new Rng(seed);
  const rows: Int32Array[] = [];
  for (let s = 0; s < SENTENCES; s++) {
    const row = new Int32Array(SEQ);
    row[0] = CLS;
    for (let i = 1; i < SEQ - 1; i++) row[i] = FIRST_WORD + (rng.nextU32() % WORDS);
    row[SEQ - 1] = SEP;
    rows.push(row);
  }
  return rows;
}

/** A batch of BATCH rows with 15% of the word positions (at least one per row) masked. */
function maskedBatch(rows: Int32Array[], rng: Rng): MlmBatch {
  const n = BATCH * SEQ;
  const inputIds = new Int32Array(n), labels = new Int32Array(n).fill(-100);
  for (let b = 0; b < BATCH; b++) {
    const row = rows[rng.nextU32() % rows.length];
    inputIds.set(row, b * SEQ);
    const forced = 1 + (rng.nextU32() % (SEQ - 2));
    for (let i = 1; i < SEQ - 1; i++) {
      if (i !== forced && rng.uniform() >= MASK_PROB) continue;
      labels[b * SEQ + i] = row[i];
      inputIds[b * SEQ + i] = MASK;
    }
  }
  return { inputIds, tokenTypeIds: new Int32Array(n), attentionMask: new Float32Array(n).fill(1), labels, batchSize: BATCH, seqLen: SEQ };
}

export interface DemoStep {
  step: number;
  loss: number;
  ms: number;
}

/**
 * Trains for `steps` AdamW steps (linear warmup over the first 10%, then
 * constant), calling `onStep` after each; an async `onStep` (the page yields
 * there so that it can draw) is awaited.
 */
export async function trainDemo(steps: number, onStep: (s: DemoStep) => void | Promise<void>, seed = 0): Promise<DemoStep[]> {
  const config = demoConfig();
  const model = new BertForMaskedLM(config, seed);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p), names = named.map(([n]) => n);
  const opt = new Optimizer(defaultOptimizerConfig());
  const rows = demoIds(seed + 1), rng = new Rng(seed + 2);
  const lr = 1e-2, warmup = Math.max(1, Math.round(steps / 10));
  const done: DemoStep[] = [];
  for (let step = 1; step <= steps; step++) {
    const t0 = performance.now();
    const batch = maskedBatch(rows, rng);
    model.zeroGrad();
    const loss = tidy(() => {
      const out = model.mlm(batch);
      backward(out.loss);
      return out.loss.item();
    });
    opt.step(params, names, lr * Math.min(1, step / warmup));
    const s = { step, loss, ms: performance.now() - t0 };
    done.push(s);
    await onStep(s);
  }
  return done;
}
