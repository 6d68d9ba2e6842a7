// The setup of test/train.test.ts's context test (runs of one word: a masked word is its
// neighbour), trained for several seeds, printing the validation accuracy every 50 steps:
// how long the plateau before the model learns to use context lasts, per position start.
//   node --import tsx scripts/context-probe.ts normal|sinusoidal post|pre SEEDS STEPS LR
//   e.g. node --import tsx scripts/context-probe.ts sinusoidal post 0,1,2,3,4 500 3e-3
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../src/tensor/rng.js';
import { defaultRunConfig, mergeConfig } from '../src/train/config.js';
import { train } from '../src/train/trainer.js';
const root = path.join(os.tmpdir(), 'untie-context-probe');
const words = 'bax cel dov fum gip hek jol kup lam mib nox pev qua rit sol tav vek wim yor zun'.split(' ');
const dir = path.join(root, 'corpus');
if (!fs.existsSync(dir)) {
  fs.mkdirSync(dir, { recursive: true });
  const rng = new Rng(5);
  for (let d = 0; d < 20; d++) {
    const sentences = Array.from({ length: 100 }, () => {
      const [a, b] = [words[rng.nextU32() % 20], words[rng.nextU32() % 20]];
      return `${`${a} `.repeat(6)}${`${b} `.repeat(6)}.`;
    });
    fs.writeFileSync(path.join(dir, `doc${d}.txt`), sentences.join('\n\n') + '\n');
  }
}
const [posInit, norm, seedsArg, stepsArg, lrArg] = process.argv.slice(2);
for (const seed of seedsArg.split(',').map(Number)) {
  const name = `${posInit}-${norm}-s${seed}-${stepsArg}-${lrArg}`;
  fs.rmSync(path.join(root, name), { recursive: true, force: true });
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir: root,
    model: { layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 16, dropout: 0, attentionDropout: 0, norm, positionInit: posInit },
    data: { corpus: dir, seqLen: 16, vocabSize: 100, evalBatches: 4 },
    train: { steps: Number(stepsArg), batchSize: 16, lr: Number(lrArg), threads: 1, logEvery: 50, evalEvery: 50, saveEvery: 0, seed },
    sharing: { share: '1x2', untie: 'step:100' },
  }, 'config');
  const r = await train({ config: cfg, progress: false });
  const evals = fs.readFileSync(path.join(root, name, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"eval"')).map((l) => JSON.parse(l).val_acc.toFixed(2));
  console.log(name, r.finalValAcc.toFixed(3), evals.join(' '));
}
