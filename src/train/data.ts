/**
 * From a run's data config to training and validation batches: load the
 * corpus, split by document, train (or reuse) the tokenizer in the run
 * folder, tokenize, and build the dataset and the fixed validation set of the
 * model's objective: masked sequences packed from sentences (BERT), or
 * windows of one token stream with next-token targets (GPT).
 * A generated corpus (`--corpus synthetic:NAME`) is generated instead (src/data/synthetic).
 */
import path from 'node:path';
import { countWords, loadBrown, loadTextCorpus, sentenceText, splitDocuments, type Document } from '../data/corpus.js';
import { CausalDataset, NOT_IN_STREAM, buildCausalValidationBatches, causalWindows, tokenStream } from '../data/causal.js';
import { MlmDataset, buildValidationBatches, maskingConfig, packSequences, tokenizeDocuments } from '../data/mlm.js';
import {
  SyntheticDataset, answerSample, isSyntheticCorpus, parseSyntheticCorpus, syntheticTokenizer, syntheticValidation, type SyntheticTask,
} from '../data/synthetic/index.js';
import { hasTokenizer, loadOrTrainTokenizer, loadTokenizer, TOKENIZER_FILES, type WordPieceTokenizer } from '../data/tokenizer.js';
import { unigramModel, unigramScore, type UnigramScore } from '../data/unigram.js';
import { UntieError } from '../errors.js';
import type { LmBatch, ModelKind } from '../models/lm.js';
import type { DataConfig } from './config.js';

export interface PreparedData {
  tokenizer: WordPieceTokenizer;
  /** True when the tokenizer was trained now (saved into runDir unless `save: false`). */
  tokenizerTrained: boolean;
  /** Text corpora: the objective's batches in a seeded order; generated ones: a fresh sequence per draw, its answers masked. */
  train: TrainingStream;
  validation: LmBatch[];
  /** The generated corpus's task (null for text): what its targets' difficulties count. */
  task: SyntheticTask | null;
  /** Text corpora's training documents and packed sequences (0 for a generated corpus: its stream has no end). */
  trainDocuments: number;
  /** Packed sequences (BERT) or full windows (GPT) the training split gives. */
  trainSequences: number;
  /** Tokens of the packed training split (BERT), or of its token stream (GPT). */
  trainTokens: number;
  validationDocuments: number;
  /** The share of the corpus's words that the validation documents hold (a split by document can hold out more than --validation-fraction). */
  validationShare: number;
  validationSequences: number;
  /** The unigram predictor (training-split token frequencies) on the validation targets. */
  unigram: UnigramScore;
}

/** The training batches in order, with a position a checkpoint keeps. */
export interface TrainingStream {
  nextBatch(batchSize: number): LmBatch;
  getState(): unknown;
  setState(state: never): void;
}

export function loadCorpus(corpus: string): Document[] {
  return corpus === 'brown' ? loadBrown() : loadTextCorpus(corpus);
}

/**
 * Corpus, split and tokenizer: `given`, else runDir's, else one trained on
 * the training split (in memory: nothing is written here).
 */
async function corpusAndTokenizer(cfg: DataConfig, runDir: string, given?: WordPieceTokenizer) {
  const docs = loadCorpus(cfg.corpus);
  // The split depends on data.splitSeed only (not on the training seed), so
  // runs with different seeds still validate on the same documents.
  const { train, validation } = splitDocuments(docs, { seed: cfg.splitSeed, validationFraction: cfg.validationFraction });
  const { tokenizer, trained } = given ? { tokenizer: given, trained: false } : await loadOrTrainTokenizer(
    runDir,
    function* () {
      for (const d of train) for (const s of d.sentences) yield sentenceText(s);
    },
    { vocabSize: cfg.vocabSize, modelMaxLength: cfg.seqLen, save: false },
  );
  const tokenize = (ds: Document[]) => tokenizeDocuments(tokenizer, ds);
  const validationShare = countWords(validation) / Math.max(1, countWords(docs));
  return { tokenizer, trained, train, validation, validationShare, tokenize };
}

/**
 * Trains the tokenizer a run config would train (or reuses the one in dir),
 * without tokenizing anything: a comparison trains one and copies it into
 * every run folder, so all its runs share one vocabulary.
 */
export async function prepareTokenizer(cfg: DataConfig, dir: string): Promise<WordPieceTokenizer> {
  const { tokenizer, trained } = isSyntheticCorpus(cfg.corpus) ? taskAndTokenizer(cfg, dir) : await corpusAndTokenizer(cfg, dir);
  if (trained) tokenizer.save(dir, { modelMaxLength: cfg.seqLen });
  return tokenizer;
}

