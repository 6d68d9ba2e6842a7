/**
 * `untie export --onnx`: beside the Hugging Face files (model.safetensors,
 * config.json, the tokenizer files), the layout transformers.js loads from a
 * local folder, onnx/model.onnx, written by untie from the trained model
 * (see bert-onnx.ts). config.json gains
 * "transformers.js_config": {"dtype": "fp32"}, so that transformers.js
 * loads onnx/model.onnx in a page too (its default there is a quantized
 * file untie does not write); Hugging Face's Python classes keep unknown
 * keys as attributes and ignore them.
 *
 * A Pre-LN model's config.json says "roberta-prelayernorm", which
 * transformers.js lacks: it loads the folder given the config as
 * transformersJsConfig rewrites it (see transformers-js.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { bertParameterCount } from '../models/bert.js';
import { readConfigFile } from '../train/config.js';
import { writeFileAtomic } from '../train/fsutil.js';
import { exportModel, load, loadClassifier, openCheckpoint, resolveModelDir, type CheckpointInfo, type ExportResult } from '../train/load.js';
import { bertOnnxModel, ONNX_OPSET, type OnnxExportable } from './bert-onnx.js';
import { encodeOnnx } from './onnx-proto.js';

/** Where transformers.js looks for the fp32 graph: its default subfolder and file name. */
export const ONNX_MODEL_FILE = 'onnx/model.onnx';

/** The classes the ONNX export writes, as config.json's architectures[0] names them (Post-LN: BERT's; Pre-LN: RoBERTa-PreLayerNorm's). */
const COVERED = /^(Bert|RobertaPreLayerNorm)For(MaskedLM|TokenClassification|SequenceClassification)$/;

/** Protobuf's limit on one message: a larger model would need ONNX's external-data layout, which untie does not write. */
const MAX_ONNX_BYTES = 2 ** 31 - 1;

/** The model as the bytes of an .onnx file. */
export function onnxBytes(model: OnnxExportable): Uint8Array {
  return encodeOnnx(bertOnnxModel(model));
}

/**
 * Checks, before anything is written, that `target` (a run, a checkpoint,
 * an exported or fine-tuned model folder) is a model the ONNX export
 * covers, with its own tokenizer (openCheckpoint refuses a vocabulary that
 * is not the tokenizer's), small enough for one .onnx file.
 */
export function checkOnnxSource(target: string): CheckpointInfo {
  const { modelDir } = resolveModelDir(target);
  const configFile = path.join(modelDir, 'config.json');
  if (fs.existsSync(configFile)) {
    const raw = readConfigFile(configFile) as { architectures?: unknown; model_type?: unknown };
    const architecture = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : `a model of type "${String(raw.model_type ?? 'bert')}" with no architectures`;
    if (!COVERED.test(architecture)) {
      throw new UntieError(
        `--onnx writes untie's BERT masked LMs and fine-tuned token and sequence classifiers (BertForMaskedLM, BertForTokenClassification, BertForSequenceClassification ` +
          `and their Pre-LN forms); ${configFile} is ${architecture}. Export it without --onnx.`,
      );
    }
  }
  const info = openCheckpoint(target);
  const bytes = 4 * bertParameterCount(info.config);
  if (bytes > MAX_ONNX_BYTES) {
    throw new UntieError(`${info.modelDir} holds ${(bytes / 2 ** 30).toFixed(1)} GB of weights; one .onnx file holds at most 2 GB (protobuf's limit), and untie does not write ONNX's external-data layout`);
  }
  return info;
}

/** What exportOnnx wrote, beside the Hugging Face export's files. */
export interface OnnxExportResult extends ExportResult {
  /** onnx/model.onnx's size in bytes. */
  onnxBytes: number;
  opset: number;
  /** Whether transformers.js needs the config passed as transformersJsConfig rewrites it (a Pre-LN model). */
  needsConfigOverride: boolean;
}

/**
 * Writes the Hugging Face export of `target` (exportModel) and
 * onnx/model.onnx into `outDir`, and marks config.json for transformers.js.
 * Call checkOnnxSource first to refuse before anything is written.
 */
export function exportOnnx(target: string, outDir: string): OnnxExportResult {
  const info = checkOnnxSource(target);
  const hf = exportModel(target, outDir);
  const model: OnnxExportable = info.head ? loadClassifier(target).model : load(target).model;
  const bytes = onnxBytes(model);
  writeFileAtomic(path.join(outDir, ONNX_MODEL_FILE), bytes);
  const configFile = path.join(outDir, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  writeFileAtomic(configFile, JSON.stringify({ ...config, 'transformers.js_config': { dtype: 'fp32' } }, null, 2) + '\n');
  return {
    ...hf,
    files: [...hf.files, ONNX_MODEL_FILE].sort(),
    onnxBytes: bytes.byteLength,
    opset: ONNX_OPSET,
    needsConfigOverride: config.model_type !== 'bert',
  };
}
