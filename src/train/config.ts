/**
 * A run's configuration: one tree of plain values, each part with its
 * defaults, resolved from a preset, then a JSON config file, then flags (in
 * that order), validated, and written whole into the run folder.
 */
import fs from 'node:fs';
import { quoteError, UntieError } from '../errors.js';
import { BertForMaskedLM, defaultBertConfig, validateBertConfig, type BertConfig } from '../models/bert.js';
import { GptLMHeadModel, validateGptConfig, type GptConfig } from '../models/gpt.js';
import { MODEL_KINDS, type ModelKind } from '../models/lm.js';
import type { UntieOptimizer } from '../sharing/controller.js';
import { AdaptiveCriterion, defaultCheckEvery, FixedCriterion, MultiCriterion, NeverCriterion, parseCriterion, type Criterion } from '../sharing/criteria.js';
import { parseStatistic } from '../sharing/statistics.js';
import { parseGrowth, type GrowthOptions } from '../sharing/growth.js';
import { parseShare, planGroups, type Groups } from '../sharing/plan.js';
import { checkFits, isSyntheticCorpus, parseSyntheticCorpus } from '../data/synthetic/index.js';

export interface DataConfig {
  /** "brown" (the built-in corpus), a path to a text file or folder, or a generated corpus (synthetic:NAME[:key=value,...]). */
  corpus: string;
  validationFraction: number;
  /** Seed of the train/validation split, kept apart from the training seed so runs with different seeds validate on the same documents. */
  splitSeed: number;
  /** Tokens per training sequence, [CLS] and [SEP] included. */
  seqLen: number;
  vocabSize: number;
  /** Validation batches used per evaluation (0 = all). */
  evalBatches: number;
  /** Fraction of tokens selected for prediction in training (validation always uses 0.15). */
  maskProb: number;
}

export interface TrainConfig {
  /** Optimizer updates (ignored by a --budget run). */
  steps: number;
  /**
   * Wall-clock budget in seconds of training (0: a step-count run). Only
   * training steps count: evaluation and checkpoint time do not. The
   * schedule, fraction:F and the untie deadline follow the budget spent.
   */
  budget: number;
  batchSize: number;
  gradAccum: number;
  optimizer: 'adamw' | 'lamb';
  lr: number;
  /** Linear warmup steps (0: warmupFraction of the run). */
  warmupSteps: number;
  /** Warmup as a fraction of the run, when warmupSteps is 0. */
  warmupFraction: number;
  /** After warmup: linear or cosine decay to 0 at the end of the run, or constant. */
  schedule: 'linear' | 'cosine' | 'constant';
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (0 = off). */
  clip: number;
  /**
   * Which norm `clip` bounds while layers are tied: 'update' (the gradient
   * the optimizer applies, a tied group counted once with its mean or sum) or
   * 'layers' (every layer's own gradient, as if untied: the same quantity
   * before and after untying). The two agree once everything is untied.
   */
  clipBasis: 'update' | 'layers';
  seed: number;
  /** Kernel threads (0 = all cores). */
  threads: number;
  logEvery: number;
  evalEvery: number;
  /** Also evaluate at every 1/evalPoints of the run (steps or budget; 0 = off): what compare uses. */
  evalPoints: number;
  saveEvery: number;
  keepLast: number;
  /** After each validation, score a frozen-encoder probe on this downstream task ("" = off; "pos" or "spam"). */
  probe: string;
}

export interface SharingConfig {
  /** "AxB": a unit of A layers repeated B times; "" means 1 x layers (all tied). */
  share: string;
  /** never | step:N | fraction:F | adaptive | multi */
  untie: string;
  sharedGrad: 'mean' | 'sum';
  untieOptimizer: UntieOptimizer;
  /** rho, C and K of SWE-A / SWE-M (K = 0: chosen from the run length). */
  threshold: number;
  patience: number;
  checkEvery: number;
  /** SWE-A/SWE-M: untie by this fraction of the run at the latest (0 = no deadline). */
  untieBy: number;
  /** What SWE-A/SWE-M compare with rho: cosine (the paper's) | ema | relative | tensor-median. */
  statistic: string;
  /** Progressive stacking: DEPTH@WHEN,... ("" = the full stack from the start; see sharing/growth.ts). */
  grow: string;
  /** With grow: the copies a growth step makes stay tied to their source layer until `untie` unties them. */
  growTied: boolean;
}