/** The objective's validation batches of the validation split's tokenized documents. */
function validationBatches(cfg: DataConfig, kind: ModelKind, docs: Int32Array[][], tokenizer: WordPieceTokenizer, batchSize: number): LmBatch[] {
  const all = kind === 'gpt'
    ? buildCausalValidationBatches(causalWindows(tokenStream(docs), cfg.seqLen, { tail: true }), cfg.seqLen, batchSize)
    : buildValidationBatches(packSequences(docs, { maxLength: cfg.seqLen }), { seqLen: cfg.seqLen, batchSize, masking: maskingConfig(tokenizer) });
  return cfg.evalBatches > 0 ? all.slice(0, cfg.evalBatches) : all;
}

/**
 * The training split as the objective's examples: packed sequences (BERT) or
 * full windows of the token stream (GPT), with the unigram model of their
 * targets (training-split frequencies).
 */
function trainingExamples(cfg: DataConfig, kind: ModelKind, docs: Int32Array[][], tokenizer: WordPieceTokenizer) {
  if (kind === 'gpt') {
    const stream = tokenStream(docs);
    const windows = causalWindows(stream, cfg.seqLen);
    // Every stream token is a target, [SEP] (a document's end) included; the unigram line counts it too.
    return { examples: windows, tokens: stream.length, unigram: unigramModel(windows, tokenizer.vocabSize, NOT_IN_STREAM) };
  }
  const packed = packSequences(docs, { maxLength: cfg.seqLen });
  return { examples: packed, tokens: packed.reduce((n, seq) => n + seq.length, 0), unigram: unigramModel(packed, tokenizer.vocabSize, tokenizer.specialIds) };
}

/** The training batches of the objective, in a seeded order. */
function trainingStream(cfg: DataConfig, kind: ModelKind, examples: Int32Array[], tokenizer: WordPieceTokenizer, seed: number): TrainingStream {
  if (kind === 'gpt') return new CausalDataset(examples, cfg.seqLen, seed);
  // Training may mask more than 15% (data.maskProb); validation always masks 15%, so losses compare across runs.
  return new MlmDataset(examples, { seqLen: cfg.seqLen, seed, masking: { ...maskingConfig(tokenizer), maskProbability: cfg.maskProb } });
}

/**
 * Everything a run trains and validates on, for a model of `kind`. A
 * tokenizer trained here is saved into runDir, unless `save` is false (the
 * trainer saves it itself, once all of its inputs have been checked, so that
 * a failed start writes nothing).
 */
export async function prepareData(
  cfg: DataConfig, seed: number, runDir: string, batchSize: number, options: { save?: boolean; kind?: ModelKind } = {},
): Promise<PreparedData> {
  const kind = options.kind ?? 'bert';
  if (isSyntheticCorpus(cfg.corpus)) {
    if (kind === 'gpt') throw new UntieError(`--corpus ${cfg.corpus} masks its answers for an encoder; --model gpt trains on text: use --model bert, or a text corpus`);
    return prepareSynthetic(cfg, seed, runDir, batchSize, options);
  }
  const { tokenizer, trained, train, validation, validationShare, tokenize } = await corpusAndTokenizer(cfg, runDir);
  if (trained && (options.save ?? true)) tokenizer.save(runDir, { modelMaxLength: cfg.seqLen });
  const { examples, tokens, unigram } = trainingExamples(cfg, kind, await tokenize(train), tokenizer);
  const valBatches = validationBatches(cfg, kind, await tokenize(validation), tokenizer, batchSize);
  return {
    tokenizer,
    tokenizerTrained: trained,
    train: trainingStream(cfg, kind, examples, tokenizer, seed),
    validation: valBatches,
    task: null,
    trainDocuments: train.length,
    trainSequences: examples.length,
    trainTokens: tokens,
    validationDocuments: validation.length,
    validationShare,
    validationSequences: valBatches.reduce((n, b) => n + b.batchSize, 0),
    unigram: unigramScore(unigram, valBatches),
  };
}

/**
 * What a run will train and validate on, in one line, and warnings for what
 * makes its numbers untrustworthy: few masked validation tokens, a smaller
 * vocabulary than asked, a held-out share far above --validation-fraction,
 * or so many passes over the text that the model can learn it by heart.
 * `steps` is null for a --budget run (its step count is not known ahead).
 */
