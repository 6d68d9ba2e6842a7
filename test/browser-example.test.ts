// The browser example (examples/browser/): bundled as `npm run build:browser`
// bundles it, served over HTTP, loaded in headless Chromium; the engine, BERT
// and AdamW train on the WebAssembly kernels in the page, and the loss falls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CHROMIUM, launchChromium } from '../scripts/chromium.js';
import { buildBrowserExample } from '../scripts/build-browser.js';
import { serveFolder } from '../scripts/static-server.js';

// CI (.ci/run) installs Chromium and sets UNTIE_REQUIRE_CHROMIUM, so there a missing browser fails instead of skipping.
const chromiumMissing = fs.existsSync(CHROMIUM) || process.env.UNTIE_REQUIRE_CHROMIUM ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium to run this test)`;

test('in Chromium: the browser example trains a tiny BERT on the wasm kernels and its loss falls', { skip: chromiumMissing }, async () => {
  const dir = await buildBrowserExample();
  const server = await serveFolder(dir);
  const { browser, close } = await launchChromium();
  const pageErrors: string[] = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    await page.goto(`${server.url}index.html`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), undefined, { timeout: 180_000 });
    const state = await page.evaluate(() => ({
      status: document.body.dataset.status, losses: document.body.dataset.losses ?? '[]', text: document.getElementById('status')!.textContent,
    }));
    assert.equal(state.status, 'done', `the page ended with: ${state.text}; errors: ${pageErrors.join(' | ')}`);
    assert.deepEqual(pageErrors, []);
    assert.match(state.text ?? '', /on the wasm kernels/);
    const losses = JSON.parse(state.losses) as number[];
    assert.equal(losses.length, 60);
    assert.ok(losses.every(Number.isFinite), 'every loss is finite');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(losses.slice(0, 5)), last = mean(losses.slice(-5));
    // ln 59 = 4.08 at the start; the position alone gets to ln 8 = 2.08 (see examples/browser/demo.ts).
    assert.ok(first > 3.5, `the first steps' loss ${first.toFixed(3)} is near ln 59`);
    assert.ok(last < 0.6 * first, `the loss went from ${first.toFixed(3)} to ${last.toFixed(3)}, expected below 60% of the start`);
    // The plot drew every step.
    const points = await page.locator('#loss-line').getAttribute('points');
    assert.equal(points!.trim().split(/\s+/).length, 60);
  } finally {
    await close();
    await server.close();
  }
});
