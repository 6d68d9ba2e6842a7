/**
 * report.html for `untie linear`: one self-contained page (inline SVG and CSS,
 * nothing fetched) with, per target, the steps-to-eps tables, log-log plots
 * with fitted slopes, loss curves per depth, the lr search and the Lemma 1
 * and SWE-A checks.
 */
import { PALETTE, escapeXml, formatTick, linePlot, type Series } from './svg.js';
import {
  stepsByDepth, variantInit, variantMethod,
  type LinearResults, type LrSearch, type RunResult, type Study, type TargetResult, type Variant,
} from './linear.js';

const COLORS: Record<Variant, string> = { untied: PALETTE[1], 'untied-identity': PALETTE[4], shared: PALETTE[0], 'swe-a': PALETTE[2] };

export function variantLabel(v: Variant): string {
  return v === 'untied' ? 'untied (zero-asym init)' : v === 'untied-identity' ? 'untied (identity init)' : v === 'shared' ? 'shared (always)' : 'SWE-A';
}

const esc = escapeXml;
const fmtSlope = (s: number | null | undefined) => (s === null || s === undefined ? '—' : s.toFixed(2));
const fmtLr = (lr: number) => {
  const e = Math.log2(lr);
  return Number.isInteger(e) ? `2^${e}` : formatTick(lr);
};

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function variantsOf(study: Study): Variant[] {
  return [...new Set(study.runs.map((r) => r.variant))];
}

function depthsOf(study: Study): number[] {
  return [...new Set(study.runs.map((r) => r.L))].sort((a, b) => a - b);
}

/** Steps to eps per variant and depth: every seed's count, plus the chosen lr. */
function stepsTable(study: Study): string {
  const depths = depthsOf(study);
  const rows = variantsOf(study).map((v) => {
    const cells = depths.map((L) => {
      const runs = study.runs.filter((r) => r.variant === v && r.L === L);
      const steps = runs.map((r) => (r.stepsToEps === null ? (r.diverged ? 'div' : 'never') : String(r.stepsToEps))).join(' / ');
      const lrs = [...new Set(runs.map((r) => r.lr))];
      return `${steps}<br><small>lr ${lrs.map(fmtLr).join(', ')}</small>`;
    });
    return [`<b style="color:${COLORS[v]}">${esc(variantLabel(v))}</b>`, ...cells, fmtSlope(study.slopes[v])];
  });
  return table(['method', ...depths.map((L) => `L = ${L}`), 'slope'], rows);
}

function slopePlot(study: Study, title: string): string {
  const series: Series[] = [];
  for (const v of variantsOf(study)) {
    const pts = stepsByDepth(study.runs, v);
    series.push({ name: variantLabel(v), points: pts.map((p) => [p.L, p.steps]), color: COLORS[v], noLine: true, markers: true });
    const s = study.slopes[v];
    if (s !== null && s !== undefined && pts.length >= 2) {
      // The least-squares line passes through the mean of (log L, log steps).
      const mx = pts.reduce((a, p) => a + Math.log(p.L), 0) / pts.length, my = pts.reduce((a, p) => a + Math.log(p.steps), 0) / pts.length;
      const line = (L: number): [number, number] => [L, Math.exp(my + s * (Math.log(L) - mx))];
      series.push({ name: `fit, slope ${s.toFixed(2)}`, points: [line(pts[0].L), line(pts[pts.length - 1].L)], color: COLORS[v], dashed: true, markers: false });
    }
  }
  return linePlot({ title, series, xLog: true, yLog: true, xLabel: 'depth L', yLabel: 'updates to R ≤ eps·R(0)', xTicks: depthsOf(study), width: 560 });
}

