/**
 * The number SWE-A and SWE-M compare with rho, for each adjacent pair at
 * each check. The paper's rule uses "the correlation between the gradients of
 * two adjacent layers" on one check; at small scale that cosine stays high
 * (0.76-0.97 on the tiny preset) and never reaches rho = 0.5, so untie offers
 * alternatives behind `--untie-statistic`, all compared with the same rho:
 *
 * - `cosine` (default, the paper's): the pair's pooled gradient cosine at
 *   this check.
 * - `ema`: an exponential moving average of the pooled cosine over checks
 *   (weight 0.2 on the newest, a window of about 9 checks): less noisy, so a
 *   streak of C checks means a sustained drop.
 * - `relative`: the pooled cosine divided by the pair's mean over its first 3
 *   checks, i.e. how much of its initial agreement the pair keeps: 0.5 means
 *   "agreement halved", whatever level the model started at.
 * - `tensor-median`: the median of the pair's per-tensor cosines, which the
 *   largest tensors (the feed-forward weights) cannot dominate the way they
 *   dominate the pooled value.
 *
 * The constants (0.2, 3) are fixed here, stated once, and not tuned to runs.
 */
import { UntieError } from '../errors.js';
import type { CheckStats, PairStat } from './criteria.js';

export const UNTIE_STATISTICS = ['cosine', 'ema', 'relative', 'tensor-median'] as const;
export type UntieStatistic = (typeof UNTIE_STATISTICS)[number];

export const EMA_WEIGHT = 0.2;
export const RELATIVE_BASELINE_CHECKS = 3;

export function parseStatistic(text: string): UntieStatistic {
  if (!(UNTIE_STATISTICS as readonly string[]).includes(text)) {
    throw new UntieError(`--untie-statistic "${text}" is not one of: ${UNTIE_STATISTICS.join(', ')}`);
  }
  return text as UntieStatistic;
}

export interface StatisticState {
  /** Per pair ("a-b"): the running EMA, or the first checks' cosines for `relative`. */
  ema: Record<string, number>;
  first: Record<string, number[]>;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Turns each check's pair statistics into the values compared with rho; keeps the running state it needs. */
export class StatisticTracker {
  private state: StatisticState = { ema: {}, first: {} };

  constructor(readonly kind: UntieStatistic) {}

  /** The value of each pair of `stats` (same order); updates the running state. */
  values(stats: CheckStats): number[] {
    return stats.pairs.map((p) => this.value(p));
  }

  private value(p: PairStat): number {
    const key = `${p.a}-${p.b}`;
    switch (this.kind) {
      case 'cosine':
        return p.cosine;
      case 'ema': {
        const prev = this.state.ema[key];
        const next = prev === undefined ? p.cosine : (1 - EMA_WEIGHT) * prev + EMA_WEIGHT * p.cosine;
        this.state.ema[key] = next;
        return next;
      }
      case 'relative': {
        const first = (this.state.first[key] ??= []);
        if (first.length < RELATIVE_BASELINE_CHECKS) first.push(p.cosine);
        const base = first.reduce((a, b) => a + b, 0) / first.length;
        // Until the baseline is complete the pair counts as agreeing fully.
        return first.length < RELATIVE_BASELINE_CHECKS || !(base > 0) ? 1 : p.cosine / base;
      }
      case 'tensor-median':
        return median(Object.values(p.perTensor));
    }
  }

  getState(): StatisticState {
    return structuredClone(this.state);
  }

  setState(state: Partial<StatisticState> | undefined): void {
    const bad = (what: string) => new UntieError(`a saved untie statistic state is damaged: ${what}`);
    const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
    const isCosine = (v: unknown) => typeof v === 'number' && v >= -1 - 1e-6 && v <= 1 + 1e-6;
    if (state !== undefined && !isRecord(state)) throw bad(`${JSON.stringify(state)?.slice(0, 60)} is not an object`);
    const ema = state?.ema ?? {}, first = state?.first ?? {};
    if (!isRecord(ema) || !Object.values(ema).every(isCosine)) throw bad('"ema" must map layer pairs to cosines in [-1, 1]');
    if (!isRecord(first) || !Object.values(first).every((xs) => Array.isArray(xs) && xs.length <= RELATIVE_BASELINE_CHECKS && xs.every(isCosine))) {
      throw bad(`"first" must map layer pairs to at most ${RELATIVE_BASELINE_CHECKS} cosines in [-1, 1]`);
    }
    this.state = { ema: { ...ema }, first: structuredClone(first) };
  }
}
