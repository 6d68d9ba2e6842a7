/**
 * Checkpoints in Hugging Face's layout:
 *   checkpoint-<step>/model.safetensors      weights, HF BERT names, format=pt
 *                     config.json            a Hugging Face BertConfig
 *                     optimizer.safetensors  moments of every optimizer state
 *                     trainer_state.json     step, RNG states, data position,
 *                                            tying plan and criterion state,
 *                                            optimizer step counts
 *                     tokenizer.json, vocab.txt, tokenizer_config.json,
 *                     special_tokens_map.json (so AutoTokenizer loads it)
 *                     checksums.sha256       SHA-256 of every file above, in
 *                                            `sha256sum -c` format
 * A checkpoint is written into a temporary folder and renamed, so a crash
 * never leaves a half-written checkpoint under a real name. Resume and eval
 * verify the checksums, so a flipped bit is named, not trained on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { quoteError, UntieError } from '../errors.js';
import { TOKENIZER_FILES } from '../data/tokenizer.js';
import type { BertConfig, BertForMaskedLM, MlmBatch } from '../models/bert.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { SharingState } from '../sharing/controller.js';
import { firstNonFinite } from '../tensor/anomaly.js';
import { isRngState, type RngState } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ResolvedSchedule } from './config.js';
import { maxPositionsFromRoberta, robertaArchitecture, robertaPreLnConfig, ROBERTA_PRELN_TYPE, toRobertaPreLn } from './roberta-prelayernorm.js';
import { readSafetensors, writeSafetensors, type Safetensors, type WritableTensor } from './safetensors.js';
import { describeFsError, formatBytes, freeBytes, fsErrorCode, sha256File, writeFileAtomic } from './fsutil.js';

export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  config: 'config.json',
  optimizer: 'optimizer.safetensors',
  state: 'trainer_state.json',
  checksums: 'checksums.sha256',
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
  /** The schedule resolved at the run's first start (absent in checkpoints written before it was kept). */
  schedule?: ResolvedSchedule;
}

/** The name of the first parameter holding a NaN or infinite value, or null when all are finite. */
export function firstNonFiniteParameter(named: [string, Tensor][]): string | null {
  const K = kernels();
  for (const [name, t] of named) if (!K.allFinite(t.data)) return name;
  return null;
}

/** A task head's part of the config: the HF class and its labels in id order. */
export interface HeadInfo {
  architecture: string;
  labels: readonly string[];
}

/**
 * The Hugging Face BertConfig for a model (extra "untie_*" keys are kept by
 * HF as attributes). With a task head: its architecture and HF's label
 * fields (id2label, label2id, num_labels).
 */
export function hfConfig(c: BertConfig, head?: HeadInfo): Record<string, unknown> {
  return {
    architectures: [head?.architecture ?? 'BertForMaskedLM'],
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
    ...(head ? headFields(head) : {}),
  };
}

