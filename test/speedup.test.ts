// The speed-up as a curve and paired differences (src/experiments/speedup.ts,
// summarize's levels and paired fields): checked against hand computations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize, type RunRecord } from '../src/experiments/compare.js';
import { modelledSeconds, pairedDifference, pairedVerdict, tQuantile975, valueAt } from '../src/experiments/speedup.js';
import { formatSummary } from '../src/cli/compare.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('t quantiles: the table at small df, and near 1.96 for many seeds', () => {
  close(tQuantile975(1), 12.706);
  close(tQuantile975(2), 4.303);
  close(tQuantile975(30), 2.042);
  assert.ok(Math.abs(tQuantile975(60) - 2.0003) < 0.002);
  assert.ok(Math.abs(tQuantile975(1000) - 1.9623) < 0.002);
  assert.ok(Number.isNaN(tQuantile975(0)));
});

test('paired difference: mean of per-seed differences with a t-interval; only shared seeds enter', () => {
  // differences 0.1, 0.3, 0.2 on seeds 0..2 (seed 3 has no baseline)
  const v = new Map([[0, 1.1], [1, 2.3], [2, 3.2], [3, 9]]);
  const b = new Map([[0, 1.0], [1, 2.0], [2, 3.0]]);
  const d = pairedDifference(v, b)!;
  assert.deepEqual(d.seeds, [0, 1, 2]);
  close(d.mean, 0.2);
  const half = 4.303 * (0.1 / Math.sqrt(3)); // sd of (0.1, 0.3, 0.2) is 0.1
  close(d.low!, 0.2 - half);
  close(d.high!, 0.2 + half);
  assert.equal(pairedVerdict(d), '0', 'the interval [-0.05, 0.45] includes 0');
  // The same mean with a small spread is established.
  const tight = pairedDifference(new Map([[0, 1.2], [1, 2.21], [2, 3.19]]), b)!;
  assert.equal(pairedVerdict(tight), '+');
  // Pairing removes the spread the seeds share: a constant shift over very different seeds is certain.
  const shifted = pairedDifference(new Map([[0, 0.9], [1, 4.9], [2, 2.9]]), new Map([[0, 1], [1, 5], [2, 3]]))!;
  assert.equal(pairedVerdict(shifted), '-');
  const one = pairedDifference(new Map([[0, 1]]), new Map([[0, 2]]))!;
  assert.equal(one.low, null);
  assert.equal(pairedVerdict(one), null);
  assert.equal(pairedDifference(new Map([[5, 1]]), b), null);
});

test('valueAt interpolates a curve and is null outside it', () => {
  const c: [number, number][] = [[100, 8], [200, 6], [400, 5]];
  assert.equal(valueAt(c, 100), 8);
  assert.equal(valueAt(c, 150), 7);
  assert.equal(valueAt(c, 300), 5.5);
  assert.equal(valueAt(c, 400), 5);
  assert.equal(valueAt(c, 50), null);
  assert.equal(valueAt(c, 401), null);
});

test('modelled seconds: each phase at its own cost per step; a missing cost gives null', () => {
  const phases = [{ fromStep: 0, kind: 'tied', depth: 12 }, { fromStep: 100, kind: 'untied', depth: 12 }];
  const costs = { 'tied@12': 0.5, 'untied@12': 0.6 };
  assert.deepEqual(modelledSeconds(phases, costs, [0, 50, 100, 300]), [0, 25, 50, 50 + 200 * 0.6]);
  // Growth: 3 layers, then 6, then 12, each at its depth's cost.
  const grow = [{ fromStep: 0, kind: 'untied', depth: 3 }, { fromStep: 10, kind: 'untied', depth: 6 }, { fromStep: 30, kind: 'untied', depth: 12 }];
  const c2 = { 'untied@3': 0.1, 'untied@6': 0.2, 'untied@12': 0.4 };
  const [s] = modelledSeconds(grow, c2, [40]);
  close(s!, 10 * 0.1 + 20 * 0.2 + 10 * 0.4);
  assert.deepEqual(modelledSeconds(phases, { 'tied@12': 0.5 }, [50, 150]), [25, null]);
});

