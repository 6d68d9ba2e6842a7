// Deploying a trained masked LM: what `untie export --onnx` writes, and what
// one fill-mask query costs in each runtime, on the same machine, in one run:
//   untie             fillMask (what `untie fill-mask` runs once the model is loaded): untie's
//                     tokenizer, its own forward pass on its native kernels, top-k, decode
//   onnxruntime-node  untie's tokenizer, InferenceSession.run on onnx/model.onnx, top-k
//   transformers.js   pipeline('fill-mask') on the exported folder (its own tokenizer, onnxruntime-node)
// Each runtime is timed twice: a whole query (text in, top-5 out, as it does
// it) and its forward pass alone on inputs tokenized beforehand. Each round
// runs every query in each runtime, the runtimes' order rotating between
// rounds and queries and forward passes taking turns going first; a figure is
// the median over rounds of the mean time per query, by the wall clock and
// by the process's CPU time (steadier on a shared machine: the runtimes run
// on one thread each). The three answer the same top-1 token (checked, and
// counted).
//
//   npm run bench:onnx -- RUN_OR_CHECKPOINT [--rounds N] [--threads N] [--json]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { env, pipeline, LogLevel, PretrainedConfig } from '@huggingface/transformers';
import { kernels } from '../src/backend/index.js';
import { MASK_ID } from '../src/data/tokenizer.js';
import { exportOnnx, ONNX_MODEL_FILE } from '../src/export/onnx.js';
import { machineName } from '../src/experiments/compare.js';
import { transformersJsConfig } from '../src/export/transformers-js.js';
import { fillMask, topIndices } from '../src/train/inference.js';
import { noGrad } from '../src/tensor/tensor.js';
import { load } from '../src/train/load.js';