function headFields(head: HeadInfo): Record<string, unknown> {
  return {
    id2label: Object.fromEntries(head.labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(head.labels.map((l, i) => [l, i])),
    num_labels: head.labels.length,
    classifier_dropout: null,
    ...(head.architecture === 'BertForSequenceClassification' ? { problem_type: 'single_label_classification' } : {}),
  };
}

/**
 * model_type of a Pre-LN model in BERT's tensor names (a Pre-LN run's
 * checkpoints): Hugging Face has no such model (its BERT is Post-LN and would
 * compute something else with these weights), so the config names untie's own
 * type, which transformers' Auto classes refuse, and says what to run instead.
 */
export const UNTIE_PRE_LN_TYPE = 'untie-pre-ln-bert';

function untiePreLnConfig(bertFields: Record<string, unknown>): Record<string, unknown> {
  return {
    untie_note: 'A Pre-LN BERT in untie\'s tensor names: Hugging Face\'s BERT is Post-LN and would compute something else with these weights, so this folder does not load in transformers as it is. ' +
      '`untie export CHECKPOINT OUT` writes it in RoBERTa-PreLayerNorm\'s layout (RobertaPreLayerNormForMaskedLM), which computes the same function.',
    ...bertFields,
    model_type: UNTIE_PRE_LN_TYPE,
  };
}

/** The classes untie reads, by model_type: the Post-LN export's (BERT) and the Pre-LN export's (RoBERTa-PreLayerNorm), and a Pre-LN run's checkpoints. */
const BERT_ARCHITECTURES = /^Bert(ForMaskedLM|ForPreTraining|Model|ForTokenClassification|ForSequenceClassification)$/;
const READABLE_ARCHITECTURES: Record<string, RegExp> = {
  bert: BERT_ARCHITECTURES,
  [UNTIE_PRE_LN_TYPE]: BERT_ARCHITECTURES,
  [ROBERTA_PRELN_TYPE]: /^RobertaPreLayerNorm(ForMaskedLM|Model|ForTokenClassification|ForSequenceClassification)$/,
};

/** The head of a Hugging Face config.json (null for a masked-LM model), checked. */
export function headFromHf(raw: Record<string, unknown>, source: string): HeadInfo | null {
  const modelType = raw.model_type === undefined ? 'bert' : String(raw.model_type);
  const readable = READABLE_ARCHITECTURES[modelType];
  if (!readable) throw new UntieError(`${source}: model_type "${modelType}" is not a BERT model untie reads (it reads "bert" and "${ROBERTA_PRELN_TYPE}", the layouts untie export writes)`);
  const arch = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : modelType !== ROBERTA_PRELN_TYPE ? 'BertForMaskedLM' : robertaArchitecture('BertForMaskedLM');
  if (!readable.test(arch)) {
    const examples = ['BertForMaskedLM', 'BertForTokenClassification', 'BertForSequenceClassification'].map((a) => (modelType === ROBERTA_PRELN_TYPE ? robertaArchitecture(a) : a));
    throw new UntieError(`${source}: architecture "${arch}" is not one untie reads for model_type "${modelType}" (${examples.join(', ')})`);
  }
  if (!/For(Token|Sequence)Classification$/.test(arch)) return null;
  const id2label = raw.id2label as Record<string, unknown> | undefined;
  if (!id2label || typeof id2label !== 'object') throw new UntieError(`${source}: a ${arch} config needs "id2label"`);
  const labels = Object.keys(id2label).map((_, i) => {
    const name = id2label[String(i)];
    if (typeof name !== 'string') throw new UntieError(`${source}: id2label has no label for id ${i}`);
    return name;
  });
  return { architecture: arch, labels };
}

/** Reads a BertConfig back from a Hugging Face config.json. */
export function bertConfigFromHf(raw: Record<string, unknown>, source: string): BertConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UntieError(`${source} is not a JSON object: it is not a model config`);
  const num = (k: string, fallback?: number): number => {
    const v = raw[k] ?? fallback;
    if (typeof v !== 'number') throw new UntieError(`${source}: "${k}" is missing or not a number`);
    return v;
  };
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'gelu') throw new UntieError(`${source}: hidden_act "${String(raw.hidden_act)}" is not supported (untie's BERT uses exact "gelu")`);
  if (raw.position_embedding_type !== undefined && raw.position_embedding_type !== 'absolute') {
    throw new UntieError(`${source}: position_embedding_type "${String(raw.position_embedding_type)}" is not supported (untie's BERT has absolute positions)`);
  }
  // RoBERTa-PreLayerNorm (the Pre-LN export) is Pre-LN by construction, and its position table has a padding row more.
  const roberta = raw.model_type === ROBERTA_PRELN_TYPE;
  return {
    vocabSize: num('vocab_size'), hidden: num('hidden_size'), layers: num('num_hidden_layers'), heads: num('num_attention_heads'),
    intermediate: num('intermediate_size'), maxPositions: roberta ? maxPositionsFromRoberta(raw, source) : num('max_position_embeddings'), typeVocabSize: num('type_vocab_size', 2),
    dropout: num('hidden_dropout_prob', 0.1), attentionDropout: num('attention_probs_dropout_prob', 0.1),
    layerNormEps: num('layer_norm_eps', 1e-12), initStd: num('initializer_range', 0.02),
    norm: roberta || raw.model_type === UNTIE_PRE_LN_TYPE || raw.untie_norm === 'pre' ? 'pre' : 'post',
    bias: raw.untie_bias !== false,
    positionInit: 'normal', // only the starting values of a trained table: irrelevant once weights are loaded
  };
}

