/**
 * Masked-LM examples, BERT style.
 *
 * Packing: each document's sentences, in order, are packed greedily into
 * sequences of at most `maxLength` tokens: [CLS] s1 s2 ... [SEP]. A sequence
 * never spans two documents; a sentence longer than a whole sequence is cut
 * into pieces. One segment only, so token_type_ids are all 0 (BERT's
 * next-sentence pairs are not used). Unlike BERT's create_pretraining_data we
 * do not shorten a fraction of sequences at random: the document tails give
 * the model short sequences anyway.
 *
 * Masking (per batch, fresh each time a sequence is drawn): every eligible
 * token (not [PAD]/[UNK]/[CLS]/[SEP]/[MASK]) is selected with probability
 * 0.15; a selected token becomes [MASK] 80% of the time, a uniformly random
 * non-special token 10%, and stays itself 10%. Labels hold the original id at
 * selected positions and -100 elsewhere (the ignore index of the loss). As in
 * Hugging Face's collator, [UNK] is never a target: predicting it teaches
 * nothing. A sequence whose draw selects nothing gets one selected position
 * at random, so no batch has an empty loss (this matters only for very short
 * sequences: at 126 eligible tokens the chance of selecting none is 1e-9).
 */
import { check } from '../errors.js';
import { Rng, isRngState, type RngState } from '../tensor/rng.js';
import { sentenceText, type Document } from './corpus.js';
import { CLS_ID, MASK_ID, PAD_ID, SEP_ID, type WordPieceTokenizer } from './tokenizer.js';

/** Label at positions the loss ignores (PyTorch's CrossEntropyLoss default). */
export const IGNORE_INDEX = -100;
/** The masking seed of the validation set: fixed, so validation losses of different runs compare. */
export const VALIDATION_MASKING_SEED = 20240601;

export interface MlmBatch {
  /** [batchSize, seqLen] token ids after masking. */
  inputIds: Int32Array;
  /** [batchSize, seqLen], all 0 (single segment). */
  tokenTypeIds: Int32Array;
  /** [batchSize, seqLen], 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  /** [batchSize, seqLen], original id where a token was selected for prediction, else IGNORE_INDEX. */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
  /**
   * [batchSize, seqLen], a generated corpus's difficulty of the target at each
   * labelled position (its hop count, its depth; 0 elsewhere). Absent for text.
   */
  difficulty?: Int32Array;
}

export interface MaskingConfig {
  vocabSize: number;
  maskId: number;
  padId: number;
  /** Ids never selected and never drawn as random replacements. */
  specialIds: readonly number[];
  /** Fraction of eligible tokens selected (default 0.15). */
  maskProbability?: number;
  /** Of the selected: fraction replaced by [MASK] (default 0.8) and by a random token (default 0.1). */
  maskFraction?: number;
  randomFraction?: number;
}

/** The masking config for untie's tokenizer layout (special ids 0-4). */
export function maskingConfig(tokenizer: Pick<WordPieceTokenizer, 'vocabSize' | 'specialIds'>): MaskingConfig {
  return { vocabSize: tokenizer.vocabSize, maskId: MASK_ID, padId: PAD_ID, specialIds: tokenizer.specialIds };
}

/**
 * Every sentence of every document as token ids without special tokens
 * (docs -> sentences -> ids), encoded in large batches (the tokenizer
 * parallelises inside a batch; chunks bound the memory of the intermediate
 * Encoding objects on big corpora).
 */
export async function tokenizeDocuments(
  tokenizer: WordPieceTokenizer,
  docs: readonly Document[],
  chunkSize = 50_000,
): Promise<Int32Array[][]> {
  const texts: string[] = [];
  for (const doc of docs) for (const sentence of doc.sentences) texts.push(sentenceText(sentence));
  const ids: Int32Array[] = [];
  for (let start = 0; start < texts.length; start += chunkSize) {
    const chunk = await tokenizer.encodeBatch(texts.slice(start, start + chunkSize), { addSpecialTokens: false });
    for (const sentenceIds of chunk) ids.push(Int32Array.from(sentenceIds));
  }
  let k = 0;
  return docs.map((doc) => doc.sentences.map(() => ids[k++]));
}

export interface PackOptions {
  /** Total length including [CLS] and [SEP]. */
  maxLength: number;
  clsId?: number;
  sepId?: number;
}

