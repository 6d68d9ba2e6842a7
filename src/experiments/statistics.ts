/**
 * When would each untie statistic have fired? Replays a run's logged
 * adjacent-layer checks through the real SWE-A criterion (the code
 * `--untie adaptive --untie-statistic S` runs), once per statistic, with the
 * paper's rho and patience and no deadline.
 */
import { AdaptiveCriterion, type CheckStats } from '../sharing/criteria.js';
import { UNTIE_STATISTICS, type UntieStatistic } from '../sharing/statistics.js';

export interface StatisticReplay {
  statistic: UntieStatistic;
  /** Completed steps at the check that would have untied; null if it never fires on these checks. */
  untieStep: number | null;
  /** The statistic's value per check, averaged over the adjacent pairs. */
  meanValues: [number, number][];
}

/** `checks` as a run record holds them: step (completed updates) and each pair's pooled cosine (+ per-tensor cosines). */
export function replayStatistics(
  checks: readonly { step: number; cosines: number[]; pairs: [number, number][]; perTensor?: Record<string, number>[] }[],
  threshold = 0.5,
  patience = 3,
): StatisticReplay[] {
  return UNTIE_STATISTICS.map((statistic) => {
    const criterion = new AdaptiveCriterion({ threshold, patience, every: 1, deadline: null, statistic });
    let untieStep: number | null = null;
    const meanValues: [number, number][] = [];
    const groups = [checks[0]?.pairs.flat() ?? [0, 1]].map((g) => [...new Set(g)].sort((a, b) => a - b));
    for (const c of checks) {
      const stats: CheckStats = {
        step: c.step - 1,
        pairs: c.pairs.map(([a, b], i) => ({ a, b, cosine: c.cosines[i], perTensor: c.perTensor?.[i] ?? {} })),
      };
      const decision = criterion.decide(c.step - 1, groups, stats);
      const values = criterion.lastValues ?? [];
      meanValues.push([c.step, values.reduce((s, v) => s + v, 0) / Math.max(1, values.length)]);
      if (untieStep === null && decision.action === 'untie') untieStep = c.step;
    }
    return { statistic, untieStep, meanValues };
  });
}