function f32(t: Tensor): WritableTensor {
  return { dtype: 'F32', shape: t.shape, data: t.data };
}

/** A BERT model with or without a task head, as the weight writers need it. */
export type SavableModel = Module & { config: BertConfig; architecture?: string; labels?: readonly string[] };

/** How a model folder names its tensors: untie's checkpoints and the Post-LN export use BERT's; the Pre-LN export, RoBERTa-PreLayerNorm's. */
export type HfLayout = 'bert' | typeof ROBERTA_PRELN_TYPE;

/** The layout Hugging Face loads a model in: BERT for Post-LN, RoBERTa-PreLayerNorm for Pre-LN (HF's BERT has no Pre-LN form). */
export function hfLayoutOf(c: BertConfig): HfLayout {
  return c.norm === 'pre' ? ROBERTA_PRELN_TYPE : 'bert';
}

/**
 * Writes model.safetensors and config.json. With `hfBiases`, a model built
 * without Linear biases gets explicit zero biases, so Hugging Face's BERT
 * (which always has them) loads it and computes the same function. With
 * `layout: 'roberta-prelayernorm'` (a Pre-LN model only), the folder is a
 * RoBERTa-PreLayerNorm one (see roberta-prelayernorm.ts).
 */
export function saveModelWeights(dir: string, model: SavableModel, opts: { hfBiases?: boolean; layout?: HfLayout } = {}): void {
  const layout = opts.layout ?? 'bert';
  if (layout === ROBERTA_PRELN_TYPE && model.config.norm !== 'pre') throw new UntieError(`only a Pre-LN model has the ${ROBERTA_PRELN_TYPE} layout; this one is Post-LN`);
  let tensors: Record<string, WritableTensor> = {};
  for (const [name, t] of model.namedParameters()) tensors[name] = f32(t);
  if (opts.hfBiases && !model.config.bias) {
    for (const [name, shape] of linearBiasShapes(model.config)) {
      // Only for the Linear layers this model has (a classifier has no MLM transform; only a sequence classifier has a pooler).
      if (tensors[name.replace(/bias$/, 'weight')]) tensors[name] ??= { dtype: 'F32', shape, data: new Float32Array(shape[0]) };
    }
  }
  const head = model.architecture && model.labels ? { architecture: model.architecture, labels: model.labels } : undefined;
  let config = hfConfig(model.config, head);
  if (layout === ROBERTA_PRELN_TYPE) {
    tensors = toRobertaPreLn(tensors, model.config, /SequenceClassification$/.test(model.architecture ?? ''));
    config = robertaPreLnConfig(config, model.config);
  } else if (model.config.norm === 'pre') config = untiePreLnConfig(config);
  writeSafetensors(path.join(dir, CHECKPOINT_FILES.model), tensors, { format: 'pt' });
  writeFileAtomic(path.join(dir, CHECKPOINT_FILES.config), JSON.stringify(config, null, 2) + '\n');
}

/**
 * Loads weights by name into `model`. Every model parameter that `wanted`
 * accepts (default: all) must be present with its shape; tensors the model
 * does not have (`cls.predictions.decoder.*`, tied in HF; another head) are
 * ignored. `optional` parameters are loaded when present and left alone when not.
 */