export interface RunConfig {
  preset: string;
  /** Run folder name under outDir ("" = derived from the preset and time). */
  name: string;
  outDir: string;
  /**
   * The model: `kind` 'bert' (an encoder pre-trained with masked LM, the
   * default) or 'gpt' (a decoder pre-trained on the next token), and its
   * shape. norm and typeVocabSize are the encoder's alone: a decoder is
   * GPT-2's Pre-LN layout and has no token types.
   */
  model: Omit<BertConfig, 'vocabSize'> & { kind: ModelKind };
  data: DataConfig;
  train: TrainConfig;
  sharing: SharingConfig;
}

/** The default masking probability (a decoder run must leave it alone). */
const DEFAULT_MASK_PROB = 0.15;

type ModelPreset = Pick<BertConfig, 'layers' | 'hidden' | 'heads' | 'intermediate'>;

export const PRESETS: Record<string, { model: ModelPreset; train: Partial<TrainConfig> }> = {
  tiny: { model: { layers: 6, hidden: 128, heads: 4, intermediate: 512 }, train: { lr: 1e-3 } },
  mini: { model: { layers: 12, hidden: 256, heads: 4, intermediate: 1024 }, train: { lr: 5e-4 } },
  small: { model: { layers: 12, hidden: 512, heads: 8, intermediate: 2048 }, train: { lr: 3e-4 } },
};

/**
 * The pre-training recipe every preset starts from, chosen by the recipe
 * study (`node --import tsx scripts/study.ts recipe-pilot`, docs/recipe.md):
 * Pre-LN with a final LayerNorm (the paper's layout) and no
 * dropout. The library's `defaultBertConfig()` stays Hugging Face BERT's
 * Post-LN layout; `--norm post --dropout 0.1` gives it back to a run.
 */
export const RECIPE: Pick<BertConfig, 'norm' | 'dropout' | 'attentionDropout'> = { norm: 'pre', dropout: 0, attentionDropout: 0 };

export function defaultRunConfig(preset = 'tiny'): RunConfig {
  const p = PRESETS[preset];
  if (!p) throw new UntieError(`unknown preset "${preset}": use one of ${Object.keys(PRESETS).join(', ')}`);
  const { vocabSize: _v, ...model } = defaultBertConfig();
  return {
    preset,
    name: '',
    outDir: 'runs',
    model: { kind: 'bert', ...model, ...RECIPE, ...p.model },
    data: { corpus: 'brown', validationFraction: 0.05, splitSeed: 0, seqLen: 128, vocabSize: 8192, evalBatches: 8, maskProb: DEFAULT_MASK_PROB },
    train: {
      steps: 1000, budget: 0, batchSize: 32, gradAccum: 1, optimizer: 'adamw', lr: 1e-3, warmupSteps: 0, warmupFraction: 0.1, schedule: 'linear',
      weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-6, clip: 1.0, clipBasis: 'update', seed: 0, threads: 0,
      logEvery: 10, evalEvery: 200, evalPoints: 0, saveEvery: 500, keepLast: 2, probe: '', ...p.train,
    },
    sharing: { share: '', untie: 'adaptive', sharedGrad: 'mean', untieOptimizer: 'copy', threshold: 0.5, patience: 3, checkEvery: 0, untieBy: 0.2, statistic: 'cosine', grow: '', growTied: false },
  };
}

/** The model config the BERT class takes, with the data-dependent fields filled in. */
export function bertConfigOf(cfg: RunConfig, vocabSize: number): BertConfig {
  const { kind: _kind, ...model } = cfg.model;
  return { ...model, vocabSize };
}

