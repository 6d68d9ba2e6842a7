/**
 * Checkpoints in Hugging Face's layout:
 *   checkpoint-<step>/model.safetensors      weights, HF BERT names, format=pt
 *                     config.json            a Hugging Face BertConfig
 *                     optimizer.safetensors  moments of every optimizer state
 *                     trainer_state.json     step, RNG states, data position,
 *                                            tying plan and criterion state,
 *                                            optimizer step counts
 * A checkpoint is written into a temporary folder and renamed, so a crash
 * never leaves a half-written checkpoint under a real name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import type { BertConfig, BertForMaskedLM } from '../models/bert.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { SharingState } from '../sharing/controller.js';
import type { RngState } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { readSafetensors, writeSafetensors, type WritableTensor } from './safetensors.js';
import { writeFileAtomic } from './fsutil.js';

export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  config: 'config.json',
  optimizer: 'optimizer.safetensors',
  state: 'trainer_state.json',
} as const;

export interface TrainerState {
  /** Updates completed. */
  step: number;
  dropoutRng: RngState;
  data: unknown;
  sharing: SharingState;
  /** Optimizer step count per parameter name (only those with state). */
  optimizerSteps: Record<string, number>;
  bestValLoss: number | null;
  /** Seconds of training so far (for tokens/s, the summary, and a --budget run's schedule). */
  elapsed: number;
  /** With train.evalPoints: the last evaluation mark passed (so a resumed run evaluates where the uninterrupted one did). */
  evalMark?: number;
}

/** The Hugging Face BertConfig for a model (extra "untie_*" keys are kept by HF as attributes). */
export function hfConfig(c: BertConfig): Record<string, unknown> {
  return {
    architectures: ['BertForMaskedLM'],
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hidden,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    intermediate_size: c.intermediate,
    hidden_act: 'gelu',
    hidden_dropout_prob: c.dropout,
    attention_probs_dropout_prob: c.attentionDropout,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    initializer_range: c.initStd,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    untie_norm: c.norm,
    untie_bias: c.bias,
  };
}

/** Reads a BertConfig back from a Hugging Face config.json. */
export function bertConfigFromHf(raw: Record<string, unknown>, source: string): BertConfig {
  const num = (k: string, fallback?: number): number => {
    const v = raw[k] ?? fallback;
    if (typeof v !== 'number') throw new UntieError(`${source}: "${k}" is missing or not a number`);
    return v;
  };
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'gelu') throw new UntieError(`${source}: hidden_act "${String(raw.hidden_act)}" is not supported (untie's BERT uses exact "gelu")`);
  return {
    vocabSize: num('vocab_size'), hidden: num('hidden_size'), layers: num('num_hidden_layers'), heads: num('num_attention_heads'),
    intermediate: num('intermediate_size'), maxPositions: num('max_position_embeddings'), typeVocabSize: num('type_vocab_size', 2),
    dropout: num('hidden_dropout_prob', 0.1), attentionDropout: num('attention_probs_dropout_prob', 0.1),
    layerNormEps: num('layer_norm_eps', 1e-12), initStd: num('initializer_range', 0.02),
    norm: raw.untie_norm === 'pre' ? 'pre' : 'post',
    bias: raw.untie_bias !== false,
  };
}

function f32(t: Tensor): WritableTensor {
  return { dtype: 'F32', shape: t.shape, data: t.data };
}

/**
 * Writes model.safetensors and config.json. With `hfBiases`, a model built
 * without Linear biases gets explicit zero biases, so Hugging Face's BERT
 * (which always has them) loads it and computes the same function.
 */
export function saveModelWeights(dir: string, model: BertForMaskedLM, opts: { hfBiases?: boolean } = {}): void {
  const tensors: Record<string, WritableTensor> = {};
  for (const [name, t] of model.namedParameters()) tensors[name] = f32(t);
  if (opts.hfBiases && !model.config.bias) {
    for (const [name, shape] of linearBiasShapes(model.config)) tensors[name] ??= { dtype: 'F32', shape, data: new Float32Array(shape[0]) };
  }
  writeSafetensors(path.join(dir, CHECKPOINT_FILES.model), tensors, { format: 'pt' });
  writeFileAtomic(path.join(dir, CHECKPOINT_FILES.config), JSON.stringify(hfConfig(model.config), null, 2) + '\n');
}

/**
 * Loads weights by name into `model`. Every model parameter must be present
 * with its shape; `cls.predictions.decoder.*` (tied in HF) is ignored.
 */
