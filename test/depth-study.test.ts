// The depth study's answer from its runs (scripts/depth-study.ts): which hop
// count is the target, when each run first reaches it, and the difference
// from the baseline with its standard error, on runs whose numbers are known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGET, depthTable, reached, summarizeDepth, type DepthRun } from '../scripts/depth-study.js';

/** A run whose accuracy on hop count k at evaluation i is acc[k][i] (evaluations every 100 steps, 2 s each). */
function run(name: string, acc: Record<string, number[]>, untiedAt: number | null = null): DepthRun {
  const n = Object.values(acc)[0].length;
  const evals = Array.from({ length: n }, (_, i) => ({
    step: 100 * (i + 1), elapsed: 2 * (i + 1), val_acc_by_difficulty: Object.fromEntries(Object.entries(acc).map(([k, a]) => [k, a[i]])),
  }));
  return { variant: name, evals, untiedAt };
}

test('the target is the hardest hop count every baseline seed ends at or above the target; steps are each run\'s first evaluation there', () => {
  const runs = [
    // Both baselines learn 2 hops; only seed 0 learns 3, so 3 is not the target.
    run('L8-baseline-seed0', { 1: [0.5, 0.95, 1, 1], 2: [0.2, 0.5, 0.91, 0.99], 3: [0.2, 0.3, 0.5, 0.95] }),
    run('L8-baseline-seed1', { 1: [0.6, 0.99, 1, 1], 2: [0.2, 0.95, 0.97, 0.98], 3: [0.2, 0.2, 0.3, 0.4] }),
    // Dips below the target after reaching it: the first evaluation at or above it counts.
    run('L8-swe-f-seed0', { 1: [1, 1, 1, 1], 2: [0.9, 0.8, 0.95, 0.99], 3: [0.2, 0.2, 0.2, 0.2] }, 200),
    run('L8-swe-f-seed1', { 1: [1, 1, 1, 1], 2: [0.5, 0.6, 0.7, 0.92], 3: [0.2, 0.2, 0.2, 0.2] }, 200),
    run('L8-albert-seed0', { 1: [0.2, 0.2, 0.2, 0.2], 2: [0.2, 0.2, 0.2, 0.2], 3: [0.2, 0.2, 0.2, 0.2] }),
    // Not a study run's name (a mechanism run): left out of the summary.
    run('L8-tied-start-seed0', { 1: [1, 1, 1, 1], 2: [1, 1, 1, 1], 3: [1, 1, 1, 1] }),
  ];
  assert.equal(TARGET, 0.9);
  const [point] = summarizeDepth(runs);
  assert.equal(point.layers, 8);
  assert.equal(point.level, 2);
  const row = (v: string) => point.rows.find((r) => r.variant === v)!;
  assert.deepEqual(point.rows.map((r) => r.variant), ['baseline', 'albert', 'swe-f']);
  assert.deepEqual(row('baseline').steps, [300, 200]);
  assert.deepEqual(row('baseline').seconds, [6, 4]);
  assert.deepEqual(row('swe-f').steps, [100, 400]);
  assert.deepEqual(row('swe-f').untiedAt, [200, 200]);
  assert.deepEqual(row('albert').steps, [null]);
  assert.deepEqual(row('albert').finalAcc, [0.2]);
  assert.equal(row('albert').stepsStat, null);
  // swe-f: mean 250, sd 212.1; baseline: mean 250, sd 70.7; SE = sqrt(212.1^2/2 + 70.7^2/2) = 158.1.
  const vs = row('swe-f').vsBaseline!;
  assert.equal(vs.diff, 0);
  assert.ok(Math.abs(vs.se - Math.sqrt((2 * 150 ** 2) / 2 + (2 * 50 ** 2) / 2)) < 1e-9, `SE ${vs.se}`);
  assert.equal(vs.beyond2se, false);
  assert.equal(row('albert').vsBaseline, null, 'no difference without two seeds that reached the target');
  assert.match(depthTable([point]), /albert +steps — .*seed 0: never \(20\.0%\)/);
});

test('a depth whose baselines do not all learn any hop count has no target, and nothing reaches it', () => {
  const runs = [
    run('L16-baseline-seed0', { 1: [0.5, 0.95], 2: [0.2, 0.3] }),
    run('L16-baseline-seed1', { 1: [0.5, 0.6], 2: [0.2, 0.3] }),
    run('L16-swe-f-seed0', { 1: [1, 1], 2: [1, 1] }),
  ];
  const [point] = summarizeDepth(runs);
  assert.equal(point.level, null);
  assert.deepEqual(point.rows.find((r) => r.variant === 'swe-f')!.steps, [null]);
  assert.equal(reached(runs[2], 1)?.step, 100);
  assert.equal(reached(runs[1], 1), null);
});