/** The model config the GPT class takes. */
export function gptConfigOf(cfg: RunConfig, vocabSize: number): GptConfig {
  const m = cfg.model;
  return {
    vocabSize, hidden: m.hidden, layers: m.layers, heads: m.heads, intermediate: m.intermediate, maxPositions: m.maxPositions,
    dropout: m.dropout, attentionDropout: m.attentionDropout, layerNormEps: m.layerNormEps, initStd: m.initStd, bias: m.bias, positionInit: m.positionInit,
  };
}

/** The run's model, freshly initialised from `seed`: a BERT encoder or a GPT decoder. */
export function modelOf(cfg: RunConfig, vocabSize: number, seed: number): BertForMaskedLM | GptLMHeadModel {
  return cfg.model.kind === 'gpt' ? new GptLMHeadModel(gptConfigOf(cfg, vocabSize), seed) : new BertForMaskedLM(bertConfigOf(cfg, vocabSize), seed);
}

/** What the model learns, as a report says it. */
export function objectiveOf(kind: ModelKind): string {
  return kind === 'gpt' ? 'next-token prediction (GPT decoder)' : 'masked LM (BERT encoder)';
}

/** Warmup steps: train.warmupSteps, or (when 0) train.warmupFraction of the run's `steps`. */
export function warmupOf(cfg: RunConfig, steps = cfg.train.steps): number {
  return cfg.train.warmupSteps > 0 ? cfg.train.warmupSteps : Math.round(cfg.train.warmupFraction * steps);
}

/**
 * What a step-count run derives from its length at its first start: the
 * learning-rate schedule's horizon and warmup, and the untie criterion's
 * step, deadline and check interval. It is kept in every checkpoint, so a
 * resumed run goes on with the values it started with; only an explicit
 * extension (`train --resume DIR --extend-to N`) recomputes it. (A --budget
 * run's schedule is fractions of its budget, which a resume cannot change.)
 */
export interface ResolvedSchedule {
  /** Updates in the run: the learning rate decays to 0 here. */
  steps: number;
  warmupSteps: number;
  /** SWE-F (step:N, fraction:F): untie after this many updates; null for other criteria. */
  untieAt: number | null;
  /** SWE-A/SWE-M: untie after this many updates at the latest; null: no deadline (or another criterion). */
  untieDeadline: number | null;
  /**
   * Updates between checks (K): SWE-A/SWE-M decide by them; SWE-F and
   * `never` only log them while layers are tied. Null in schedules saved
   * before SWE-F and `never` kept theirs (they use the default then).
   */
  checkEvery: number | null;
}

/** Resolves `cfg`'s schedule for a run of `steps` updates. */
export function resolveSchedule(cfg: RunConfig, steps = cfg.train.steps): ResolvedSchedule {
  const s = cfg.sharing;
  const criterion = parseCriterion(s.untie, {
    totalSteps: steps, threshold: s.threshold, patience: s.patience, every: s.checkEvery > 0 ? s.checkEvery : undefined, untieBy: s.untieBy,
  });
  const adaptive = criterion instanceof AdaptiveCriterion || criterion instanceof MultiCriterion ? criterion.options : null;
  const observed = criterion instanceof FixedCriterion || criterion instanceof NeverCriterion ? criterion.every : null;
  return {
    steps,
    warmupSteps: warmupOf(cfg, steps),
    untieAt: criterion instanceof FixedCriterion ? criterion.untieAt : null,
    untieDeadline: adaptive ? adaptive.deadline ?? null : null,
    checkEvery: adaptive ? adaptive.every : observed,
  };
}

/**
 * Deep-merges `patch` into `base`, refusing keys the base does not have and
 * values of the wrong type, so a typo in a config file is an error, not a
 * silently ignored setting.
 */
