/**
 * The mechanism probe of issue 20, measured on a run's checkpoints: how much
 * its layers' gradients agree with each other, and how much tying them would
 * average out the noise of a batch.
 *
 *   node --import tsx scripts/layer-grads.ts RUN_DIR... [--batches 8] [--batch-size 16,32,64] [--steps 500,3000] [--json FILE]
 *
 * For each checkpoint it takes the gradient of the masked-LM loss on the
 * same `--batches` training batches (a fixed draw, at the run's own batch
 * size or at each of --batch-size: the same weights seen through noisier or
 * quieter batches) and reports, with g_l(b) the gradient of layer l's
 * weights on batch b:
 *
 * - adjacent, same batch: cos(g_l(b), g_l+1(b)), the statistic SWE-A logs
 *   while layers are tied (here also for untied layers);
 * - adjacent, across batches: cos(g_l(b), g_l+1(b')), b != b': the agreement
 *   of neighbours net of the noise a batch gives both;
 * - one layer across batches: cos(g_l(b), g_l(b')): how much of a layer's
 *   gradient is signal rather than this batch's noise;
 * - tied across batches: the same for the mean over layers, (1/L) sum_l g_l(b),
 *   which is the update a tied stack would take at these weights. Above the
 *   one-layer value, averaging over layers removes noise; at it, none.
 *
 * Means over layers (pairs) and batch pairs. Prints a table; --json writes the
 * numbers. The model is in eval mode (no dropout); nothing is written to the runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { helpText, numberFlag, parse, type Flags } from '../src/cli/args.js';
import { setThreads } from '../src/backend/index.js';
import { gradStats, type LayerGradStats } from '../src/experiments/layergrads.js';
import { UntieError } from '../src/errors.js';
import { machineName } from '../src/experiments/compare.js';
import { backward, tidy } from '../src/tensor/tensor.js';
import { prepareData } from '../src/train/data.js';
import { load } from '../src/train/load.js';
import type { BertForMaskedLM } from '../src/models/bert.js';
import type { LmBatch } from '../src/models/lm.js';

const INVOCATION = 'node --import tsx scripts/layer-grads.ts';
const FLAGS: Flags = {
  batches: { type: 'string', help: 'training batches per checkpoint (a fixed draw at the run\'s batch size)', default: '8' },
  'batch-size': { type: 'string', help: 'sequences per batch, one or more (comma-separated; default: the run\'s own)' },
  steps: { type: 'string', help: 'only these checkpoint steps (comma-separated; default: every checkpoint)' },
  json: { type: 'string', help: 'write the numbers to this file' },
  threads: { type: 'string', help: 'kernel threads', default: '1' },
};
/** The draw of batches: the same for every run and checkpoint of a batch size. */
const DRAW_SEED = 20_261_206;

/** Each layer's gradient on each batch, all of the layer's tensors laid end to end: grads[b][l]. */
function layerGradients(model: BertForMaskedLM, batches: LmBatch[]): Float32Array[][] {
  const layers = model.stack().layers;
  return batches.map((batch) => {
    model.zeroGrad();
    tidy(() => backward(model.loss(batch).loss));
    return layers.map((tensors) => {
      const out = new Float32Array(tensors.reduce((n, [, t]) => n + t.size, 0));
      let at = 0;
      for (const [name, t] of tensors) {
        if (!t.grad) throw new UntieError(`layer tensor ${name} got no gradient`);
        out.set(t.grad, at);
        at += t.grad.length;
      }
      return out;
    });
  });
}


function checkpointSteps(runDir: string): number[] {
  if (!fs.existsSync(runDir)) throw new UntieError(`${runDir} does not exist: pass run folders (they hold checkpoint-<step> folders)`);
  return fs.readdirSync(runDir).map((n) => /^checkpoint-(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m![1])).sort((a, b) => a - b);
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parse('', argv, FLAGS, INVOCATION);
  if (values.help) {
    console.log(helpText('', 'RUN_DIR... [options]', FLAGS, 'Layer-gradient agreement on a run\'s checkpoints: adjacent layers, across batches, and of the tied (mean) gradient.', INVOCATION));
    return;
  }
  if (positionals.length === 0) throw new UntieError(`name one or more run folders: ${INVOCATION} RUN_DIR... (--help lists the options)`);
  const nBatches = numberFlag('batches', (values.batches as string | undefined) ?? '8', { integer: true, min: 2 })!;
  setThreads(numberFlag('threads', (values.threads as string | undefined) ?? '1', { integer: true, min: 1 })!);
  const sizes = values['batch-size'] ? (values['batch-size'] as string).split(',').map((s) => numberFlag('batch-size', s.trim(), { integer: true, min: 1 })!) : null;
  const only = values.steps ? new Set((values.steps as string).split(',').map((s) => numberFlag('steps', s.trim(), { integer: true, min: 1 })!)) : null;
  const results: Record<string, LayerGradStats[]> = {};
  console.log(`machine: ${machineName()}; ${nBatches} training batches per checkpoint and batch size`);
  console.log('| run | step | batch | adjacent, same batch | adjacent, across batches | one layer, across batches | tied (layer mean), across batches |');
  console.log('|---|---|---|---|---|---|---|');
  for (const runDir of positionals) {
    const steps = checkpointSteps(runDir).filter((s) => !only || only.has(s));
    if (steps.length === 0) throw new UntieError(`${runDir} has no checkpoint${only ? ` at steps ${[...only].join(', ')}` : ''}: checkpoints stay in the work folder (runs/...), not in studies/`);
    const { runConfig } = load(path.join(runDir, `checkpoint-${steps[0]}`));
    if (!runConfig) throw new UntieError(`${runDir}: no run config beside the checkpoint`);
    const name = path.basename(path.resolve(runDir));
    results[name] = [];
    const draws = [];
    for (const size of sizes ?? [runConfig.train.batchSize]) {
      const data = await prepareData(runConfig.data, DRAW_SEED, runDir, size, { save: false });
      draws.push({ size, batches: Array.from({ length: nBatches }, () => data.train.nextBatch(size)) });
    }
    for (const step of steps) {
      const { model } = load(path.join(runDir, `checkpoint-${step}`)); // in eval mode: no dropout
      for (const { size, batches } of draws) {
        const s = gradStats(step, size, layerGradients(model, batches));
        results[name].push(s);
        console.log(`| ${name} | ${step} | ${size} | ${s.adjacentSame.toFixed(3)} | ${s.adjacentCross.toFixed(3)} | ${s.layerCross.toFixed(3)} | ${s.tiedCross.toFixed(3)} |`);
      }
    }
  }
  if (values.json) {
    fs.mkdirSync(path.dirname(values.json as string), { recursive: true });
    fs.writeFileSync(values.json as string, `${JSON.stringify({ machine: machineName(), batches: nBatches, drawSeed: DRAW_SEED, runs: results }, null, 1)}\n`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
