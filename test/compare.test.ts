// untie compare: the analysis on synthetic curves (time to target, spread,
// ratios, statistic replays) and a tiny real comparison end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import {
  difference, planRuns, runCompare, stat, summarize, timeToTarget, variantConfig,
  type CompareOptions, type RunRecord,
} from '../src/experiments/compare.js';
import { replayStatistics } from '../src/experiments/statistics.js';
import { defaultRunConfig, mergeConfig } from '../src/train/config.js';
import { readMetrics } from '../src/train/metrics.js';
import { writeCompareReport, compareView, seedList } from '../src/report/compare.js';
import type { Block } from '../src/report/blocks.js';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';
import { formatSummary } from '../src/cli/compare.js';

// CI installs Chromium and sets UNTIE_REQUIRE_CHROMIUM: there a missing browser fails instead of skipping.
const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;

function chartIds(blocks: Block[]): string[] {
  return blocks.flatMap((b) => (b.kind === 'section' || b.kind === 'grid' ? chartIds(b.blocks) : b.kind === 'html' ? [] : [b.id]));
}

let finished: { out: string } | null = null;

test('time to target: linear interpolation between evaluations; null when never reached', () => {
  const curve: [number, number][] = [[0, 8], [100, 6], [200, 5], [300, 4.5]];
  assert.equal(timeToTarget(curve, 6), 100);
  assert.equal(timeToTarget(curve, 5.5), 150); // halfway between 6 (100) and 5 (200)
  assert.equal(timeToTarget(curve, 4.75), 250);
  assert.equal(timeToTarget(curve, 9), 0); // the first point already reaches it
  assert.equal(timeToTarget(curve, 4.4), null);
  // A curve that rises again: the first crossing counts.
  assert.ok(Math.abs(timeToTarget([[0, 8], [10, 5], [20, 7], [30, 4]], 6)! - 20 / 3) < 1e-12);
});

test('seed statistics: sample std, and a difference flagged only beyond twice its standard error', () => {
  const s = stat([1, 2, 3, 4]);
  assert.equal(s.mean, 2.5);
  assert.ok(Math.abs((s.std ?? 0) - Math.sqrt(5 / 3)) < 1e-12);
  assert.equal(stat([7]).std, null);
  const near = difference([1.0, 1.1, 0.9], [1.05, 0.95, 1.0]);
  assert.equal(near.exceedsSpread, false);
  const far = difference([2.0, 2.1, 1.9], [1.0, 1.1, 0.9]);
  assert.equal(far.exceedsSpread, true);
  assert.ok(Math.abs(far.diff - 1) < 1e-12);
  assert.equal(difference([1], [2]).exceedsSpread, null, 'one seed: no spread, no verdict');
});

function synthRun(variant: RunRecord['variant'], seed: number, losses: number[], secondsPerStep: number): RunRecord {
  return {
    point: '', variant, seed, runDir: `/x/${variant}-${seed}`, steps: (losses.length - 1) * 100, threads: 2,
    evals: losses.map((l, i) => ({ step: i * 100, seconds: i * 100 * secondsPerStep, valLoss: l, valAcc: 0.1 + (8 - l) / 100 })),
    unigramValLoss: 6.8, unigramValAcc: 0.05, untiedAt: null, events: [], checks: [], threshold: null, downstream: null, seconds: 0,
  };
}

