/** The downstream task readers behind one call. */
import { UntieError } from '../../errors.js';
import type { WordPieceTokenizer } from '../tokenizer.js';
import { readClassifyTask } from './classify.js';
import { readPosTask, type TagSet } from './pos.js';
import { readSpamTask } from './spam.js';
import { TASKS, type ReaderLimits, type TaskData, type TaskName } from './task.js';

export interface TaskOptions {
  /** classify: the CSV or JSONL file, its text and label columns, and optionally the label names in id order. */
  data?: string;
  textColumn?: string;
  labelColumn?: string;
  labels?: string[];
  /** pos: universal (default) or full. */
  tags?: TagSet;
  /** pos: the pre-training run's document split (its validation documents are the test split). */
  splitSeed?: number;
  validationFraction?: number;
}

/** Checks the task name and the options that go with it, before anything is loaded. */
export function checkTaskOptions(task: string, opts: TaskOptions): asserts task is TaskName {
  if (!(TASKS as readonly string[]).includes(task)) throw new UntieError(`unknown task "${task}": use one of ${TASKS.join(', ')}`);
  if (task !== 'classify' && opts.data !== undefined) throw new UntieError(`--data is for the classify task; ${task} reads its built-in data`);
  if (task === 'classify' && !opts.data) throw new UntieError('the classify task needs --data FILE (a .csv or .jsonl file with text and label columns)');
  if (opts.tags !== undefined && opts.tags !== 'universal' && opts.tags !== 'full') throw new UntieError(`--tags must be "universal" or "full", got "${String(opts.tags)}"`);
}

export async function readTask(task: TaskName, tokenizer: WordPieceTokenizer, limits: ReaderLimits, opts: TaskOptions = {}): Promise<TaskData> {
  checkTaskOptions(task, opts);
  if (task === 'pos') {
    const tags = opts.tags ?? 'universal';
    return readPosTask(tokenizer, { ...limits, tags, splitSeed: opts.splitSeed ?? 0, validationFraction: opts.validationFraction ?? 0.05 });
  }
  if (task === 'spam') return readSpamTask(tokenizer, limits);
  return readClassifyTask(tokenizer, opts.data!, { textColumn: opts.textColumn ?? 'text', labelColumn: opts.labelColumn ?? 'label', labels: opts.labels }, limits);
}