export function loadModelWeights(
  file: string, model: Module,
  opts: { wanted?: (name: string) => boolean; optional?: (name: string) => boolean; tensors?: Safetensors['tensors'] } = {},
): void {
  const tensors = opts.tensors ?? readSafetensors(file).tensors;
  for (const [name, t] of model.namedParameters()) {
    if (opts.wanted && !opts.wanted(name)) continue;
    const src = tensors[name];
    if (!src && opts.optional?.(name)) continue;
    if (!src) throw new UntieError(`${file} has no tensor "${name}": it is not a checkpoint of this model (check config.json)`);
    if (src.shape.join() !== t.shape.join()) throw new UntieError(`${file}: "${name}" has shape [${src.shape}], the model expects [${t.shape}]`);
    if (!(src.data instanceof Float32Array)) throw new UntieError(`${file}: "${name}" is ${src.dtype}, expected a float tensor`);
    const bad = firstNonFinite(src.data);
    if (bad >= 0) {
      throw new UntieError(`${file}: "${name}" holds ${src.data[bad]} at index ${bad}: the weights are not finite (the model diverged before it was saved). Use an earlier checkpoint.`);
    }
    t.data.set(src.data);
  }
}

/** Names and shapes of the Linear biases Hugging Face's BERT models hold (BertForMaskedLM's, and the pooler's). */
function linearBiasShapes(c: BertConfig): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < c.layers; i++) {
    const p = `bert.encoder.layer.${i}.`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) out.push([`${p}${n}.bias`, [c.hidden]]);
    out.push([`${p}intermediate.dense.bias`, [c.intermediate]], [`${p}output.dense.bias`, [c.hidden]]);
  }
  out.push(['cls.predictions.transform.dense.bias', [c.hidden]], ['bert.pooler.dense.bias', [c.hidden]]);
  return out;
}

export interface CheckpointContents {
  model: BertForMaskedLM;
  optimizer: Optimizer;
  /** The parameters that carry optimizer state, by name. */
  trainable: [string, Tensor][];
  state: TrainerState;
}

export interface SaveOptions {
  /** A folder holding the run's tokenizer files, copied into the checkpoint. */
  tokenizerDir?: string;
  /** The command that resumes the run, quoted in the error when a write fails. */
  resumeHint?: string;
}

/**
 * Writes checkpoint-<step> under runDir, atomically, with a checksum per
 * file. Returns its path. If a write fails (a full disk, an I/O error), the
 * partial folder is removed, the checkpoints already saved are untouched, and
 * the UntieError says how much space a checkpoint needs.
 */
export function saveCheckpoint(runDir: string, c: CheckpointContents, options: SaveOptions = {}): string {
  const final = path.join(runDir, `checkpoint-${c.state.step}`);
  const tmp = path.join(runDir, `.tmp-checkpoint-${c.state.step}-${process.pid}`);
  const moments: Record<string, WritableTensor> = {};
  const steps: Record<string, number> = {};
  for (const [name, t] of c.trainable) {
    if (!c.optimizer.hasState(t)) continue;
    const s = c.optimizer.stateOf(t);
    moments[`${name}.exp_avg`] = { dtype: 'F32', shape: t.shape, data: s.m };
    moments[`${name}.exp_avg_sq`] = { dtype: 'F32', shape: t.shape, data: s.v };
    steps[name] = s.step;
  }
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    saveModelWeights(tmp, c.model);
    writeSafetensors(path.join(tmp, CHECKPOINT_FILES.optimizer), moments, { format: 'pt' });
    const state: TrainerState = { ...c.state, optimizerSteps: steps };
    writeFileAtomic(path.join(tmp, CHECKPOINT_FILES.state), JSON.stringify(state, null, 1) + '\n');
    if (options.tokenizerDir) {
      for (const f of Object.values(TOKENIZER_FILES)) {
        const src = path.join(options.tokenizerDir, f);
        if (fs.existsSync(src)) fs.copyFileSync(src, path.join(tmp, f));
      }
    }
    writeChecksums(tmp);
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (fsErrorCode(err) === null) throw err;
    const need = checkpointBytes(c, options.tokenizerDir);
    const free = freeBytes(runDir);
    const saved = listCheckpoints(runDir);
    throw new UntieError(
      `could not write checkpoint-${c.state.step} in ${runDir}: ${describeFsError(err)}. A checkpoint needs about ${formatBytes(need)}` +
        `${free !== null ? `; ${formatBytes(free)} ${free === 1 ? 'is' : 'are'} free there` : ''}. ` +
        (saved.length > 0 ? `The checkpoints already saved are intact (newest: checkpoint-${saved[saved.length - 1].step}). ` : 'No checkpoint was saved yet. ') +
        `Free some space, then ${options.resumeHint ? `continue with: ${options.resumeHint}` : 'resume the run (--resume)'}`,
    );
  }
  return final;
}