test('summary: steps and seconds to the baseline final loss, as ratios to the baseline, seed by seed', () => {
  const runs = [
    synthRun('baseline', 0, [8, 7, 6, 5], 1),
    synthRun('baseline', 1, [8, 7.2, 6.2, 5.2], 1),
    // twice as fast in steps; 10% slower per step
    synthRun('swe-f', 0, [8, 6, 5, 4.5], 1.1),
    synthRun('swe-f', 1, [8, 6.2, 5.2, 4.6], 1.1),
    synthRun('albert', 0, [8, 7.5, 7, 6.5], 1),
  ];
  const [p] = summarize(runs, { variants: ['baseline', 'albert', 'swe-f'] });
  const get = (v: string) => p.variants.find((x) => x.variant === v)!;
  assert.deepEqual(get('baseline').stepsRatio?.mean, 1);
  assert.equal(get('swe-f').stepsToTarget?.mean, 200);
  assert.ok(Math.abs((get('swe-f').stepsRatio?.mean ?? 0) - 200 / 300) < 1e-12);
  assert.ok(Math.abs((get('swe-f').secondsRatio?.mean ?? 0) - (200 * 1.1) / 300) < 1e-12);
  assert.equal(get('albert').stepsToTarget, null);
  assert.equal(get('albert').missed, 1);
  assert.equal(p.target?.mean, 5.1);
  assert.equal(get('swe-f').vsBaseline.val_loss.exceedsSpread, true);
  // The printed table says how far above the target a run that never reached it ended.
  const albertLine = formatSummary([p], 'test CPU', 2).split('\n').find((l) => l.startsWith('albert'))!;
  assert.match(albertLine, /^albert\s+never \(\+1\.4000\)/);
});

test('marker labels name seeds briefly: runs of three or more as a range, the rest one by one', () => {
  assert.equal(seedList([4, 0, 2, 1, 3]), '0-4');
  assert.equal(seedList([0, 1, 3]), '0,1,3');
  assert.equal(seedList([0, 1, 2, 5, 7, 8, 9, 9]), '0-2,5,7-9');
  assert.equal(seedList([3]), '3');
});

test('statistic replay: each statistic unties where a hand computation says', () => {
  // Two pairs; cosines fall from 0.9 linearly; per-tensor cosines are lower than the pooled ones.
  const checks = Array.from({ length: 12 }, (_, i) => {
    const c = 0.91 - 0.06 * i; // 0.91, 0.85, ..., 0.25 (no value sits on a threshold)
    return { step: 10 * (i + 1), cosines: [c, c], pairs: [[0, 1], [1, 2]] as [number, number][], perTensor: [{ a: c - 0.2, b: c - 0.1, d: c }, { a: c - 0.2, b: c - 0.1, d: c }] };
  });
  const byStat = Object.fromEntries(replayStatistics(checks, 0.5, 3).map((r) => [r.statistic, r.untieStep]));
  // cosine < 0.5 first at i = 7 (0.49); the 3rd consecutive check is i = 9 -> step 100
  assert.equal(byStat.cosine, 100);
  // tensor-median = c - 0.1 < 0.5 first at i = 6 (0.45) -> 3rd at i = 8 -> step 90
  assert.equal(byStat['tensor-median'], 90);
  // relative: base = mean(0.91, 0.85, 0.79) = 0.85; c / 0.85 < 0.5 when c < 0.425: i = 9 (0.37) -> 3rd at i = 11 -> step 120
  assert.equal(byStat.relative, 120);
  // ema lags the cosine, so it fires later than the plain cosine, or not at all within these checks
  assert.ok(byStat.ema === null || byStat.ema > 100);
});

test('variant configs: the plan, the untie rule, baseline-half at half the steps, evaluations aligned', () => {
  const base = defaultRunConfig('tiny');
  base.train.steps = 400;
  const opts = { sweFFraction: 0.1, evalsPerRun: 20 };
  const b = variantConfig(base, 'baseline', 0, opts);
  assert.equal(b.sharing.share, '6x1');
  assert.equal(b.sharing.untie, 'never');
  assert.equal(variantConfig(base, 'albert', 0, opts).sharing.share, '1x6');
  assert.equal(variantConfig(base, 'swe-f', 0, opts).sharing.untie, 'fraction:0.1');
  const half = variantConfig(base, 'baseline-half', 1, opts);
  assert.equal(half.train.steps, 200);
  assert.equal(half.train.seed, 1);
  assert.equal(half.train.evalEvery, b.train.evalEvery);
  const deep = variantConfig(base, 'swe-a', 0, opts, { key: 'layers', value: '12' });
  assert.equal(deep.model.layers, 12);
  assert.equal(deep.sharing.share, '1x12');
  const unit = variantConfig(base, 'swe-f', 0, opts, { key: 'share', value: '3x2' });
  assert.equal(unit.sharing.share, '3x2');
  assert.equal(variantConfig(base, 'baseline', 0, opts, { key: 'share', value: '3x2' }).sharing.share, '6x1');
  // An untie sweep leaves the baseline alone: it runs once, not once per value.
  const plan = planRuns(base, { out: '/tmp/x', variants: ['baseline', 'swe-f'], seeds: 1, sweFFraction: 0.1, evalsPerRun: 20, sweep: { key: 'untie', values: ['fraction:0.05', 'fraction:0.2'] } });
  assert.equal(plan.length, 4);
  assert.equal(new Set(plan.map((r) => r.runDir)).size, 3);
  assert.deepEqual(plan.filter((r) => r.variant === 'swe-f').map((r) => r.config.sharing.untie), ['fraction:0.05', 'fraction:0.2']);
});

