/**
 * Loading a trained model back: from a run folder (its newest checkpoint), a
 * checkpoint folder, or an exported Hugging Face folder; fine-tuned
 * classifiers too. Also `exportModel`, which writes a folder that Hugging
 * Face's from_pretrained and AutoTokenizer.from_pretrained load unchanged: a
 * Post-LN model as BertForMaskedLM (BertForTokenClassification,
 * BertForSequenceClassification), a Pre-LN one as RobertaPreLayerNormForMaskedLM
 * (RobertaPreLayerNormForTokenClassification, ...ForSequenceClassification),
 * a GPT decoder as GPT2LMHeadModel.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { loadTokenizer, hasTokenizer, TOKENIZER_FILES, type WordPieceTokenizer } from '../data/tokenizer.js';
import { BertForMaskedLM, bertParameterCount, validateBertConfig, type BertConfig } from '../models/bert.js';
import { GptLMHeadModel, gptParameterCount, validateGptConfig } from '../models/gpt.js';
import { newClassifier, type BertClassifier } from '../models/heads.js';
import { bertConfigFromHf, headFromHf, hfLayoutOf, CHECKPOINT_FILES, listCheckpoints, loadModelWeights, saveModelWeights, verifyChecksums, type HeadInfo, type HfLayout } from './checkpoint.js';
import { fromGpt2, gptConfigFromHf, GPT2_ARCHITECTURE, GPT2_TYPE } from './gpt2.js';
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
  notAFile(target);
  if (fs.existsSync(path.join(target, CHECKPOINT_FILES.model))) {
    const parent = path.dirname(path.resolve(target));
    const isRunCheckpoint = /^checkpoint-\d+$/.test(path.basename(path.resolve(target))) && fs.existsSync(path.join(parent, 'config.json'));
    return { modelDir: target, runDir: isRunCheckpoint ? parent : null };
  }
  const ckpts = listCheckpoints(target);
  if (ckpts.length === 0) {
    // A folder of runs (runs/): name the runs in it rather than say it has no checkpoint.
    const runs = fs.readdirSync(target, { withFileTypes: true }).filter((e) => e.isDirectory() && listCheckpoints(path.join(target, e.name)).length > 0).map((e) => e.name).sort();
    if (runs.length > 0) {
      const shown = runs.length > 5 ? `${runs.slice(0, 5).join(', ')} and ${runs.length - 5} more` : runs.join(', ');
      throw new UntieError(`${target} is a folder of runs (${shown}), not a run. Pass one of them, e.g. ${path.join(target, runs[0])}`);
    }
    throw new UntieError(`${target} holds neither ${CHECKPOINT_FILES.model} nor checkpoint-<step> folders. Has the run saved a checkpoint yet?`);
  }
  return { modelDir: ckpts[ckpts.length - 1].dir, runDir: target };
}

/** A model is passed by its folder: a file (model.safetensors, config.json, ...) is an error that names the folder to pass. */
function notAFile(target: string): void {
  if (!fs.statSync(target).isDirectory()) throw new UntieError(`${target} is a file; pass the folder that holds the model: ${path.dirname(target)}`);
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

/** A model folder's files before any model is built: its config.json (as `describe` read it), its tokenizer, its run. */
interface ModelFolder<T> {
  described: T;
  modelDir: string;
  runDir: string | null;
  runConfig: RunConfig | null;
  raw: Record<string, unknown>;
  tokenizer: WordPieceTokenizer;
  weightsFile: string;
}

/** Whether a config.json describes a GPT decoder (GPT-2's model_type). */
function isDecoder(raw: Record<string, unknown>): boolean {
  return raw.model_type === GPT2_TYPE;
}

/**
 * Resolves `target`, reads its config.json and the tokenizer (beside the
 * model, else the run's), and checks that they belong together: a model
 * whose vocabulary size (from `describe`, which also checks the config) is
 * not the tokenizer's is an error, and so is a config.json describing more
 * parameters than the weights file can hold.
 */
function openFolder<T extends { vocabSize: number; parameters: number }>(target: string, describe: (raw: Record<string, unknown>, source: string) => T): ModelFolder<T> {
  const { modelDir, runDir } = resolveModelDir(target);
  // A checkpoint's checksums cover the weights, the config and the tokenizer (exported folders have none).
  verifyChecksums(modelDir, [CHECKPOINT_FILES.model, CHECKPOINT_FILES.config, ...Object.values(TOKENIZER_FILES)]);
  const hfConfigFile = path.join(modelDir, CHECKPOINT_FILES.config);
  if (!fs.existsSync(hfConfigFile)) throw new UntieError(`${modelDir} has no config.json: the folder is incomplete`);
  const raw = readConfigFile(hfConfigFile) as Record<string, unknown>;
  const described = describe(raw, hfConfigFile);
  const { vocabSize, parameters } = described;
  // Allocate only what the weights file can hold: a damaged config.json must not ask for gigabytes.
  const weightsFile = path.join(modelDir, CHECKPOINT_FILES.model);
  const fileBytes = fs.statSync(weightsFile, { throwIfNoEntry: false })?.size ?? 0;
  if (parameters * 2 > fileBytes) {
    throw new UntieError(
      `${hfConfigFile} describes a model of ${parameters.toLocaleString('en-US')} parameters, but ${weightsFile} has only ${fileBytes.toLocaleString('en-US')} bytes: ` +
        'they do not belong together (a damaged or mismatched config.json).',
    );
  }
  const tokDir = hasTokenizer(modelDir) ? modelDir : runDir && hasTokenizer(runDir) ? runDir : null;
  if (!tokDir) throw new UntieError(`no ${TOKENIZER_FILES.tokenizer} beside ${modelDir}${runDir ? ` or in ${runDir}` : ''}: the tokenizer is missing`);
  const tokenizer = loadTokenizer(tokDir);
  if (tokenizer.vocabSize !== vocabSize) {
    throw new UntieError(`${hfConfigFile} has vocab_size ${vocabSize} but ${path.join(tokDir, TOKENIZER_FILES.tokenizer)} has ${tokenizer.vocabSize} tokens: the model and the tokenizer do not belong together. Use the tokenizer of the run that trained this model.`);
  }
  const runConfig = runDir ? runConfigOf(readConfigFile(path.join(runDir, 'config.json')), runDir) : null;
  return { described, modelDir, runDir, runConfig, raw, tokenizer, weightsFile };
}

/**
 * Opens a BERT model folder, masked LM or fine-tuned (see openFolder for
 * what is checked). A GPT decoder is refused with what to use instead.
 */
export function openCheckpoint(target: string): CheckpointInfo {
  const folder = openFolder(target, (raw, source) => {
    if (isDecoder(raw)) {
      throw new UntieError(`${source} describes a GPT decoder (${GPT2_ARCHITECTURE}), and this needs a BERT encoder: a decoder works with untie generate, eval and export`);
    }
    const head = headFromHf(raw, source);
    const config = bertConfigFromHf(raw, source);
    validateBertConfig(config);
    return { head, config, vocabSize: config.vocabSize, parameters: bertParameterCount(config) };
  });
  const layout: HfLayout = folder.raw.model_type === ROBERTA_PRELN_TYPE ? ROBERTA_PRELN_TYPE : 'bert';
  const { described: { config, head }, modelDir, runDir, runConfig, tokenizer, weightsFile } = folder;
  return { modelDir, runDir, runConfig, config, head, tokenizer, weightsFile, layout };
}

/** A GPT decoder (a run, a checkpoint or an exported folder), ready for inference. */
export interface LoadedDecoder {
  model: GptLMHeadModel;
  tokenizer: WordPieceTokenizer;
  modelDir: string;
  runDir: string | null;
  runConfig: RunConfig | null;
}

/** Loads a GPT decoder, checked as openCheckpoint checks a BERT model; a BERT model is refused with what to use instead. */
export function loadDecoder(target: string): LoadedDecoder {
  const folder = openFolder(target, (raw, source) => {
    if (!isDecoder(raw)) {
      throw new UntieError(
        `${source} describes a BERT encoder (model_type "${String(raw.model_type ?? 'bert')}"), and this needs a GPT decoder: ` +
          'train one with untie train --model gpt (an encoder fills in [MASK]s: untie fill-mask)',
      );
    }
    const config = gptConfigFromHf(raw, source);
    validateGptConfig(config);
    return { config, vocabSize: config.vocabSize, parameters: gptParameterCount(config) };
  });
  const { config } = folder.described;
  const model = new GptLMHeadModel(config, 0);
  loadModelWeights(folder.weightsFile, model, { tensors: fromGpt2(readSafetensors(folder.weightsFile).tensors, config, folder.weightsFile) });
  model.eval();
  const { modelDir, runDir, runConfig, tokenizer } = folder;
  return { model, tokenizer, modelDir, runDir, runConfig };
}

/** Either kind of pre-trained model (what `untie eval` takes): the folder's config.json says which. */
export function loadLanguageModel(target: string): Loaded | LoadedDecoder {
  return isDecoderFolder(target) ? loadDecoder(target) : load(target);
}

/** Whether `target` (a run, a checkpoint or a model folder) holds a GPT decoder, by its config.json (full checks come when it is loaded). */
export function isDecoderFolder(target: string): boolean {
  const file = path.join(resolveModelDir(target).modelDir, CHECKPOINT_FILES.config);
  return fs.existsSync(file) && isDecoder(readConfigFile(file) as Record<string, unknown>);
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

/**
 * The folder of a fine-tuned classifier from what a user points at: the
 * model folder itself (best/, or an exported one), a results folder of
 * `untie finetune` (its best/), or a run folder holding exactly one such
 * results folder. Also the sequence length it was fine-tuned with, from the
 * results folder's results.json when there is one.
 */
export function resolveClassifierDir(target: string): { modelDir: string; maxLength: number | null } {
  if (!fs.existsSync(target)) throw new UntieError(`${target} does not exist. Pass a fine-tuned model: a run folder, its finetune-<task> folder, or a model folder.`);
  notAFile(target);
  const isModel = (dir: string) => fs.existsSync(path.join(dir, CHECKPOINT_FILES.model));
  const fromResults = (dir: string) => {
    let maxLength: number | null = null;
    try {
      const limits = (JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as { limits?: { maxLength?: unknown } }).limits;
      if (typeof limits?.maxLength === 'number' && Number.isInteger(limits.maxLength) && limits.maxLength >= 8) maxLength = limits.maxLength;
    } catch {
      // no readable results.json: the model's own maximum length is used
    }
    return { modelDir: path.join(dir, 'best'), maxLength };
  };
  if (isModel(path.join(target, 'best'))) return fromResults(target);
  // A run folder (or a model folder that was fine-tuned, as an exported one is) holding finetune-<task> results.
  const found = fs.readdirSync(target).filter((n) => n.startsWith('finetune-') && !n.includes('.tmp-') && isModel(path.join(target, n, 'best'))).sort();
  if (found.length === 1) return fromResults(path.join(target, found[0]));
  if (found.length > 1) throw new UntieError(`${target} holds ${found.length} fine-tuned classifiers (${found.join(', ')}). Pass one of them, e.g. ${path.join(target, found[0])}`);
  if (isModel(target)) {
    const parent = path.dirname(path.resolve(target));
    return path.basename(path.resolve(target)) === 'best' && fs.existsSync(path.join(parent, 'results.json')) ? fromResults(parent) : { modelDir: target, maxLength: null };
  }
  throw new UntieError(`${target} holds no fine-tuned classifier (no model.safetensors, best/ or finetune-<task>/best). Fine-tune one first: untie finetune ${target} --task pos|spam|classify`);
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
  /** config.json's model_type: "bert" (a Post-LN model), "roberta-prelayernorm" (Pre-LN) or "gpt2" (a decoder). */
  modelType: HfLayout | typeof GPT2_TYPE;
  /** Encoder layers written. */
  layers: number;
  /**
   * The layers of the run the checkpoint belongs to (null: not a run's): a
   * growing run's (--grow) checkpoint from before its last growth step has
   * fewer, and is exported at the depth it has.
   */
  runLayers: number | null;
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
 * RoBERTa-PreLayerNorm's layout (RobertaPreLayerNormForMaskedLM, ...). A GPT
 * decoder is a GPT2LMHeadModel (see gpt2.ts), with the same WordPiece
 * tokenizer: GPT-2's byte-level BPE is not what it was trained with.
 */
export function exportModel(target: string, outDir: string): ExportResult {
  if (isDecoderFolder(target)) {
    const decoder = loadDecoder(target);
    makeDirectory(outDir);
    saveModelWeights(outDir, decoder.model);
    decoder.tokenizer.save(outDir, { modelMaxLength: decoder.model.config.maxPositions });
    return { files: fs.readdirSync(outDir).sort(), architecture: GPT2_ARCHITECTURE, modelType: GPT2_TYPE, source: decoder.modelDir, layers: decoder.model.config.layers, runLayers: null };
  }
  const info = openCheckpoint(target);
  const isClassifier = info.head !== null;
  const loaded = isClassifier ? loadClassifier(target) : load(target);
  const modelType = hfLayoutOf(loaded.model.config);
  makeDirectory(outDir);
  saveModelWeights(outDir, loaded.model, { hfBiases: true, layout: modelType });
  loaded.tokenizer.save(outDir, { modelMaxLength: loaded.model.config.maxPositions });
  const bertArchitecture = 'architecture' in loaded.model ? loaded.model.architecture : 'BertForMaskedLM';
  const architecture = modelType === ROBERTA_PRELN_TYPE ? robertaArchitecture(bertArchitecture) : bertArchitecture;
  return {
    files: fs.readdirSync(outDir).sort(), architecture, modelType, source: loaded.modelDir,
    layers: loaded.model.config.layers, runLayers: info.runConfig?.model.layers ?? null,
  };
}