function curvePlots(study: Study, eps: number, seed: number): string {
  return depthsOf(study).map((L) => {
    const series: Series[] = variantsOf(study).map((v) => {
      const run = study.runs.find((r) => r.variant === v && r.L === L && r.seed === seed);
      return { name: variantLabel(v), points: run ? run.curve : [], color: COLORS[v], dashed: v === 'swe-a' || v === 'untied-identity', markers: false };
    });
    const maxStep = Math.max(1, ...study.runs.filter((r) => r.L === L && r.seed === seed).map((r) => r.steps));
    return linePlot({ title: `L = ${L} (seed ${seed})`, series, yLog: true, xRange: [0, maxStep], xLabel: 'updates', yLabel: 'R / R(0)', hLines: [{ y: eps, label: 'eps' }], width: 470, height: 280 });
  }).join('\n');
}

function searchTable(searches: LrSearch[]): string {
  const rows = searches.map((s) => [
    esc(variantLabel(s.variant)), String(s.L), fmtLr(s.chosen),
    s.trials.map((t) => {
      const what = t.diverged ? 'div' : t.stepsToEps.map((n) => (n === null ? `&gt;${t.cap}` : String(n))).join('/') + (t.worstSteps === null ? ` (R/R0 ${t.meanFinalRatio.toExponential(1)})` : '');
      return `${fmtLr(t.lr)}: ${what}`;
    }).join('; '),
  ]);
  return table(['method', 'L', 'chosen lr', 'trials (lr: updates to eps per seed)'], rows);
}

function sweTable(runs: RunResult[]): string {
  const swe = runs.filter((r) => r.variant === 'swe-a');
  if (swe.length === 0) return '';
  const rows = swe.map((r) => [String(r.L), String(r.seed), fmtLr(r.lr), r.untieStep === null ? 'never' : String(r.untieStep), r.minCosine === null ? '—' : r.minCosine.toFixed(3), r.stepsToEps === null ? 'never' : String(r.stepsToEps), r.finalRatio.toExponential(2)]);
  return table(['L', 'seed', 'lr', 'untied after (updates)', 'min adjacent cosine', 'updates to eps', 'final R/R(0)'], rows);
}

function studySection(study: Study, heading: string, intro: string, eps: number, seed: number, searches?: LrSearch[]): string {
  return `<h3>${esc(heading)}</h3><p>${intro}</p>
${stepsTable(study)}
<div class="plots">${slopePlot(study, `${heading}: updates to eps against depth`)}</div>
<details open><summary>Loss curves</summary><div class="plots">${curvePlots(study, eps, seed)}</div></details>
${searches ? `<details><summary>Learning-rate search</summary>${searchTable(searches)}</details>` : ''}
<details><summary>SWE-A checks</summary>${sweTable(study.runs)}</details>`;
}

function targetSection(t: TargetResult, res: LinearResults): string {
  const c = res.config;
  const eig = t.example.eigenvalues;
  const seed = c.seeds[0];
  const lemma = Object.entries(t.lemma1.maxSpread).map(([v, s]) => `${esc(variantLabel(v as Variant))}: ${s!.toExponential(1)}`).join('; ');
  let html = `<h2>Target: ${esc(t.target)}</h2>
<p>Seed ${seed}'s Phi: ${t.example.symmetric ? 'symmetric' : 'not symmetric'}, eigenvalues${t.example.symmetric ? '' : ' of its PD factor'} in [${Math.min(...eig).toFixed(3)}, ${Math.max(...eig).toFixed(3)}]${eig.some((e) => e < 0) ? ` (one negative: ${eig.find((e) => e < 0)!.toFixed(3)})` : ''}, det = ${t.example.det.toExponential(2)}.</p>
<p><b>Lemma 1 check</b> (identity init, first ${t.lemma1.steps} updates, ${t.lemma1.study === 'equal-lr' ? 'equal-lr study' : 'searched-lr runs'}): largest ||g<sub>l</sub> − g<sub>1</sub>|| / ||g<sub>1</sub>|| over layers, seeds, depths: ${lemma || '—'}.${t.example.symmetric ? ' Lemma 1 predicts 0 (float32 rounding aside) for any symmetric Phi.' : ' Phi is not symmetric, so Lemma 1 does not apply.'}</p>`;
  html += studySection(t.search, 'Learning rate searched per method and depth',
    `Each method and depth gets the best rate from the grid, scored on its worst seed. Cells list each seed's updates to R ≤ ${c.eps}·R(0) (never: not within ${c.maxSteps}; div: diverged).`,
    c.eps, seed, t.search.lrSearch);
  if (t.equalLr) {
    html += studySection(t.equalLr, `One learning rate for all (${fmtLr(t.equalLr.lr)})`,
      `Every method and depth at lr ${fmtLr(t.equalLr.lr)} = ${t.equalLr.lr}: the gradient-flow regime that the theorems' rates describe (updates × lr is time).`,
      c.eps, seed);
  }
  return html;
}

