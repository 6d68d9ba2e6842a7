/** HTML helpers for the blocks of a page: escaping, tables, number labels, colours. */

/** A colour-blind-friendly palette (Okabe-Ito), black and yellow last. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A table cell: plain text (escaped) or trusted HTML. */
export type Cell = string | number | { html: string };

/** Marks a string as HTML that is already escaped (bold text, links, line breaks). */
export function raw(html: string): { html: string } {
  return { html };
}

function cellHtml(c: Cell): string {
  return typeof c === 'object' ? c.html : escapeHtml(String(c));
}

export function table(head: Cell[], rows: Cell[][], opts: { className?: string } = {}): string {
  const cls = opts.className ? ` class="${escapeHtml(opts.className)}"` : '';
  return `<table${cls}><thead><tr>${head.map((h) => `<th>${cellHtml(h)}</th>`).join('')}</tr></thead>`
    + `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${cellHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Short number label: 1e-3, 0.25, 1200, 3.2, 8e-4. */
export function formatNumber(v: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const e = Math.floor(Math.log10(a));
    const m = v / Math.pow(10, e);
    return `${+m.toPrecision(2)}e${e}`;
  }
  return String(+v.toPrecision(3));
}

/** Seconds as "42 s", "12.5 min", "3.1 h". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}