test('variant configs under --budget: every run the same seconds (baseline-half half), evaluations at fractions of the budget', () => {
  const base = defaultRunConfig('tiny');
  base.train.budget = 600;
  const opts = { sweFFraction: 0.1, evalsPerRun: 20 };
  const b = variantConfig(base, 'swe-f', 0, opts);
  assert.equal(b.train.budget, 600);
  assert.equal(b.train.evalPoints, 20);
  assert.equal(b.train.evalEvery, 0, 'no step-count evaluations in a budget run');
  const half = variantConfig(base, 'baseline-half', 0, opts);
  assert.equal(half.train.budget, 300);
  assert.equal(half.train.evalPoints, 10, 'the half run evaluates at the full runs\' time marks');
  assert.throws(() => variantConfig(base, 'baseline', 0, opts, { key: 'steps', value: '100' }), /--budget/);
});

/** A temporary folder holding the first `docs` Brown documents as a text corpus. */
function brownCorpus(prefix: string, docs: number): { root: string; corpus: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const corpus = path.join(root, 'corpus');
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, docs)) fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  return { root, corpus };
}

test('a --budget comparison: runs end at the budget, are judged finished by their training seconds, and resume as a no-op', async () => {
  const { root, corpus } = brownCorpus('untie-compare-budget-', 20);
  const base = mergeConfig(defaultRunConfig('tiny'), {
    model: { layers: 2, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 500, evalBatches: 1 },
    train: { budget: 1.5, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1 },
  }, 'config');
  const out = path.join(root, 'cmp');
  const opts: CompareOptions = { out, variants: ['baseline', 'baseline-half'], seeds: 1, sweFFraction: 0.1, evalsPerRun: 4, sweep: null };
  const res = await runCompare(base, opts, null);
  assert.equal(res.runs.length, 2);
  const full = res.runs.find((r) => r.variant === 'baseline')!;
  const half = res.runs.find((r) => r.variant === 'baseline-half')!;
  assert.ok(full.seconds >= 1.5 && half.seconds >= 0.75, `each run trains until its budget: ${full.seconds} / ${half.seconds} s`);
  const budgetOf = (v: string) => JSON.parse(fs.readFileSync(path.join(out, 'runs', `${v}-seed0`, 'config.json'), 'utf8')).train.budget;
  assert.deepEqual([budgetOf('baseline'), budgetOf('baseline-half')], [1.5, 0.75]);
  assert.equal(full.steps, full.evals[full.evals.length - 1].step, 'a budget run counts the steps it made');
  assert.ok(full.evals.length >= 4, 'an evaluation at every quarter of the budget and at the end');
  const before = readMetrics(path.join(out, 'runs', 'baseline-seed0', 'metrics.jsonl')).length;
  await runCompare(base, opts, null);
  assert.equal(readMetrics(path.join(out, 'runs', 'baseline-seed0', 'metrics.jsonl')).length, before, 'a finished budget run is not trained again');
});