export function describeData(cfg: DataConfig, data: PreparedData, steps: number | null, sequencesPerStep: number, kind: ModelKind = 'bert'): { summary: string; warnings: string[] } {
  const n = (x: number) => x.toLocaleString('en-US');
  const uni = data.unigram;
  if (data.task) {
    // A generated corpus: a fresh sequence at every draw, so no passes to count and no split to skew.
    const summary = `data: ${cfg.corpus}: generated, a fresh sequence per draw (${sequencesPerStep} a step); ${n(data.validationSequences)} validation sequences: ` +
      `${n(uni.count)} masked validation tokens; vocabulary ${n(data.tokenizer.vocabSize)}`;
    return { summary, warnings: uni.count < MIN_VALIDATION_TOKENS ? [fewValidationTokens(uni.count, 'a larger --eval-batches, or --eval-batches 0')] : [] };
  }
  const epochs = steps === null ? null : (steps * sequencesPerStep) / data.trainSequences;
  const vocab = data.tokenizer.vocabSize;
  // What validation scores: the masked tokens (BERT), or every next token (GPT).
  const scored = kind === 'gpt' ? 'next-token' : 'masked';
  const summary = `data: ${cfg.corpus === 'brown' ? 'the Brown corpus' : cfg.corpus}: ${n(data.trainDocuments)} training documents ` +
    `(${n(data.trainTokens)} tokens in ${n(data.trainSequences)} sequences), ${n(data.validationDocuments)} held out ` +
    `(${(100 * data.validationShare).toFixed(1)}% of the text): ${n(uni.count)} ${scored} validation tokens; vocabulary ${n(vocab)}` +
    (epochs === null ? '' : `; ${n(steps!)} steps of ${sequencesPerStep} sequences = ${epochs < 0.01 ? epochs.toPrecision(1) : epochs < 10 ? epochs.toFixed(2) : n(Math.round(epochs))} passes over the training text`);
  const warnings: string[] = [];
  if (vocab < cfg.vocabSize) {
    warnings.push(`the vocabulary has ${n(vocab)} tokens, not the ${n(cfg.vocabSize)} asked (--vocab-size): the training text holds no more distinct word pieces.`);
  }
  if (uni.count < MIN_VALIDATION_TOKENS) {
    warnings.push(fewValidationTokens(uni.count, 'more text, a larger --validation-fraction, or --eval-batches 0 (every validation sequence)', scored));
  }
  if (data.validationShare > 2 * cfg.validationFraction && data.validationDocuments <= 2) {
    warnings.push(
      `validation holds ${data.validationDocuments} of ${data.trainDocuments + data.validationDocuments} documents, ${(100 * data.validationShare).toFixed(0)}% of the text, ` +
        `although --validation-fraction is ${cfg.validationFraction}: the split is by document, and each file of a folder is one. ` +
        'Put the text in one file (cut into 100 blocks) or in more files.',
    );
  }
  if (epochs !== null && epochs > MAX_EPOCHS) {
    warnings.push(
      `the run will pass over its training text ${n(Math.round(epochs))} times (more than ${MAX_EPOCHS}; BERT made about 40): a model can learn so little text by heart, ` +
        'so its training loss will go on falling while the validation loss stops or rises. Use more text or fewer --steps.',
    );
  }
  return { summary, warnings };
}

function fewValidationTokens(count: number, remedy: string, scored = 'masked'): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return `validation scores only ${n(count)} ${scored} tokens (fewer than ${n(MIN_VALIDATION_TOKENS)}): one token more or less predicted right moves its accuracy by ` +
    `${(100 / count).toFixed(2)} points, and its loss is as noisy, so the validation numbers cannot be trusted. Use ${remedy}.`;
}

/** Below this many masked validation tokens, a run's validation numbers are mostly noise (the default run scores about 4,900). */
const MIN_VALIDATION_TOKENS = 1000;
/** Above this many passes over the training text, a run is memorising it rather than learning the language. */
const MAX_EPOCHS = 40;

/**
 * The validation batches and the unigram line on them (what `untie eval`
 * prints): the training split is tokenized too, for its token frequencies.
 */
export async function prepareEvaluation(
  cfg: DataConfig, runDir: string, batchSize: number, tokenizer?: WordPieceTokenizer, kind: ModelKind = 'bert',
): Promise<{ validation: LmBatch[]; unigram: UnigramScore }> {
  if (isSyntheticCorpus(cfg.corpus)) {
    const { validation, unigram } = syntheticData(cfg, runDir, batchSize, tokenizer);
    return { validation, unigram };
  }
  const { tokenizer: used, train, validation, tokenize } = await corpusAndTokenizer(cfg, runDir, tokenizer);
  const batches = validationBatches(cfg, kind, await tokenize(validation), used, batchSize);
  const { unigram } = trainingExamples(cfg, kind, await tokenize(train), used);
  return { validation: batches, unigram: unigramScore(unigram, batches) };
}

