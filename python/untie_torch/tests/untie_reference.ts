/**
 * untie's side of test_untie_parity.py: trains untie's BertForMaskedLM on the
 * batches in a safetensors file, with the trainer's order of calls (forward,
 * backward, sharing.beforeUpdate, clip, AdamW, sharing.afterUpdate) and
 * schedule, and writes the initial weights (model.safetensors, Hugging Face
 * names) and the sharing records (metrics.jsonl, steps in completed updates,
 * as the trainer writes them).
 *
 * Usage: node --import tsx untie_reference.ts SPEC.json
 * SPEC: {config, seed, share, untie, threshold, patience, every, untieBy, steps, lr, warmupSteps, clip, batches, out}
 */
import fs from 'node:fs';
import path from 'node:path';
import { kernels } from '../../../src/backend/index.js';
import { BertForMaskedLM, defaultBertConfig, type BertConfig, type MlmBatch } from '../../../src/models/bert.js';
import { Optimizer, clipGradNorm } from '../../../src/optim/optimizers.js';
import { learningRate } from '../../../src/optim/schedule.js';
import { SharingController } from '../../../src/sharing/controller.js';
import { parseCriterion } from '../../../src/sharing/criteria.js';
import { parseShare, planGroups } from '../../../src/sharing/plan.js';
import { backward, tidy } from '../../../src/tensor/tensor.js';
import { saveModelWeights } from '../../../src/train/checkpoint.js';
import { readSafetensors } from '../../../src/train/safetensors.js';

interface Spec {
  config: Partial<BertConfig>; seed: number; share: string; untie: string; threshold: number; patience: number; every: number;
  untieBy: number; steps: number; lr: number; warmupSteps: number; clip: number; batches: string; out: string;
}

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as Spec;
kernels().setThreads(1);
const config: BertConfig = { ...defaultBertConfig(), ...spec.config };
const model = new BertForMaskedLM(config, spec.seed);
const named = model.namedParameters();
const sharing = new SharingController(model.stack(), {
  groups: planGroups(parseShare(spec.share, config.layers)),
  criterion: parseCriterion(spec.untie, { totalSteps: spec.steps, threshold: spec.threshold, patience: spec.patience, every: spec.every, untieBy: spec.untieBy }),
  sharedGrad: 'mean', untieOptimizer: 'copy',
});
sharing.tieWeights();
fs.mkdirSync(spec.out, { recursive: true });
saveModelWeights(spec.out, model);

const { tensors } = readSafetensors(spec.batches);
const ids = tensors.input_ids, types = tensors.token_type_ids, mask = tensors.attention_mask, labels = tensors.labels;
const [N, B, T] = ids.shape;
const slice = <A extends Int32Array | Float32Array>(a: A, i: number): A => a.slice(i * B * T, (i + 1) * B * T) as A;
const optimizer = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 });
const records: string[] = [];
for (let step = 0; step < Math.min(N, spec.steps); step++) {
  const batch: MlmBatch = {
    inputIds: slice(ids.data as Int32Array, step), tokenTypeIds: slice(types.data as Int32Array, step),
    attentionMask: slice(mask.data as Float32Array, step), labels: slice(labels.data as Int32Array, step), batchSize: B, seqLen: T,
  };
  model.zeroGrad();
  tidy(() => {
    const out = model.mlm(batch, { accuracy: false });
    backward(out.loss);
  });
  sharing.beforeUpdate(step, step / spec.steps);
  const trainable = sharing.trainable(named);
  clipGradNorm(trainable.map(([, p]) => p), spec.clip);
  optimizer.step(trainable.map(([, p]) => p), trainable.map(([n]) => n), learningRate(step, { lr: spec.lr, warmupSteps: spec.warmupSteps, totalSteps: spec.steps, kind: 'linear' }));
  for (const e of sharing.afterUpdate(step, optimizer, (step + 1) / spec.steps)) records.push(JSON.stringify({ ...e, step: e.step + 1 }));
}
fs.writeFileSync(path.join(spec.out, 'metrics.jsonl'), records.map((r) => r + '\n').join(''));
