// A study's results and report from its committed records alone
// (src/experiments/study.ts): the fixture test/fixtures/study is a comparison
// in miniature, made by
//   node --import tsx scripts/study.ts fixture-tiny --records test/fixtures/study --jobs 2
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { phasePlans, phasesOf, recordFinished, shapeOf, studyResults, type StudyCell } from '../src/experiments/study.js';
import { compareView, writeCompareReport } from '../src/report/compare.js';
import type { Block, LineChart } from '../src/report/blocks.js';
import { defaultRunConfig } from '../src/train/config.js';
import { variantConfig } from '../src/experiments/compare.js';
import { configFromFlags, trainFlags } from '../src/cli/train.js';
import { parse } from '../src/cli/args.js';
import { PLANS } from '../scripts/study-plans.js';
import { modelledSeconds } from '../src/experiments/speedup.js';
import { parseShare, planGroups } from '../src/sharing/plan.js';
import { readMetrics } from '../src/train/metrics.js';
import { CHROMIUM } from '../scripts/chromium.js';
import { checkPage } from '../scripts/chromium.js';

const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'study');
const cells: StudyCell[] = [0, 1].flatMap((seed) => (['baseline', 'albert', 'swe-f'] as const).map((variant) => ({ name: `${variant}-s${seed}`, point: '', variant, seed })));

test('phases: untied runs are one phase; shared runs tied until their untie; growth starts a phase at its depth', () => {
  const cfg = defaultRunConfig('tiny');
  cfg.model.layers = 12;
  cfg.sharing.share = '12x1';
  assert.deepEqual(phasesOf(cfg, []), [{ fromStep: 0, kind: 'untied', depth: 12 }]);
  cfg.sharing.share = '1x12';
  assert.deepEqual(phasesOf(cfg, [{ type: 'untie', step: 300 }]), [{ fromStep: 0, kind: 'tied', depth: 12 }, { fromStep: 300, kind: 'untied', depth: 12 }]);
  assert.deepEqual(phasesOf(cfg, []), [{ fromStep: 0, kind: 'tied', depth: 12 }], 'never untied: tied to the end');
  // SWE-M: tied (in part) until its last split.
  assert.deepEqual(phasesOf(cfg, [{ type: 'split', step: 100 }, { type: 'split', step: 250 }]).map((p) => p.fromStep), [0, 250]);
  cfg.sharing.share = '12x1';
  const grown = phasesOf(cfg, [{ type: 'grow', step: 100, from: 3, to: 6 }, { type: 'grow', step: 400, from: 6, to: 12 }]);
  assert.deepEqual(grown, [{ fromStep: 0, kind: 'untied', depth: 3 }, { fromStep: 100, kind: 'untied', depth: 6 }, { fromStep: 400, kind: 'untied', depth: 12 }]);
});