/** Packs consecutive sentences of each document into [CLS] ... [SEP] sequences of at most maxLength tokens. */
export function packSequences(docs: readonly (readonly ArrayLike<number>[])[], options: PackOptions): Int32Array[] {
  const { maxLength } = options;
  const clsId = options.clsId ?? CLS_ID;
  const sepId = options.sepId ?? SEP_ID;
  check(Number.isInteger(maxLength) && maxLength >= 3, `Sequence length must be an integer >= 3, got ${maxLength}.`);
  const budget = maxLength - 2;
  const sequences: Int32Array[] = [];
  for (const sentences of docs) {
    let current: number[] = [];
    const flush = () => {
      if (current.length === 0) return;
      const seq = new Int32Array(current.length + 2);
      seq[0] = clsId;
      seq.set(current, 1);
      seq[current.length + 1] = sepId;
      sequences.push(seq);
      current = [];
    };
    for (const sentence of sentences) {
      if (sentence.length === 0) continue;
      if (current.length + sentence.length <= budget) {
        for (let i = 0; i < sentence.length; i++) current.push(sentence[i]);
        continue;
      }
      flush();
      // Cut an over-long sentence into full pieces; its last piece starts the next sequence.
      let start = 0;
      while (sentence.length - start > budget) {
        for (let i = start; i < start + budget; i++) current.push(sentence[i]);
        flush();
        start += budget;
      }
      for (let i = start; i < sentence.length; i++) current.push(sentence[i]);
    }
    flush();
  }
  return sequences;
}

/**
 * Pads `sequences` into one batch of seqLen and masks it with rng. Exported
 * for tests and for callers building their own batches.
 */
export function makeMaskedBatch(
  sequences: readonly Int32Array[],
  seqLen: number,
  masking: MaskingConfig,
  rng: Rng,
): MlmBatch {
  const batchSize = sequences.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(masking.padId);
  const tokenTypeIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Float32Array(batchSize * seqLen);
  const labels = new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  for (let b = 0; b < batchSize; b++) {
    const seq = sequences[b];
    check(seq.length <= seqLen, `A sequence of ${seq.length} tokens does not fit the sequence length ${seqLen}.`);
    inputIds.set(seq, b * seqLen);
    attentionMask.fill(1, b * seqLen, b * seqLen + seq.length);
  }
  maskTokens(inputIds, labels, batchSize, seqLen, masking, rng);
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize, seqLen };
}

/** A sequence whose targets are given (a generated corpus's answers), not drawn at random. */
export interface TargetSequence {
  /** Token ids with the answers in place. */
  ids: Int32Array;
  /** Positions of the targets. */
  targets: Int32Array;
  /** Each target's difficulty (>= 1), in the order of `targets`. */
  difficulty: Int32Array;
  /** The token shown at each target instead of [MASK] (a query token that says what is asked); default [MASK]. */
  shown?: Int32Array;
}

/**
 * Pads `sequences` into one batch of seqLen and masks exactly their target
 * positions: each becomes [MASK] or the sequence's own query token there
 * (never a random token or the answer itself, which would give the answer
 * away or teach that it is sometimes shown), its label the answer, its
 * difficulty recorded.
 */
export function makeTargetBatch(sequences: readonly TargetSequence[], seqLen: number, ids: { maskId: number; padId: number }): MlmBatch {
  const batchSize = sequences.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(ids.padId);
  const tokenTypeIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Float32Array(batchSize * seqLen);
  const labels = new Int32Array(batchSize * seqLen).fill(IGNORE_INDEX);
  const difficulty = new Int32Array(batchSize * seqLen);
  for (let b = 0; b < batchSize; b++) {
    const seq = sequences[b];
    check(seq.ids.length <= seqLen, `A sequence of ${seq.ids.length} tokens does not fit the sequence length ${seqLen}.`);
    check(seq.targets.length > 0 && seq.targets.length === seq.difficulty.length, 'A generated sequence must have targets, each with a difficulty.');
    const row = b * seqLen;
    inputIds.set(seq.ids, row);
    attentionMask.fill(1, row, row + seq.ids.length);
    seq.targets.forEach((t, i) => {
      check(t >= 0 && t < seq.ids.length, `A target position ${t} lies outside its sequence of ${seq.ids.length} tokens.`);
      labels[row + t] = seq.ids[t];
      inputIds[row + t] = seq.shown ? seq.shown[i] : ids.maskId;
      difficulty[row + t] = seq.difficulty[i];
    });
  }
  return { inputIds, tokenTypeIds, attentionMask, labels, batchSize, seqLen, difficulty };
}

