// Seeing a run: reading metrics.jsonl while it is written, the charts built
// from a real run's records, `untie report`, the live server (`untie serve`,
// `train --ui`) and, in headless Chromium, the page itself following a run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { UntieError } from '../src/errors.js';
import { main } from '../src/cli/main.js';
import { defaultRunConfig, mergeConfig, type RunConfig } from '../src/train/config.js';
import { prepareData } from '../src/train/data.js';
import { readMetrics, type MetricRecord } from '../src/train/metrics.js';
import { train } from '../src/train/trainer.js';
import type { Block, GroupBands, Heatmap, LineChart, View } from '../src/report/blocks.js';
import { renderPage, viewOfPage } from '../src/report/page.js';
import { MetricsFollower, readRun } from '../src/report/read.js';
import { lossChart, runView, secondsClock, summaryTable } from '../src/report/run.js';
import { startServer } from '../src/serve/server.js';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';

const repoRoot = path.resolve(import.meta.dirname, '..');

let root: string;
let corpus: string;
let tokenizerDir: string;
let runDir: string;
let records: MetricRecord[];

function config(name: string, patch: object = {}): RunConfig {
  const cfg = mergeConfig(defaultRunConfig('tiny'), {
    name, outDir: root,
    model: { layers: 4, hidden: 32, heads: 2, intermediate: 64, maxPositions: 32 },
    data: { corpus, seqLen: 32, vocabSize: 1000, evalBatches: 2 },
    train: { steps: 40, batchSize: 4, lr: 3e-3, threads: 1, logEvery: 2, evalEvery: 10, saveEvery: 0, keepLast: 1 },
    // SWE-A checking every 2 steps; rho 0.95 and the deadline at half the run make it untie within the run.
    sharing: { share: '1x4', untie: 'adaptive', checkEvery: 2, patience: 3, threshold: 0.95, untieBy: 0.5 },
  }, 'config');
  return mergeConfig(cfg, patch, 'config');
}

function seedTokenizer(name: string): void {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
  }
}

/** One real short run (tokenizer trained once, outside the runs folder). */
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-report-'));
  corpus = path.join(root, '..', `${path.basename(root)}-corpus`);
  fs.mkdirSync(corpus);
  for (const doc of loadBrown().slice(0, 30)) fs.writeFileSync(path.join(corpus, `${doc.id}.txt`), doc.sentences.map(sentenceText).join('\n') + '\n');
  tokenizerDir = path.join(root, '..', `${path.basename(root)}-tok`);
  await prepareData(config('tok').data, 0, tokenizerDir, 4);
  seedTokenizer('swe-a');
  await train({ config: config('swe-a'), progress: false });
  runDir = path.join(root, 'swe-a');
  records = readMetrics(path.join(runDir, 'metrics.jsonl'));
});

