/**
 * From a run's data config to training and validation batches: load the
 * corpus, split by document, train (or reuse) the tokenizer in the run
 * folder, tokenize, pack, and build the dataset and the fixed validation set.
 */
import { loadBrown, loadTextCorpus, sentenceText, splitDocuments, type Document } from '../data/corpus.js';
import { MlmDataset, buildValidationBatches, maskingConfig, packSequences, tokenizeDocuments, type MlmBatch } from '../data/mlm.js';
import { loadOrTrainTokenizer, type WordPieceTokenizer } from '../data/tokenizer.js';
import type { DataConfig } from './config.js';

export interface PreparedData {
  tokenizer: WordPieceTokenizer;
  train: MlmDataset;
  validation: MlmBatch[];
  trainDocuments: number;
  trainSequences: number;
  validationSequences: number;
}

export function loadCorpus(corpus: string): Document[] {
  return corpus === 'brown' ? loadBrown() : loadTextCorpus(corpus);
}

/**
 * The split depends on data.splitSeed only (not on the training seed), so
 * runs with different seeds still validate on the same documents.
 */
export async function prepareData(cfg: DataConfig, seed: number, runDir: string, batchSize: number): Promise<PreparedData> {
  const docs = loadCorpus(cfg.corpus);
  const { train, validation } = splitDocuments(docs, { seed: cfg.splitSeed, validationFraction: cfg.validationFraction });
  const { tokenizer } = await loadOrTrainTokenizer(
    runDir,
    function* () {
      for (const d of train) for (const s of d.sentences) yield sentenceText(s);
    },
    { vocabSize: cfg.vocabSize, modelMaxLength: cfg.seqLen },
  );
  const masking = maskingConfig(tokenizer);
  const pack = async (ds: Document[]) => packSequences(await tokenizeDocuments(tokenizer, ds), { maxLength: cfg.seqLen });
  const trainSeqs = await pack(train);
  let valSeqs = await pack(validation);
  if (cfg.evalBatches > 0) valSeqs = valSeqs.slice(0, cfg.evalBatches * batchSize);
  return {
    tokenizer,
    train: new MlmDataset(trainSeqs, { seqLen: cfg.seqLen, seed, masking }),
    validation: buildValidationBatches(valSeqs, { seqLen: cfg.seqLen, batchSize, masking }),
    trainDocuments: train.length,
    trainSequences: trainSeqs.length,
    validationSequences: valSeqs.length,
  };
}
