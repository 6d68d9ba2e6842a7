// The README's screenshots of a run's pages, taken in headless Chromium:
// OUT/report.png (the top of RUN/report.html) and OUT/live.png (the layer-
// sharing part of the live page that `untie serve` shows).
// `npm run screenshots -- RUN [OUT]` (OUT defaults to docs/).
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './chromium.js';
import { writeRunReport } from '../src/report/run.js';
import { startServer } from '../src/serve/server.js';

const [runDir, outDir = 'docs'] = process.argv.slice(2);
if (!runDir) {
  console.error('usage: npm run screenshots -- RUN [OUT]');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const report = writeRunReport(runDir);
const { browser, close } = await launchChromium({ width: 1280, height: 1180 });
const server = await startServer({ runsDir: path.dirname(path.resolve(runDir)), port: 0 });
try {
  const page = await browser.newPage();
  await page.goto(`file://${path.resolve(report)}`);
  await page.waitForSelector('[data-chart="groups"] canvas, [data-chart="throughput"] canvas');
  await page.screenshot({ path: path.join(outDir, 'report.png') });
  await page.goto(server.runUrl(path.basename(path.resolve(runDir))));
  await page.waitForSelector('[data-chart="cosine-heatmap"] canvas');
  await page.locator('section', { has: page.locator('h2', { hasText: 'Layer sharing' }) }).screenshot({ path: path.join(outDir, 'live.png') });
  console.log(`wrote ${path.join(outDir, 'report.png')} and ${path.join(outDir, 'live.png')}`);
} finally {
  await server.close();
  await close();
}
