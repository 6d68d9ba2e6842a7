/**
 * Loading a trained model back: from a run folder (its newest checkpoint), a
 * checkpoint folder, or an exported Hugging Face folder. Also `exportModel`,
 * which writes a folder that Hugging Face's BertForMaskedLM.from_pretrained
 * and AutoTokenizer.from_pretrained load unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { loadTokenizer, hasTokenizer, TOKENIZER_FILES, type WordPieceTokenizer } from '../data/tokenizer.js';
import { BertForMaskedLM } from '../models/bert.js';
import { bertConfigFromHf, CHECKPOINT_FILES, listCheckpoints, loadModelWeights, saveModelWeights } from './checkpoint.js';
import { readConfigFile, type RunConfig } from './config.js';

export interface Loaded {
  model: BertForMaskedLM;
  tokenizer: WordPieceTokenizer;
  /** The folder holding model.safetensors. */
  modelDir: string;
  /** The run folder, when loading from a run or one of its checkpoints. */
  runDir: string | null;
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

export function load(target: string): Loaded {
  const { modelDir, runDir } = resolveModelDir(target);
  const hfConfigFile = path.join(modelDir, CHECKPOINT_FILES.config);
  if (!fs.existsSync(hfConfigFile)) throw new UntieError(`${modelDir} has no config.json: the folder is incomplete`);
  const config = bertConfigFromHf(readConfigFile(hfConfigFile) as Record<string, unknown>, hfConfigFile);
  const model = new BertForMaskedLM(config, 0);
  loadModelWeights(path.join(modelDir, CHECKPOINT_FILES.model), model);
  model.eval();
  const tokDir = hasTokenizer(modelDir) ? modelDir : runDir && hasTokenizer(runDir) ? runDir : null;
  if (!tokDir) throw new UntieError(`no ${TOKENIZER_FILES.tokenizer} beside ${modelDir}${runDir ? ` or in ${runDir}` : ''}: the tokenizer is missing`);
  const tokenizer = loadTokenizer(tokDir);
  const runConfig = runDir ? (readConfigFile(path.join(runDir, 'config.json')) as RunConfig) : null;
  return { model, tokenizer, modelDir, runDir, runConfig };
}

/**
 * Writes `target`'s model as a Hugging Face BertForMaskedLM folder:
 * model.safetensors, config.json and the tokenizer files.
 */
export function exportModel(target: string, outDir: string): string[] {
  const loaded = load(target);
  if (loaded.model.config.norm === 'pre') {
    throw new UntieError('this model is Pre-LN; Hugging Face BertForMaskedLM is Post-LN and would compute something else with these weights. Export needs a Post-LN run (--norm post).');
  }
  fs.mkdirSync(outDir, { recursive: true });
  saveModelWeights(outDir, loaded.model, { hfBiases: true });
  loaded.tokenizer.save(outDir, { modelMaxLength: loaded.model.config.maxPositions });
  return fs.readdirSync(outDir).sort();
}