/** About how many bytes saveCheckpoint writes: the tensors, plus headers, JSON and tokenizer files. */
function checkpointBytes(c: CheckpointContents, tokenizerDir: string | undefined): number {
  let bytes = 64 * 1024;
  for (const [, t] of c.model.namedParameters()) bytes += 4 * t.size + 128;
  for (const [, t] of c.trainable) if (c.optimizer.hasState(t)) bytes += 8 * t.size + 256;
  if (tokenizerDir) {
    for (const f of Object.values(TOKENIZER_FILES)) bytes += fs.statSync(path.join(tokenizerDir, f), { throwIfNoEntry: false })?.size ?? 0;
  }
  return bytes;
}

/** Writes dir/checksums.sha256 over every other file in dir (read back from disk). */
function writeChecksums(dir: string): void {
  const lines = fs.readdirSync(dir)
    .filter((f) => f !== CHECKPOINT_FILES.checksums && !f.startsWith('.'))
    .sort()
    .map((f) => `${sha256File(path.join(dir, f))}  ${f}\n`);
  writeFileAtomic(path.join(dir, CHECKPOINT_FILES.checksums), lines.join(''));
}

/**
 * Checks `dir`'s files against its checksums.sha256: each of `required`
 * (and every other file listed) must be listed, present and unchanged.
 * Returns false when the checkpoint has no checksum file (one written by an
 * older untie, or an exported model), true when everything matched.
 */
export function verifyChecksums(dir: string, required: readonly string[]): boolean {
  const file = path.join(dir, CHECKPOINT_FILES.checksums);
  if (!fs.existsSync(file)) return false;
  const broken = (what: string) =>
    new UntieError(`${file} is damaged (${what}). The checkpoint cannot be verified; use another checkpoint.`);
  const stat = fs.statSync(file);
  if (stat.size > 1 << 20) throw broken(`${stat.size} bytes, far more than a checksum list`);
  const listed = new Map<string, string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]{64}) [ *]([^/\\\0]+)$/.exec(line);
    if (!m || m[2] === '.' || m[2] === '..') throw broken(`the line ${JSON.stringify(line.slice(0, 100))} is not "<sha256>  <file name>"`);
    listed.set(m[2], m[1]);
  }
  for (const name of required) {
    if (name !== CHECKPOINT_FILES.checksums && !listed.has(name) && fs.existsSync(path.join(dir, name))) throw broken(`it does not list ${name}`);
  }
  for (const [name, expected] of listed) {
    const target = path.join(dir, name);
    if (!fs.existsSync(target)) throw new UntieError(`${target} is missing, though ${file} lists it: the checkpoint is incomplete. Use another checkpoint.`);
    const actual = sha256File(target);
    if (actual !== expected) {
      throw new UntieError(
        `${target} does not match its SHA-256 in ${CHECKPOINT_FILES.checksums} (the file changed after it was saved: a flipped bit, ` +
          'a partial copy or an edit). Use another checkpoint.',
      );
    }
  }
  return true;
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