export function mergeConfig<T extends object>(base: T, patch: unknown, where: string): T {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new UntieError(`${where} must be a JSON object`);
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (!(k in out)) throw new UntieError(`unknown config key "${where === 'config' ? k : `${where}.${k}`}"; known keys: ${Object.keys(out).join(', ')}`);
    const cur = out[k];
    if (cur !== null && typeof cur === 'object') out[k] = mergeConfig(cur as object, v, where === 'config' ? k : `${where}.${k}`);
    else {
      if (typeof v !== typeof cur) throw new UntieError(`config key "${where === 'config' ? k : `${where}.${k}`}" must be a ${typeof cur}, got ${JSON.stringify(v)}`);
      out[k] = v;
    }
  }
  return out as T;
}

export function readConfigFile(file: string): unknown {
  if (!fs.existsSync(file)) throw new UntieError(`config file ${file} does not exist`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UntieError(`config file ${file} is not valid JSON: ${quoteError(err)}`);
  }
}

/** Checks every value that could make a run fail later, with a message saying what to change. */
export function validateRunConfig(cfg: RunConfig): void {
  if (!PRESETS[cfg.preset]) throw new UntieError(`unknown preset "${cfg.preset}": use one of ${Object.keys(PRESETS).join(', ')}`);
  const t = cfg.train, d = cfg.data;
  if (!MODEL_KINDS.includes(cfg.model.kind)) throw new UntieError(`--model must be ${MODEL_KINDS.map((k) => `"${k}"`).join(' or ')} (an encoder with masked LM, or a decoder with next-token LM), got "${String(cfg.model.kind)}"`);
  if (cfg.model.kind === 'gpt') {
    validateGptConfig(gptConfigOf(cfg, cfg.data.vocabSize));
    validateDecoderSettings(cfg);
  } else validateBertConfig(bertConfigOf(cfg, cfg.data.vocabSize));
  const whole = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new UntieError(`${name} must be a whole number >= ${min}, got ${v}`);
  };
  whole('train.steps', t.steps, 1);
  whole('train.batchSize', t.batchSize, 1);
  whole('train.gradAccum', t.gradAccum, 1);
  whole('train.warmupSteps', t.warmupSteps, 0);
  whole('train.threads', t.threads, 0);
  whole('train.logEvery', t.logEvery, 1);
  whole('train.evalEvery', t.evalEvery, 0);
  whole('train.evalPoints', t.evalPoints, 0);
  if (!(Number.isFinite(t.budget) && t.budget >= 0)) throw new UntieError(`train.budget must be a number of seconds >= 0 (0 = a step-count run), got ${t.budget}`);
  if (t.budget > 0 && t.warmupSteps > 0) throw new UntieError('a --budget run warms up over --warmup-fraction of the budget; drop --warmup (steps)');
  whole('train.saveEvery', t.saveEvery, 0);
  whole('train.keepLast', t.keepLast, 1);
  whole('train.seed', t.seed, 0);
  whole('data.seqLen', d.seqLen, 8);
  if (d.seqLen > cfg.model.maxPositions) {
    throw new UntieError(`data.seqLen ${d.seqLen} is longer than the model's position table (model.maxPositions ${cfg.model.maxPositions}): shorten the sequences or raise maxPositions`);
  }
  whole('data.vocabSize', d.vocabSize, 100);
  whole('data.evalBatches', d.evalBatches, 0);
  whole('data.splitSeed', d.splitSeed, 0);
  if (!(t.lr > 0)) throw new UntieError(`train.lr must be > 0, got ${t.lr}`);
  if (t.optimizer !== 'adamw' && t.optimizer !== 'lamb') throw new UntieError(`train.optimizer must be "adamw" or "lamb", got "${t.optimizer}"`);
  if (!['', 'pos', 'spam'].includes(t.probe)) throw new UntieError(`--probe must be "pos" or "spam" (or left out), got "${t.probe}"`);
  if (isSyntheticCorpus(d.corpus)) {
    checkFits(parseSyntheticCorpus(d.corpus), d.seqLen);
    if (t.probe) throw new UntieError(`--probe ${t.probe} scores an English task, which a model of the generated corpus ${d.corpus} has no words for: leave --probe out`);
  }
  if (!['linear', 'cosine', 'constant'].includes(t.schedule)) throw new UntieError(`train.schedule must be "linear", "cosine" or "constant", got "${t.schedule}"`);
  if (!(t.warmupFraction >= 0 && t.warmupFraction < 1)) throw new UntieError(`train.warmupFraction must be in [0, 1), got ${t.warmupFraction}`);
  if (!(cfg.model.initStd > 0)) throw new UntieError(`model.initStd must be > 0, got ${cfg.model.initStd}`);
  if (!(d.maskProb > 0 && d.maskProb < 1)) throw new UntieError(`data.maskProb must be in (0, 1), got ${d.maskProb}`);
  if (!(d.validationFraction > 0 && d.validationFraction < 1)) throw new UntieError(`data.validationFraction must be in (0, 1), got ${d.validationFraction}`);
  parseShare(shareOf(cfg), cfg.model.layers);
  criterionOf(cfg);
  validateGrowth(cfg);
  if (cfg.sharing.sharedGrad !== 'mean' && cfg.sharing.sharedGrad !== 'sum') throw new UntieError(`--shared-grad must be "mean" or "sum", got "${cfg.sharing.sharedGrad}"`);
  if (!['copy', 'rescale', 'reset'].includes(cfg.sharing.untieOptimizer)) throw new UntieError(`--untie-optimizer must be "copy", "rescale" or "reset", got "${cfg.sharing.untieOptimizer}"`);
  if (t.clipBasis !== 'update' && t.clipBasis !== 'layers') throw new UntieError(`--clip-basis must be "update" or "layers", got "${t.clipBasis}"`);
}

