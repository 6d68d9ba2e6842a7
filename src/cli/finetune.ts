/** `untie finetune CHECKPOINT --task pos|spam|classify`: downstream scores of a pre-trained encoder. */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { FINETUNE_DEFAULTS, FROZEN_LR_GRID, LR_GRID, finetune, formatScore, percent, type FinetuneOptions, type FinetuneResult } from '../experiments/finetune.js';
import type { TagSet } from '../data/tasks/pos.js';
import { TASKS, type TaskName } from '../data/tasks/task.js';
import { isRunDir } from '../report/read.js';
import { writeRunReport } from '../report/run.js';
import { closest, helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'fine-tune a checkpoint on POS tagging, spam detection or your own labelled texts';

const D = FINETUNE_DEFAULTS;
const flags: Flags = {
  task: { type: 'string', help: 'pos (Brown POS tags, token accuracy) | spam (SpamAssassin, F1 on spam) | classify (your --data file, accuracy)' },
  data: { type: 'string', help: 'classify: a .csv (header row) or .jsonl file of labelled texts' },
  'text-column': { type: 'string', help: 'classify: the column/key holding the text', default: 'text' },
  'label-column': { type: 'string', help: 'classify: the column/key holding the label', default: 'label' },
  labels: { type: 'string', help: 'classify: the labels, comma-separated, in id order (default: those in the file; others are an error when given)' },
  tags: { type: 'string', help: 'pos: universal (12 tags) | full (every Brown tag)', default: 'universal' },
  seeds: { type: 'string', help: 'seeds run at the chosen learning rate (mean and spread are over these)', default: String(D.seeds) },
  'lr-grid': { type: 'string', help: `learning rates tried on the dev split with seed 0, comma-separated (default ${LR_GRID.join(',')}; --frozen: ${FROZEN_LR_GRID.join(',')})` },
  epochs: { type: 'string', help: `passes over the training examples (default ${D.epochs}, --frozen ${D.frozenEpochs}, or as many as make ${D.minUpdates} updates)` },
  'batch-size': { type: 'string', help: 'examples per update', default: String(D.batchSize) },
  patience: { type: 'string', help: `stop a run after this many dev evaluations (of ${D.evals} a run) without a new best (0 = never)`, default: String(D.patience) },
  'class-weights': { type: 'string', help: 'balanced (each class counts equally in the loss) | none (default: balanced for spam and classify, none for pos)' },
  'max-length': { type: 'string', help: 'tokens per example, [CLS] and [SEP] included (capped at the model\'s positions); longer texts are cut', default: String(D.maxLength) },
  'max-examples': { type: 'string', help: 'training examples kept, a fixed subset (0 = all; e.g. 512 for a quick judge)', default: String(D.maxTrain) },
  'max-dev': { type: 'string', help: 'dev examples kept (0 = all); the test split is never cut', default: String(D.maxDev) },
  'from-scratch': { type: 'boolean', help: 'the same model shape with random weights: the floor pre-training must beat' },
  frozen: { type: 'boolean', help: 'freeze the encoder and train only the head on its features (a probe)' },
  out: { type: 'string', help: 'results folder (default: <run>/finetune-<task>, classify: finetune-classify-<data file name>, with -scratch / -frozen for those modes)' },
  force: { type: 'boolean', help: 'replace the earlier results in that folder (otherwise an error); only a results folder (with results.json), and only once the new results are complete' },
  threads: { type: 'string', help: 'kernel threads (0 = all cores)', default: '0' },
  json: { type: 'boolean', help: 'print {"task", "metric", "score", "std", "seeds", "scores", "lr", "seconds", "majority_score", "bow_score", "bow", "out"} as JSON' },
  quiet: { type: 'boolean', help: 'no progress output' },
};

const DESCRIPTION = `${summary}.

The recipe: AdamW (weight decay 0.01), warmup over the first 10% of the updates
then linear decay to 0, gradient clip 1; for spam and classify, a loss that
weighs each class by the inverse of its frequency. Every training example is
used, for ${D.epochs} epoch (--frozen: ${D.frozenEpochs}) or as many as it takes to make ${D.minUpdates}
updates (spam: 2 epochs; a file of 140 training rows: 34). Each run is scored on dev ${D.evals} times, keeps the
weights of its best score, and stops after ${D.patience} scores without a new best. Each
learning rate of the grid is trained with seed 0, then the other seeds run at
the best one; the score is the mean (and standard deviation) over seeds on the
test split, printed beside two reference lines trained on the same split: the
majority class and a bag of words (spam, classify: a logistic regression on
WordPiece counts; pos: each word's most frequent training tag).
Results and the best model (by dev score) go to <run>/finetune-<task>/
(results.json, metrics.jsonl, best/); \`untie predict <run>/finetune-<task> "text"\`
labels new text with it, \`untie export <run>/finetune-<task>/best OUT\` writes it
as a Hugging Face folder.`;

function list(name: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UntieError(`--${name} needs at least one value`);
  return items;
}

function classWeights(value: string | undefined): FinetuneOptions['classWeights'] {
  if (value === undefined || value === 'balanced' || value === 'none') return value;
  throw new UntieError(`--class-weights must be balanced or none, got "${value}"`);
}

export function optionsFromFlags(checkpoint: string, values: Record<string, string | boolean | undefined>): FinetuneOptions {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const int = (k: string, min: number) => numberFlag(k, values[k], { integer: true, min });
  const task = str('task');
  if (!task) throw new UntieError('--task is required: pos, spam or classify');
  if (!(TASKS as readonly string[]).includes(task)) {
    const guess = closest(task, TASKS);
    throw new UntieError(`unknown task "${task}": use one of ${TASKS.join(', ')}${guess ? ` (did you mean --task ${guess}?)` : ''}`);
  }
  const grid = str('lr-grid');
  return {
    checkpoint, task: task as TaskName, data: str('data'), textColumn: str('text-column'), labelColumn: str('label-column'),
    labels: str('labels') !== undefined ? list('labels', str('labels')!) : undefined, tags: str('tags') as TagSet | undefined,
    seeds: int('seeds', 1), lrGrid: grid !== undefined ? list('lr-grid', grid).map((v) => numberFlag('lr-grid', v, { min: Number.MIN_VALUE })!) : undefined,
    epochs: int('epochs', 1), batchSize: int('batch-size', 1), patience: int('patience', 0), classWeights: classWeights(str('class-weights')),
    maxLength: int('max-length', 8), maxTrain: int('max-examples', 0), maxDev: int('max-dev', 0),
    fromScratch: values['from-scratch'] === true, frozen: values.frozen === true, outDir: str('out'), force: values.force === true, threads: int('threads', 0) ?? 0,
    progress: !values.quiet && !values.json,
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('finetune', argv, flags);
  if (values.help) {
    console.log(helpText('finetune', 'RUN_OR_CHECKPOINT --task pos|spam|classify [options]', flags, DESCRIPTION));
    return 0;
  }
  if (positionals.length !== 1) throw new UntieError('usage: untie finetune RUN_OR_CHECKPOINT --task pos|spam|classify [--data FILE] [--seeds K] [--json]');
  const r = await finetune(optionsFromFlags(positionals[0], values));
  if (values.json) {
    console.log(JSON.stringify({
      task: r.task, metric: r.metric, score: r.score, std: r.std, seeds: r.seeds, scores: r.scores, lr: r.lr, seconds: r.seconds,
      majority_score: r.majority.score, bow_score: r.bow.score, bow: r.bow.method, out: r.outDir,
    }));
    return 0;
  }
  for (const line of summaryLines(r)) console.log(line);
  // A run's page lists its fine-tuning results: one written before this run is brought up to date.
  const runDir = r.outDir ? path.dirname(r.outDir) : null;
  if (runDir && isRunDir(runDir) && fs.existsSync(path.join(runDir, 'report.html'))) console.log(`updated ${writeRunReport(runDir)}`);
  return 0;
}

/** The printed result: the score over seeds, both reference lines on the same split, and where it stands between them. */
export function summaryLines(r: FinetuneResult): string[] {
  const withAccuracy = (s: { score: number; accuracy: number }) => `${r.metric} ${percent(s.score)}${r.metric === 'f1' ? ` (accuracy ${percent(s.accuracy)})` : ''}`;
  const lines = [
    `${r.task} (${r.mode}): test ${r.metric} ${formatScore(r.score, r.std)} over seeds ${r.seeds.join(', ')} (${r.scores.map(percent).join(', ')}) at lr ${r.lr}`,
    `reference lines on the same ${r.splits.test.examples} test examples: majority class ("${r.majority.label}") ${withAccuracy(r.majority)}; ${r.bow.method} ${withAccuracy(r.bow)}`,
  ];
  if (r.metric === 'f1') lines.push(`accuracy: ${r.runs.map((x) => percent(x.test!.accuracy)).join(', ')}`);
  const points = (x: number) => `${(100 * Math.abs(x)).toFixed(2)} points`;
  lines.push(`the fine-tuned model: ${r.score <= r.majority.score ? 'no better than the majority class (it learned nothing the label counts do not give)'
    : r.score < r.bow.score ? `above the majority class, ${points(r.bow.score - r.score)} below the bag-of-words line`
      : `above both reference lines (the bag of words by ${points(r.score - r.bow.score)})`}`);
  lines.push(`${r.seconds.toFixed(1)} s (references ${r.bow.seconds.toFixed(1)} s); results and the best model (seed ${r.bestSeed}) in ${r.outDir ?? '(not written)'}`);
  return lines;
}
