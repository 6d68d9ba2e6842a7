/**
 * A small SVG line-plot helper for self-contained HTML reports: linear or log
 * axes, several named series (lines, markers, dashes), a legend. No
 * dependencies and no network: the output is a string to inline in HTML.
 */

export interface Series {
  name: string;
  /** (x, y) points; on a log axis, points with x <= 0 or y <= 0 are skipped. */
  points: [number, number][];
  color?: string;
  dashed?: boolean;
  /** Draw a dot at each point (default: when the series has at most 40 points). */
  markers?: boolean;
  /** Draw no connecting line (markers only). */
  noLine?: boolean;
}

export interface PlotOptions {
  series: Series[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  xLog?: boolean;
  yLog?: boolean;
  width?: number;
  height?: number;
  /** Tick positions on x (default: chosen from the range). */
  xTicks?: number[];
  yTicks?: number[];
  /** Fixed ranges (default: the data's, padded). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Horizontal reference lines, e.g. the eps level. */
  hLines?: { y: number; label?: string }[];
}

/** A colour-blind-friendly palette (Okabe-Ito). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short number label: 1e-3, 0.25, 1200, 3.2. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const e = Math.floor(Math.log10(a));
    const m = v / Math.pow(10, e);
    return `${Math.abs(m - 1) < 1e-9 ? '' : `${+m.toPrecision(2)}×`}1e${e}`;
  }
  return String(+v.toPrecision(3));
}

function niceLinearTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12 * step; v += step) out.push(+v.toPrecision(12));
  return out;
}

function niceLogTicks(lo: number, hi: number): number[] {
  const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
  const span = e1 - e0;
  const mult = span <= 2 ? [1, 2, 5] : [1];
  const stride = span > 10 ? Math.ceil(span / 8) : 1;
  const out: number[] = [];
  for (let e = e0; e <= e1; e += stride) for (const m of mult) {
    const v = m * Math.pow(10, e);
    if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
  }
  return out;
}

let plotCount = 0;

/** An inline <svg> line plot. */
export function linePlot(o: PlotOptions): string {
  const W = o.width ?? 520, H = o.height ?? 320;
  const legendW = o.series.length > 0 ? 150 : 0;
  const m = { left: 62, right: 12 + legendW, top: o.title ? 28 : 12, bottom: 44 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const okX = (x: number) => Number.isFinite(x) && (!o.xLog || x > 0);
  const okY = (y: number) => Number.isFinite(y) && (!o.yLog || y > 0);
  const pts = o.series.flatMap((s) => s.points.filter(([x, y]) => okX(x) && okY(y)));
  const range = (vals: number[], log: boolean | undefined, fixed?: [number, number]): [number, number] => {
    if (fixed) return fixed;
    if (vals.length === 0) return log ? [1, 10] : [0, 1];
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (log) {
      if (lo === hi) { lo /= 2; hi *= 2; }
      return [lo / Math.pow(hi / lo, 0.04), hi * Math.pow(hi / lo, 0.04)];
    }
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = (hi - lo) * 0.04;
    return [lo - pad, hi + pad];
  };
  const hVals = (o.hLines ?? []).map((h) => h.y).filter(okY);
  const [x0, x1] = range(pts.map((p) => p[0]), o.xLog, o.xRange);
  const [y0, y1] = range([...pts.map((p) => p[1]), ...hVals], o.yLog, o.yRange);
  const tx = (x: number) => m.left + (o.xLog ? Math.log(x / x0) / Math.log(x1 / x0) : (x - x0) / (x1 - x0)) * pw;
  const ty = (y: number) => m.top + ph - (o.yLog ? Math.log(y / y0) / Math.log(y1 / y0) : (y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (o.title) parts.push(`<text x="${f(m.left + pw / 2)}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  // grid and ticks
  const xt = (o.xTicks ?? (o.xLog ? niceLogTicks(x0, x1) : niceLinearTicks(x0, x1))).filter((v) => v >= x0 && v <= x1 && okX(v));
  const yt = (o.yTicks ?? (o.yLog ? niceLogTicks(y0, y1) : niceLinearTicks(y0, y1))).filter((v) => v >= y0 && v <= y1 && okY(v));
  for (const v of xt) {
    const x = tx(v);
    parts.push(`<line x1="${f(x)}" y1="${m.top}" x2="${f(x)}" y2="${m.top + ph}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${f(x)}" y="${m.top + ph + 15}" text-anchor="middle">${escapeXml(formatTick(v))}</text>`);
  }
  for (const v of yt) {
    const y = ty(v);
    parts.push(`<line x1="${m.left}" y1="${f(y)}" x2="${m.left + pw}" y2="${f(y)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${m.left - 5}" y="${f(y + 4)}" text-anchor="end">${escapeXml(formatTick(v))}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  if (o.xLabel) parts.push(`<text x="${f(m.left + pw / 2)}" y="${H - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  if (o.yLabel) parts.push(`<text transform="translate(14 ${f(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  for (const h of o.hLines ?? []) {
    if (!okY(h.y) || h.y < y0 || h.y > y1) continue;
    const y = ty(h.y);
    parts.push(`<line x1="${m.left}" y1="${f(y)}" x2="${m.left + pw}" y2="${f(y)}" stroke="#888" stroke-dasharray="2 3"/>`);
    if (h.label) parts.push(`<text x="${m.left + pw - 4}" y="${f(y - 4)}" text-anchor="end" fill="#666">${escapeXml(h.label)}</text>`);
  }
  // series, clipped to the plot area
  const clip = `clip${++plotCount}`; // unique within a page, and deterministic
  parts.push(`<clipPath id="${clip}"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath><g clip-path="url(#${clip})">`);
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const p = s.points.filter(([x, y]) => okX(x) && okY(y));
    if (p.length === 0) return;
    if (!s.noLine && p.length > 1) {
      const d = p.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${f(tx(x))},${f(ty(y))}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    }
    if (s.markers ?? p.length <= 40) for (const [x, y] of p) parts.push(`<circle cx="${f(tx(x))}" cy="${f(ty(y))}" r="3" fill="${color}"/>`);
  });
  parts.push('</g>');
  // legend
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const y = m.top + 10 + i * 16, x = W - legendW + 4;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${x + 27}" y="${y + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