/** The encoder's settings, which a decoder run refuses: what each is, for the message. */
const ENCODER_ONLY = {
  'mask-prob': ['data.maskProb', 'is a masked-LM setting, and --model gpt learns the next token at every position'],
  norm: ['model.norm', 'is an encoder setting; --model gpt is GPT-2\'s Pre-LN layout'],
  probe: ['train.probe', 'trains a classifier on a frozen BERT encoder, which --model gpt does not have'],
} as const;

/** The error for an encoder-only flag on a decoder run (`shown`: the flag as given, e.g. "--norm post"). */
export function encoderOnlyError(flag: keyof typeof ENCODER_ONLY, shown = `--${flag}`): UntieError {
  const [key, why] = ENCODER_ONLY[flag];
  return new UntieError(`${shown} (${key}) ${why}: drop ${`--${flag}`}, or train --model bert`);
}

/** Refuses the encoder's settings on a decoder run. */
export function validateDecoderSettings(cfg: RunConfig): void {
  if (cfg.data.maskProb !== DEFAULT_MASK_PROB) throw encoderOnlyError('mask-prob');
  if (cfg.model.norm !== 'pre') throw encoderOnlyError('norm', `--norm ${cfg.model.norm}`);
  if (cfg.train.probe !== '') throw encoderOnlyError('probe');
}

/**
 * A --grow run starts untied at its first depth (--grow-tied ties only the
 * copies growth makes), so a tying plan does not apply to it; and untying
 * tied copies at their growth step is growth without --grow-tied.
 */
function validateGrowth(cfg: RunConfig): void {
  const s = cfg.sharing;
  if (!s.grow) {
    if (s.growTied) throw new UntieError('--grow-tied keeps the copies of a growth step tied: add a --grow schedule, e.g. --grow 3@0,6@0.125,12@0.3');
    return;
  }
  growthOf(cfg);
  const L = cfg.model.layers;
  if (s.share && s.share.replace(/\s/g, '') !== `${L}x1`) {
    throw new UntieError(`--share ${s.share} with --grow: a growing stack starts untied at its first depth, and --grow-tied ties the copies each growth step makes; drop --share`);
  }
  if (s.growTied) {
    const untie = s.untie.trim();
    if (/^step:0+$/.test(untie) || /^fraction:0*\.?0*$/.test(untie)) {
      throw new UntieError(`--untie ${untie} with --grow-tied unties the copies at their growth step, which is --grow without --grow-tied; drop --grow-tied, or untie later (e.g. --untie adaptive)`);
    }
  }
}

