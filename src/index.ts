/** untie's public API. The CLI (src/cli) is a thin layer over these. */
export { UntieError } from './errors.js';
export type { Kernels } from './backend/kernels.js';
export { kernels, setThreads, useKernels, nativeKernels, wasmKernels, reference } from './backend/index.js';
export { instantiateWasmKernels, wasmKernelsSync, type WasmKernels, type WasmOptions } from './backend/wasm.js';
export { Tensor, backward, noGrad, parameter, tidy } from './tensor/tensor.js';
export { poolStats } from './tensor/pool.js';
export * as ops from './tensor/ops.js';
export { Rng } from './tensor/rng.js';
export { setDetectAnomaly, anomalyScope, AnomalyError } from './tensor/anomaly.js';
export { Module } from './nn/module.js';
export { Linear, LayerNorm, Embedding, Dropout } from './nn/layers.js';
export { MultiHeadSelfAttention, attend, causalMask } from './nn/attention.js';
export { Optimizer, clipGradNorm, defaultOptimizerConfig, type OptimizerConfig, type ParamState } from './optim/optimizers.js';
export { learningRate, type ScheduleConfig } from './optim/schedule.js';
export { parseShare, planGroups, splitGroup, untieAll, describePlan, type Groups, type ShareSpec } from './sharing/plan.js';
export { copyLayer, type StateCopy } from './sharing/copy.js';
export { parseGrowth, describeGrowth, SinceGrowth, type GrowthOptions, type GrowthStage } from './sharing/growth.js';
export {
  parseCriterion, replay, NeverCriterion, FixedCriterion, AdaptiveCriterion, MultiCriterion,
  type Criterion, type CheckStats, type Decision, type PairStat,
} from './sharing/criteria.js';
export { SharingController, type GradNorms, type RepeatedStack, type SharingEvent, type SharingOptions, type UntieOptimizer } from './sharing/controller.js';
export { BertForMaskedLM, bertParameterCount, defaultBertConfig, type BertConfig, type MlmBatch } from './models/bert.js';
export { GptLMHeadModel, gptParameterCount, defaultGptConfig, type GptConfig } from './models/gpt.js';
export type { LanguageModel, LmBatch, LmOutput, ModelKind, TokenBatch } from './models/lm.js';
export { CausalDataset, causalWindows, makeCausalBatch, tokenStream, buildCausalValidationBatches } from './data/causal.js';
export { trainTokenizer, loadTokenizer, tokenizerFromVocabulary, type WordPieceTokenizer } from './data/tokenizer.js';
export { makeTargetBatch, type TargetSequence } from './data/mlm.js';
export {
  SYNTHETIC_TASKS, SyntheticDataset, parseSyntheticCorpus, isSyntheticCorpus, syntheticTokenizer, syntheticValidation, solveHops, solveExpr,
  type SyntheticExample, type SyntheticTask,
} from './data/synthetic/index.js';
export { bertPreTokenize, learnWordPieceVocab } from './data/wordpiece.js';
export { BertForTokenClassification, BertForSequenceClassification, BertClassifier, newClassifier } from './models/heads.js';
export { DeepLinearNetwork } from './models/linear.js';
export { readTask, type TaskOptions } from './data/tasks/index.js';
export type { TaskData, TaskExample, TaskName } from './data/tasks/task.js';
export { defaultRunConfig, modelOf, resolveSchedule, type ResolvedSchedule, type RunConfig } from './train/config.js';
export { train, evaluate, type TrainOptions, type TrainResult } from './train/trainer.js';
export { load, loadClassifier, loadDecoder, loadLanguageModel, exportModel, type ExportResult, type LoadedDecoder } from './train/load.js';
export { exportOnnx, checkOnnxSource, onnxBytes, ONNX_MODEL_FILE, type OnnxExportResult } from './export/onnx.js';
export { bertOnnxModel, ONNX_INPUTS, ONNX_OPSET, type OnnxExportable } from './export/bert-onnx.js';
export { encodeOnnx, decodeOnnx, type OnnxModel } from './export/onnx-proto.js';
export { transformersJsConfig, pipelineTask } from './export/transformers-js.js';
export { writeFolderWhole, checkExportFolder } from './export/folder.js';
export {
  finetuneClassifier, searchAndTrain, probeEncoder, evaluateClassifier, defaultRecipe, classWeightsOf, type FinetuneRecipe, type TaskScore,
} from './train/finetune.js';
export {
  references, majorityReference, bagOfWords, fitLogisticRegression, predictLogistic, type References, type MajorityReference, type BowReference,
} from './train/references.js';
export { classWeightedCrossEntropy } from './nn/losses.js';
export { finetune, QUICK_JUDGE, type FinetuneOptions, type FinetuneResult } from './experiments/finetune.js';
export {
  fillMask, openClassifier, classifyTexts, tagWords, splitWords, generate, sampleToken,
  type Classifier, type TextPrediction, type WordPrediction, type GenerateOptions, type Generation,
} from './train/inference.js';
export { readSafetensors, writeSafetensors } from './train/safetensors.js';
export type {
  Block, View, LineChart, LineSeries, Marker, RefLine, Heatmap, GroupBands, Section, Grid, HtmlBlock, LiveOptions,
} from './report/blocks.js';
export { PALETTE, escapeHtml, raw, table, formatNumber, formatSeconds, type Cell } from './report/html.js';
export { renderPage, viewOfPage } from './report/page.js';
export { readRun, readFinetunes, isRunDir, listRunDirs, MetricsFollower, type RunData, type FinetuneSummary } from './report/read.js';
export {
  runView, runReportHtml, writeRunReport, runsIndexView, lossChart, accuracyChart, difficultyChart, learningRateChart, gradNormChart, throughputChart,
  cosineHeatmap, cosineChart, groupBands, eventMarkers, summaryTable, eventsTable, configTable, finetuneTable, secondsClock, sharingEvents, type XAxis,
} from './report/run.js';
export { startServer, type ServeOptions, type RunningServer } from './serve/server.js';
export { verifyChecksums } from './train/checkpoint.js';
export { RunLock } from './train/runlock.js';
