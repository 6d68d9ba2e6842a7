/** Learning-rate schedules: a pure function of the step, so resuming needs only the step. */
export interface ScheduleConfig {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: 'linear' | 'cosine' | 'constant';
}

/**
 * Linear warmup from 0 to lr over warmupSteps, then a decay to 0 at
 * totalSteps (linear or cosine), or constant.
 */
export function learningRate(step: number, cfg: ScheduleConfig): number {
  if (cfg.warmupSteps > 0 && step < cfg.warmupSteps) return (cfg.lr * (step + 1)) / cfg.warmupSteps;
  if (cfg.kind === 'constant') return cfg.lr;
  const remaining = Math.max(0, cfg.totalSteps - step);
  const span = Math.max(1, cfg.totalSteps - cfg.warmupSteps);
  const left = Math.min(1, remaining / span); // 1 right after warmup, 0 at the end
  return cfg.kind === 'cosine' ? cfg.lr * 0.5 * (1 - Math.cos(Math.PI * left)) : cfg.lr * left;
}

export interface FractionScheduleConfig {
  lr: number;
  /** Warmup as a fraction of the run. */
  warmupFraction: number;
  kind: 'linear' | 'cosine' | 'constant';
}

/**
 * The same schedule as a function of the fraction of the run done (a
 * --budget run's seconds spent / budget): warmup to lr over warmupFraction,
 * then decay to exactly 0 at fraction 1.
 */
export function learningRateAt(fraction: number, cfg: FractionScheduleConfig): number {
  const f = Math.min(1, Math.max(0, fraction));
  if (cfg.warmupFraction > 0 && f < cfg.warmupFraction) return (cfg.lr * f) / cfg.warmupFraction;
  if (cfg.kind === 'constant') return f >= 1 ? 0 : cfg.lr;
  const left = (1 - f) / Math.max(1e-12, 1 - cfg.warmupFraction); // 1 right after warmup, 0 at the end
  return cfg.kind === 'cosine' ? cfg.lr * 0.5 * (1 - Math.cos(Math.PI * left)) : cfg.lr * left;
}
