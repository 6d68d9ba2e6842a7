// What the run page costs on a long run: a synthetic run folder with N train
// records (default 100,000, every record type the trainer writes), then the
// time to read it, build its view, assemble report.html, follow one more
// record as the live server does, and (where Debian's chromium is installed)
// to open the page and draw every chart.
// `npm run bench:report [-- --records N] [-- --keep DIR]` (--keep: leave the synthetic run in DIR/long).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderPage } from '../src/report/page.js';
import { machineName } from '../src/experiments/compare.js';
import { MetricsFollower, readRun, type RunData } from '../src/report/read.js';
import { runView } from '../src/report/run.js';
import { defaultRunConfig } from '../src/train/config.js';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const trainRecords = arg('--records', 100_000);

const TENSORS = ['attention.self.query.weight', 'attention.self.query.bias', 'attention.self.key.weight', 'attention.self.key.bias',
  'attention.self.value.weight', 'attention.self.value.bias', 'attention.output.dense.weight', 'attention.output.dense.bias',
  'attention.output.LayerNorm.weight', 'attention.output.LayerNorm.bias', 'intermediate.dense.weight', 'intermediate.dense.bias',
  'output.dense.weight', 'output.dense.bias', 'output.LayerNorm.weight', 'output.LayerNorm.bias'];

/** A run of the tiny preset's shape logging every 10 steps, checking every 50 steps until it unties at 20% of the run. */
function writeSyntheticRun(dir: string): void {
  const steps = trainRecords * 10;
  const cfg = { ...defaultRunConfig('tiny'), name: path.basename(dir), outDir: path.dirname(dir) };
  cfg.train.steps = steps;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const untieAt = steps / 5;
  const lines: string[] = [];
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (let step = 10; step <= steps; step += 10) {
    const loss = 7 - 2.5 * (1 - Math.exp(-step / (steps / 5))) + 0.3 * (rand() - 0.5);
    lines.push(JSON.stringify({ type: 'train', step, loss, acc: 0.05 + 0.3 * (1 - Math.exp(-step / (steps / 5))), lr: 1e-3 * Math.min(step / (steps / 10), (steps - step) / (steps * 0.9)), grad_norm: 1 + rand(), tokens_per_s: 11000 + 500 * rand(), elapsed: step * 0.37 }));
    if (step % 50 === 0 && step <= untieAt) {
      const pairs = [0, 1, 2, 3, 4].map((a) => ({ a, b: a + 1, cosine: 0.9 - 0.5 * (step / untieAt) + 0.05 * rand(), perTensor: Object.fromEntries(TENSORS.map((t) => [t, 0.9 - 0.5 * (step / untieAt) + 0.2 * rand()])) }));
      lines.push(JSON.stringify({ type: 'sharing_check', step, pairs, below: 0, threshold: 0.5, decision: 'none' }));
    }
    if (step === untieAt) lines.push(JSON.stringify({ type: 'untie', step, groups: [[0], [1], [2], [3], [4], [5]], description: '[0] [1] [2] [3] [4] [5]', reason: 'correlation' }));
    if (step % 1000 === 0) lines.push(JSON.stringify({ type: 'eval', step, val_loss: 6.9 - 2.3 * (1 - Math.exp(-step / (steps / 5))), val_acc: 0.3 * (1 - Math.exp(-step / (steps / 5))), unigram_val_loss: 6.68, unigram_val_acc: 0.045, elapsed: step * 0.37 }));
  }
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
}

/** Wall and CPU milliseconds of f (on a shared machine the CPU time is the steadier number). */
function time<T>(f: () => T): [T, string] {
  const t0 = performance.now(), c0 = process.cpuUsage();
  const out = f();
  const cpu = process.cpuUsage(c0);
  return [out, `${(performance.now() - t0).toFixed(0)} ms (CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms)`];
}

const keep = args.includes('--keep') ? args[args.indexOf('--keep') + 1] : null;
const root = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'untie-bench-report-'));
try {
  const dir = path.join(root, 'long');
  writeSyntheticRun(dir);
  const metricsBytes = fs.statSync(path.join(dir, 'metrics.jsonl')).size;
  const [run, readMs] = time(() => readRun(dir));
  const [view, viewMs] = time(() => runView(run));
  const [html, pageMs] = time(() => renderPage(view));
  fs.writeFileSync(path.join(dir, 'report.html'), html);

  // the live server's work for one new record: read the appended bytes, rebuild the view, serialise it
  const follower = new MetricsFollower(path.join(dir, 'metrics.jsonl'));
  follower.poll();
  fs.appendFileSync(path.join(dir, 'metrics.jsonl'), JSON.stringify({ type: 'train', step: trainRecords * 10 + 10, loss: 4.5, lr: 0, grad_norm: 1, tokens_per_s: 11000, elapsed: 1 }) + '\n');
  const [, liveMs] = time(() => {
    follower.poll();
    const live: RunData = { ...run, records: follower.records };
    return JSON.stringify({ version: follower.version, view: runView(live) });
  });

  console.log(`synthetic run: ${trainRecords.toLocaleString('en-US')} train records, ${run.records.length.toLocaleString('en-US')} records in all, metrics.jsonl ${(metricsBytes / 1e6).toFixed(1)} MB`);
  console.log(`node: read ${readMs}, build the view ${viewMs}, assemble the page ${pageMs}; report.html ${(html.length / 1e6).toFixed(1)} MB`);
  console.log(`live server, one new record: read it, rebuild and serialise the view ${liveMs}`);

  if (fs.existsSync(CHROMIUM)) {
    const { browser, close } = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        await page.goto(`file://${path.join(dir, 'report.html')}`);
        await page.waitForSelector('[data-chart="groups"] canvas');
        // the script draws synchronously after parsing; performance.now() is then the time since navigation started
        times.push(await page.evaluate(() => performance.now()));
      }
      const points = await page.locator('[data-chart="loss-step"]').evaluate((e) => (e as HTMLElement).dataset.points!);
      times.sort((a, b) => a - b);
      console.log(`chromium: open report.html and draw every chart ${times[1].toFixed(0)} ms (median of 3; loss chart points ${points})${errors.length ? `; page errors: ${errors.join('; ')}` : ''}`);
    } finally {
      await close();
    }
  } else {
    console.log(`chromium: not installed at ${CHROMIUM}; page timing skipped`);
  }
  console.log(`machine: ${machineName()}, load average ${os.loadavg()[0].toFixed(1)} (timings scale with it)`);
} finally {
  if (!keep) fs.rmSync(root, { recursive: true, force: true });
}