test('a tiny 2-variant comparison runs end to end, resumes as a no-op, and refuses other thread counts', async () => {
  const { root, corpus } = brownCorpus('untie-compare-', 30);
  const base = mergeConfig(defaultRunConfig('tiny'), {
    model: { layers: 3, hidden: 16, heads: 2, intermediate: 32, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 600, evalBatches: 2 },
    train: { steps: 8, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 1 },
  }, 'config');
  const out = path.join(root, 'cmp');
  const opts: CompareOptions = { out, variants: ['baseline', 'albert'], seeds: 1, sweFFraction: 0.1, evalsPerRun: 4, sweep: null };
  const res = await runCompare(base, opts, async () => ({ probe: { metric: 'accuracy', score: 0.5 } }));
  assert.equal(res.interrupted, false);
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  for (const k of ['machine', 'threads', 'options', 'base', 'runs', 'summary']) assert.ok(k in saved, `results.json has ${k}`);
  assert.equal(saved.runs.length, 2);
  const [point] = saved.summary;
  assert.deepEqual(point.variants.map((v: { variant: string }) => v.variant), ['baseline', 'albert']);
  for (const r of saved.runs) {
    assert.equal(r.evals.length, 4, 'an evaluation every 2 of 8 steps');
    assert.ok(r.evals.every((e: { seconds: number }) => e.seconds > 0), 'evaluations carry training seconds');
    assert.ok(r.unigramValLoss > 0);
    assert.equal(r.downstream.probe.score, 0.5);
    if (process.platform !== 'win32') assert.ok(r.load.start >= 0 && r.load.end >= 0, 'the load average around each run is kept');
  }
  // The always-tied run logs its adjacent-layer checks (monitoring), and both runs share one vocabulary.
  assert.ok(saved.runs.find((r: { variant: string }) => r.variant === 'albert').checks.length > 0);
  const vocab = (v: string) => fs.readFileSync(path.join(out, 'runs', `${v}-seed0`, 'vocab.txt'), 'utf8');
  assert.equal(vocab('baseline'), vocab('albert'));
  // Resuming a finished comparison trains nothing: the metrics files stay as they were.
  const before = readMetrics(path.join(out, 'runs', 'baseline-seed0', 'metrics.jsonl')).length;
  await runCompare(base, opts, async () => { throw new Error('the cached downstream scores are reused'); });
  assert.equal(readMetrics(path.join(out, 'runs', 'baseline-seed0', 'metrics.jsonl')).length, before);
  await assert.rejects(runCompare({ ...base, train: { ...base.train, threads: 2 } }, opts, null), /thread/);

  // The report has every section, and every chart has data.
  writeCompareReport(res, out);
  const view = compareView(res, out);
  const text = JSON.stringify(view);
  for (const part of ['The answer', 'Table 1', 'gradient agreement', 'Settings', 'one after another']) assert.ok(text.includes(part), `the report has "${part}"`);
  const ids = chartIds(view.blocks);
  for (const id of ['p0-valLoss-step', 'p0-valLoss-seconds', 'p0-valAcc-step', 'p0-valAcc-seconds', 'p0-statistics', 'p0-heatmap-albert-0']) assert.ok(ids.includes(id), `chart ${id}`);
  finished = { out };
});

test('in Chromium: the compare report renders without errors, every chart has data; a screenshot is kept', { skip: chromiumMissing }, async () => {
  assert.ok(finished, 'the end-to-end comparison ran first');
  const { browser, close } = await launchChromium({ width: 1280, height: 1600 });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => { if (!r.url().startsWith('file:')) errors.push(`fetched ${r.url()}`); });
    await page.goto(`file://${path.join(finished.out, 'report.html')}`);
    await page.waitForSelector('[data-chart="p0-heatmap-albert-0"] canvas');
    const charts = await page.locator('[data-chart]').evaluateAll((els) => els.map((e) => {
      const d = (e as HTMLElement).dataset;
      return { id: d.chart!, points: d.points ? (JSON.parse(d.points) as Record<string, number>) : null, cells: d.cells ? Number(d.cells) : null };
    }));
    assert.ok(charts.length >= 6, `${charts.length} charts drawn`);
    for (const c of charts) {
      if (c.points) assert.ok(Object.keys(c.points).length > 0 && Object.values(c.points).every((n) => n > 0), `${c.id} drew every series: ${JSON.stringify(c.points)}`);
      else assert.ok((c.cells ?? 0) > 0, `${c.id} has cells`);
    }
    await page.screenshot({ path: path.join(finished.out, 'report.png'), fullPage: true });
    assert.ok(fs.statSync(path.join(finished.out, 'report.png')).size > 10_000);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
