/**
 * Loading a trained model back: from a run folder (its newest checkpoint), a
 * checkpoint folder, or an exported Hugging Face folder; fine-tuned
 * classifiers too. Also `exportModel`, which writes a folder that Hugging
 * Face's from_pretrained and AutoTokenizer.from_pretrained load unchanged: a
 * Post-LN model as BertForMaskedLM (BertForTokenClassification,
 * BertForSequenceClassification), a Pre-LN one as RobertaPreLayerNormForMaskedLM
 * (RobertaPreLayerNormForTokenClassification, ...ForSequenceClassification).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { loadTokenizer, hasTokenizer, TOKENIZER_FILES, type WordPieceTokenizer } from '../data/tokenizer.js';
import { BertForMaskedLM, bertParameterCount, validateBertConfig, type BertConfig } from '../models/bert.js';
import { newClassifier, type BertClassifier } from '../models/heads.js';
import { bertConfigFromHf, headFromHf, hfLayoutOf, CHECKPOINT_FILES, listCheckpoints, loadModelWeights, saveModelWeights, verifyChecksums, type HeadInfo, type HfLayout } from './checkpoint.js';
import { fromRobertaPreLn, robertaArchitecture, ROBERTA_PRELN_TYPE } from './roberta-prelayernorm.js';
import { readSafetensors, type ReadTensor } from './safetensors.js';
import { readConfigFile, runConfigOf, type RunConfig } from './config.js';
import { makeDirectory } from './fsutil.js';

export interface Loaded {
  model: BertForMaskedLM;
  tokenizer: WordPieceTokenizer;
  /** The folder holding model.safetensors. */
  modelDir: string;
  /** The run folder, when loading from a run or one of its checkpoints. */
  runDir: string | null;
  /** The run's config.json, merged over its preset's defaults and validated. */
  runConfig: RunConfig | null;
}

/** Resolves a run folder to its newest checkpoint; a model folder to itself. */
export function resolveModelDir(target: string): { modelDir: string; runDir: string | null } {
  if (!fs.existsSync(target)) throw new UntieError(`${target} does not exist. Pass a run folder, a checkpoint-<step> folder, or an exported model folder.`);
  if (fs.existsSync(path.join(target, CHECKPOINT_FILES.model))) {
    const parent = path.dirname(path.resolve(target));
    const isRunCheckpoint = /^checkpoint-\d+$/.test(path.basename(path.resolve(target))) && fs.existsSync(path.join(parent, 'config.json'));
    return { modelDir: target, runDir: isRunCheckpoint ? parent : null };
  }
  const ckpts = listCheckpoints(target);
  if (ckpts.length === 0) throw new UntieError(`${target} holds neither ${CHECKPOINT_FILES.model} nor checkpoint-<step> folders. Has the run saved a checkpoint yet?`);
  return { modelDir: ckpts[ckpts.length - 1].dir, runDir: target };
}

/** A checkpoint's files, read and checked, before any model is built. */
export interface CheckpointInfo {
  modelDir: string;
  runDir: string | null;
  runConfig: RunConfig | null;
  config: BertConfig;
  /** The task head (null: a masked-LM checkpoint). */
  head: HeadInfo | null;
  tokenizer: WordPieceTokenizer;
  weightsFile: string;
  /** How the weights file names its tensors (readWeights gives them untie's names either way). */
  layout: HfLayout;
}

/** The checkpoint's tensors under untie's parameter names, whichever layout the folder has. */
export function readWeights(info: CheckpointInfo): Record<string, ReadTensor> {
  const { tensors } = readSafetensors(info.weightsFile);
  return info.layout === ROBERTA_PRELN_TYPE ? fromRobertaPreLn(tensors, info.weightsFile) : tensors;
}

/**
 * Resolves `target`, reads its config.json and the tokenizer (beside the
 * model, else the run's), and checks that they belong together: a model
 * whose vocabulary size is not the tokenizer's is an error.
 */
