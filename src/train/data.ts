/**
 * From a run's data config to training and validation batches: load the
 * corpus, split by document, train (or reuse) the tokenizer in the run
 * folder, tokenize, pack, and build the dataset and the fixed validation set;
 * or, for `--corpus synthetic:NAME`, generate them (src/data/synthetic).
 */
import path from 'node:path';
import { loadBrown, loadTextCorpus, sentenceText, splitDocuments, type Document } from '../data/corpus.js';
import { MlmDataset, buildValidationBatches, maskingConfig, packSequences, tokenizeDocuments, type MlmBatch } from '../data/mlm.js';
import {
  SyntheticDataset, answerSample, isSyntheticCorpus, parseSyntheticCorpus, syntheticTokenizer, syntheticValidation, type SyntheticTask,
} from '../data/synthetic/index.js';
import { hasTokenizer, loadOrTrainTokenizer, loadTokenizer, TOKENIZER_FILES, type WordPieceTokenizer } from '../data/tokenizer.js';
import { unigramModel, unigramScore, type UnigramScore } from '../data/unigram.js';
import { UntieError } from '../errors.js';
import type { DataConfig } from './config.js';

export interface PreparedData {
  tokenizer: WordPieceTokenizer;
  /** True when the tokenizer was trained now (saved into runDir unless `save: false`). */
  tokenizerTrained: boolean;
  /** Text corpora: packed sequences, masked at random; generated ones: a fresh sequence per draw, its answers masked. */
  train: MlmDataset | SyntheticDataset;
  validation: MlmBatch[];
  /** The generated corpus's task (null for text): what its targets' difficulties count. */
  task: SyntheticTask | null;
  /** Text corpora's training documents and packed sequences (0 for a generated corpus: its stream has no end). */
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
  const { tokenizer, trained } = isSyntheticCorpus(cfg.corpus) ? taskAndTokenizer(cfg, dir) : await corpusAndTokenizer(cfg, dir);
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
  if (isSyntheticCorpus(cfg.corpus)) return prepareSynthetic(cfg, seed, runDir, batchSize, options);
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
    task: null,
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
  if (isSyntheticCorpus(cfg.corpus)) {
    const { task } = taskAndTokenizer(cfg, runDir, tokenizer);
    return syntheticValidation(task, { seqLen: cfg.seqLen, batchSize, count: validationCount(cfg, batchSize), splitSeed: cfg.splitSeed });
  }
  const { tokenizer: used, validation, pack } = await corpusAndTokenizer(cfg, runDir, tokenizer);
  return validationBatches(cfg, await pack(validation), used, batchSize);
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

/** prepareData for `--corpus synthetic:...`: the training stream, the validation set and the unigram line, all generated. */
function prepareSynthetic(cfg: DataConfig, seed: number, runDir: string, batchSize: number, options: { save?: boolean }): PreparedData {
  const { task, tokenizer, trained } = taskAndTokenizer(cfg, runDir);
  if (trained && (options.save ?? true)) tokenizer.save(runDir, { modelMaxLength: cfg.seqLen });
  const train = new SyntheticDataset(task, cfg.seqLen, seed);
  const validation = syntheticValidation(task, { seqLen: cfg.seqLen, batchSize, count: validationCount(cfg, batchSize), splitSeed: cfg.splitSeed });
  const unigram = unigramScore(unigramModel(answerSample(task, cfg.seqLen, cfg.splitSeed, UNIGRAM_SAMPLE), tokenizer.vocabSize, tokenizer.specialIds), validation);
  return {
    tokenizer, tokenizerTrained: trained, train, validation, task,
    trainDocuments: 0, trainSequences: 0,
    validationSequences: validation.reduce((n, b) => n + b.batchSize, 0),
    unigram,
  };
}
