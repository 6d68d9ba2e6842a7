// `untie export --sharing` (the state untie_torch loads) and the data
// position a checkpoint written by untie_torch carries back. The PyTorch side
// is tested in python/untie_torch (npm run test:torch).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { main } from '../src/cli/main.js';
import { defaultRunConfig, mergeConfig, type RunConfig } from '../src/train/config.js';
import { readTrainerState, restoreDataPosition } from '../src/train/checkpoint.js';
import { prepareData } from '../src/train/data.js';
import { readSafetensors } from '../src/train/safetensors.js';
import { train } from '../src/train/trainer.js';

let root: string;
let cfg: RunConfig;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-crossover-'));
  const corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, 12)) fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  cfg = mergeConfig(defaultRunConfig('tiny'), {
    name: 'run', outDir: root,
    // --sharing exports Post-LN runs with biases: said here, not left to the presets' defaults.
    model: { layers: 2, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32, norm: 'post', bias: true },
    data: { corpus, seqLen: 32, vocabSize: 400, evalBatches: 1 },
    train: { steps: 6, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1, evalEvery: 0, saveEvery: 3, keepLast: 5 },
    sharing: { share: '1x2', untie: 'adaptive', checkEvery: 1, untieBy: 0 },
  }, 'config');
  await train({ config: cfg, progress: false });
});

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const write = process.stderr.write.bind(process.stderr), log = console.log, error = console.error;
  let err = '';
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  console.error = (s: string) => void (err += s);
  console.log = () => {};
  try {
    return { code: await main(args), err };
  } finally {
    process.stderr.write = write;
    console.log = log;
    console.error = error;
  }
}

test('export --sharing writes the run\'s step, plan, criterion state, optimizer state and its next batches', async () => {
  const ckpt = path.join(root, 'run', 'checkpoint-3'), out = path.join(root, 'export');
  assert.equal((await cli(['export', ckpt, out, '--sharing', '--batches', '3'])).code, 0);
  const exported = JSON.parse(fs.readFileSync(path.join(out, 'untie_state.json'), 'utf8')) as Record<string, unknown>;
  const state = readTrainerState(ckpt);
  assert.equal(exported.format, 'untie-sharing');
  assert.equal(exported.step, 3);
  assert.deepEqual(exported.sharing, state.sharing);
  assert.deepEqual((exported.optimizer as { steps: unknown }).steps, state.optimizerSteps);
  assert.equal((exported.criterion as { kind: string }).kind, 'adaptive');
  assert.deepEqual(exported.schedule, { lr: 3e-3, warmupSteps: 1, totalSteps: 6, kind: 'linear' });
  assert.ok(fs.readFileSync(path.join(out, 'optimizer.safetensors')).equals(fs.readFileSync(path.join(ckpt, 'optimizer.safetensors'))));

  // The exported batches are the run's next ones: a position written by untie_torch after it trained on
  // two of them ({"untieTorch": {from, batches: 2}}) gives the third.
  const { tensors } = readSafetensors(path.join(out, 'batches.safetensors'));
  assert.deepEqual(tensors.input_ids.shape, [3, 4, 32]);
  const data = await prepareData(cfg.data, cfg.train.seed, path.join(root, 'run'), 4, { save: false });
  restoreDataPosition(data.train, { untieTorch: { from: state.data, batches: 2 } }, 4, 1);
  const third = data.train.nextBatch(4);
  assert.deepEqual(Array.from(third.inputIds), Array.from((tensors.input_ids.data as Int32Array).slice(2 * 128, 3 * 128)));
  assert.deepEqual(Array.from(third.labels), Array.from((tensors.labels.data as Int32Array).slice(2 * 128, 3 * 128)));
});

test('export --sharing of a lengthened run writes the schedule each checkpoint trains on', async () => {
  // SWE-A that never unties from the correlations, with a deadline at 90% of the run: update 5 of 6, 14 of 15 once
  // extended; warmup 10%: 1 update, then 2 (rounded).
  const ext = mergeConfig(cfg, { name: 'extended', train: { saveEvery: 3 }, sharing: { threshold: -0.99, untieBy: 0.9 } }, 'config');
  await train({ config: ext, progress: false, haltAt: 4 }); // halts before saving step 4: the newest checkpoint is 3
  await train({ config: ext, progress: false, resume: true, extendTo: 15, haltAt: 7 }); // saves checkpoint-6
  const runDir = path.join(root, 'extended');
  assert.equal(JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')).train.steps, 15);
  const exported = async (target: string, out: string) => {
    assert.equal((await cli(['export', target, out, '--sharing'])).code, 0);
    return JSON.parse(fs.readFileSync(path.join(out, 'untie_state.json'), 'utf8')) as { step: number; schedule: unknown; criterion: { deadline: unknown } };
  };
  // checkpoint-3, saved before the extension, still trains on the first start's schedule (the config now says 15 steps)
  const before = await exported(path.join(runDir, 'checkpoint-3'), path.join(root, 'ext-3'));
  assert.equal(before.step, 3);
  assert.deepEqual(before.schedule, { lr: 3e-3, warmupSteps: 1, totalSteps: 6, kind: 'linear' });
  assert.equal(before.criterion.deadline, 5);
  // the run folder: its newest checkpoint, on the extended schedule
  const after = await exported(runDir, path.join(root, 'ext-6'));
  assert.equal(after.step, 6);
  assert.deepEqual(after.schedule, { lr: 3e-3, warmupSteps: 2, totalSteps: 15, kind: 'linear' });
  assert.equal(after.criterion.deadline, 14);
});

test('export --sharing refuses what it cannot export, in one line', async () => {
  // Runs untie_torch cannot continue as they are: only their config differs from the trained run's.
  const variant = (name: string, change: (c: RunConfig) => void) => {
    const dir = path.join(root, name);
    fs.cpSync(path.join(root, 'run'), dir, { recursive: true });
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as RunConfig;
    change(saved);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(saved));
    return path.join(dir, 'checkpoint-3');
  };
  const preLn = variant('pre-ln', (c) => void (c.model.norm = 'pre'));
  const noBias = variant('no-bias', (c) => void (c.model.bias = false));
  const bad = [
    { args: ['export', path.join(root, 'run', 'checkpoint-3'), path.join(root, 'x1'), '--batches', '2'], message: /--batches goes with --sharing/ },
    { args: ['export', path.join(root, 'run', 'checkpoint-3'), path.join(root, 'x2'), '--sharing', '--batches', '0'], message: /--batches must be a whole number >= 1/ },
    { args: ['export', path.join(root, 'export'), path.join(root, 'x3'), '--sharing'], message: /needs a run folder or one of its checkpoint-<step> folders/ },
    { args: ['export', preLn, path.join(root, 'x4'), '--sharing'], message: /--sharing exports Post-LN runs .* is Pre-LN \(--norm pre\)\. Train the run to cross over with --norm post/ },
    { args: ['export', noBias, path.join(root, 'x5'), '--sharing'], message: /--sharing exports runs with biases; .* has none \(--bias off\)/ },
  ];
  for (const { args, message } of bad) {
    const r = await cli(args);
    assert.equal(r.code, 1);
    assert.match(r.err, message);
    assert.ok(!fs.existsSync(args[2]), `${args[2]} was written`);
  }
});
