/** Learning-rate schedules: a pure function of the step, so resuming needs only the step. */
export interface ScheduleConfig {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: 'linear' | 'constant';
}

/** Linear warmup from 0 to lr over warmupSteps, then linear decay to 0 at totalSteps (or constant). */
export function learningRate(step: number, cfg: ScheduleConfig): number {
  if (cfg.warmupSteps > 0 && step < cfg.warmupSteps) return (cfg.lr * (step + 1)) / cfg.warmupSteps;
  if (cfg.kind === 'constant') return cfg.lr;
  const remaining = Math.max(0, cfg.totalSteps - step);
  const span = Math.max(1, cfg.totalSteps - cfg.warmupSteps);
  return cfg.lr * Math.min(1, remaining / span);
}
