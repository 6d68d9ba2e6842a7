/** untie's public API. The CLI (src/cli) is a thin layer over these. */
export { UntieError } from './errors.js';
export type { Kernels } from './backend/kernels.js';
export { kernels, setThreads, useKernels, nativeKernels, reference } from './backend/index.js';
export { Tensor, backward, noGrad, parameter } from './tensor/tensor.js';
export * as ops from './tensor/ops.js';
export { Rng } from './tensor/rng.js';
export { Module } from './nn/module.js';
export { Linear, LayerNorm, Embedding, Dropout } from './nn/layers.js';
export { MultiHeadSelfAttention } from './nn/attention.js';
export { Optimizer, clipGradNorm, defaultOptimizerConfig, type OptimizerConfig, type ParamState } from './optim/optimizers.js';
export { learningRate, type ScheduleConfig } from './optim/schedule.js';
export { parseShare, planGroups, splitGroup, untieAll, type Groups, type ShareSpec } from './sharing/plan.js';
export {
  parseCriterion, replay, NeverCriterion, FixedCriterion, AdaptiveCriterion, MultiCriterion,
  type Criterion, type CheckStats, type Decision, type PairStat,
} from './sharing/criteria.js';
export { SharingController, type RepeatedStack, type SharingEvent, type SharingOptions } from './sharing/controller.js';
export { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from './models/bert.js';
export { DeepLinearNetwork } from './models/linear.js';
export { defaultRunConfig, type RunConfig } from './train/config.js';
export { train, evaluate, type TrainOptions, type TrainResult } from './train/trainer.js';
export { load, exportModel } from './train/load.js';
export { fillMask } from './train/inference.js';
export { readSafetensors, writeSafetensors } from './train/safetensors.js';
