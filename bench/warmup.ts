// What a process's first steps cost: two identical 8-step runs of the tiny
// preset, one after the other in one process, each step's seconds. The first
// run's first steps pay for compiling the code, filling the buffer pool and
// starting the kernel threads; the second run's do not. This is why
// `untie compare` trains a few untimed steps before its first run.
// `node --import tsx bench/warmup.ts [THREADS]` (default 1).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { defaultRunConfig, mergeConfig } from '../src/train/config.js';
import { readMetrics } from '../src/train/metrics.js';
import { train } from '../src/train/trainer.js';

const threads = Number(process.argv[2] ?? 1);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-warmup-'));
try {
  // 30 Brown documents as a folder corpus: data preparation stays short, the model is the tiny preset's.
  fs.mkdirSync(path.join(root, 'corpus'));
  loadBrown().slice(0, 30).forEach((d, i) => fs.writeFileSync(path.join(root, 'corpus', `d${i}.txt`), d.sentences.map(sentenceText).join('\n')));
  console.log(`${os.cpus()[0]?.model?.trim()}, ${threads} thread(s), load average ${os.loadavg()[0].toFixed(1)}`);
  for (const name of ['first', 'second']) {
    const config = mergeConfig(defaultRunConfig('tiny'), {
      name, outDir: root, data: { corpus: path.join(root, 'corpus'), vocabSize: 2000 },
      train: { steps: 8, threads, logEvery: 1, evalEvery: 0, saveEvery: 0 },
    }, 'config');
    await train({ config, progress: false });
    const tokensPerStep = config.train.batchSize * config.data.seqLen;
    const seconds = readMetrics(path.join(root, name, 'metrics.jsonl')).filter((r) => r.type === 'train').map((r) => tokensPerStep / Number(r.tokens_per_s));
    console.log(`${name} run in this process, seconds per step: ${seconds.map((s) => s.toFixed(2)).join(' ')}`);
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