export function loadModelWeights(file: string, model: BertForMaskedLM): void {
  const { tensors } = readSafetensors(file);
  for (const [name, t] of model.namedParameters()) {
    const src = tensors[name];
    if (!src) throw new UntieError(`${file} has no tensor "${name}": it is not a checkpoint of this model (check config.json)`);
    if (src.shape.join() !== t.shape.join()) throw new UntieError(`${file}: "${name}" has shape [${src.shape}], the model expects [${t.shape}]`);
    if (!(src.data instanceof Float32Array)) throw new UntieError(`${file}: "${name}" is ${src.dtype}, expected a float tensor`);
    t.data.set(src.data);
  }
}

/** Names and shapes of the Linear biases Hugging Face's BertForMaskedLM holds. */
function linearBiasShapes(c: BertConfig): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < c.layers; i++) {
    const p = `bert.encoder.layer.${i}.`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) out.push([`${p}${n}.bias`, [c.hidden]]);
    out.push([`${p}intermediate.dense.bias`, [c.intermediate]], [`${p}output.dense.bias`, [c.hidden]]);
  }
  out.push(['cls.predictions.transform.dense.bias', [c.hidden]]);
  return out;
}

export interface CheckpointContents {
  model: BertForMaskedLM;
  optimizer: Optimizer;
  /** The parameters that carry optimizer state, by name. */
  trainable: [string, Tensor][];
  state: TrainerState;
}

/** Writes checkpoint-<step> under runDir, atomically. Returns its path. */
export function saveCheckpoint(runDir: string, c: CheckpointContents): string {
  const final = path.join(runDir, `checkpoint-${c.state.step}`);
  const tmp = path.join(runDir, `.tmp-checkpoint-${c.state.step}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  saveModelWeights(tmp, c.model);
  const moments: Record<string, WritableTensor> = {};
  const steps: Record<string, number> = {};
  for (const [name, t] of c.trainable) {
    if (!c.optimizer.hasState(t)) continue;
    const s = c.optimizer.stateOf(t);
    moments[`${name}.exp_avg`] = { dtype: 'F32', shape: t.shape, data: s.m };
    moments[`${name}.exp_avg_sq`] = { dtype: 'F32', shape: t.shape, data: s.v };
    steps[name] = s.step;
  }
  writeSafetensors(path.join(tmp, CHECKPOINT_FILES.optimizer), moments, { format: 'pt' });
  const state: TrainerState = { ...c.state, optimizerSteps: steps };
  writeFileAtomic(path.join(tmp, CHECKPOINT_FILES.state), JSON.stringify(state, null, 1) + '\n');
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  return final;
}

/** Checkpoint folders of a run, oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(runDir)) return [];
  return fs.readdirSync(runDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: path.join(runDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/** Deletes all but the newest `keep` checkpoints. */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.dir, { recursive: true, force: true });
}

/** Reads a checkpoint's trainer_state.json, with a clear error when it is missing or corrupt. */
export function readTrainerState(dir: string): TrainerState {
  const file = path.join(dir, CHECKPOINT_FILES.state);
  if (!fs.existsSync(file)) throw new UntieError(`${dir} has no ${CHECKPOINT_FILES.state}: the checkpoint is incomplete. Resume from an earlier checkpoint (delete this folder).`);
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as TrainerState;
    if (!Number.isInteger(s.step) || !s.sharing || !Array.isArray(s.dropoutRng)) throw new Error('fields missing');
    return s;
  } catch (err) {
    throw new UntieError(`${file} is corrupted (${(err as Error).message}). Resume from an earlier checkpoint (delete this folder).`);
  }
}

/** Restores optimizer moments and steps for `trainable` from a checkpoint. */
export function loadOptimizerState(dir: string, optimizer: Optimizer, trainable: [string, Tensor][], steps: Record<string, number>): void {
  const { tensors } = readSafetensors(path.join(dir, CHECKPOINT_FILES.optimizer));
  for (const [name, t] of trainable) {
    if (steps[name] === undefined) continue;
    const m = tensors[`${name}.exp_avg`], v = tensors[`${name}.exp_avg_sq`];
    if (!m || !v || !(m.data instanceof Float32Array) || !(v.data instanceof Float32Array)) {
      throw new UntieError(`${dir}/${CHECKPOINT_FILES.optimizer} lacks the state of "${name}": the checkpoint is corrupted`);
    }
    optimizer.setState(t, { step: steps[name], m: m.data, v: v.data });
  }
}