/**
 * Reads a checkpoint's trainer_state.json and checks every field's type and
 * range (the dataset, the tying plan and the criterion check theirs again
 * when the state is restored). `expectedStep` is the step in the folder name.
 */
export function readTrainerState(dir: string, expectedStep?: number): TrainerState {
  const file = path.join(dir, CHECKPOINT_FILES.state);
  if (!fs.existsSync(file)) throw new UntieError(`${dir} has no ${CHECKPOINT_FILES.state}: the checkpoint is incomplete. Resume from an earlier checkpoint (delete this folder).`);
  const size = fs.statSync(file).size;
  if (size > 64 << 20) throw new UntieError(`${file} is corrupted (${formatBytes(size)}, far more than a trainer state). Resume from an earlier checkpoint (delete this folder).`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UntieError(`${file} is corrupted (${quoteError(err)}). Resume from an earlier checkpoint (delete this folder).`);
  }
  return parseTrainerState(raw, file, expectedStep);
}

/** Checks a parsed trainer_state.json (see readTrainerState); `source` names it in errors. */
export function parseTrainerState(raw: unknown, source: string, expectedStep?: number): TrainerState {
  const bad = (what: string) => new UntieError(`${source} is corrupted: ${what}. Resume from an earlier checkpoint (delete this folder).`);
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(raw)) throw bad('it is not a JSON object');
  const s = raw;
  if (!Number.isSafeInteger(s.step) || (s.step as number) < 1) throw bad(`"step" must be a whole number >= 1, got ${JSON.stringify(s.step)}`);
  const step = s.step as number;
  if (expectedStep !== undefined && step !== expectedStep) throw bad(`"step" is ${step} but the folder is checkpoint-${expectedStep}`);
  if (!isRngState(s.dropoutRng)) throw bad(`"dropoutRng" must be four uint32s (not all zero), got ${JSON.stringify(s.dropoutRng)?.slice(0, 80)}`);
  if (!isObject(s.data)) throw bad('"data" (the data position) is missing');
  if (!isObject(s.sharing) || !Array.isArray(s.sharing.groups) || !isObject(s.sharing.criterion)) throw bad('"sharing" must hold "groups" (a list) and "criterion" (an object)');
  for (const g of s.sharing.groups) {
    if (!Array.isArray(g) || !g.every((p) => Number.isSafeInteger(p))) throw bad(`"sharing.groups" must be lists of layer positions, got ${JSON.stringify(g)?.slice(0, 80)}`);
  }
  if (!isObject(s.optimizerSteps)) throw bad('"optimizerSteps" must be an object');
  for (const [name, n] of Object.entries(s.optimizerSteps)) {
    if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > step) throw bad(`"optimizerSteps.${name}" must be a whole number in [1, ${step}], got ${JSON.stringify(n)}`);
  }
  if (s.bestValLoss !== null && !(typeof s.bestValLoss === 'number' && Number.isFinite(s.bestValLoss) && s.bestValLoss >= 0)) {
    throw bad(`"bestValLoss" must be null or a finite number >= 0, got ${JSON.stringify(s.bestValLoss)}`);
  }
  if (!(typeof s.elapsed === 'number' && Number.isFinite(s.elapsed) && s.elapsed >= 0)) throw bad(`"elapsed" must be a number of seconds >= 0, got ${JSON.stringify(s.elapsed)}`);
  if (s.evalMark !== undefined && !(Number.isSafeInteger(s.evalMark) && (s.evalMark as number) >= 0)) {
    throw bad(`"evalMark" must be a whole number >= 0, got ${JSON.stringify(s.evalMark)}`);
  }
  if (s.schedule !== undefined) {
    const r = s.schedule;
    const count = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;
    if (
      !isObject(r) || !count(r.steps, 1) || !count(r.warmupSteps, 0) ||
      !(r.untieAt === null || count(r.untieAt, 0)) || !(r.untieDeadline === null || count(r.untieDeadline, 1)) || !(r.checkEvery === null || count(r.checkEvery, 1))
    ) {
      throw bad(`"schedule" must hold whole numbers steps >= 1, warmupSteps >= 0 and untieAt, untieDeadline, checkEvery (each null or a whole number), got ${JSON.stringify(r)?.slice(0, 120)}`);
    }
  }
  return s as unknown as TrainerState;
}

