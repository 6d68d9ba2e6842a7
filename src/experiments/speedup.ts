/**
 * The speed-up as a curve, not one number, and differences with honest
 * intervals: what a comparison of several seeds needs beyond "steps to the
 * baseline's final loss".
 *
 * - Levels: the baseline's validation loss at 25%, 50%, 75% and 100% of its
 *   run are targets; for each, the steps a variant needs to reach it, and the
 *   ratio to the steps the baseline itself needed (per seed, paired).
 * - Paired differences: variant minus baseline on the same seed (same data
 *   order, same masking, same initial draw), with a 95% t-interval over
 *   seeds. Pairing removes the seed-to-seed spread that both share.
 * - Seconds from costs: when runs went side by side on a shared machine, their
 *   logged seconds do not compare; seconds are then steps times each phase's
 *   cost per step, measured alone (see `modelledSeconds`).
 *
 * Pure functions of the runs' records: no training, no files.
 */

/** The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95%). */
export function tQuantile975(df: number): number {
  const table = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131,
    2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
  ];
  if (!(df >= 1)) return NaN;
  if (df <= table.length) return table[Math.floor(df) - 1];
  return 1.96 + 2.4 / df; // within 0.002 of the exact value above 30 degrees of freedom
}

/** Mean of a paired difference over seeds with its 95% t-interval (null bounds with one pair). */
export interface PairedDiff {
  n: number;
  mean: number;
  low: number | null;
  high: number | null;
  /** The seeds that entered, in order. */
  seeds: number[];
}

/** `variant[seed] - baseline[seed]` over the seeds both have. Null when they share none. */
export function pairedDifference(variant: Map<number, number>, baseline: Map<number, number>): PairedDiff | null {
  const seeds = [...variant.keys()].filter((s) => baseline.has(s) && Number.isFinite(variant.get(s)!) && Number.isFinite(baseline.get(s)!)).sort((a, b) => a - b);
  if (seeds.length === 0) return null;
  const d = seeds.map((s) => variant.get(s)! - baseline.get(s)!);
  const n = d.length;
  const mean = d.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, low: null, high: null, seeds };
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = tQuantile975(n - 1) * (sd / Math.sqrt(n));
  return { n, mean, low: mean - half, high: mean + half, seeds };
}

/** Whether a paired interval excludes zero: "+" (variant higher), "-" (lower), "0" (cannot tell), null (one seed). */
export function pairedVerdict(d: PairedDiff | null): '+' | '-' | '0' | null {
  if (!d || d.low === null || d.high === null) return null;
  if (d.low > 0) return '+';
  if (d.high < 0) return '-';
  return '0';
}

/** The value of a piecewise-linear curve (x increasing) at `x`; null outside it. */
export function valueAt(points: readonly [number, number][], x: number): number | null {
  if (points.length === 0 || x < points[0][0] || x > points[points.length - 1][0]) return null;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1] = points[i];
    if (x1 < x) continue;
    if (x1 === x || i === 0) return y1;
    const [x0, y0] = points[i - 1];
    return y0 + ((x - x0) / (x1 - x0)) * (y1 - y0);
  }
  return null;
}

/** The fractions of the baseline's run whose losses serve as targets. */
export const LEVELS = [0.25, 0.5, 0.75, 1] as const;

/** One phase of a run at one cost per step: `kind` names the cost ("untied", "tied") and `depth` the layers it ran. */
export interface Phase {
  fromStep: number;
  kind: string;
  depth: number;
}

/**
 * The training seconds of a run at each of `steps`, from its phases and the
 * cost per step of each (kind, depth), measured alone: `costs` maps
 * `${kind}@${depth}` to seconds per step. Null when a cost is missing.
 */
export function modelledSeconds(phases: readonly Phase[], costs: Record<string, number>, steps: readonly number[]): (number | null)[] {
  const sorted = [...phases].sort((a, b) => a.fromStep - b.fromStep);
  return steps.map((step) => {
    let seconds = 0;
    for (let i = 0; i < sorted.length; i++) {
      const from = sorted[i].fromStep, to = Math.min(step, i + 1 < sorted.length ? sorted[i + 1].fromStep : Infinity);
      if (to <= from) break;
      const cost = costs[costKey(sorted[i])];
      if (cost === undefined) return null;
      seconds += (to - from) * cost;
    }
    return seconds;
  });
}

export function costKey(p: Pick<Phase, 'kind' | 'depth'>): string {
  return `${p.kind}@${p.depth}`;
}