after(() => {
  for (const d of [root, corpus, tokenizerDir, tokenizerDir && `${tokenizerDir}-ui.json`]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** The charts keep about six significant digits of each value. */
function assertNear(drawn: (number | null)[], logged: number[]): void {
  assert.equal(drawn.length, logged.length);
  drawn.forEach((v, i) => assert.ok(v !== null && Math.abs(v - logged[i]) <= 1e-5 * Math.abs(logged[i]), `value ${i}: ${v} drawn for ${logged[i]}`));
}

function chartsOf(view: View): Map<string, Block> {
  const out = new Map<string, Block>();
  const walk = (blocks: Block[]) => {
    for (const b of blocks) {
      if (b.kind === 'section' || b.kind === 'grid') walk(b.blocks);
      else if (b.kind !== 'html') out.set(b.id, b);
    }
  };
  walk(view.blocks);
  return out;
}

test('metrics.jsonl is followed while written: a torn last line waits for its newline, a replaced file starts over', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-follow-'));
  try {
    const file = path.join(dir, 'metrics.jsonl');
    const follower = new MetricsFollower(file);
    assert.equal(follower.poll(), false, 'no file yet: nothing changed');
    const a = JSON.stringify({ type: 'train', step: 1, loss: 7 });
    const b = JSON.stringify({ type: 'eval', step: 2, val_loss: 6.5, val_acc: 0.1 });
    fs.writeFileSync(file, `${a}\nnot json\n["an array"]\n${b.slice(0, 20)}`);
    assert.equal(follower.poll(), true);
    assert.deepEqual(follower.records, [JSON.parse(a)]);
    assert.equal(follower.skippedLines, 2);
    assert.ok(follower.partialLine, 'the torn line is pending');
    assert.equal(follower.poll(), false, 'nothing new');
    fs.appendFileSync(file, `${b.slice(20)}\n`);
    assert.equal(follower.poll(), true);
    assert.deepEqual(follower.records, [JSON.parse(a), JSON.parse(b)]);
    assert.ok(!follower.partialLine);
    // a resumed run rewrites the file (a new inode): the follower starts over
    const c = JSON.stringify({ type: 'train', step: 1, loss: 6.9 });
    fs.writeFileSync(`${file}.tmp`, `${c}\n`);
    fs.renameSync(`${file}.tmp`, file);
    assert.equal(follower.poll(), true);
    assert.deepEqual(follower.records, [JSON.parse(c)]);
    assert.equal(follower.skippedLines, 0);
    // readRun: a torn last line is left out and said so; a whole last line without its newline is kept
    fs.writeFileSync(file, `${a}\n${b.slice(0, 10)}`);
    const torn = readRun(dir);
    assert.deepEqual(torn.records, [JSON.parse(a)]);
    assert.ok(torn.partialLine);
    fs.writeFileSync(file, `${a}\n${b}`);
    assert.equal(readRun(dir).records.length, 2);
    assert.ok(JSON.stringify(runView(torn)).includes('is incomplete'), 'the page says the last line was left out');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder that is not a run: one clear error saying what to pass', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-notrun-'));
  try {
    assert.throws(() => readRun(dir), (e: unknown) => e instanceof UntieError && /not a run folder: it has neither metrics.jsonl nor config.json/.test(e.message));
    assert.throws(() => readRun(root), (e: unknown) => e instanceof UntieError && /is a folder of runs, not a run: it holds swe-a/.test(e.message) && /untie serve/.test(e.message));
    assert.throws(() => readRun(path.join(dir, 'nope')), /does not exist/);
    fs.writeFileSync(path.join(dir, 'f.txt'), 'x');
    assert.throws(() => readRun(path.join(dir, 'f.txt')), /is a file, not a run folder/);
    fs.mkdirSync(path.join(runDir, 'checkpoint-fake'));
    fs.writeFileSync(path.join(runDir, 'checkpoint-fake', 'config.json'), '{}');
    fs.writeFileSync(path.join(runDir, 'checkpoint-fake', 'model.safetensors'), '');
    assert.throws(() => readRun(path.join(runDir, 'checkpoint-fake')), /is a checkpoint, not a run. Pass its run folder/);
    fs.rmSync(path.join(runDir, 'checkpoint-fake'), { recursive: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the charts of a real run hold its records: losses, untie marker, cosines per pair and tensor, the plan over time', () => {
  const run = readRun(runDir);
  const charts = chartsOf(runView(run));
  const train = records.filter((r) => r.type === 'train');
  const evals = records.filter((r) => r.type === 'eval');
  const checks = records.filter((r) => r.type === 'sharing_check');
  const untie = records.find((r) => r.type === 'untie');
  assert.ok(untie, 'the run untied');
  assert.ok(checks.length >= 3, 'the run logged checks before untying');
  assert.ok(evals.length >= 4);

  const loss = charts.get('loss-step') as LineChart;
  const trainSeries = loss.series.find((s) => s.label === 'train')!;
  assert.deepEqual(trainSeries.x, train.map((r) => r.step));
  assertNear(trainSeries.y, train.map((r) => r.loss as number));
  assertNear(loss.series.find((s) => s.label === 'validation')!.y, evals.map((r) => r.val_loss as number));
  assertNear(loss.series.find((s) => s.label === 'unigram (validation)')!.y, evals.map((r) => r.unigram_val_loss as number));
  assertNear((charts.get('loss-seconds') as LineChart).series.find((s) => s.label === 'validation')!.x as number[], evals.map((r) => r.elapsed as number));
  const acc = charts.get('accuracy-step') as LineChart;
  assertNear(acc.series.find((s) => s.label === 'train')!.y, train.map((r) => 100 * (r.acc as number)));

  // the untie marker, with its reason, on every chart drawn against steps
  const label = `untie (${String(untie.reason)}) @${untie.step}`;
  for (const id of ['loss-step', 'accuracy-step', 'lr', 'grad-norm', 'throughput', 'cosine-lines', 'cosine-heatmap', 'groups']) {
    const c = charts.get(id) as LineChart | Heatmap | GroupBands;
    assert.deepEqual(c.markers, [{ x: untie.step, label }], id);
  }
  // against seconds, at the training second of the untie step
  const seconds = (charts.get('loss-seconds') as LineChart).markers![0];
  assertNear([seconds.x], [secondsClock(run)(untie.step)!]);

  // heatmap: rows are the adjacent pairs, columns the checks, cells the logged cosines
  const heat = charts.get('cosine-heatmap') as Heatmap;
  assert.deepEqual(heat.rows, ['0–1', '1–2', '2–3']);
  assert.deepEqual(heat.columns, checks.map((r) => r.step));
  assert.equal(heat.pivot?.value, 0.95);
  const pairs = (r: MetricRecord) => r.pairs as { a: number; cosine: number; perTensor: Record<string, number> }[];
  for (const a of [0, 1, 2]) assertNear(heat.layers[0].values[a], checks.map((r) => pairs(r).find((p) => p.a === a)!.cosine));
  const tensor = 'attention.self.query.weight';
  const perTensor = heat.layers.find((l) => l.name === tensor)!;
  assertNear(perTensor.values[1], checks.map((r) => pairs(r).find((p) => p.a === 1)!.perTensor[tensor]));
  assert.equal(heat.layers.length, 1 + Object.keys(pairs(checks[0])[0].perTensor).length);
  assert.deepEqual((charts.get('cosine-lines') as LineChart).refLines, [{ y: 0.95, label: 'ρ = 0.95' }]);

  // tied in one group until the untie step, then each layer on its own
  const bands = charts.get('groups') as GroupBands;
  assert.deepEqual(bands.spans.map((s) => [s.from, s.to, s.groupOf]), [[0, untie.step, [0, 0, 0, 0]], [untie.step, 40, [0, 1, 2, 3]]]);
});

test('the same charts overlay several runs, each in its colour, with its own markers (the compare report)', () => {
  const a = readRun(runDir);
  const b = { ...a, name: 'twin', records: a.records.filter((r) => r.type !== 'untie') };
  const loss = lossChart([a, b], 'step');
  assert.deepEqual(loss.series.map((s) => s.label), ['swe-a train', 'swe-a validation', 'swe-a unigram (validation)', 'twin train', 'twin validation', 'twin unigram (validation)']);
  assert.notEqual(loss.series[0].color, loss.series[3].color);
  assert.equal(loss.series[0].color, loss.series[1].color);
  const untie = records.find((r) => r.type === 'untie')!;
  assert.deepEqual(loss.markers, [{ x: untie.step, label: `swe-a: untie (${String(untie.reason)})`, color: loss.series[0].color }]);
  assert.match(summaryTable([a, b]), /<td>twin<\/td>.*<td>tied<\/td>/s);
});

test('seconds at a step: interpolated between logged steps, proportional before the first', () => {
  const run = { ...readRun(runDir), records: [
    { type: 'train', step: 10, elapsed: 2 }, { type: 'train', step: 20, elapsed: 6 }, { type: 'eval', step: 20, val_loss: 5 },
  ] as MetricRecord[] };
  const clock = secondsClock(run);
  assert.equal(clock(5), 1);
  assert.equal(clock(15), 4);
  assert.equal(clock(30), 9);
  assert.equal(secondsClock({ ...run, records: [] })(5), null);
});

test('untie report writes one self-contained report.html; bad input is one clear error', async () => {
  const logs: string[] = [], errors: string[] = [];
  const log = console.log, err = console.error;
  console.log = (...a: unknown[]) => void logs.push(a.join(' '));
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  try {
    assert.equal(await main(['report', runDir]), 0);
    assert.equal(await main(['report', root]), 1);
    assert.equal(await main(['report']), 1);
  } finally {
    console.log = log;
    console.error = err;
  }
  const file = path.join(runDir, 'report.html');
  assert.deepEqual(logs, [`wrote ${file}`]);
  assert.match(errors[0], /^untie report: error: .* is a folder of runs, not a run/);
  assert.match(errors[1], /usage: untie report RUN/);
  const html = fs.readFileSync(file, 'utf8');
  assert.ok(!/(src|href)=["']?https?:/i.test(html) && !/<link /.test(html), 'nothing is fetched');
  assert.deepEqual(viewOfPage(html), JSON.parse(JSON.stringify(runView(readRun(runDir)))), 'the page holds the run view (status aside)');
  // text from run folders (names, paths, config values) cannot end the embedded JSON's <script> early
  const hostile: View = { title: '</script><script>alert(1)</script>', blocks: [{ kind: 'line', id: 'x', title: '<!--', xLabel: '', yLabel: '', series: [] }] };
  const page = renderPage(hostile);
  assert.equal(page.match(/<\/script>/g)!.length, 3, 'only the view, uPlot and the page script close');
  assert.deepEqual(viewOfPage(page), hostile);
});

/** The status of a GET of `rawPath` exactly as written (fetch would normalise "..", "%2e%2e"). */
function rawStatus(port: number, rawPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: rawPath }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

/** Serves a GET and returns status and body. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

test('the server: views as JSON, 204 when unchanged, only run folders, only GET; a port in use names a free one', async () => {
  const server = await startServer({ runsDir: root, port: 0 });
  const blocker = http.createServer();
  try {
    const index = await get(server.url);
    assert.equal(index.status, 200);
    assert.match(JSON.stringify(viewOfPage(index.body)), /href=\\"\/run\/swe-a\\"/);
    const first = JSON.parse((await get(`${server.url}api/run/swe-a/view`)).body) as { version: string; view: View };
    assert.deepEqual(chartsOf(first.view).get('cosine-heatmap'), chartsOf(runView(readRun(runDir))).get('cosine-heatmap'));
    assert.equal((await fetch(`${server.url}api/run/swe-a/view?since=${encodeURIComponent(first.version)}`)).status, 204);
    fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), `${JSON.stringify({ type: 'eval', step: 41, val_loss: 1 })}\n`);
    // polled as the page does: a rebuild may wait a moment (the server spaces out rebuilds of costly views)
    let answer = await get(`${server.url}api/run/swe-a/view?since=${encodeURIComponent(first.version)}`);
    for (let i = 0; answer.status === 204 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      answer = await get(`${server.url}api/run/swe-a/view?since=${encodeURIComponent(first.version)}`);
    }
    const next = JSON.parse(answer.body) as { version: string; view: View };
    assert.notEqual(next.version, first.version);
    assert.equal((chartsOf(next.view).get('loss-step') as LineChart).series.find((s) => s.label === 'validation')!.y.at(-1), 1);
    for (const bad of ['/run/..%2F..%2Fetc', '/run/%00', '/etc/passwd', '/run/a/b', '/api/run/..%5c..']) assert.equal(await rawStatus(server.port, bad), 404, bad);
    assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);

    // a port in use: an error naming a free port, or (for a default port) the next free one
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    await assert.rejects(startServer({ runsDir: root, port: taken }), (e: unknown) => e instanceof UntieError && new RegExp(`port ${taken} on 127.0.0.1 is in use.*--port \\d+`).test(e.message));
    const moved = await startServer({ runsDir: root, port: taken, portFallback: true });
    assert.ok(moved.port > taken);
    await moved.close();
    const errors: string[] = [];
    const err = console.error;
    console.error = (...a: unknown[]) => void errors.push(a.join(' '));
    try {
      assert.equal(await main(['serve', root, '--port', String(taken)]), 1);
      assert.equal(await main(['serve', path.join(root, 'nope')]), 1);
    } finally {
      console.error = err;
    }
    assert.match(errors[0], /^untie serve: error: port \d+ on 127.0.0.1 is in use .* run again with --port \d+/);
    assert.match(errors[1], /does not exist/);
  } finally {
    blocker.close();
    await server.close();
    // restore the run's records for the tests after this one
    fs.writeFileSync(path.join(runDir, 'metrics.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
  }
});

test('train --ui prints the live page, which answers while the run trains, and closes with it', async () => {
  seedTokenizer('ui');
  const logs: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(' '));
  let seen: { status: number; body: string } | null = null;
  try {
    const cfg = config('ui', { train: { steps: 100, evalEvery: 50 } });
    const args = ['train', '--config', writeConfig(cfg), '--name', 'ui', '--out', root, '--quiet', '--ui', '--port', '0'];
    const running = main(args);
    // The URL is printed before the run starts; the page answers between steps.
    while (!logs.some((l) => l.startsWith('live page: '))) await new Promise((r) => setTimeout(r, 5));
    const url = logs.find((l) => l.startsWith('live page: '))!.slice('live page: '.length);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/run\/ui$/);
    seen = await get(url);
    assert.equal(await running, 0);
    await assert.rejects(fetch(url), 'the server closed with the run');
  } finally {
    console.log = log;
  }
  assert.equal(seen.status, 200);
  assert.match(seen.body, /<title>untie run: ui<\/title>/);
  assert.ok(logs.some((l) => l.startsWith('live page closed; to see the run again: untie serve')));
});

function writeConfig(cfg: RunConfig): string {
  const file = `${tokenizerDir}-${cfg.name}.json`; // removed with the other folders after the tests
  const { name: _n, outDir: _o, ...rest } = cfg;
  fs.writeFileSync(file, JSON.stringify(rest));
  return file;
}

// ---- in a real browser

// CI (.ci/run) installs Chromium and sets UNTIE_REQUIRE_CHROMIUM, so there a missing browser fails instead of skipping.
const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;

/** Starts `untie serve DIR --port 0` as its own process and returns its URL. */
async function serveProcess(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    "const m = await import('./src/cli/main.ts'); process.exitCode = await m.main(process.argv.slice(1));", 'serve', dir, '--port', '0'],
  { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const started = Date.now();
  for (;;) {
    const m = /serving .* at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
    if (m) return { child, url: m[1] };
    if (child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`untie serve did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('in Chromium: the live page draws the charts, the untie marker and the heatmap, and follows the run as it writes', { skip: chromiumMissing }, async () => {
  const { child, url } = await serveProcess(root);
  const { browser, close } = await launchChromium();
  const pageErrors: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));

    // the list of runs links to the run
    await page.goto(url);
    await page.click('a[href="/run/swe-a"]');
    await page.waitForSelector('[data-chart="loss-step"] canvas');
    const data = (id: string) => page.locator(`[data-chart="${id}"]`).evaluate((e) => ({ ...(e as HTMLElement).dataset }));
    const evals = records.filter((r) => r.type === 'eval').length;
    const untie = records.find((r) => r.type === 'untie')!;
    const loss = await data('loss-step');
    assert.equal(JSON.parse(loss.points!).validation, evals);
    assert.deepEqual(JSON.parse(loss.markerLabels!), [`untie (${String(untie.reason)}) @${untie.step}`]);
    for (const id of ['loss-seconds', 'accuracy-step', 'accuracy-seconds', 'lr', 'grad-norm', 'throughput', 'cosine-lines']) {
      const d = await data(id);
      assert.ok(Object.values(JSON.parse(d.points!) as Record<string, number>).every((n) => n > 0), `${id} drew every series`);
      assert.equal(d.markers, '1', `${id} has the untie marker`);
    }
    // the heatmap: pooled cells, then one tensor's on demand; rho on its colour bar
    const checks = records.filter((r) => r.type === 'sharing_check').length;
    const heat = await data('cosine-heatmap');
    assert.equal(heat.cells, String(3 * checks));
    assert.equal(heat.layer, 'pooled (all tensors)');
    assert.equal(await page.locator('[data-chart="cosine-heatmap"] canvas.color-bar').getAttribute('data-pivot'), '0.95');
    await page.selectOption('[data-chart="cosine-heatmap"] select', 'intermediate.dense.weight');
    assert.equal((await data('cosine-heatmap')).layer, 'intermediate.dense.weight');
    assert.equal((await data('cosine-heatmap')).cells, String(3 * checks));
    assert.equal((await data('groups')).spans, '2');
    await page.screenshot({ path: path.join(root, 'live.png'), fullPage: true });

    // the run goes on: a torn line first (drawn nowhere, said so), then the whole record
    const metrics = path.join(runDir, 'metrics.jsonl');
    const record = JSON.stringify({ type: 'eval', step: 50, val_loss: 5.5, val_acc: 0.2 });
    fs.appendFileSync(metrics, record.slice(0, 25));
    await page.waitForFunction(() => document.body.innerText.includes('last line of metrics.jsonl is incomplete'));
    assert.equal(JSON.parse((await data('loss-step')).points!).validation, evals);
    assert.equal(await page.locator('select').inputValue(), 'intermediate.dense.weight', 'the chosen tensor survives an update');
    fs.appendFileSync(metrics, `${record.slice(25)}\n`);
    await page.waitForFunction((n) => JSON.parse((document.querySelector('[data-chart="loss-step"]') as HTMLElement).dataset.points!).validation === n, evals + 1);
    assert.ok(!(await page.locator('body').innerText()).includes('is incomplete'));
    await page.screenshot({ path: path.join(root, 'live-updated.png'), fullPage: true });
    assert.ok(fs.statSync(path.join(root, 'live-updated.png')).size > 10_000);
    assert.deepEqual(requests.filter((r) => !r.startsWith(url)), [], 'the page fetches only from its server');

    // the written report draws the same charts from a file, offline
    const report = await browser.newPage();
    report.on('pageerror', (e) => pageErrors.push(e.message));
    await report.goto(`file://${path.join(runDir, 'report.html')}`);
    await report.waitForSelector('[data-chart="cosine-heatmap"] canvas');
    const reportLoss = await report.locator('[data-chart="loss-step"]').evaluate((e) => (e as HTMLElement).dataset.points!);
    assert.equal(JSON.parse(reportLoss).validation, evals);
    assert.deepEqual(pageErrors, []);
  } finally {
    await close();
    child.kill('SIGTERM');
    fs.writeFileSync(path.join(runDir, 'metrics.jsonl'), records.map((r) => JSON.stringify(r) + '\n').join(''));
  }
});