/** Restores optimizer moments and steps for `trainable` from a checkpoint. */
export function loadOptimizerState(dir: string, optimizer: Optimizer, trainable: [string, Tensor][], steps: Record<string, number>): void {
  const file = path.join(dir, CHECKPOINT_FILES.optimizer);
  const { tensors } = readSafetensors(file);
  // The two files must describe the same parameters, or a resumed run would silently restart some moments.
  const names = new Set(trainable.map(([name]) => name));
  for (const name of Object.keys(steps)) {
    if (!names.has(name)) throw new UntieError(`${path.join(dir, CHECKPOINT_FILES.state)} has optimizer steps for "${name}", which this model does not train: the checkpoint is corrupted or of another model`);
  }
  for (const key of Object.keys(tensors)) {
    const name = key.replace(/\.exp_avg(_sq)?$/, '');
    if (steps[name] === undefined) throw new UntieError(`${file} holds "${key}", but ${CHECKPOINT_FILES.state} has no optimizer steps for "${name}": the checkpoint is corrupted`);
  }
  for (const [name, t] of trainable) {
    if (steps[name] === undefined) continue;
    const m = tensors[`${name}.exp_avg`], v = tensors[`${name}.exp_avg_sq`];
    if (!m || !v || !(m.data instanceof Float32Array) || !(v.data instanceof Float32Array)) {
      throw new UntieError(`${file} lacks the state of "${name}": the checkpoint is corrupted`);
    }
    if (m.shape.join() !== t.shape.join() || v.shape.join() !== t.shape.join()) {
      throw new UntieError(`${file}: the state of "${name}" has shape [${m.shape}], the parameter [${t.shape}]: the checkpoint is of another model`);
    }
    const badM = firstNonFinite(m.data), badV = firstNonFinite(v.data);
    if (badM >= 0 || badV >= 0 || v.data.some((x) => x < 0)) {
      throw new UntieError(`${file}: the state of "${name}" holds ${badM >= 0 ? m.data[badM] : badV >= 0 ? v.data[badV] : 'a negative second moment'}: the checkpoint is corrupted. Use an earlier checkpoint.`);
    }
    optimizer.setState(t, { step: steps[name], m: m.data, v: v.data });
  }
}

/** A data position written by untie_torch: where the export left the stream, and the batches consumed since. */
interface TorchDataPosition {
  untieTorch: { from: unknown; batches: number };
}

function isTorchDataPosition(data: unknown): data is TorchDataPosition {
  const t = (data as { untieTorch?: { batches?: unknown } } | null)?.untieTorch;
  return typeof t === 'object' && t !== null && 'from' in t && Number.isSafeInteger(t.batches) && (t.batches as number) >= 0;
}

/**
 * Puts `dataset` at a checkpoint's data position: untie's own, or one
 * untie_torch wrote (the export's position, then `batches` batches of
 * `batchSize` drawn and dropped, as the torch run consumed them).
 */
export function restoreDataPosition(
  dataset: { setState(s: never): void; nextBatch(batchSize: number): MlmBatch }, data: unknown, batchSize: number, gradAccum: number,
): void {
  if (!isTorchDataPosition(data)) {
    dataset.setState(data as never);
    return;
  }
  dataset.setState(data.untieTorch.from as never);
  for (let i = 0; i < data.untieTorch.batches * gradAccum; i++) dataset.nextBatch(batchSize);
}

