/**
 * The decoder study's tables (docs/decoder.md), from its committed records
 * alone: studies/decoder/{vs-gpt-tiny,vs-bert-tiny}/metrics.jsonl and
 * studies/decoder/compare-{6l,12l}/results.json.
 *
 *   node --import tsx scripts/decoder-study.ts [studies/decoder] [--cost-ratio R]
 *
 * R: a decoder step's cost in encoder steps, from `node --import tsx
 * bench/decoder.ts` (its cpu_ratio), for the equal-compute line.
 *
 * How the records were made (one job after another, `--threads 1`):
 *
 *   untie train --model gpt  --steps 500 --eval-every 50 --share 6x1 --untie never --threads 1 --out runs/decoder --name vs-gpt-tiny
 *   untie train --model bert --steps 500 --eval-every 50 --share 6x1 --untie never --threads 1 --out runs/decoder --name vs-bert-tiny
 *   untie compare --model gpt --variants baseline,swe-f,swe-a --seeds 3 --steps 500 --evals 20 --threads 1 --out runs/decoder/compare-6l -- --layers 6 --batch-size 16
 *   untie train --model gpt --layers 12 --batch-size 16 --steps 400 --eval-every 25 --share 12x1 --untie never --threads 1 --out runs/decoder --name pilot-12l-b16
 *
 * (compare-12l, the same comparison at 12 layers, is read when present; it
 * was not run.)
 *
 * then `--collect` copies each run's config.json and metrics.jsonl (never
 * checkpoints) and each comparison's results.json from runs/decoder into
 * studies/decoder:
 *
 *   node --import tsx scripts/decoder-study.ts --collect runs/decoder studies/decoder
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatSummary } from '../src/cli/compare.js';
import { timeToTarget, type CompareResults } from '../src/experiments/compare.js';
import { readMetrics } from '../src/train/metrics.js';

interface Eval {
  step: number;
  seconds: number;
  loss: number;
  unigram: number;
  acc: number;
  unigramAcc: number;
}

function evalsOf(runDir: string): Eval[] {
  return readMetrics(path.join(runDir, 'metrics.jsonl'))
    .filter((r) => r.type === 'eval')
    .map((r) => ({ step: r.step, seconds: Number(r.elapsed), loss: Number(r.val_loss), unigram: Number(r.unigram_val_loss), acc: Number(r.val_acc), unigramAcc: Number(r.unigram_val_acc) }));
}

/** The loss of a curve at x (linear between evaluations; null outside them). */
function lossAt(points: [number, number][], x: number): number | null {
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i];
    if (x >= x0 && x <= x1) return y0 + ((x - x0) / (x1 - x0)) * (y1 - y0);
  }
  return null;
}

/**
 * The encoder against the decoder at equal steps, and at equal training
 * time two ways: by the runs' own seconds (measured hours apart on a shared
 * machine, so under other loads), and by `costRatio`, a decoder step's cost
 * in encoder steps measured in one process (bench/decoder.ts).
 */
function objectives(dir: string, costRatio: number | null): string[] {
  const runs = { decoder: evalsOf(path.join(dir, 'vs-gpt-tiny')), encoder: evalsOf(path.join(dir, 'vs-bert-tiny')) };
  const lines = ['## A tiny decoder and the tiny encoder (6 layers, hidden 128, batch 32 x 128, untied, seed 0)', ''];
  lines.push('| model | unigram line | val loss @100 | @200 | @300 | @500 | below its unigram line @500 | val acc @500 (unigram) | first eval below the line | training seconds |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, evals] of Object.entries(runs)) {
    const at = (step: number) => evals.find((e) => e.step === step);
    const last = evals[evals.length - 1];
    const below = evals.find((e) => e.loss < e.unigram);
    lines.push(`| ${name} | ${last.unigram.toFixed(3)} | ${[100, 200, 300, 500].map((s) => at(s)?.loss.toFixed(3) ?? '-').join(' | ')} | ` +
      `${(last.unigram - last.loss).toFixed(3)} | ${(100 * last.acc).toFixed(2)}% (${(100 * last.unigramAcc).toFixed(2)}%) | ${below ? `step ${below.step}` : 'never'} | ${last.seconds.toFixed(0)} |`);
  }
  // Equal minutes: each curve at the training seconds the faster run needed for all its steps.
  const t = Math.min(...Object.values(runs).map((e) => e[e.length - 1].seconds));
  lines.push('', `At equal training time (${t.toFixed(0)} s, the shorter run's whole length):`, '');
  for (const [name, evals] of Object.entries(runs)) {
    const loss = lossAt(evals.map((e) => [e.seconds, e.loss]), t);
    const step = lossAt(evals.map((e) => [e.seconds, e.step]), t);
    lines.push(`- ${name}: val loss ${loss?.toFixed(3) ?? '-'} at about step ${step?.toFixed(0) ?? '-'}, ${loss !== null ? (evals[0].unigram - loss).toFixed(3) : '-'} below its unigram line`);
  }
  if (costRatio !== null) {
    const encoderLast = runs.encoder[runs.encoder.length - 1];
    const step = encoderLast.step / costRatio;
    const loss = lossAt(runs.decoder.map((e) => [e.step, e.loss]), step);
    lines.push('', `At equal compute (a decoder step costs ${costRatio} encoder steps): the encoder's ${encoderLast.step} steps buy the decoder ${step.toFixed(0)}, ` +
      `where its val loss is ${loss?.toFixed(3) ?? '-'}, ${loss !== null ? (runs.decoder[0].unigram - loss).toFixed(3) : '-'} below its unigram line ` +
      `(the encoder: ${encoderLast.loss.toFixed(3)}, ${(encoderLast.unigram - encoderLast.loss).toFixed(3)} below).`);
  }
  return lines;
}