test('phases of --grow-tied: each growth\'s copies tied to their source until their untie; an untie and a growth at one step leave the growth\'s plan', () => {
  const cfg = defaultRunConfig('tiny');
  cfg.model.layers = 12;
  cfg.sharing.share = '12x1';
  cfg.sharing.grow = '3@0,6@0.125,12@0.3';
  cfg.sharing.growTied = true;
  const pairs = (k: number, d: number) => Array.from({ length: k }, (_, j) => Array.from({ length: d / k }, (_, r) => j + r * k));
  const untied = (d: number) => Array.from({ length: d }, (_, i) => [i]);
  // As the stack-swe run of the 12-layer study logged them: untie at 6 layers, then grow, then untie at 12.
  const phases = phasesOf(cfg, [
    { type: 'grow', step: 375, from: 3, to: 6, groups: pairs(3, 6) },
    { type: 'untie', step: 855, groups: untied(6) },
    { type: 'grow', step: 900, from: 6, to: 12, groups: pairs(6, 12) },
    { type: 'untie', step: 1500, groups: untied(12) },
  ]);
  assert.deepEqual(phases.map((p) => `${p.fromStep}:${p.kind}@${p.depth}`), ['0:untied@3', '375:tied-3x2@6', '855:untied@6', '900:tied-6x2@12', '1500:untied@12']);
  // Still tied at the second growth: the copies join the first growth's groups (3 groups of 4).
  const still = phasesOf(cfg, [{ type: 'grow', step: 375, from: 3, to: 6, groups: pairs(3, 6) }, { type: 'grow', step: 900, from: 6, to: 12, groups: pairs(3, 12) }]);
  assert.deepEqual(still.map((p) => `${p.fromStep}:${p.kind}@${p.depth}`), ['0:untied@3', '375:tied-3x2@6', '900:tied-3x4@12']);
  // An untie in the same step as a growth comes first in the records: the growth's plan is what the next steps run.
  const same = phasesOf(cfg, [
    { type: 'grow', step: 375, from: 3, to: 6, groups: pairs(3, 6) },
    { type: 'untie', step: 900, groups: untied(6) },
    { type: 'grow', step: 900, from: 6, to: 12, groups: pairs(6, 12) },
  ]);
  assert.deepEqual(same.map((p) => `${p.fromStep}:${p.kind}@${p.depth}`), ['0:untied@3', '375:tied-3x2@6', '900:tied-6x2@12']);
  // Every phase is one the study times, at the --share that reproduces its groups (planGroups: group j holds j, j + A, ...).
  const plans = phasePlans(cfg);
  assert.deepEqual(plans.map((p) => `${p.kind}@${p.depth}`), ['untied@3', 'untied@6', 'untied@12', 'tied-3x2@6', 'tied-6x2@12', 'tied-3x4@12']);
  for (const p of plans) if (p.kind.startsWith('tied-')) assert.deepEqual(planGroups(parseShare(p.share, p.layers)), pairs(Number(p.share.split('x')[0]), p.layers));
  for (const p of [...phases, ...still, ...same]) assert.ok(plans.some((q) => q.kind === p.kind && q.depth === p.depth), `${p.kind}@${p.depth} is timed`);
  // Modelled seconds: each phase's steps at its own cost, the same-step pair adding nothing.
  const costs = { 'untied@3': 1, 'tied-3x2@6': 2, 'untied@6': 3, 'tied-6x2@12': 5 };
  assert.deepEqual(modelledSeconds(same, costs, [375, 900, 1000]), [375, 375 + 525 * 2, 375 + 525 * 2 + 100 * 5]);
  cfg.sharing.growTied = false;
  assert.deepEqual(phasePlans(cfg).map((p) => `${p.kind}@${p.depth}`), ['untied@3', 'untied@6', 'untied@12']);
  // A growth from one layer ties its copies in one group: the all-tied plan, named as phaseKind names it.
  cfg.model.layers = 4;
  cfg.sharing.grow = '1@0,2@0.2,4@0.5';
  cfg.sharing.growTied = true;
  assert.deepEqual(phasePlans(cfg).map((p) => `${p.kind}@${p.depth}`), ['untied@1', 'untied@2', 'untied@4', 'tied@2', 'tied-2x2@4', 'tied@4']);
});

test('past-unigram: each 12-layer cell is the plan\'s baseline config with the flags untie compare gives its variant', () => {
  const plan = PLANS['past-unigram'];
  const configOf = (name: string) => configFromFlags(parse('train', [...plan.common, ...plan.variants[name]], trainFlags()).values);
  const cells = plan.cells!.filter((c) => c.point === '12 layers');
  assert.deepEqual([...new Set(cells.map((c) => c.variant))].sort(), ['albert', 'baseline', 'baseline-half', 'stack', 'stack-swe', 'swe-a', 'swe-f']);
  for (const c of cells) {
    const base = configOf(`L12-baseline-s${c.seed}`);
    const want = variantConfig(base, c.variant, c.seed, { sweFFraction: 0.1, evalsPerRun: 30 });
    const got = configOf(c.name);
    assert.deepEqual(got.sharing, want.sharing, `${c.name}: sharing`);
    assert.deepEqual([got.model, got.data, got.train.steps, got.train.seed, got.train.lr], [want.model, want.data, want.train.steps, want.train.seed, want.train.lr], c.name);
  }
});

