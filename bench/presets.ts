// What each preset costs: seconds per training step (forward, backward, the
// sharing hook, AdamW) on synthetic batches of the preset's shape, and the
// projected time of 1,000 steps. `npm run bench:presets [-- --json] [-- --steps N]`.
import os from 'node:os';
import { kernels } from '../src/backend/index.js';
import { BertForMaskedLM } from '../src/models/bert.js';
import { Optimizer, clipGradNorm, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { SharingController } from '../src/sharing/controller.js';
import { NeverCriterion } from '../src/sharing/criteria.js';
import { parseShare, planGroups } from '../src/sharing/plan.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, tidy } from '../src/tensor/tensor.js';
import { PRESETS, bertConfigOf, defaultRunConfig } from '../src/train/config.js';
import { syntheticBatch } from './batches.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const stepsArg = args.indexOf('--steps');
const timedSteps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 5;
const only = args.indexOf('--preset') >= 0 ? [args[args.indexOf('--preset') + 1]] : Object.keys(PRESETS);

kernels().setThreads(os.availableParallelism());
const rows = [];
for (const preset of only) {
  const cfg = defaultRunConfig(preset);
  const model = new BertForMaskedLM(bertConfigOf(cfg, cfg.data.vocabSize), 0);
  const named = model.namedParameters();
  const ctrl = new SharingController(model.stack(), {
    groups: planGroups(parseShare(`${cfg.model.layers}x1`, cfg.model.layers)), criterion: new NeverCriterion(), sharedGrad: 'mean', untieOptimizer: 'copy',
  });
  const opt = new Optimizer(defaultOptimizerConfig());
  const rng = new Rng(1);
  const times: number[] = [];
  for (let s = 0; s < timedSteps + 2; s++) {
    const batch = syntheticBatch(cfg.train.batchSize, cfg.data.seqLen, cfg.data.vocabSize, rng);
    const t0 = performance.now();
    model.zeroGrad();
    tidy(() => backward(model.mlm(batch).loss));
    ctrl.beforeUpdate(s);
    const trainable = ctrl.trainable(named);
    clipGradNorm(trainable.map(([, p]) => p), 1);
    opt.step(trainable.map(([, p]) => p), trainable.map(([n]) => n), 1e-4);
    ctrl.afterUpdate(s, opt);
    if (s >= 2) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const row = {
    preset, layers: cfg.model.layers, hidden: cfg.model.hidden, parameters: named.reduce((n, [, p]) => n + p.size, 0),
    batch: cfg.train.batchSize, seq_len: cfg.data.seqLen, threads: kernels().getThreads(), kernels: kernels().name,
    step_s: median, minutes_per_1000_steps: (median * 1000) / 60, rss_mb: process.memoryUsage().rss / 2 ** 20,
  };
  rows.push(row);
  if (!json) {
    console.log(`${preset.padEnd(6)} ${row.layers}x${row.hidden}  ${(row.parameters / 1e6).toFixed(1)}M params  ${median.toFixed(3)} s/step  ` +
      `${row.minutes_per_1000_steps.toFixed(1)} min / 1000 steps  (batch ${row.batch} x ${row.seq_len}, ${row.threads} threads, ${row.kernels})`);
  }
}
if (json) console.log(JSON.stringify({ presets: rows }));