/** The growth schedule of a --grow run (null without one), a step-count run's resolved to steps of `schedule`. */
export function growthOf(cfg: RunConfig, schedule: ResolvedSchedule = resolveSchedule(cfg)): GrowthOptions | null {
  if (!cfg.sharing.grow) return null;
  const stages = parseGrowth(cfg.sharing.grow, cfg.model.layers, { totalSteps: schedule.steps, budget: cfg.train.budget > 0 });
  return { stages, tied: cfg.sharing.growTied };
}

/** The tying plan a run starts with: --share's, or (a --grow run) every layer of its first depth on its own. */
export function initialGroups(cfg: RunConfig, growth: GrowthOptions | null = growthOf(cfg)): Groups {
  if (growth) return Array.from({ length: growth.stages[0].depth }, (_, i) => [i]);
  return planGroups(parseShare(shareOf(cfg), cfg.model.layers));
}

/** "AxB" of the config, defaulting to all layers tied. */
export function shareOf(cfg: RunConfig): string {
  return cfg.sharing.share || `1x${cfg.model.layers}`;
}

/**
 * The untie criterion a run config asks for. A step-count run's steps come
 * from `schedule` (the run's resolved one); a --budget run's from fractions
 * of its budget.
 */
export function criterionOf(cfg: RunConfig, schedule: ResolvedSchedule = resolveSchedule(cfg)): Criterion {
  const s = cfg.sharing;
  const statistic = parseStatistic(s.statistic);
  if (cfg.train.budget > 0) {
    return parseCriterion(s.untie, {
      totalSteps: cfg.train.steps, threshold: s.threshold, patience: s.patience,
      every: s.checkEvery > 0 ? s.checkEvery : undefined, untieBy: s.untieBy, statistic, budget: true,
    });
  }
  const every = schedule.checkEvery ?? defaultCheckEvery(schedule.steps);
  if (schedule.untieAt !== null) return new FixedCriterion(schedule.untieAt, null, every);
  return parseCriterion(s.untie, {
    totalSteps: schedule.steps, threshold: s.threshold, patience: s.patience,
    every, deadline: schedule.untieDeadline, statistic,
  });
}

/**
 * Parses a wall-clock duration: "900s", "30m", "2h", "1h30m", "1.5h" or a
 * plain number of seconds. Returns seconds; throws on anything else or a
 * value that is not positive.
 */
export function parseDuration(text: string): number {
  const t = text.trim().toLowerCase();
  let seconds: number;
  if (/^\d+(\.\d+)?$/.test(t)) seconds = Number(t);
  else {
    const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(t);
    if (!m || t === '' || (m[1] === undefined && m[2] === undefined && m[3] === undefined)) {
      throw new UntieError(`--budget "${text}" is not a duration: use e.g. 900s, 30m, 2h or 1h30m`);
    }
    seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  }
  if (!(seconds > 0) || !Number.isFinite(seconds)) throw new UntieError(`--budget must be positive, got "${text}"`);
  return seconds;
}

/** A run folder's config.json (as read), merged over its preset's defaults and validated; `runDir` names it in errors. */
export function runConfigOf(saved: unknown, runDir: string): RunConfig {
  const preset = (saved as { preset?: unknown } | null)?.preset;
  if (typeof preset !== 'string' || !Object.hasOwn(PRESETS, preset)) {
    throw new UntieError(`${runDir}/config.json names no known preset (${JSON.stringify(preset)}): it is not a run config, or it is damaged`);
  }
  const cfg = mergeConfig(defaultRunConfig(preset), saved, 'config');
  validateRunConfig(cfg);
  return cfg;
}