test('the study\'s results come from its committed records: every cell, paired seeds, levels', () => {
  for (const c of cells) assert.ok(recordFinished(path.join(FIXTURE, 'runs', c.name)), `${c.name} is a finished record`);
  const res = studyResults({ recordsDir: FIXTURE, cells, variants: ['baseline', 'albert', 'swe-f'], createdBy: 'test', machine: 'test machine' });
  assert.deepEqual(res.missing, []);
  assert.equal(res.runs.length, 6);
  const [p] = res.summary;
  const base = p.variants.find((v) => v.variant === 'baseline')!;
  const swe = p.variants.find((v) => v.variant === 'swe-f')!;
  // The targets are the baseline's own final losses, read from its metrics.
  const finals = [0, 1].map((s) => readMetrics(path.join(FIXTURE, 'runs', `baseline-s${s}`, 'metrics.jsonl')).filter((r) => r.type === 'eval').at(-1)!.val_loss as number);
  assert.ok(Math.abs(p.target!.mean - (finals[0] + finals[1]) / 2) < 1e-12);
  assert.equal(swe.paired.val_loss!.n, 2);
  assert.deepEqual(swe.untiedAt, [10, 10]);
  assert.equal(base.levels.length, 4);
  for (const l of base.levels) assert.ok(Math.abs(l.ratio!.mean - 1) < 1e-9, 'the baseline against itself');
});

test('modelled seconds: steps times each phase\'s measured cost, not the seconds logged side by side', () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'runs', 'swe-f-s0', 'config.json'), 'utf8'));
  const shape = shapeOf({ ...defaultRunConfig('tiny'), ...cfg });
  const timing = { machine: 'test', how: 'made up', costs: { [shape]: { 'tied@4': 0.01, 'untied@4': 0.02 } } };
  const res = studyResults({ recordsDir: FIXTURE, cells, variants: ['baseline', 'albert', 'swe-f'], createdBy: 'test', machine: 'test', timing });
  const swe = res.runs.find((r) => r.variant === 'swe-f' && r.seed === 0)!;
  // Untied at step 10: 10 steps at 0.01, then 0.02 a step.
  for (const e of swe.evals) assert.ok(Math.abs(e.seconds - (Math.min(e.step, 10) * 0.01 + Math.max(0, e.step - 10) * 0.02)) < 1e-12);
  const albert = res.runs.find((r) => r.variant === 'albert' && r.seed === 1)!;
  assert.ok(Math.abs(albert.seconds - 60 * 0.01) < 1e-12);
  // A shape the timing does not cover is an error that says what to do.
  assert.throws(() => studyResults({ recordsDir: FIXTURE, cells, variants: ['baseline'], createdBy: 'test', machine: 'test', timing: { ...timing, costs: {} } }), /time it again \(--time\)/);
});

