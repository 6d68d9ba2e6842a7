/**
 * From a run's data config to training and validation batches: load the
 * corpus, split by document, train (or reuse) the tokenizer in the run
 * folder, tokenize, and build the dataset and the fixed validation set of the
 * model's objective: masked sequences packed from sentences (BERT), or
 * windows of one token stream with next-token targets (GPT).
 */
import { loadBrown, loadTextCorpus, sentenceText, splitDocuments, type Document } from '../data/corpus.js';
import { CausalDataset, NOT_IN_STREAM, buildCausalValidationBatches, causalWindows, tokenStream } from '../data/causal.js';
import { MlmDataset, buildValidationBatches, maskingConfig, packSequences, tokenizeDocuments } from '../data/mlm.js';
import { loadOrTrainTokenizer, type WordPieceTokenizer } from '../data/tokenizer.js';
import { unigramModel, unigramScore, type UnigramScore } from '../data/unigram.js';
import type { LmBatch, ModelKind } from '../models/lm.js';
import type { DataConfig } from './config.js';

export interface PreparedData {
  tokenizer: WordPieceTokenizer;
  /** True when the tokenizer was trained now (saved into runDir unless `save: false`). */
  tokenizerTrained: boolean;
  train: TrainingStream;
  validation: LmBatch[];
  trainDocuments: number;
  /** Packed sequences (BERT) or full windows (GPT) the training split gives. */
  trainSequences: number;
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
  return { tokenizer, trained, train, validation, tokenize };
}

/**
 * Trains the tokenizer a run config would train (or reuses the one in dir),
 * without tokenizing anything: a comparison trains one and copies it into
 * every run folder, so all its runs share one vocabulary.
 */
export async function prepareTokenizer(cfg: DataConfig, dir: string): Promise<WordPieceTokenizer> {
  const { tokenizer, trained } = await corpusAndTokenizer(cfg, dir);
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

/** The training stream of the objective, and the unigram model of its targets (training-split frequencies). */
function trainingStream(cfg: DataConfig, kind: ModelKind, docs: Int32Array[][], tokenizer: WordPieceTokenizer, seed: number) {
  if (kind === 'gpt') {
    const windows = causalWindows(tokenStream(docs), cfg.seqLen);
    // Every stream token is a target, [SEP] (a document's end) included; the unigram line counts it too.
    return { stream: new CausalDataset(windows, cfg.seqLen, seed), sequences: windows.length, unigram: unigramModel(windows, tokenizer.vocabSize, NOT_IN_STREAM) };
  }
  const packed = packSequences(docs, { maxLength: cfg.seqLen });
  return {
    // Training may mask more than 15% (data.maskProb); validation always masks 15%, so losses compare across runs.
    stream: new MlmDataset(packed, { seqLen: cfg.seqLen, seed, masking: { ...maskingConfig(tokenizer), maskProbability: cfg.maskProb } }),
    sequences: packed.length,
    unigram: unigramModel(packed, tokenizer.vocabSize, tokenizer.specialIds),
  };
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
  const { tokenizer, trained, train, validation, tokenize } = await corpusAndTokenizer(cfg, runDir);
  if (trained && (options.save ?? true)) tokenizer.save(runDir, { modelMaxLength: cfg.seqLen });
  const { stream, sequences, unigram } = trainingStream(cfg, kind, await tokenize(train), tokenizer, seed);
  const valBatches = validationBatches(cfg, kind, await tokenize(validation), tokenizer, batchSize);
  return {
    tokenizer,
    tokenizerTrained: trained,
    train: stream,
    validation: valBatches,
    trainDocuments: train.length,
    trainSequences: sequences,
    validationSequences: valBatches.reduce((n, b) => n + b.batchSize, 0),
    unigram: unigramScore(unigram, valBatches),
  };
}

/**
 * Only the validation batches of a model of `kind` (what `untie eval`
 * needs): the training split is not tokenized. `tokenizer` (the
 * checkpoint's) defaults to runDir's.
 */
export async function prepareValidation(cfg: DataConfig, runDir: string, batchSize: number, tokenizer?: WordPieceTokenizer, kind: ModelKind = 'bert'): Promise<LmBatch[]> {
  const { tokenizer: used, validation, tokenize } = await corpusAndTokenizer(cfg, runDir, tokenizer);
  return validationBatches(cfg, kind, await tokenize(validation), used, batchSize);
}
