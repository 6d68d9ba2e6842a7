// A picture of the deploy example answering: exports RUN_OR_CHECKPOINT with
// --onnx beside the page (in a temporary site), loads it in headless
// Chromium, asks twice (the second answer warm), checks that it answered
// without errors and fetched nothing from elsewhere, and keeps a screenshot.
//   node --import tsx scripts/deploy-screenshot.ts RUN_OR_CHECKPOINT OUT.png ["text with [MASK]"]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './chromium.js';
import { buildDeployExample } from './build-deploy.js';
import { serveFolder } from './static-server.js';
import { exportOnnx } from '../src/export/onnx.js';

const [source, out, text] = process.argv.slice(2);
if (!source || !out) {
  console.error('usage: node --import tsx scripts/deploy-screenshot.ts RUN_OR_CHECKPOINT OUT.png ["text"]');
  process.exitCode = 2;
} else {
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-deploy-shot-'));
  try {
    const pageDir = await buildDeployExample();
    fs.copyFileSync(path.join(pageDir, 'index.html'), path.join(site, 'index.html'));
    fs.symlinkSync(path.join(pageDir, 'dist'), path.join(site, 'dist'));
    exportOnnx(source, path.join(site, 'model'));
    const server = await serveFolder(site);
    const { browser, close } = await launchChromium({ width: 1000, height: 620 });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => { if (!r.url().startsWith(server.url)) problems.push(`fetched ${r.url()}`); });
      await page.goto(`${server.url}index.html${text ? `?text=${encodeURIComponent(text)}` : ''}`);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), undefined, { timeout: 300_000 });
      // Once more, warm: the first answer includes onnxruntime's warm-up.
      if (await page.evaluate(() => document.body.dataset.status === 'done')) {
        await page.click('#run');
        await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? '') && !document.getElementById('status')!.textContent!.includes('warm-up'), undefined, { timeout: 60_000 });
      }
      const status = await page.evaluate(() => document.getElementById('status')!.textContent);
      if (problems.length > 0 || !/^answered/.test(status ?? '')) throw new Error(`the page did not answer cleanly: ${status}; ${problems.join('; ')}`);
      await page.screenshot({ path: out, fullPage: true });
      console.log(`${out}: the deploy page answered (${status}) and fetched nothing from elsewhere`);
    } finally {
      await close();
      await server.close();
    }
  } finally {
    fs.rmSync(site, { recursive: true, force: true });
  }
}
