/**
 * Whether a run has done all its training already: resuming it has nothing
 * to do, so `untie train --resume` says so (and writes nothing) instead of
 * starting a run that stops at once.
 */
import path from 'node:path';
import { listCheckpoints, readTrainerState } from './checkpoint.js';
import type { RunConfig } from './config.js';
import { readMetrics } from './metrics.js';
import { formatSeconds } from './progress.js';

export interface FinishedRun {
  /** The newest checkpoint: the run's last step. */
  step: number;
  checkpoint: string;
  /** Seconds of training the run made. */
  elapsed: number;
  /** The last evaluation metrics.jsonl holds (null when it has none). */
  lastEval: { valLoss: number; valAcc: number; unigramValLoss: number | null; unigramValAcc: number | null } | null;
  /** What is finished and what to do instead, in one line. */
  message: string;
}

/** The finished run in `runDir` (its schedule's steps or its budget all trained), or null when it has more to do or no readable checkpoint. */
export function finishedRun(cfg: RunConfig, runDir: string, command = 'untie train'): FinishedRun | null {
  const checkpoints = listCheckpoints(runDir);
  const newest = checkpoints[checkpoints.length - 1];
  if (!newest) return null;
  let state;
  try {
    state = readTrainerState(newest.dir, newest.step);
  } catch {
    return null; // a damaged checkpoint: resuming says what is wrong with it
  }
  const budget = cfg.train.budget;
  const steps = state.schedule?.steps ?? cfg.train.steps;
  if (budget > 0 ? state.elapsed < budget : state.step < steps) return null;
  const evals = readMetrics(path.join(runDir, 'metrics.jsonl')).filter((r) => r.type === 'eval' && typeof r.val_loss === 'number');
  const last = evals[evals.length - 1];
  const lastEval = last ? {
    valLoss: Number(last.val_loss), valAcc: Number(last.val_acc),
    unigramValLoss: typeof last.unigram_val_loss === 'number' ? last.unigram_val_loss : null,
    unigramValAcc: typeof last.unigram_val_acc === 'number' ? last.unigram_val_acc : null,
  } : null;
  const what = budget > 0 ? `its whole budget of ${formatSeconds(budget)}` : `all its ${steps} steps`;
  const scores = lastEval
    ? `; final validation loss ${lastEval.valLoss.toFixed(4)}${lastEval.unigramValLoss !== null ? ` (unigram ${lastEval.unigramValLoss.toFixed(4)})` : ''}`
    : '';
  const longer = budget > 0
    ? 'To train longer, start a new run with a larger --budget'
    : `To train it longer: ${command} --resume ${runDir} --extend-to ${2 * steps}`;
  return {
    step: state.step, checkpoint: newest.dir, elapsed: state.elapsed, lastEval,
    message: `${runDir} is finished: it trained ${what} (checkpoint-${newest.step})${scores}. Nothing to resume. ${longer}; to see it: untie report ${runDir}`,
  };
}