function run(variant: RunRecord['variant'], seed: number, losses: number[]): RunRecord {
  return {
    point: '', variant, seed, runDir: `/x/${variant}-${seed}`, steps: (losses.length - 1) * 100, threads: 1,
    evals: losses.map((l, i) => ({ step: i * 100, seconds: i * 10, valLoss: l, valAcc: 0.5 - l / 20 })),
    unigramValLoss: 7, unigramValAcc: 0.05, untiedAt: null, events: [], checks: [], threshold: null, downstream: null, seconds: 0,
  };
}

test('levels: targets at 25/50/75/100% of the baseline run; ratios per seed against the baseline\'s own steps', () => {
  // baseline: 8 7 6 5 4 over steps 0..400; swe-f: twice as fast early (6 at step 100), then equal.
  const runs = [run('baseline', 0, [8, 7, 6, 5, 4]), run('swe-f', 0, [8, 6, 5.5, 5, 4.5])];
  const [p] = summarize(runs, { variants: ['baseline', 'swe-f'] });
  const swe = p.variants.find((v) => v.variant === 'swe-f')!;
  const base = p.variants.find((v) => v.variant === 'baseline')!;
  // 25% of 400 steps = step 100: target 7; swe-f reaches 7 at step 50 (8 -> 6 over 0..100): ratio 0.5.
  close(swe.levels[0].target.mean, 7);
  close(swe.levels[0].steps!.mean, 50);
  close(swe.levels[0].ratio!.mean, 0.5);
  // 50%: target 6, swe-f at 100: ratio 0.5. 75%: target 5, swe-f at 300: ratio 1.
  close(swe.levels[1].ratio!.mean, 0.5);
  close(swe.levels[2].ratio!.mean, 1);
  // 100%: target 4, never reached.
  assert.equal(swe.levels[3].steps, null);
  assert.equal(swe.levels[3].missed, 1);
  // Seconds follow the evals' seconds (10 per 100 steps): the same ratios.
  close(swe.levels[0].secondsRatio!.mean, 0.5);
  // The baseline against itself: ratio 1 at every level.
  for (const l of base.levels) close(l.ratio!.mean, 1);
  // Paired final loss: +0.5 on the one seed, no interval.
  close(swe.paired.val_loss!.mean, 0.5);
  assert.equal(swe.paired.val_loss!.low, null);
  const printed = formatSummary([p], 'test machine', 1);
  assert.match(printed, /speed-up curve/);
  assert.match(printed, /swe-f\s+0\.50\s+0\.50\s+1\.00\s+- \(1 missed\)\s+\+0\.5000 \(1 seed\)/);
});

test('paired differences in summarize use the same seeds of both variants', () => {
  const runs = [
    run('baseline', 0, [8, 6, 5]), run('baseline', 1, [8, 6.2, 5.2]), run('baseline', 2, [8, 6.1, 5.4]),
    run('albert', 0, [8, 6, 5.1]), run('albert', 1, [8, 6.2, 5.3]), run('albert', 2, [8, 6.1, 5.5]),
  ];
  const [p] = summarize(runs, { variants: ['baseline', 'albert'] });
  const a = p.variants.find((v) => v.variant === 'albert')!;
  // Every seed is exactly 0.1 worse: the mean is 0.1 and the interval has no width.
  close(a.paired.val_loss!.mean, 0.1);
  close(a.paired.val_loss!.low!, 0.1, 1e-9);
  assert.equal(pairedVerdict(a.paired.val_loss), '+');
  // The unpaired difference of the same runs is within its spread: pairing is what establishes it.
  assert.equal(a.vsBaseline.val_loss.exceedsSpread, false);
});