export function openCheckpoint(target: string): CheckpointInfo {
  const { modelDir, runDir } = resolveModelDir(target);
  // A checkpoint's checksums cover the weights, the config and the tokenizer (exported folders have none).
  verifyChecksums(modelDir, [CHECKPOINT_FILES.model, CHECKPOINT_FILES.config, ...Object.values(TOKENIZER_FILES)]);
  const hfConfigFile = path.join(modelDir, CHECKPOINT_FILES.config);
  if (!fs.existsSync(hfConfigFile)) throw new UntieError(`${modelDir} has no config.json: the folder is incomplete`);
  const raw = readConfigFile(hfConfigFile) as Record<string, unknown>;
  const head = headFromHf(raw, hfConfigFile);
  const config = bertConfigFromHf(raw, hfConfigFile);
  validateBertConfig(config);
  // Allocate only what the weights file can hold: a damaged config.json must not ask for gigabytes.
  const weightsFile = path.join(modelDir, CHECKPOINT_FILES.model);
  const fileBytes = fs.statSync(weightsFile, { throwIfNoEntry: false })?.size ?? 0;
  const count = bertParameterCount(config);
  if (count * 2 > fileBytes) {
    throw new UntieError(
      `${hfConfigFile} describes a model of ${count.toLocaleString('en-US')} parameters, but ${weightsFile} has only ${fileBytes.toLocaleString('en-US')} bytes: ` +
        'they do not belong together (a damaged or mismatched config.json).',
    );
  }
  const tokDir = hasTokenizer(modelDir) ? modelDir : runDir && hasTokenizer(runDir) ? runDir : null;
  if (!tokDir) throw new UntieError(`no ${TOKENIZER_FILES.tokenizer} beside ${modelDir}${runDir ? ` or in ${runDir}` : ''}: the tokenizer is missing`);
  const tokenizer = loadTokenizer(tokDir);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new UntieError(`${hfConfigFile} has vocab_size ${config.vocabSize} but ${path.join(tokDir, TOKENIZER_FILES.tokenizer)} has ${tokenizer.vocabSize} tokens: the model and the tokenizer do not belong together. Use the tokenizer of the run that trained this model.`);
  }
  const runConfig = runDir ? runConfigOf(readConfigFile(path.join(runDir, 'config.json')), runDir) : null;
  const layout: HfLayout = raw.model_type === ROBERTA_PRELN_TYPE ? ROBERTA_PRELN_TYPE : 'bert';
  return { modelDir, runDir, runConfig, config, head, tokenizer, weightsFile, layout };
}

/** A masked-LM model (a run, a checkpoint or an exported folder), ready for inference. */
export function load(target: string): Loaded {
  const info = openCheckpoint(target);
  if (info.head) throw new UntieError(`${info.modelDir} is a fine-tuned ${info.head.architecture}, not a masked-LM model; pass a pre-training run or checkpoint`);
  const model = new BertForMaskedLM(info.config, 0);
  loadModelWeights(info.weightsFile, model, { tensors: readWeights(info) });
  model.eval();
  return { model, tokenizer: info.tokenizer, modelDir: info.modelDir, runDir: info.runDir, runConfig: info.runConfig };
}

/** A fine-tuned classifier (as `untie finetune` saves it), ready for inference. */
export function loadClassifier(target: string): { model: BertClassifier; tokenizer: WordPieceTokenizer; modelDir: string } {
  const info = openCheckpoint(target);
  if (!info.head) throw new UntieError(`${info.modelDir} is a masked-LM model, not a fine-tuned classifier`);
  const model = newClassifier(info.head.architecture.endsWith('ForTokenClassification') ? 'token' : 'sequence', info.config, info.head.labels, 0);
  loadModelWeights(info.weightsFile, model, { tensors: readWeights(info) });
  model.eval();
  return { model, tokenizer: info.tokenizer, modelDir: info.modelDir };
}

/** What `exportModel` wrote. */
export interface ExportResult {
  /** The folder's files, sorted. */
  files: string[];
  /** The Hugging Face class whose from_pretrained loads the folder (config.json's architectures[0]). */
  architecture: string;
  /** config.json's model_type: "bert" (a Post-LN model) or "roberta-prelayernorm" (Pre-LN). */
  modelType: HfLayout;
  /** The model folder exported: the checkpoint itself, or a run's newest checkpoint. */
  source: string;
}

/**
 * Writes `target`'s model as a Hugging Face folder: model.safetensors,
 * config.json and the tokenizer files (untie's BERT WordPiece; its
 * tokenizer_config names BertTokenizerFast, so AutoTokenizer loads it
 * whatever the model type). A Post-LN model is a BertForMaskedLM (or the
 * fine-tuned BertForTokenClassification / BertForSequenceClassification); a
 * Pre-LN one, which Hugging Face's BERT cannot express, is the same maths in
 * RoBERTa-PreLayerNorm's layout (RobertaPreLayerNormForMaskedLM, ...).
 */
export function exportModel(target: string, outDir: string): ExportResult {
  const isClassifier = openCheckpoint(target).head !== null;
  const loaded = isClassifier ? loadClassifier(target) : load(target);
  const modelType = hfLayoutOf(loaded.model.config);
  makeDirectory(outDir);
  saveModelWeights(outDir, loaded.model, { hfBiases: true, layout: modelType });
  loaded.tokenizer.save(outDir, { modelMaxLength: loaded.model.config.maxPositions });
  const bertArchitecture = 'architecture' in loaded.model ? loaded.model.architecture : 'BertForMaskedLM';
  const architecture = modelType === ROBERTA_PRELN_TYPE ? robertaArchitecture(bertArchitecture) : bertArchitecture;
  return { files: fs.readdirSync(outDir).sort(), architecture, modelType, source: loaded.modelDir };
}