const QUERIES = [
  'the jury said it did not [MASK] that many of the voters',
  'he said that the [MASK] was not ready',
  'she [MASK] to the city last year',
  'the president will [MASK] the bill',
  'it was one of the [MASK] days of the year',
  'they went [MASK] to the house',
  'there is no [MASK] that he will come',
  'the [MASK] of the state is large',
];

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const target = args.find((a, i) => !a.startsWith('--') && !['--rounds', '--threads'].includes(args[i - 1]));
const rounds = flag('--rounds', 7), threads = flag('--threads', 1), json = args.includes('--json');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed<T>(f: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

async function bench(source: string): Promise<void> {
  const loadBefore = os.loadavg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-bench-onnx-'));
  try {
    const exported = await timed(() => exportOnnx(source, dir));
    const onnxFile = path.join(dir, ONNX_MODEL_FILE);
    kernels().setThreads(threads);

    const untieLoad = await timed(() => load(dir));
    const loaded = untieLoad.value;
    const session = await timed(() => ort.InferenceSession.create(onnxFile, { intraOpNumThreads: threads, interOpNumThreads: 1 }));
    env.allowRemoteModels = false;
    env.logLevel = LogLevel.ERROR;
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const fill = await timed(() => pipeline('fill-mask', dir, {
      session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
      ...(config.model_type === 'bert' ? {} : { config: new PretrainedConfig(transformersJsConfig(config)) }),
    }));

    // Each runtime answers a query (text in, top-5 out, as it does it: its top-1 token id is compared) and
    // runs its forward pass alone on inputs tokenized beforehand (the logits at the mask, or at every position).
    const V = loaded.model.config.vocabSize;
    const tokenized = await Promise.all(QUERIES.map((q) => loaded.tokenizer.encode(q)));
    const jsInputs = QUERIES.map((q) => fill.value.tokenizer(q));
    const int64 = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a, BigInt), [1, a.length]);
    const ortRun = (ids: number[]) => session.value.run({ input_ids: int64(ids), attention_mask: int64(ids.map(() => 1)), token_type_ids: int64(ids.map(() => 0)) });
    const runtimes: Record<string, { query: (i: number) => Promise<number>; forward: (i: number) => Promise<unknown> }> = {
      untie: {
        query: async (i) => (await fillMask(loaded, QUERIES[i], 5))[0][0].token,
        forward: async (i) => {
          const ids = tokenized[i];
          const batch = { inputIds: Int32Array.from(ids), tokenTypeIds: new Int32Array(ids.length), attentionMask: new Float32Array(ids.length).fill(1), batchSize: 1, seqLen: ids.length };
          return noGrad(() => loaded.model.logitsAt(loaded.model.encode(batch), Int32Array.of(ids.indexOf(MASK_ID))));
        },
      },
      'onnxruntime-node': {
        query: async (i) => {
          const ids = await loaded.tokenizer.encode(QUERIES[i]);
          const { logits } = await ortRun(ids);
          const at = ids.indexOf(MASK_ID);
          const row = (logits.data as Float32Array).subarray(at * V, (at + 1) * V);
          const top = topIndices(row, 5);
          return top[0];
        },
        forward: (i) => ortRun(tokenized[i]),
      },
      'transformers.js': {
        query: async (i) => ((await fill.value(QUERIES[i], { top_k: 5 })) as unknown as { token: number }[])[0].token,
        forward: (i) => fill.value.model(jsInputs[i]),
      },
    };
    const names = Object.keys(runtimes);
    const perQuery: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const perForward: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const cpuQuery: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const cpuForward: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    let agree = 0, asked = 0;
    for (let r = 0; r < rounds + 1; r++) {
      const order = names.map((_, i) => names[(i + r) % names.length]);
      const answers: Record<string, number[]> = {};
      for (const name of order) {
        answers[name] = [];
        /** Runs `f` on every query; keeps the wall and CPU milliseconds per query (round 0 warms up). */
        const measure = async (f: (i: number) => Promise<void>, wall: number[], cpu: number[]) => {
          const t0 = performance.now(), c0 = process.cpuUsage();
          for (let i = 0; i < QUERIES.length; i++) await f(i);
          const c = process.cpuUsage(c0);
          if (r > 0) {
            wall.push((performance.now() - t0) / QUERIES.length);
            cpu.push((c.user + c.system) / 1000 / QUERIES.length);
          }
        };
        const queries = () => measure(async (i) => void answers[name].push(await runtimes[name].query(i)), perQuery[name], cpuQuery[name]);
        const forwards = () => measure(async (i) => void (await runtimes[name].forward(i)), perForward[name], cpuForward[name]);
        // queries and forward passes take turns going first
        if (r % 2 === 0) await forwards().then(queries);
        else await queries().then(forwards);
      }
      for (let i = 0; i < QUERIES.length; i++, asked++) if (names.every((n) => answers[n][i] === answers.untie[i])) agree++;
    }
    const ms = Object.fromEntries(names.map((n) => [n, median(perQuery[n])]));
    const forwardMs = Object.fromEntries(names.map((n) => [n, median(perForward[n])]));
    const cpuMs = Object.fromEntries(names.map((n) => [n, median(cpuQuery[n])]));
    const cpuForwardMs = Object.fromEntries(names.map((n) => [n, median(cpuForward[n])]));
    const ratios = (x: Record<string, number>) => Object.fromEntries(names.map((n) => [n, +(x[n] / x.untie).toFixed(2)]));
    const rounded = (x: Record<string, number>) => Object.fromEntries(names.map((n) => [n, +x[n].toFixed(2)]));
    const result = {
      machine: machineName(),
      load_average: { before: loadBefore.map((x) => +x.toFixed(2)), after: os.loadavg().map((x) => +x.toFixed(2)) },
      threads, rounds, queries: QUERIES.length,
      model: { architecture: exported.value.architecture, layers: loaded.model.config.layers, hidden: loaded.model.config.hidden, vocab: loaded.model.config.vocabSize, norm: loaded.model.config.norm },
      bytes: { onnx: exported.value.onnxBytes, safetensors: fs.statSync(path.join(dir, 'model.safetensors')).size },
      export_ms: +exported.ms.toFixed(0),
      load_ms: { untie: +untieLoad.ms.toFixed(0), 'onnxruntime-node': +session.ms.toFixed(0), 'transformers.js': +fill.ms.toFixed(0) },
      ms_per_query: rounded(ms),
      ratio_to_untie: ratios(ms),
      forward_ms: rounded(forwardMs),
      forward_ratio_to_untie: ratios(forwardMs),
      cpu_ms_per_query: rounded(cpuMs),
      cpu_ratio_to_untie: ratios(cpuMs),
      cpu_forward_ms: rounded(cpuForwardMs),
      cpu_forward_ratio_to_untie: ratios(cpuForwardMs),
      top1_agreement: `${agree}/${asked}`,
    };
    if (json) {
      console.log(JSON.stringify(result, null, 1));
    } else {
      console.log(`${result.model.architecture} (${result.model.norm === 'pre' ? 'Pre' : 'Post'}-LN, ${result.model.layers} layers, hidden ${result.model.hidden}, vocab ${result.model.vocab}) on ${result.machine}, ${threads} thread(s)`);
      console.log(`onnx/model.onnx ${(result.bytes.onnx / 2 ** 20).toFixed(2)} MiB (model.safetensors ${(result.bytes.safetensors / 2 ** 20).toFixed(2)} MiB); export ${result.export_ms} ms`);
      console.log(`load average ${result.load_average.before.join(' ')} before, ${result.load_average.after.join(' ')} after`);
      console.log(`ms per query (and / untie):${' '.repeat(14)}query wall        query CPU         forward wall      forward CPU`);
      for (const n of names) {
        const cell = (x: Record<string, number>) => `${x[n].toFixed(2).padStart(7)} ${`(${(x[n] / x.untie).toFixed(2)})`.padStart(7)}   `;
        console.log(`${n.padEnd(18)} load ${String(result.load_ms[n as keyof typeof result.load_ms]).padStart(5)} ms   ${cell(ms)}${cell(cpuMs)}${cell(forwardMs)}${cell(cpuForwardMs)}`.trimEnd());
      }
      console.log(`same top-1 token in all three: ${result.top1_agreement} queries`);
    }
    await session.value.release();
    await fill.value.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (!target) {
  console.error('usage: npm run bench:onnx -- RUN_OR_CHECKPOINT [--rounds N] [--threads N] [--json]');
  process.exitCode = 2;
} else {
  await bench(target);
}
