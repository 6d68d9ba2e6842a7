// A study's results and report from its committed records alone
// (src/experiments/study.ts): the fixture test/fixtures/study is a comparison
// in miniature, made by
//   node --import tsx scripts/study.ts fixture-tiny --records test/fixtures/study --jobs 2
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { phasesOf, recordFinished, shapeOf, studyResults, type StudyCell } from '../src/experiments/study.js';
import { writeCompareReport } from '../src/report/compare.js';
import { defaultRunConfig } from '../src/train/config.js';
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
