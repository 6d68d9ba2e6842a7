// What a training step costs at each stage a compare variant passes through:
// the depths of the stack variants' schedule (stackSchedule), untied, and the
// tied plans SWE and --grow-tied train in (all tied; each growth's copies tied
// to their source). Steps (forward, backward, the sharing hook, clipping,
// AdamW) run on synthetic batches of the run's shape, one configuration after
// another in interleaved rounds, so a machine whose load drifts slows every
// configuration alike; the figures are each one's median wall-clock seconds
// and median CPU seconds per step. On one thread the CPU seconds are what
// the step itself costs whatever else runs on the machine (other jobs
// stretch the wall clock, not the work), so they are the figure to price
// steps with on a shared machine.
//
//   node --import tsx bench/stacking.ts [--layers 12] [--threads 1] [--rounds 5] [--steps 4] [--json]
//
// With --json the output is also a study's timing (its `costs`, keyed as
// src/experiments/study.ts names a run's phases), which
// `scripts/study.ts PLAN --timing FILE` prices each run's steps with: its
// steps at each stage times that stage's CPU seconds, which, unlike the
// seconds of runs made hours apart on a shared machine, compare between
// variants.
import os from 'node:os';
import { kernels } from '../src/backend/index.js';
import { machineName, stackSchedule } from '../src/experiments/compare.js';
import { phaseKind, shapeOf } from '../src/experiments/study.js';
import { BertForMaskedLM } from '../src/models/bert.js';
import { Optimizer, clipGradNorm, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { SharingController } from '../src/sharing/controller.js';
import { NeverCriterion } from '../src/sharing/criteria.js';
import { parseGrowth } from '../src/sharing/growth.js';
import { describePlan, type Groups } from '../src/sharing/plan.js';
import { Rng } from '../src/tensor/rng.js';
import { backward, tidy } from '../src/tensor/tensor.js';
import { bertConfigOf, defaultRunConfig } from '../src/train/config.js';
import { syntheticBatch } from './batches.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const json = args.includes('--json');
const layers = flag('layers', 12), threads = flag('threads', 1), rounds = flag('rounds', 5), stepsPerRound = flag('steps', 4);

interface StageCost {
  /** `describePlan`: the depth and the tying plan's shape ("12 layers 3x4"). */
  label: string;
  depth: number;
  groups: Groups;
  /** Median wall-clock seconds per step, and every timed step's. */
  stepS: number;
  times: number[];
  /** Median CPU seconds (user + system) per step, and every timed step's. */
  cpuS: number;
  cpuTimes: number[];
}

/** The plans to time: each depth of the stack schedule untied, and every tied plan a variant trains in. */
function stages(L: number): { label: string; depth: number; groups: Groups }[] {
  const depths = parseGrowth(stackSchedule(L), L, { totalSteps: 1000, budget: false }).map((s) => s.depth);
  const untied = (d: number): Groups => Array.from({ length: d }, (_, i) => [i]);
  // A growth from k to d with tied copies: group j holds j, j + k, j + 2k, ...
  const tiedCopies = (k: number, d: number): Groups => Array.from({ length: k }, (_, j) => Array.from({ length: d / k }, (_, r) => j + r * k));
  const plans = depths.map(untied);
  plans.push([untied(L).flat()]); // SWE: all tied
  for (let i = 1; i < depths.length; i++) {
    plans.push(tiedCopies(depths[i - 1], depths[i]));
    if (i > 1) plans.push(tiedCopies(depths[0], depths[i])); // the earlier copies still tied at the next growth
  }
  const byLabel = new Map(plans.map((groups) => [describePlan(groups), groups]));
  return [...byLabel].map(([label, groups]) => ({ label, depth: groups.flat().length, groups }));
}

kernels().setThreads(threads);
const cfg = defaultRunConfig('tiny');
cfg.model.layers = layers;
const runners = stages(layers).map((stage) => {
  const model = new BertForMaskedLM(bertConfigOf(cfg, cfg.data.vocabSize), 0);
  const named = model.namedParameters();
  const growth = stage.depth < layers ? { stages: [{ depth: stage.depth, step: 0 }, { depth: layers, step: Number.MAX_SAFE_INTEGER }], tied: false } : undefined;
  const ctrl = new SharingController(model.stack(), { groups: stage.groups, criterion: new NeverCriterion(), sharedGrad: 'mean', untieOptimizer: 'copy', ...(growth ? { growth } : {}) });
  ctrl.tieWeights();
  const opt = new Optimizer(defaultOptimizerConfig());
  const rng = new Rng(1);
  let step = 0;
  const run = () => {
    const batch = syntheticBatch(cfg.train.batchSize, cfg.data.seqLen, cfg.data.vocabSize, rng);
    const t0 = performance.now(), cpu0 = process.cpuUsage();
    model.zeroGrad();
    tidy(() => backward(model.mlm(batch).loss));
    ctrl.beforeUpdate(step, undefined, opt);
    const trainable = ctrl.trainable(named);
    clipGradNorm(trainable.map(([, p]) => p), 1);
    opt.step(trainable.map(([, p]) => p), trainable.map(([n]) => n), 1e-4);
    ctrl.afterUpdate(step++, opt);
    const cpu = process.cpuUsage(cpu0);
    return { wall: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
  };
  return { stage, run, times: [] as number[], cpuTimes: [] as number[] };
});

const loadStart = os.loadavg()[0];
for (const r of runners) r.run(); // warm-up: the buffer pool and the optimizer state
for (let round = 0; round < rounds; round++) {
  for (const r of runners) {
    for (let s = 0; s < stepsPerRound; s++) {
      const { wall, cpu } = r.run();
      r.times.push(wall);
      r.cpuTimes.push(cpu);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const costs: StageCost[] = runners.map((r) => ({ ...r.stage, stepS: median(r.times), times: r.times, cpuS: median(r.cpuTimes), cpuTimes: r.cpuTimes }));
const loadEnd = os.loadavg()[0];
const result = {
  machine: machineName(), kernels: kernels().name, threads: kernels().getThreads(),
  load: { start: loadStart, end: loadEnd }, layers, hidden: cfg.model.hidden, batch: cfg.train.batchSize, seqLen: cfg.data.seqLen, vocab: cfg.data.vocabSize,
  rounds, stepsPerRound, stages: costs,
  // As a study's timing (scripts/study.ts --timing FILE): each plan's CPU seconds per step, keyed as the study names its phases.
  how: `median CPU seconds per step (bench/stacking.ts: ${rounds} interleaved rounds of ${stepsPerRound} steps on synthetic batches, ${kernels().getThreads()} thread(s), `
    + `evaluation excluded; load average ${loadStart.toFixed(1)} -> ${loadEnd.toFixed(1)})`,
  costs: { [shapeOf(cfg)]: Object.fromEntries(costs.map((c) => [`${phaseKind(c.groups)}@${c.depth}`, c.cpuS])) },
};
if (json) console.log(JSON.stringify(result, null, 1));
else {
  const full = costs.find((c) => c.label === describePlan(Array.from({ length: layers }, (_, i) => [i])))!;
  console.log(`${result.machine}, ${result.kernels} kernels, ${result.threads} thread(s); load average ${loadStart.toFixed(1)} -> ${result.load.end.toFixed(1)}`);
  for (const c of costs) {
    console.log(`${c.label.padEnd(16)} ${c.stepS.toFixed(3)} s/step wall (${(c.stepS / full.stepS).toFixed(2)} of the full untied stack's), ${c.cpuS.toFixed(3)} CPU s/step (${(c.cpuS / full.cpuS).toFixed(2)})`);
  }
}