function comparison(file: string): string[] {
  const res = JSON.parse(fs.readFileSync(file, 'utf8')) as CompareResults;
  const lines = [`## ${path.basename(path.dirname(file))}: ${res.base.model.layers} layers, ${res.base.train.steps} steps, batch ${res.base.train.batchSize}`, '', '```'];
  lines.push(formatSummary(res.summary, res.machine, res.threads, res.base.model.kind), '```', '');
  // Where the baselines end against their unigram line, and each run's training seconds.
  for (const p of res.summary) {
    const baselines = res.runs.filter((r) => r.point === p.point && r.variant === 'baseline');
    const below = baselines.map((r) => (r.unigramValLoss ?? NaN) - r.evals[r.evals.length - 1].valLoss);
    lines.push(`baseline final loss below its unigram line (${p.unigramValLoss?.toFixed(3)}): ${below.map((b) => b.toFixed(3)).join(', ')} nats (seeds ${baselines.map((r) => r.seed).join(', ')})`);
  }
  lines.push('', '| run | training seconds | s / step | final val loss | steps to its seed\'s baseline final loss |', '|---|---|---|---|---|');
  for (const r of res.runs) {
    const target = res.runs.find((b) => b.variant === 'baseline' && b.seed === r.seed && b.point === r.point);
    const goal = target?.evals[target.evals.length - 1].valLoss;
    const steps = goal === undefined ? null : timeToTarget(r.evals.map((e) => [e.step, e.valLoss]), goal);
    lines.push(`| ${r.variant} seed ${r.seed} | ${r.seconds.toFixed(0)} | ${(r.seconds / r.steps).toFixed(2)} | ${r.evals[r.evals.length - 1].valLoss.toFixed(4)} | ${steps === null ? 'never' : steps.toFixed(0)} |`);
  }
  const loads = res.runs.flatMap((r) => (r.load ? [r.load.start, r.load.end] : []));
  if (loads.length) lines.push('', `load average (1 min) at the runs' starts and ends: ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} on ${res.machine}`);
  return lines;
}

/**
 * Copies the records (config.json, metrics.jsonl, load.json; results.json)
 * of every run under `from` into `to`, with `from`'s absolute path written as
 * "runs/decoder" (the folder the commands above name), so no record holds a
 * path of the machine that made it.
 */
function collect(from: string, to: string): void {
  const absolute = path.resolve(from);
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || /^checkpoint-|^tokenizer$|^\.tmp/.test(entry.name)) continue;
      const src = path.join(dir, entry.name);
      const rel = path.relative(from, src);
      for (const f of ['config.json', 'metrics.jsonl', 'load.json', 'results.json']) {
        if (!fs.existsSync(path.join(src, f))) continue;
        fs.mkdirSync(path.join(to, rel), { recursive: true });
        const text = fs.readFileSync(path.join(src, f), 'utf8').split(absolute).join('runs/decoder');
        fs.writeFileSync(path.join(to, rel, f), text);
      }
      walk(src);
    }
  };
  walk(from);
}

const args = process.argv.slice(2);
if (args[0] === '--collect') {
  collect(args[1], args[2]);
} else {
  const ratioAt = args.indexOf('--cost-ratio');
  const costRatio = ratioAt >= 0 ? Number(args.splice(ratioAt, 2)[1]) : null;
  const dir = args[0] ?? 'studies/decoder';
  const out = fs.existsSync(path.join(dir, 'vs-gpt-tiny')) ? objectives(dir, costRatio) : [];
  for (const c of ['compare-6l', 'compare-12l']) {
    const file = path.join(dir, c, 'results.json');
    if (fs.existsSync(file)) out.push('', ...comparison(file));
  }
  process.stdout.write(out.join('\n') + '\n');
}
