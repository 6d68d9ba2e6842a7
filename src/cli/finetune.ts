/** `untie finetune CHECKPOINT --task pos|spam|classify`: downstream scores of a pre-trained encoder. */
import { UntieError } from '../errors.js';
import { FINETUNE_DEFAULTS, FROZEN_LR_GRID, LR_GRID, finetune, type FinetuneOptions } from '../experiments/finetune.js';
import type { TagSet } from '../data/tasks/pos.js';
import type { TaskName } from '../data/tasks/task.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

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
  epochs: { type: 'string', help: `passes over the training examples (default ${D.epochs}; --frozen: ${D.frozenEpochs})` },
  'batch-size': { type: 'string', help: 'examples per update', default: String(D.batchSize) },
  'max-length': { type: 'string', help: 'tokens per example, [CLS] and [SEP] included (capped at the model\'s positions); longer texts are cut', default: String(D.maxLength) },
  'max-train': { type: 'string', help: 'training examples kept, a fixed subset (0 = all)', default: String(D.maxTrain) },
  'max-dev': { type: 'string', help: 'dev examples kept (0 = all); the test split is never cut', default: String(D.maxDev) },
  'from-scratch': { type: 'boolean', help: 'the same model shape with random weights: the floor pre-training must beat' },
  frozen: { type: 'boolean', help: 'freeze the encoder and train only the head on its features (a probe)' },
  out: { type: 'string', help: 'results folder (default: <run>/finetune-<task>, with -scratch / -frozen for those modes)' },
  threads: { type: 'string', help: 'kernel threads (0 = all cores)', default: '0' },
  json: { type: 'boolean', help: 'print {"task", "metric", "score", "std", "seeds", "scores", "lr", "seconds"} as JSON' },
  quiet: { type: 'boolean', help: 'no progress output' },
};

const DESCRIPTION = `${summary}.

The recipe: AdamW (weight decay 0.01), warmup over the first 10% of the updates
then linear decay to 0, gradient clip 1; each learning rate of the grid is
trained with seed 0 and scored on the dev split, then the other seeds run at
the best one; the score is the mean (and standard deviation) over seeds on the
test split, next to the majority-class baseline. To stay cheap, at most
${D.maxTrain} training examples of ${D.maxLength} tokens are used (a fixed subset); with the
defaults that is ${D.epochs} x ${D.maxTrain / D.batchSize} = ${D.epochs * (D.maxTrain / D.batchSize)} updates a run, ${LR_GRID.length + D.seeds - 1} runs.
Results and the best model (by dev score) go to <run>/finetune-<task>/
(results.json, metrics.jsonl, best/); \`untie export <run>/finetune-<task>/best OUT\`
writes it as a Hugging Face folder.`;

function list(name: string, text: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UntieError(`--${name} needs at least one value`);
  return items;
}

export function optionsFromFlags(checkpoint: string, values: Record<string, string | boolean | undefined>): FinetuneOptions {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const int = (k: string, min: number) => numberFlag(k, values[k], { integer: true, min });
  const task = str('task');
  if (!task) throw new UntieError('--task is required: pos, spam or classify');
  const grid = str('lr-grid');
  return {
    checkpoint, task: task as TaskName, data: str('data'), textColumn: str('text-column'), labelColumn: str('label-column'),
    labels: str('labels') !== undefined ? list('labels', str('labels')!) : undefined, tags: str('tags') as TagSet | undefined,
    seeds: int('seeds', 1), lrGrid: grid !== undefined ? list('lr-grid', grid).map((v) => numberFlag('lr-grid', v, { min: Number.MIN_VALUE })!) : undefined,
    epochs: int('epochs', 1), batchSize: int('batch-size', 1), maxLength: int('max-length', 8), maxTrain: int('max-train', 0), maxDev: int('max-dev', 0),
    fromScratch: values['from-scratch'] === true, frozen: values.frozen === true, outDir: str('out'), threads: int('threads', 0) ?? 0,
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
    console.log(JSON.stringify({ task: r.task, metric: r.metric, score: r.score, std: r.std, seeds: r.seeds, scores: r.scores, lr: r.lr, seconds: r.seconds }));
    return 0;
  }
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(`${r.task} (${r.mode}): test ${r.metric} ${pct(r.score)} ± ${pct(r.std)} over seeds ${r.seeds.join(', ')} (${r.scores.map(pct).join(', ')}) at lr ${r.lr}`);
  console.log(`majority-class baseline ("${r.baseline.label}"): ${r.metric} ${pct(r.baseline.score)}${r.metric === 'f1' ? `, accuracy ${pct(r.baseline.accuracy)}` : ''}`);
  if (r.metric === 'f1') console.log(`accuracy: ${r.runs.map((x) => pct(x.test!.accuracy)).join(', ')}`);
  console.log(`${r.seconds.toFixed(1)} s; results and the best model (seed ${r.bestSeed}) in ${r.outDir}`);
  return 0;
}