/** The 80/10/10 masking, in place on inputIds ([batch, seqLen]); writes labels. */
export function maskTokens(
  inputIds: Int32Array,
  labels: Int32Array,
  batchSize: number,
  seqLen: number,
  masking: MaskingConfig,
  rng: Rng,
): void {
  const p = masking.maskProbability ?? 0.15;
  const maskFraction = masking.maskFraction ?? 0.8;
  const randomFraction = masking.randomFraction ?? 0.1;
  check(p > 0 && p < 1, `Masking probability must be in (0, 1), got ${p}.`);
  check(
    maskFraction >= 0 && randomFraction >= 0 && maskFraction + randomFraction <= 1,
    `Mask and random fractions must be >= 0 and sum to at most 1, got ${maskFraction} and ${randomFraction}.`,
  );
  const special = new Set(masking.specialIds);
  special.add(masking.padId);
  special.add(masking.maskId);
  const candidates = randomCandidates(masking.vocabSize, special);
  const selected: number[] = [];
  const eligible: number[] = [];
  for (let b = 0; b < batchSize; b++) {
    selected.length = 0;
    eligible.length = 0;
    for (let t = b * seqLen; t < (b + 1) * seqLen; t++) {
      if (special.has(inputIds[t])) continue;
      eligible.push(t);
      if (rng.uniform() < p) selected.push(t);
    }
    if (selected.length === 0 && eligible.length > 0) selected.push(eligible[rng.int(eligible.length)]);
    for (const t of selected) {
      labels[t] = inputIds[t];
      const r = rng.uniform();
      if (r < maskFraction) inputIds[t] = masking.maskId;
      else if (r < maskFraction + randomFraction) inputIds[t] = candidates[rng.int(candidates.length)];
    }
  }
}

const candidateCache = new Map<string, Int32Array>();
function randomCandidates(vocabSize: number, special: Set<number>): Int32Array {
  const key = `${vocabSize}:${[...special].sort((a, b) => a - b).join(',')}`;
  let candidates = candidateCache.get(key);
  if (!candidates) {
    const ids: number[] = [];
    for (let id = 0; id < vocabSize; id++) if (!special.has(id)) ids.push(id);
    check(ids.length > 0, `The vocabulary (${vocabSize} tokens) has no non-special tokens to use as random replacements.`);
    candidates = Int32Array.from(ids);
    candidateCache.set(key, candidates);
  }
  return candidates;
}

export interface MlmDatasetOptions {
  /** Every batch is padded to this length (= the packing maxLength). */
  seqLen: number;
  /** The run seed: fixes the per-epoch order and the masking stream. */
  seed: number;
  masking: MaskingConfig;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
}

/** Where a dataset stands: JSON-serialisable, for trainer_state.json. */
export interface MlmDatasetState extends EpochPosition {
  /** The masking RNG. */
  rng: RngState;
}

/** Where a stream of items stands in its epochs: JSON-serialisable. */
export interface EpochPosition {
  epoch: number;
  /** Index into this epoch's order of the next item to draw. */
  position: number;
}

/**
 * Draws item indices 0..size-1 epoch after epoch, each epoch in its own
 * seeded order (`orderName` names the RNG stream the orders come from), so a
 * position (epoch, index) says exactly what comes next.
 */
export class EpochSampler {
  private epochValue = 0;
  private position = 0;
  private order = new Int32Array(0);
  private orderEpoch = -1;

  constructor(readonly size: number, private readonly seed: number, private readonly orderName: string, private readonly shuffle = true) {}

  /** The epoch the next item comes from (0-based). */
  get epoch(): number {
    return this.epochValue;
  }

  next(): number {
    if (this.position >= this.size) {
      this.epochValue++;
      this.position = 0;
    }
    return this.epochOrder()[this.position++];
  }

  getState(): EpochPosition {
    return { epoch: this.epochValue, position: this.position };
  }