export interface RestoreTargets {
  model: BertForMaskedLM;
  optimizer: Optimizer;
  sharing: { setState(s: SharingState): void; trainable(named: [string, Tensor][]): [string, Tensor][] };
  /** The model's named parameters. */
  named: [string, Tensor][];
  /** The training data stream (its position and masking RNG). */
  dataset: { setState(s: never): void; nextBatch(batchSize: number): MlmBatch };
  /** Micro-batch size and micro-batches per update, to skip the batches a PyTorch continuation consumed (see crossover.ts). */
  batchSize: number;
  gradAccum: number;
  /** The folder of the tokenizer the data was encoded with; the checkpoint's copy must equal it. */
  tokenizerDir: string;
}

/** A checkpoint's trainer state, read after its files passed their checksums (`verified`: there were checksums). */
export interface OpenedCheckpoint {
  state: TrainerState;
  verified: boolean;
}

/**
 * Verifies checkpoint `dir`'s checksums, then reads and checks its
 * trainer_state.json: what a resume needs before it builds anything from the
 * state (the trainer builds its untie criterion from the saved schedule).
 */
export function openCheckpoint(dir: string, step: number): OpenedCheckpoint {
  const verified = verifyChecksums(dir, [...Object.values(CHECKPOINT_FILES), ...Object.values(TOKENIZER_FILES)]);
  return { state: readTrainerState(dir, step), verified };
}

/**
 * Reads checkpoint `dir` (step `step`) into the in-memory model, optimizer,
 * tying plan and data stream, checking everything first: checksums, every
 * trainer_state field, the weights (names, shapes, finite), the optimizer
 * state (the same parameters, shapes, finite), and that the checkpoint's
 * tokenizer is the run's. Writes nothing: on any error the run folder is as
 * it was. Returns the trainer state and whether checksums were verified.
 * `opened`: the checkpoint already opened (openCheckpoint), not read again.
 */
export function restoreCheckpoint(dir: string, step: number, t: RestoreTargets, opened = openCheckpoint(dir, step)): OpenedCheckpoint {
  const { state, verified } = opened;
  const ownTokenizer = path.join(dir, TOKENIZER_FILES.tokenizer), runTokenizer = path.join(t.tokenizerDir, TOKENIZER_FILES.tokenizer);
  if (fs.existsSync(ownTokenizer) && !fs.readFileSync(ownTokenizer).equals(fs.readFileSync(runTokenizer))) {
    throw new UntieError(
      `${ownTokenizer} differs from ${runTokenizer}: the run's tokenizer changed after this checkpoint was saved, so its token ids mean ` +
        `other words now. Copy the checkpoint's tokenizer files back into ${t.tokenizerDir}.`,
    );
  }
  const hfConfigFile = path.join(dir, CHECKPOINT_FILES.config);
  if (fs.existsSync(hfConfigFile)) {
    let saved: BertConfig;
    try {
      saved = bertConfigFromHf(JSON.parse(fs.readFileSync(hfConfigFile, 'utf8')) as Record<string, unknown>, hfConfigFile);
    } catch (err) {
      throw err instanceof UntieError ? err : new UntieError(`${hfConfigFile} is not valid JSON (${quoteError(err)}): the checkpoint is corrupted`);
    }
    const expected = t.model.config;
    for (const key of ['vocabSize', 'hidden', 'layers', 'heads', 'intermediate', 'maxPositions', 'typeVocabSize', 'norm'] as const) {
      if (saved[key] !== expected[key]) {
        throw new UntieError(`${hfConfigFile} says ${key} = ${String(saved[key])}, but the run's config.json gives ${String(expected[key])}: the checkpoint belongs to another run`);
      }
    }
  }
  loadModelWeights(path.join(dir, CHECKPOINT_FILES.model), t.model);
  t.sharing.setState(state.sharing);
  loadOptimizerState(dir, t.optimizer, t.sharing.trainable(t.named), state.optimizerSteps);
  t.model.dropoutRng.setState(state.dropoutRng);
  restoreDataPosition(t.dataset, state.data, t.batchSize, t.gradAccum);
  return { state, verified };
}
