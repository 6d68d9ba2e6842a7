/**
 * The page assembler: one self-contained HTML document holding a view (the
 * blocks of blocks.ts as JSON), the chart library and the script that draws
 * them, all inline, so a report opens offline from a file and the live page
 * needs nothing but its own server.
 *
 * Charts are drawn by uPlot (npm `uplot`, ~50 KB minified): canvas lines that
 * stay fast at 100k+ points, log and linear axes, and hooks for the markers
 * and reference lines; the heatmap and the group bands are drawn on canvas by
 * client.js. See docs/pages.md ("Why uPlot").
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { escapeHtml } from './html.js';
import type { LiveOptions, View } from './blocks.js';

let assets: { uplotJs: string; uplotCss: string; clientJs: string } | null = null;

/** The inlined scripts and styles, read once per process. */
function pageAssets(): { uplotJs: string; uplotCss: string; clientJs: string } {
  if (assets) return assets;
  const require = createRequire(import.meta.url);
  const read = (file: string) => {
    const text = fs.readFileSync(file, 'utf8').replace(/^\/\/# sourceMappingURL=.*$/gm, '');
    // Inlined as it is, a script must not contain what would end its <script> element early.
    if (/<\/script|<!--/i.test(text)) throw new Error(`${file} cannot be inlined into a page: it contains "</script" or "<!--"`);
    return text;
  };
  assets = {
    uplotJs: read(require.resolve('uplot/dist/uPlot.iife.min.js')),
    uplotCss: read(require.resolve('uplot/dist/uPlot.min.css')),
    // client.js is used as written (tsc would rewrite it as a module), so it
    // is read from src/ both here and from the compiled dist/report/page.js:
    // both sit two folders below the package root.
    clientJs: read(fileURLToPath(new URL('../../src/report/client.js', import.meta.url))),
  };
  return assets;
}

/** JSON inside <script>: "<" escaped, so no string in the data can close the element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

const STYLE = `
body{font-family:system-ui,sans-serif;max-width:1240px;margin:1.2em auto;padding:0 1em;color:#222;line-height:1.4;background:#fff}
h1{font-size:1.5em;margin:.2em 0 .6em}h2{border-bottom:2px solid #ddd;margin-top:1.6em;font-size:1.25em}h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}small,.note{color:#666}.grid{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}code{background:#f4f4f4;padding:0 3px}
.chart{display:inline-block;vertical-align:top;border:1px solid #e4e4e4;padding:6px 6px 2px;border-radius:4px;background:#fff}
.chart-title{font-weight:bold;font-size:13px;margin:0 0 4px 4px}.chart-empty{color:#888;font-size:13px;padding:2em 1em}
.chart-controls{font-size:12px;margin:0 0 4px 4px}.u-legend{font-size:11px;max-width:100%}.u-legend .u-series>*{padding:1px 3px}.u-legend th{font-weight:normal}
.heat-tip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:12px;padding:3px 6px;border-radius:3px;display:none;z-index:10}
#untie-status{font-size:12px;color:#555;min-height:1em}#untie-status.stale{color:#b00}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#eee}.badge.running{background:#d6f5d6}.badge.finished{background:#dde8f7}
`;

/** The whole document. With `live`, the page polls `live.viewUrl` and redraws on every change. */
export function renderPage(view: View, live?: LiveOptions): string {
  const a = pageAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(view.title)}</title>
<style>${a.uplotCss}${STYLE}</style></head><body>
<div id="untie-status"></div>
<main id="untie-root"><h1>${escapeHtml(view.title)}</h1><noscript>This page draws its charts with JavaScript (inline, nothing is fetched); enable it to see them.</noscript></main>
<script type="application/json" id="untie-view">${scriptJson(view)}</script>
${live ? `<script type="application/json" id="untie-live">${scriptJson(live)}</script>\n` : ''}<script>${a.uplotJs}</script>
<script>${a.clientJs}</script>
</body></html>
`;
}

/** The view a page embeds (for tests and tools that check a written report). */
export function viewOfPage(html: string): View {
  const m = /<script type="application\/json" id="untie-view">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('not an untie page: no embedded view');
  return JSON.parse(m[1]) as View;
}