  /** Whether `state` is a position in these items (restored when it is). */
  setState(state: EpochPosition): boolean {
    const fits = typeof state === 'object' && state !== null && Number.isSafeInteger(state.epoch) && state.epoch >= 0 &&
      Number.isInteger(state.position) && state.position >= 0 && state.position <= this.size;
    if (fits) {
      this.epochValue = state.epoch;
      this.position = state.position;
    }
    return fits;
  }

  private epochOrder(): Int32Array {
    if (this.orderEpoch !== this.epochValue) {
      const order = Array.from({ length: this.size }, (_, i) => i);
      if (this.shuffle) Rng.derive(this.seed, `${this.orderName}-${this.epochValue}`).shuffle(order);
      this.order = Int32Array.from(order);
      this.orderEpoch = this.epochValue;
    }
    return this.order;
  }
}

/**
 * Training batches: a seeded shuffle per epoch, fresh masking per batch. A
 * batch that crosses an epoch end takes the rest from the next epoch, so all
 * batches are full. getState()/setState() resume exactly.
 */
export class MlmDataset {
  readonly seqLen: number;
  private readonly masking: MaskingConfig;
  private readonly sampler: EpochSampler;
  private readonly rng: Rng;

  constructor(
    readonly sequences: readonly Int32Array[],
    options: MlmDatasetOptions,
  ) {
    check(
      sequences.length > 0,
      'The training set has no sequences: the corpus (training split) produced no tokens. Use a larger corpus.',
    );
    this.seqLen = options.seqLen;
    this.masking = options.masking;
    for (const seq of sequences) {
      check(seq.length <= this.seqLen, `A packed sequence has ${seq.length} tokens, more than the sequence length ${this.seqLen}.`);
    }
    this.sampler = new EpochSampler(sequences.length, options.seed, 'mlm-order-epoch', options.shuffle ?? true);
    this.rng = Rng.derive(options.seed, 'mlm-masking');
  }

  get numSequences(): number {
    return this.sequences.length;
  }

  /** The epoch the next sequence comes from (0-based). */
  get epoch(): number {
    return this.sampler.epoch;
  }

  nextBatch(batchSize: number): MlmBatch {
    check(Number.isInteger(batchSize) && batchSize > 0, `Batch size must be a positive integer, got ${batchSize}.`);
    const picked = Array.from({ length: batchSize }, () => this.sequences[this.sampler.next()]);
    return makeMaskedBatch(picked, this.seqLen, this.masking, this.rng);
  }

  getState(): MlmDatasetState {
    return { ...this.sampler.getState(), rng: this.rng.getState() };
  }

  setState(state: MlmDatasetState): void {
    check(
      isRngState(state?.rng) && this.sampler.setState(state),
      () => `The saved data state ${JSON.stringify(state)?.slice(0, 200)} does not fit this dataset (${this.sequences.length} sequences). ` +
        'The checkpoint was made with different data or sequence length; resume with the same corpus, tokenizer and settings.',
    );
    this.rng.setState([...state.rng] as RngState);
  }
}

export interface ValidationSetOptions {
  seqLen: number;
  batchSize: number;
  masking: MaskingConfig;
  /** Masking seed; leave the default so different runs' validation losses compare. */
  seed?: number;
}

/**
 * The validation set: all sequences in corpus order, masked once with a fixed
 * seed, in batches (the last may be smaller). The same sequences give the same
 * batches in every run, whatever the run's seed.
 */
export function buildValidationBatches(sequences: readonly Int32Array[], options: ValidationSetOptions): MlmBatch[] {
  const { seqLen, batchSize, masking } = options;
  check(Number.isInteger(batchSize) && batchSize > 0, `Batch size must be a positive integer, got ${batchSize}.`);
  check(
    sequences.length > 0,
    'The validation set has no sequences: the validation split produced no tokens. Use a larger corpus or validation fraction.',
  );
  const rng = Rng.derive(options.seed ?? VALIDATION_MASKING_SEED, 'mlm-validation-masking');
  const batches: MlmBatch[] = [];
  for (let start = 0; start < sequences.length; start += batchSize) {
    batches.push(makeMaskedBatch(sequences.slice(start, start + batchSize), seqLen, masking, rng));
  }
  return batches;
}

/** Number of positions with a label, i.e. the tokens the loss averages over. */
export function countTargets(batch: MlmBatch): number {
  let n = 0;
  for (let i = 0; i < batch.labels.length; i++) if (batch.labels[i] !== IGNORE_INDEX) n++;
  return n;
}
