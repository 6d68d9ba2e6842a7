// scripts/study.ts as a user meets it: a mistyped option or variant name is
// refused with one line before anything trains, and `--rerun` trains a
// recorded run again and holds it to its committed record (same seed, same
// thread count: the same losses, step for step).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lockHolder, LOCK_FILE } from '../src/train/runlock.js';

const root = path.resolve(import.meta.dirname, '..');
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'study');

function study(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', 'study.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, UNTIE_BACKEND: 'native' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('study.ts refuses a mistyped option, plan or variant in one line that names the fix, and trains nothing', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-study-cli-'));
  try {
    const cases: [string[], RegExp][] = [
      [['fixture-tiny', '--out', out, '--hlep'], /^Unknown option '--hlep' \(did you mean --help\?\)/],
      [['fixture-tny', '--out', out], /^no plan "fixture-tny" \(did you mean fixture-tiny\?\)/],
      [['fixture-tiny', '--out', out, '--only', 'baseline-s0,albrt-s1'], /^--only: "albrt-s1" is not a variant of plan fixture-tiny \(did you mean albert-s1\?\)/],
      [['fixture-tiny', '--out', out, '--jobs', '0'], /^--jobs must be a whole number >= 1/],
      [['fixture-tiny', '--out', out, '--rerun'], /^--rerun trains recorded runs again: name them with --only/],
    ];
    for (const [args, message] of cases) {
      const r = study(...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
    }
    assert.deepEqual(fs.readdirSync(out), [], 'nothing trained');
    const help = study('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--only VALUE/);
    assert.match(help.stdout, /plans: .*fixture-tiny/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('untie-settings.ts refuses a mistyped option or setting, or an untie step past the run, in one line, and trains nothing', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-settings-cli-'));
  try {
    const cases: [string[], RegExp][] = [
      [['--stpes', '10'], /^Unknown option '--stpes' \(did you mean --steps\?\)/],
      [['--only', 'mean-cpy'], /^--only: no setting "mean-cpy" \(did you mean mean-copy\?\)/],
      [['--steps', '10', '--untie-at', '20'], /^--untie-at 20 must be below --steps 10/],
      [['--seeds', '0,x'], /^--seeds must be a whole number >= 0, got "x"/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', 'untie-settings.ts'), '--out', out, ...args], { cwd: root, encoding: 'utf8' });
      assert.notEqual(r.status, 0, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
    }
    assert.deepEqual(fs.readdirSync(out), [], 'nothing trained');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('--list says which variants are recorded, and --rerun reproduces a record exactly or says where it differs, keeping the record', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-study-rerun-'));
  try {
    const records = path.join(dir, 'records'), out = path.join(dir, 'out');
    fs.cpSync(FIXTURE, records, { recursive: true });
    const list = study('fixture-tiny', '--records', records, '--out', out, '--list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /baseline-s0 +recorded/);
    assert.match(list.stdout, /6 of 6 recorded/);

    // One record is altered at step 30: its rerun must notice; the other's must match.
    const tampered = path.join(records, 'runs', 'baseline-s1', 'metrics.jsonl');
    const lines = fs.readFileSync(tampered, 'utf8').split('\n').map((l) => {
      if (!l.startsWith('{')) return l;
      const r = JSON.parse(l) as { type: string; step: number; val_loss?: number };
      return r.type === 'eval' && r.step === 30 ? JSON.stringify({ ...r, val_loss: r.val_loss! + 1e-3 }) : l;
    });
    fs.writeFileSync(tampered, lines.join('\n'));
    const before = fs.readFileSync(tampered, 'utf8');
    const r = study('fixture-tiny', '--records', records, '--out', out, '--only', 'baseline-s0,baseline-s1', '--rerun', '--jobs', '2');
    assert.match(r.stderr, /baseline-s0: the rerun matches its committed record at all 6 evaluations/);
    assert.match(r.stderr, /baseline-s1: the rerun differs from its committed record at step 30/);
    assert.notEqual(r.code, 0);
    assert.equal(fs.readFileSync(tampered, 'utf8'), before, 'the record is kept');
    assert.ok(fs.existsSync(path.join(out, 'baseline-s1', 'metrics.jsonl')), 'the rerun is kept beside it');

    // A record lost is trained again and written anew: the same evaluations, and its checkpoint named
    // inside the run folder, not by this machine's path to it.
    const lost = path.join(records, 'runs', 'albert-s0');
    fs.rmSync(lost, { recursive: true });
    const again = study('fixture-tiny', '--records', records, '--out', out, '--only', 'albert-s0');
    assert.equal(again.code, 0, again.stderr);
    const read = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; path?: string });
    const evals = (dir: string) => read(dir).filter((e) => e.type === 'eval').map((e) => ({ ...e, elapsed: 0 }));
    assert.deepEqual(evals(lost), evals(path.join(FIXTURE, 'runs', 'albert-s0')));
    assert.deepEqual(read(lost).filter((e) => e.type === 'checkpoint').map((e) => e.path), ['checkpoint-60']);
    assert.ok(!fs.readFileSync(path.join(lost, 'metrics.jsonl'), 'utf8').includes(out), 'no folder of this machine in the metrics');
    // results.json keeps each check's pooled cosines; the per-tensor ones stay in the records.
    const written = fs.readFileSync(path.join(records, 'results.json'), 'utf8');
    const albert = (JSON.parse(written) as { runs: { variant: string; seed: number; checks: { cosines: number[] }[] }[] }).runs.find((x) => x.variant === 'albert' && x.seed === 0)!;
    assert.equal(albert.checks.length, 3, 'every 20th of 60 steps: the plan\'s --check-every, which never honours');
    assert.ok(albert.checks.every((c) => c.cosines.length === 3 && c.cosines.every(Number.isFinite)));
    assert.ok(!written.includes('perTensor'), 'no per-tensor cosines in results.json');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('lockHolder: a live process holding a run folder is named; a dead one or none is not', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-lock-'));
  try {
    assert.equal(lockHolder(dir), null);
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), started: 'now' }));
    assert.equal(lockHolder(dir)?.pid, process.pid);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: Number(dead), host: os.hostname(), started: 'then' }));
    assert.equal(lockHolder(dir), null);
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: Number(dead), host: 'another-host', started: 'then' }));
    assert.equal(lockHolder(dir)?.host, 'another-host', 'another host\'s lock cannot be checked, so it counts');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