/**
 * Only the validation batches of a model of `kind` (what `untie eval`
 * needs): the training split is not tokenized. `tokenizer` (the
 * checkpoint's) defaults to runDir's.
 */
export async function prepareValidation(cfg: DataConfig, runDir: string, batchSize: number, tokenizer?: WordPieceTokenizer, kind: ModelKind = 'bert'): Promise<LmBatch[]> {
  if (isSyntheticCorpus(cfg.corpus)) {
    const { task } = taskAndTokenizer(cfg, runDir, tokenizer);
    return syntheticValidation(task, { seqLen: cfg.seqLen, batchSize, count: validationCount(cfg, batchSize), splitSeed: cfg.splitSeed });
  }
  const { tokenizer: used, validation, tokenize } = await corpusAndTokenizer(cfg, runDir, tokenizer);
  return validationBatches(cfg, kind, await tokenize(validation), used, batchSize);
}

/** Validation sequences of a generated corpus when data.evalBatches is 0 ("all"): it has no end, so a fixed number. */
export const SYNTHETIC_VALIDATION_SEQUENCES = 1024;
/** Sequences whose answers make a generated corpus's unigram line. */
const UNIGRAM_SAMPLE = 2048;

function validationCount(cfg: DataConfig, batchSize: number): number {
  return cfg.evalBatches > 0 ? cfg.evalBatches * batchSize : SYNTHETIC_VALIDATION_SEQUENCES;
}

/**
 * A generated corpus's task and its vocabulary: `given`, else runDir's saved
 * tokenizer (which must be this task's), else built now (`trained`: the
 * caller saves it).
 */
function taskAndTokenizer(cfg: DataConfig, runDir: string, given?: WordPieceTokenizer): { task: SyntheticTask; tokenizer: WordPieceTokenizer; trained: boolean } {
  const task = parseSyntheticCorpus(cfg.corpus);
  const own = syntheticTokenizer(task);
  const saved = given ?? (hasTokenizer(runDir) ? loadTokenizer(runDir) : null);
  if (saved && saved.vocab.join('\n') !== own.vocab.join('\n')) {
    const where = given ? 'the checkpoint\'s tokenizer' : path.join(runDir, TOKENIZER_FILES.tokenizer);
    throw new UntieError(`${where} is not the vocabulary of ${task.spec} (${saved.vocabSize} tokens, not ${own.vocabSize}): the run was made with other data. Use that data, or another run folder.`);
  }
  return { task, tokenizer: saved ?? own, trained: saved === null };
}

/** A generated corpus's task, vocabulary, validation set (from the split seed) and the answers' unigram line on it. */
function syntheticData(cfg: DataConfig, runDir: string, batchSize: number, given?: WordPieceTokenizer) {
  const { task, tokenizer, trained } = taskAndTokenizer(cfg, runDir, given);
  const validation = syntheticValidation(task, { seqLen: cfg.seqLen, batchSize, count: validationCount(cfg, batchSize), splitSeed: cfg.splitSeed });
  const unigram = unigramScore(unigramModel(answerSample(task, cfg.seqLen, cfg.splitSeed, UNIGRAM_SAMPLE), tokenizer.vocabSize, tokenizer.specialIds), validation);
  return { task, tokenizer, trained, validation, unigram };
}

/** prepareData for `--corpus synthetic:...`: the training stream, the validation set and the unigram line, all generated. */
function prepareSynthetic(cfg: DataConfig, seed: number, runDir: string, batchSize: number, options: { save?: boolean }): PreparedData {
  const { task, tokenizer, trained, validation, unigram } = syntheticData(cfg, runDir, batchSize);
  if (trained && (options.save ?? true)) tokenizer.save(runDir, { modelMaxLength: cfg.seqLen });
  return {
    tokenizer, tokenizerTrained: trained, train: new SyntheticDataset(task, cfg.seqLen, seed), validation, task,
    trainDocuments: 0, trainSequences: 0, trainTokens: 0, validationDocuments: 0, validationShare: 0,
    validationSequences: validation.reduce((n, b) => n + b.batchSize, 0),
    unigram,
  };
}
