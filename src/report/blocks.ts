/**
 * The building blocks of every page untie draws (run report, live page,
 * deep-linear report, compare report): plain JSON descriptions of charts,
 * tables and sections. Node code builds them; the browser script
 * (client.js) draws them. Nothing here imports anything, so the browser
 * script's type check can read these types too.
 */

/** One line (or set of dots) on a chart; x and y have the same length. */
export interface LineSeries {
  label: string;
  /** CSS colour (default: from the palette by position). */
  color?: string;
  /** Dashed line (reference curves such as the unigram loss, fits). */
  dash?: boolean;
  /** Draw dots at the points (default: when the series has at most 60 points). */
  points?: boolean;
  /** Draw no line, only dots. */
  noLine?: boolean;
  /** Line width in CSS pixels (default 1.5). */
  width?: number;
  x: number[];
  /** null: no value at that x (a gap). */
  y: (number | null)[];
}

/** A vertical line at x with a label: an untie or split, with its reason. */
export interface Marker {
  x: number;
  label: string;
  color?: string;
}

/** A horizontal reference line: rho, eps, the gradient clip. */
export interface RefLine {
  y: number;
  label: string;
  color?: string;
}

/** x-y chart with one or more series (several runs overlaid for a comparison). */
export interface LineChart {
  kind: 'line';
  /** Unique within the page; the live page updates charts by id. */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** Fixed tick positions on x (e.g. the depths of a sweep). */
  xTicks?: number[];
  xRange?: [number, number];
  yRange?: [number, number];
  series: LineSeries[];
  markers?: Marker[];
  refLines?: RefLine[];
  /** Size in CSS pixels (default 560 x 300). */
  width?: number;
  height?: number;
}

/**
 * A grid of values: rows (e.g. adjacent layer pairs) against columns at x
 * positions (e.g. the steps of the sharing checks). Several layers of values
 * share the grid (pooled, then per parameter tensor); the page offers a
 * choice among them.
 */
export interface Heatmap {
  kind: 'heatmap';
  id: string;
  title: string;
  xLabel: string;
  rowLabel: string;
  rows: string[];
  /** x of each column, increasing; column j spans [columns[j], columns[j+1]). */
  columns: number[];
  /** Where the last column ends. */
  xEnd: number;
  layers: { name: string; values: (number | null)[][] }[];
  /** Ends of the colour scale; null (or no range): from the values shown. */
  range?: [number | null, number | null];
  /** The colour scale turns from low to high colours here (e.g. rho), marked on its bar. */
  pivot?: { value: number; label: string };
  markers?: Marker[];
  width?: number;
}

/**
 * Rows (layer positions) against x (steps), each cell coloured by the group
 * its row belongs to during that span: the tying plan over time.
 */
export interface GroupBands {
  kind: 'bands';
  id: string;
  title: string;
  xLabel: string;
  rows: string[];
  /** Consecutive spans; `groupOf[row]` names the group (its first member) during [from, to). */
  spans: { from: number; to: number; groupOf: number[]; description: string }[];
  markers?: Marker[];
  width?: number;
}

/** Trusted HTML, built with escapeHtml/table from html.ts. */
export interface HtmlBlock {
  kind: 'html';
  html: string;
}

/** A titled part of the page; `collapsed` puts it in a closed <details>. */
export interface Section {
  kind: 'section';
  title: string;
  blocks: Block[];
  collapsed?: boolean;
  /** Heading level (default 2). */
  level?: 2 | 3;
}

/** Blocks laid out side by side, wrapping. */
export interface Grid {
  kind: 'grid';
  blocks: Block[];
}

export type Chart = LineChart | Heatmap | GroupBands;
export type Block = Chart | HtmlBlock | Section | Grid;

/** What the page script draws, and what the live page's server sends on every change. */
export interface View {
  title: string;
  blocks: Block[];
}

/** Settings of a live page: where to poll for a new view. */
export interface LiveOptions {
  /** URL answering `?since=VERSION` with 204 (unchanged) or { version, view }. */
  viewUrl: string;
  version: string;
  intervalMs: number;
}
