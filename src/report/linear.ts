/**
 * report.html for `untie linear`: one self-contained page with, per target,
 * the steps-to-eps tables, log-log plots with fitted slopes, loss curves per
 * depth, the lr search and the Lemma 1 and SWE-A checks, drawn by the shared
 * page module like every other report.
 */
import {
  stepsByDepth, variantInit, variantLabel, variantMethod,
  type LinearResults, type LrSearch, type RunResult, type Study, type TargetResult, type Variant,
} from '../experiments/linear.js';
import type { Block, LineChart, LineSeries } from './blocks.js';
import { PALETTE, escapeHtml, formatNumber, raw, table } from './html.js';
import { renderPage } from './page.js';

const COLORS: Record<Variant, string> = { untied: PALETTE[1], 'untied-identity': PALETTE[4], shared: PALETTE[0], 'swe-a': PALETTE[2] };

const esc = escapeHtml;
const fmtSlope = (s: number | null | undefined) => (s === null || s === undefined ? '—' : s.toFixed(2));
const fmtLr = (lr: number) => {
  const e = Math.log2(lr);
  return Number.isInteger(e) ? `2^${e}` : formatNumber(lr);
};

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
      return raw(`${steps}<br><small>lr ${lrs.map(fmtLr).join(', ')}</small>`);
    });
    return [raw(`<b style="color:${COLORS[v]}">${esc(variantLabel(v))}</b>`), ...cells, fmtSlope(study.slopes[v])];
  });
  return table(['method', ...depths.map((L) => `L = ${L}`), 'slope'], rows);
}

/** Chart ids unique within one report. */
class Ids {
  private n = 0;
  next(prefix: string): string {
    return `${prefix}-${++this.n}`;
  }
}

function slopePlot(study: Study, title: string, ids: Ids): LineChart {
  const series: LineSeries[] = [];
  for (const v of variantsOf(study)) {
    const pts = stepsByDepth(study.runs, v);
    series.push({ label: variantLabel(v), x: pts.map((p) => p.L), y: pts.map((p) => p.steps), color: COLORS[v], noLine: true });
    const s = study.slopes[v];
    if (s !== null && s !== undefined && pts.length >= 2) {
      // The least-squares line passes through the mean of (log L, log steps).
      const mx = pts.reduce((a, p) => a + Math.log(p.L), 0) / pts.length, my = pts.reduce((a, p) => a + Math.log(p.steps), 0) / pts.length;
      const ends = [pts[0].L, pts[pts.length - 1].L];
      series.push({ label: `${variantLabel(v)}: fit, slope ${s.toFixed(2)}`, x: ends, y: ends.map((L) => Math.exp(my + s * (Math.log(L) - mx))), color: COLORS[v], dash: true, points: false });
    }
  }
  return { kind: 'line', id: ids.next('slope'), title, series, xLog: true, yLog: true, xLabel: 'depth L', yLabel: 'updates to R ≤ eps·R(0)', xTicks: depthsOf(study), width: 600 };
}

function curvePlots(study: Study, eps: number, seed: number, ids: Ids): LineChart[] {
  return depthsOf(study).map((L) => {
    const series: LineSeries[] = variantsOf(study).map((v) => {
      const run = study.runs.find((r) => r.variant === v && r.L === L && r.seed === seed);
      const curve = run ? run.curve : [];
      return { label: variantLabel(v), x: curve.map((p) => p[0]), y: curve.map((p) => p[1]), color: COLORS[v], dash: v === 'swe-a' || v === 'untied-identity', points: false };
    });
    const maxStep = Math.max(1, ...study.runs.filter((r) => r.L === L && r.seed === seed).map((r) => r.steps));
    return {
      kind: 'line', id: ids.next('curve'), title: `L = ${L} (seed ${seed})`, series, yLog: true, xRange: [0, maxStep],
      xLabel: 'updates', yLabel: 'R / R(0)', refLines: [{ y: eps, label: 'eps' }], width: 480, height: 280,
    } satisfies LineChart;
  });
}

