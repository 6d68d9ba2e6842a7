/**
 * From a run's data config to training and validation batches: load the
 * corpus, split by document, train (or reuse) the tokenizer in the run
 * folder, tokenize, pack, and build the dataset and the fixed validation set.
 */
import { loadBrown, loadTextCorpus, sentenceText, splitDocuments, type Document } from '../data/corpus.js';
import { MlmDataset, buildValidationBatches, maskingConfig, packSequences, tokenizeDocuments, type MlmBatch } from '../data/mlm.js';
import { loadOrTrainTokenizer, type WordPieceTokenizer } from '../data/tokenizer.js';
import { unigramModel, unigramScore, type UnigramScore } from '../data/unigram.js';
import type { DataConfig } from './config.js';

export interface PreparedData {
  tokenizer: WordPieceTokenizer;
  /** True when the tokenizer was trained now (saved into runDir unless `save: false`). */
  tokenizerTrained: boolean;
  train: MlmDataset;
  validation: MlmBatch[];
  trainDocuments: number;
  trainSequences: number;
  validationSequences: number;
  /** The unigram predictor (training-split token frequencies) on the validation targets. */
  unigram: UnigramScore;
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
  const pack = async (ds: Document[]) => packSequences(await tokenizeDocuments(tokenizer, ds), { maxLength: cfg.seqLen });
  return { tokenizer, trained, train, validation, pack };
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

function validationBatches(cfg: DataConfig, sequences: Int32Array[], tokenizer: WordPieceTokenizer, batchSize: number): MlmBatch[] {
  const kept = cfg.evalBatches > 0 ? sequences.slice(0, cfg.evalBatches * batchSize) : sequences;
  return buildValidationBatches(kept, { seqLen: cfg.seqLen, batchSize, masking: maskingConfig(tokenizer) });
}

/**
 * Everything a run trains and validates on. A tokenizer trained here is saved
 * into runDir, unless `save` is false (the trainer saves it itself, once all
 * of its inputs have been checked, so that a failed start writes nothing).
 */
export async function prepareData(cfg: DataConfig, seed: number, runDir: string, batchSize: number, options: { save?: boolean } = {}): Promise<PreparedData> {
  const { tokenizer, trained, train, validation, pack } = await corpusAndTokenizer(cfg, runDir);
  if (trained && (options.save ?? true)) tokenizer.save(runDir, { modelMaxLength: cfg.seqLen });
  const trainSeqs = await pack(train);
  const valBatches = validationBatches(cfg, await pack(validation), tokenizer, batchSize);
  const unigram = unigramScore(unigramModel(trainSeqs, tokenizer.vocabSize, tokenizer.specialIds), valBatches);
  return {
    tokenizer,
    tokenizerTrained: trained,
    // Training may mask more than 15% (data.maskProb); validation always masks 15%, so losses compare across runs.
    train: new MlmDataset(trainSeqs, { seqLen: cfg.seqLen, seed, masking: { ...maskingConfig(tokenizer), maskProbability: cfg.maskProb } }),
    validation: valBatches,
    trainDocuments: train.length,
    trainSequences: trainSeqs.length,
    validationSequences: valBatches.reduce((n, b) => n + b.batchSize, 0),
    unigram,
  };
}

/**
 * Only the validation batches (what `untie eval` needs): the training split
 * is not tokenized. `tokenizer` (the checkpoint's) defaults to runDir's.
 */
export async function prepareValidation(cfg: DataConfig, runDir: string, batchSize: number, tokenizer?: WordPieceTokenizer): Promise<MlmBatch[]> {
  const { tokenizer: used, validation, pack } = await corpusAndTokenizer(cfg, runDir, tokenizer);
  return validationBatches(cfg, await pack(validation), used, batchSize);
}
