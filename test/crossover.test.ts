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
    model: { layers: 2, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32 },
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

test('export --sharing refuses what it cannot export, in one line', async () => {
  const bad = [
    { args: ['export', path.join(root, 'run', 'checkpoint-3'), path.join(root, 'x1'), '--batches', '2'], message: /--batches goes with --sharing/ },
    { args: ['export', path.join(root, 'run', 'checkpoint-3'), path.join(root, 'x2'), '--sharing', '--batches', '0'], message: /--batches must be a whole number >= 1/ },
    { args: ['export', path.join(root, 'export'), path.join(root, 'x3'), '--sharing'], message: /needs a run folder or one of its checkpoint-<step> folders/ },
  ];
  for (const { args, message } of bad) {
    const r = await cli(args);
    assert.equal(r.code, 1);
    assert.match(r.err, message);
    assert.ok(!fs.existsSync(args[2]), `${args[2]} was written`);
  }
});