function searchTable(searches: LrSearch[]): string {
  const rows = searches.map((s) => [
    variantLabel(s.variant), String(s.L), fmtLr(s.chosen),
    s.trials.map((t) => {
      const what = t.diverged ? 'div' : t.stepsToEps.map((n) => (n === null ? `>${t.cap}` : String(n))).join('/') + (t.worstSteps === null ? ` (R/R0 ${t.meanFinalRatio.toExponential(1)})` : '');
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

function studySection(study: Study, heading: string, intro: string, eps: number, seed: number, ids: Ids, searches?: LrSearch[]): Block {
  const blocks: Block[] = [
    { kind: 'html', html: `<p>${intro}</p>${stepsTable(study)}` },
    slopePlot(study, `${heading}: updates to eps against depth`, ids),
    { kind: 'section', title: 'Loss curves', level: 3, collapsed: false, blocks: [{ kind: 'grid', blocks: curvePlots(study, eps, seed, ids) }] },
  ];
  if (searches) blocks.push({ kind: 'section', title: 'Learning-rate search', level: 3, collapsed: true, blocks: [{ kind: 'html', html: searchTable(searches) }] });
  blocks.push({ kind: 'section', title: 'SWE-A checks', level: 3, collapsed: true, blocks: [{ kind: 'html', html: sweTable(study.runs) }] });
  return { kind: 'section', title: heading, level: 3, blocks };
}

function targetSection(t: TargetResult, res: LinearResults, ids: Ids): Block {
  const c = res.config;
  const eig = t.example.eigenvalues;
  const seed = c.seeds[0];
  const lemma = Object.entries(t.lemma1.maxSpread).map(([v, s]) => `${esc(variantLabel(v as Variant))}: ${s!.toExponential(1)}`).join('; ');
  const html = `<p>Seed ${seed}'s Phi: ${t.example.symmetric ? 'symmetric' : 'not symmetric'}, eigenvalues${t.example.symmetric ? '' : ' of its PD factor'} in [${Math.min(...eig).toFixed(3)}, ${Math.max(...eig).toFixed(3)}]${eig.some((e) => e < 0) ? ` (one negative: ${eig.find((e) => e < 0)!.toFixed(3)})` : ''}, det = ${t.example.det.toExponential(2)}.</p>
<p><b>Lemma 1 check</b> (identity init, first ${t.lemma1.steps} updates, ${t.lemma1.study === 'equal-lr' ? 'equal-lr study' : 'searched-lr runs'}): largest ||g<sub>l</sub> − g<sub>1</sub>|| / ||g<sub>1</sub>|| over layers, seeds, depths: ${lemma || '—'}.${t.example.symmetric ? ' Lemma 1 predicts 0 (float32 rounding aside) for any symmetric Phi.' : ' Phi is not symmetric, so Lemma 1 does not apply.'}</p>`;
  const blocks: Block[] = [{ kind: 'html', html }];
  blocks.push(studySection(t.search, 'Learning rate searched per method and depth',
    `Each method and depth gets the best rate from the grid, scored on its worst seed. Cells list each seed's updates to R ≤ ${c.eps}·R(0) (never: not within ${c.maxSteps}; div: diverged).`,
    c.eps, seed, ids, t.search.lrSearch));
  if (t.equalLr) {
    blocks.push(studySection(t.equalLr, `One learning rate for all (${fmtLr(t.equalLr.lr)})`,
      `Every method and depth at lr ${fmtLr(t.equalLr.lr)} = ${t.equalLr.lr}: the gradient-flow regime that the theorems' rates describe (updates × lr is time).`,
      c.eps, seed, ids));
  }
  return { kind: 'section', title: `Target: ${t.target}`, blocks };
}

function summaryTable(res: LinearResults): string {
  const variants = res.config.variants;
  const rows = res.targets.flatMap((t) => {
    const out = [[t.target, 'lr searched', ...variants.map((v) => fmtSlope(t.search.slopes[v]))]];
    if (t.equalLr) out.push([t.target, `lr ${fmtLr(t.equalLr.lr)} for all`, ...variants.map((v) => fmtSlope(t.equalLr!.slopes[v]))]);
    return out;
  });
  return table(['target', 'study', ...variants.map((v) => variantLabel(v))], rows);
}

/** The whole report as one HTML string. */
export function linearReportHtml(res: LinearResults): string {
  const c = res.config;
  const grid = [...c.lrGrid].sort((a, b) => b - a);
  const ids = new Ids();
  const intro = `<p>f(x) = W<sub>L</sub>…W<sub>1</sub>x, W<sub>l</sub> ∈ R<sup>${c.d}×${c.d}</sup>, loss R = ½‖W<sub>L</sub>…W<sub>1</sub> − Φ‖²<sub>F</sub> (whitened inputs), trained by
${c.optimizer === 'gd' ? 'plain gradient descent' : 'Adam (AdamW without weight decay)'} through untie's sharing controller (method.md §3).
A run counts the updates until R ≤ ${c.eps}·R(0), giving up after ${c.maxSteps}. Depths ${c.depths.join(', ')}; seeds ${c.seeds.join(', ')} (each seed draws its own Φ). Took ${res.seconds.toFixed(0)} s.</p>
<ul>
<li><b>untied</b>: every layer its own; zero-asymmetric init (W<sub>1..L−1</sub> = I, W<sub>L</sub> = 0; Wu et al. 2019), the no-sharing theorem's setting. <b>untied (identity init)</b>: untied from W = I.</li>
<li><b>shared</b>: all layers tied from W = I for the whole run, updated with the mean of the per-layer gradients.</li>
<li><b>SWE-A</b>: shared from W = I; every ${c.swe.every} updates the cosine of each adjacent pair of layer gradients is measured; when more than half are below ρ = ${c.swe.threshold} at ${c.swe.patience} consecutive checks, the layers are untied and continue on their own.</li>
<li><b>lr search</b>: the grid ${grid.map(fmtLr).join(', ')} is scanned from the largest rate down, every seed at each rate; a rate where any seed diverges is rejected; the winner needs the fewest updates to eps on its worst seed (ties: the larger rate), or, if no rate gets every seed there, has the lowest mean final R/R(0). A trial stops once it has used as many updates as the best so far, and the scan stops after two consecutive non-diverged rates that do not improve.</li>
<li><b>slope</b>: least-squares slope of log(updates to eps) against log L over the depths where every seed reached eps (geometric mean over seeds). The theorems say about L<sup>3</sup> for untied GD (slope 3 at their step sizes) and L for shared GD.</li>
</ul>`;
  const blocks: Block[] = [
    { kind: 'html', html: intro },
    { kind: 'section', title: 'Slopes', blocks: [{ kind: 'html', html: summaryTable(res) }] },
    ...res.targets.map((t) => targetSection(t, res, ids)),
    { kind: 'html', html: `<p><small>Methods in the JSON output: ${esc([...new Set(c.variants.map((v) => `${variantMethod(v)} (init ${variantInit(v)})`))].join(', '))}.</small></p>` },
  ];
  return renderPage({ title: 'Deep linear networks: sharing, untying and depth', blocks });
}