test('an unfinished cell is left out and named; a study with nothing finished is an error', () => {
  const res = studyResults({ recordsDir: FIXTURE, cells: [...cells, { name: 'baseline-s7', point: '', variant: 'baseline', seed: 7 }], variants: ['baseline'], createdBy: 'test', machine: 'test' });
  assert.deepEqual(res.missing, ['baseline-s7']);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-study-'));
  try {
    assert.throws(() => studyResults({ recordsDir: empty, cells, variants: ['baseline'], createdBy: 'test', machine: 'test' }), /holds no finished run/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

/** Every chart of a page's blocks, sections and grids included. */
function chartsOf(blocks: Block[]): LineChart[] {
  return blocks.flatMap((b) => (b.kind === 'line' ? [b] : b.kind === 'section' || b.kind === 'grid' ? chartsOf(b.blocks) : []));
}

test('a point where only the baseline finished is left out; the paired chart is each run minus its seed\'s baseline', () => {
  const res = studyResults({
    recordsDir: FIXTURE, cells: [...cells, { name: 'baseline-s0', point: 'only baselines', variant: 'baseline', seed: 0 }],
    variants: ['baseline', 'albert', 'swe-f'], createdBy: 'test', machine: 'test',
  });
  assert.deepEqual(res.summary.map((p) => p.point), ['']);
  assert.equal(res.runs.length, 6);
  const paired = chartsOf(compareView(res, 'x').blocks).find((c) => c.id === 'p0-paired');
  assert.ok(paired, 'the comparison has a paired-difference chart');
  assert.equal(paired.series.length, 4, 'albert and swe-f, two seeds each; no baseline line');
  const evals = (name: string) => readMetrics(path.join(FIXTURE, 'runs', name, 'metrics.jsonl')).filter((r) => r.type === 'eval');
  const swe = evals('swe-f-s1'), base = evals('baseline-s1');
  const line = paired.series.find((s) => s.label === 'swe-f seed 1')!;
  assert.equal(line.x.length, swe.length);
  line.x.forEach((step, i) => {
    const a = swe.find((e) => e.step === step)!.val_loss as number, b = base.find((e) => e.step === step)!.val_loss as number;
    assert.ok(Math.abs(line.y[i]! - (a - b)) < 1e-12, `step ${step}`);
  });
});

test('markers: one label for an event of a variant within 2% of the axis across seeds, a line at each place; events further apart keep their own labels', () => {
  const base = studyResults({ recordsDir: FIXTURE, cells, variants: ['baseline', 'albert', 'swe-f'], createdBy: 'test', machine: 'test' });
  const withUntie = (steps: Record<number, number>) => ({
    ...base,
    runs: base.runs.map((r) => (r.variant === 'swe-f' ? { ...r, events: r.events.map((e) => (e.type === 'untie' ? { ...e, step: steps[r.seed] } : e)) } : r)),
  });
  const stepMarkers = (res: typeof base) => chartsOf(compareView(res, 'x').blocks).find((c) => c.id === 'p0-valLoss-step')!.markers!.filter((m) => m.label === '' || m.label.startsWith('swe-f'));
  const reason = base.runs.find((r) => r.variant === 'swe-f')!.events.find((e) => e.type === 'untie')!.reason;
  const what = `untie${reason ? ` (${reason})` : ''}`;
  // 60-step runs: steps 10 and 11 are within 2% (1.2 steps) of each other, 10 and 40 are not.
  assert.deepEqual(stepMarkers(withUntie({ 0: 10, 1: 11 })).map((m) => [m.x, m.label]), [[10, `swe-f s0,1: ${what}`], [11, '']]);
  assert.deepEqual(stepMarkers(withUntie({ 0: 10, 1: 10 })).map((m) => [m.x, m.label]), [[10, `swe-f s0,1: ${what}`]]);
  assert.deepEqual(stepMarkers(withUntie({ 0: 40, 1: 10 })).map((m) => [m.x, m.label]), [[10, `swe-f s1: ${what}`], [40, `swe-f s0: ${what}`]]);
});

test('the study\'s report renders in Chromium from the records alone, with the speed-up curve', { skip: chromiumMissing }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-study-report-'));
  try {
    const res = studyResults({ recordsDir: FIXTURE, cells, variants: ['baseline', 'albert', 'swe-f'], createdBy: 'test', machine: 'test machine' });
    const file = writeCompareReport(res, out, 'studies/fixture');
    const html = fs.readFileSync(file, 'utf8');
    assert.match(html, /The speed-up as a curve/);
    assert.match(html, /seeds 0, 1/);
    for (const local of [out, FIXTURE, os.homedir()]) assert.ok(!html.includes(local), `no path of this machine on the page (${local})`);
    await checkPage(file, path.join(out, 'report.png'), { waitFor: 'canvas' });
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
