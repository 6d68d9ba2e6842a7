/**
 * What a training step of the tiny decoder costs against the tiny encoder's,
 * measured in one process, steps interleaved (encoder, decoder, encoder, ...)
 * so that both see the same load on a shared machine. The tiny preset's
 * shapes: 6 layers, hidden 128, 4 heads, MLP 512, vocabulary 8,192, batch
 * 32 x 128; the encoder masks 15% of the tokens (its head projects only
 * those onto the vocabulary), the decoder predicts all 4,096.
 *
 *   node --import tsx bench/decoder.ts [--threads 1] [--reps 8]
 *
 * Prints one JSON line: wall and CPU milliseconds per step (median) of each,
 * and their ratios. CPU time (user + system) moves less with the load than
 * wall time, but both grow on a busy machine: compare ratios, not times.
 */
import { parseArgs } from 'node:util';
import { setThreads } from '../src/backend/index.js';
import { IGNORE_INDEX } from '../src/data/mlm.js';
import { BertForMaskedLM } from '../src/models/bert.js';
import { GptLMHeadModel } from '../src/models/gpt.js';
import type { LanguageModel, LmBatch } from '../src/models/lm.js';
import { Optimizer } from '../src/optim/optimizers.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, tidy } from '../src/tensor/tensor.js';
import { bertConfigOf, defaultRunConfig, gptConfigOf } from '../src/train/config.js';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, reps: { type: 'string', default: '8' } } });
setThreads(Number(values.threads));
const V = 8192, B = 32, T = 128;

function batch(maskedOnly: boolean, seed: number): LmBatch {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: B * T }, () => 5 + (rng.nextU32() % (V - 5)));
  const labels = Int32Array.from(inputIds, (id) => (!maskedOnly || rng.uniform() < 0.15 ? id : IGNORE_INDEX));
  return { inputIds, tokenTypeIds: new Int32Array(B * T), attentionMask: new Float32Array(B * T).fill(1), labels, batchSize: B, seqLen: T };
}

function stepper(model: LanguageModel, b: LmBatch) {
  const opt = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 });
  const named = model.namedParameters();
  return () => {
    const wall = performance.now(), cpu = process.cpuUsage();
    model.zeroGrad();
    tidy(() => {
      backward(model.loss(b, { accuracy: false }).loss);
    });
    opt.step(named.map(([, p]) => p), named.map(([n]) => n), 1e-4);
    const used = process.cpuUsage(cpu);
    return { wall: performance.now() - wall, cpu: (used.user + used.system) / 1000 };
  };
}

const cfg = defaultRunConfig('tiny');
const encoder = stepper(new BertForMaskedLM(bertConfigOf(cfg, V), 1), batch(true, 2));
const decoder = stepper(new GptLMHeadModel(gptConfigOf(cfg, V), 1), batch(false, 2));
const times = { encoder: [] as { wall: number; cpu: number }[], decoder: [] as { wall: number; cpu: number }[] };
for (let i = 0; i < 2; i++) {
  encoder();
  decoder();
}
for (let i = 0; i < Number(values.reps); i++) {
  times.encoder.push(encoder());
  times.decoder.push(decoder());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const of = (k: 'encoder' | 'decoder', f: 'wall' | 'cpu') => median(times[k].map((t) => t[f]));
const out = {
  threads: Number(values.threads), reps: Number(values.reps),
  encoder_ms: of('encoder', 'wall'), decoder_ms: of('decoder', 'wall'), encoder_cpu_ms: of('encoder', 'cpu'), decoder_cpu_ms: of('decoder', 'cpu'),
  wall_ratio: of('decoder', 'wall') / of('encoder', 'wall'), cpu_ratio: of('decoder', 'cpu') / of('encoder', 'cpu'),
};
process.stdout.write(JSON.stringify(out) + '\n');