function summaryTable(res: LinearResults): string {
  const variants = res.config.variants;
  const rows = res.targets.flatMap((t) => {
    const out = [[esc(t.target), 'lr searched', ...variants.map((v) => fmtSlope(t.search.slopes[v]))]];
    if (t.equalLr) out.push([esc(t.target), `lr ${fmtLr(t.equalLr.lr)} for all`, ...variants.map((v) => fmtSlope(t.equalLr!.slopes[v]))]);
    return out;
  });
  return table(['target', 'study', ...variants.map((v) => esc(variantLabel(v)))], rows);
}

/** The whole report as one HTML string. */
export function linearReportHtml(res: LinearResults): string {
  const c = res.config;
  const grid = [...c.lrGrid].sort((a, b) => b - a);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>untie linear: deep linear networks</title>
<style>
body{font-family:sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}small{color:#666}.plots{display:flex;flex-wrap:wrap;gap:8px}details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}
h2{border-bottom:2px solid #ddd;margin-top:2em}code{background:#f4f4f4;padding:0 3px}
</style></head><body>
<h1>Deep linear networks: sharing, untying and depth</h1>
<p>f(x) = W<sub>L</sub>…W<sub>1</sub>x, W<sub>l</sub> ∈ R<sup>${c.d}×${c.d}</sup>, loss R = ½‖W<sub>L</sub>…W<sub>1</sub> − Φ‖²<sub>F</sub> (whitened inputs), trained by
${c.optimizer === 'gd' ? 'plain gradient descent' : 'Adam (AdamW without weight decay)'} through untie's sharing controller (method.md §3).
A run counts the updates until R ≤ ${c.eps}·R(0), giving up after ${c.maxSteps}. Depths ${c.depths.join(', ')}; seeds ${c.seeds.join(', ')} (each seed draws its own Φ). Took ${res.seconds.toFixed(0)} s.</p>
<ul>
<li><b>untied</b>: every layer its own; zero-asymmetric init (W<sub>1..L−1</sub> = I, W<sub>L</sub> = 0; Wu et al. 2019), the no-sharing theorem's setting. <b>untied (identity init)</b>: untied from W = I.</li>
<li><b>shared</b>: all layers tied from W = I for the whole run, updated with the mean of the per-layer gradients.</li>
<li><b>SWE-A</b>: shared from W = I; every ${c.swe.every} updates the cosine of each adjacent pair of layer gradients is measured; when more than half are below ρ = ${c.swe.threshold} at ${c.swe.patience} consecutive checks, the layers are untied and continue on their own.</li>
<li><b>lr search</b>: the grid ${grid.map(fmtLr).join(', ')} is scanned from the largest rate down, every seed at each rate; a rate where any seed diverges is rejected; the winner needs the fewest updates to eps on its worst seed (ties: the larger rate), or, if no rate gets every seed there, has the lowest mean final R/R(0). A trial stops once it has used as many updates as the best so far, and the scan stops after two consecutive non-diverged rates that do not improve.</li>
<li><b>slope</b>: least-squares slope of log(updates to eps) against log L over the depths where every seed reached eps (geometric mean over seeds). The theorems say about L<sup>3</sup> for untied GD (slope 3 at their step sizes) and L for shared GD.</li>
</ul>
<h2>Slopes</h2>
${summaryTable(res)}
${res.targets.map((t) => targetSection(t, res)).join('\n')}
<p><small>Methods in the JSON output: ${[...new Set(c.variants.map((v) => `${variantMethod(v)} (init ${variantInit(v)})`))].join(', ')}.</small></p>
</body></html>
`;
}
