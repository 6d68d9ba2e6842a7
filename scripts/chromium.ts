// Headless Chromium for the page tests, the page benchmark and the README's
// screenshots: Debian's `chromium`, driven by playwright-core (a dev
// dependency), with a fresh profile that is removed on close.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Nothing in the background: no updates, sync, QUIC or GPU; no sandbox (containers, CI). */
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchChromium(viewport = { width: 1280, height: 1000 }): Promise<{ browser: BrowserContext; close(): Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-chromium-'));
  const browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, viewport, args: FLAGS });
  return {
    browser,
    close: async () => {
      await browser.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Loads a page file in headless Chromium, fails when the page throws or a
 * chart drew no points, and keeps a full-page screenshot: how every page a
 * person looks at (reports, the README's pictures) is checked. Returns the
 * ids of `charts` the page has, each pictured into its file.
 */
export async function checkPage(
  file: string, screenshot: string,
  opts: { waitFor?: string; viewport?: { width: number; height: number }; charts?: Record<string, string> } = {},
): Promise<string[]> {
  const { browser, close } = await launchChromium(opts.viewport ?? { width: 1100, height: 900 });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => { if (!r.url().startsWith('file:')) errors.push(`fetched ${r.url()}`); });
    await page.goto(`file://${path.resolve(file)}`);
    await page.waitForSelector(opts.waitFor ?? '[data-chart] canvas');
    const points = await page.locator('[data-chart]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.points ?? null));
    for (const p of points) {
      if (p === null) continue; // a heatmap: cells, not points
      const counts = Object.values(JSON.parse(p) as Record<string, number>);
      if (counts.length === 0 || counts.some((n) => n === 0)) errors.push(`a chart drew no points: ${p}`);
    }
    if (errors.length > 0) throw new Error(`${file} does not render cleanly: ${errors.join('; ')}`);
    await page.screenshot({ path: screenshot, fullPage: true });
    // Pictures of single charts (a README's figure), by chart id: the ids the page has are taken, the others skipped.
    const taken: string[] = [];
    for (const [id, out] of Object.entries(opts.charts ?? {})) {
      const chart = page.locator(`[data-chart="${id}"]`);
      if ((await chart.count()) === 0) continue;
      await chart.screenshot({ path: out });
      taken.push(id);
    }
    return taken;
  } finally {
    await close();
  }
}

// `node --import tsx scripts/chromium.ts PAGE.html OUT.png`: check a page and keep its screenshot.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const [file, out] = process.argv.slice(2);
  if (!file || !out) {
    console.error('usage: node --import tsx scripts/chromium.ts PAGE.html OUT.png');
    process.exitCode = 2;
  } else {
    checkPage(file, out).then(() => console.log(`${file}: renders cleanly in Chromium; screenshot ${out}`), (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    });
  }
}
