/**
 * Generated corpora: `--corpus synthetic:NAME[:key=value,...]`.
 *
 * - The training stream is drawn from the run's seed, a fresh sequence every
 *   time (no epochs): its whole state is one RNG, saved in checkpoints.
 * - The validation set is drawn from the split seed (data.splitSeed), so runs
 *   with different seeds validate on the same sequences; training and
 *   validation come from different streams, as text corpora's training and
 *   validation documents do.
 * - The unigram line is the answers' frequencies in a sample of training
 *   sequences (the best guess that ignores the sequence), drawn from the
 *   split seed too, so every run has the same line.
 * - The vocabulary is the task's own (see tokenizerFromVocabulary): a real
 *   tokenizer, so fill-mask, eval and export work on these runs as on text.
 */
import { check, UntieError } from '../../errors.js';
import { Rng, isRngState, type RngState } from '../../tensor/rng.js';
import { makeTargetBatch, type MlmBatch } from '../mlm.js';
import { MASK_ID, PAD_ID, tokenizerFromVocabulary, type WordPieceTokenizer } from '../tokenizer.js';
import { exprTask } from './expr.js';
import { hopsTask } from './hops.js';
import { canonicalSpec, parseParams, type SyntheticExample, type SyntheticTask, type TaskDefinition } from './task.js';

export { solveHops } from './hops.js';
export { solveExpr } from './expr.js';
export type { SyntheticExample, SyntheticTask } from './task.js';

export const SYNTHETIC_TASKS: Record<string, TaskDefinition> = { hops: hopsTask, expr: exprTask };

const PREFIX = 'synthetic:';

/** True when `corpus` names a generated corpus (whether or not it is a valid one). */
export function isSyntheticCorpus(corpus: string): boolean {
  return corpus.startsWith(PREFIX);
}

/** Parses `synthetic:NAME[:key=value,...]`, with a one-line error naming what is wrong. */
export function parseSyntheticCorpus(corpus: string): SyntheticTask {
  check(isSyntheticCorpus(corpus), `${JSON.stringify(corpus)} is not a generated corpus (synthetic:NAME[:key=value,...])`);
  const rest = corpus.slice(PREFIX.length);
  const colon = rest.indexOf(':');
  const name = colon < 0 ? rest : rest.slice(0, colon);
  const def = Object.hasOwn(SYNTHETIC_TASKS, name) ? SYNTHETIC_TASKS[name] : undefined;
  if (!def) throw new UntieError(`unknown synthetic task "${name}": use one of ${Object.keys(SYNTHETIC_TASKS).join(', ')} (--corpus synthetic:hops or synthetic:hops:symbols=8,hops=4)`);
  const params = parseParams(def, colon < 0 ? '' : rest.slice(colon + 1));
  const task = def.build(params);
  task.spec = canonicalSpec(name, params);
  return task;
}

/** Throws the task's one-line error when its sequences do not fit `seqLen` tokens. */
export function checkFits(task: SyntheticTask, seqLen: number): void {
  if (task.minLength > seqLen) throw new UntieError(task.tooLong(seqLen));
}

/** The task's vocabulary as a tokenizer (the five specials, then its tokens). */
export function syntheticTokenizer(task: SyntheticTask): WordPieceTokenizer {
  return tokenizerFromVocabulary(task.tokens);
}

/** Where the training stream stands. */
export interface SyntheticDatasetState {
  /** Sequences drawn so far. */
  generated: number;
  rng: RngState;
}

/** The training stream: a new sequence every draw, its answers the targets. */
export class SyntheticDataset {
  private readonly rng: Rng;
  private generated = 0;

  constructor(readonly task: SyntheticTask, readonly seqLen: number, seed: number) {
    checkFits(task, seqLen);
    this.rng = Rng.derive(seed, `synthetic-train:${task.spec}`);
  }

  nextBatch(batchSize: number): MlmBatch {
    check(Number.isInteger(batchSize) && batchSize > 0, `Batch size must be a positive integer, got ${batchSize}.`);
    const examples = Array.from({ length: batchSize }, () => this.task.generate(this.rng, this.seqLen));
    this.generated += batchSize;
    return makeTargetBatch(examples, this.seqLen, { maskId: MASK_ID, padId: PAD_ID });
  }

  getState(): SyntheticDatasetState {
    return { generated: this.generated, rng: this.rng.getState() };
  }

  setState(state: SyntheticDatasetState): void {
    check(
      typeof state === 'object' && state !== null && Number.isSafeInteger(state.generated) && state.generated >= 0 && isRngState(state.rng),
      () => `The saved data state ${JSON.stringify(state)?.slice(0, 200)} is not a position in a generated corpus (${this.task.spec}). ` +
        'The checkpoint was made with other data; resume with the corpus it was trained on.',
    );
    this.generated = state.generated;
    this.rng.setState([...state.rng] as RngState);
  }
}

/** `count` sequences drawn from `seed`'s stream named `label`. */
export function drawSequences(task: SyntheticTask, seqLen: number, seed: number, label: string, count: number): SyntheticExample[] {
  checkFits(task, seqLen);
  const rng = Rng.derive(seed, `${label}:${task.spec}`);
  return Array.from({ length: count }, () => task.generate(rng, seqLen));
}

/** The validation batches: `count` sequences of the split seed's stream (the last batch may be smaller). */
export function syntheticValidation(task: SyntheticTask, opts: { seqLen: number; batchSize: number; count: number; splitSeed: number }): MlmBatch[] {
  check(Number.isInteger(opts.batchSize) && opts.batchSize > 0, `Batch size must be a positive integer, got ${opts.batchSize}.`);
  const sequences = drawSequences(task, opts.seqLen, opts.splitSeed, 'synthetic-validation', opts.count);
  const batches: MlmBatch[] = [];
  for (let start = 0; start < sequences.length; start += opts.batchSize) {
    batches.push(makeTargetBatch(sequences.slice(start, start + opts.batchSize), opts.seqLen, { maskId: MASK_ID, padId: PAD_ID }));
  }
  return batches;
}

/** The answers of a sample of training-distribution sequences: what the unigram line counts. */
export function answerSample(task: SyntheticTask, seqLen: number, splitSeed: number, count: number): Int32Array[] {
  return drawSequences(task, seqLen, splitSeed, 'synthetic-unigram', count).map((ex) => Int32Array.from(ex.targets, (t) => ex.ids[t]));
}

/** Validation targets per difficulty (1..levels) in `batches`. */
export function targetsByDifficulty(batches: readonly MlmBatch[], levels: number): number[] {
  const counts = new Array<number>(levels + 1).fill(0);
  for (const b of batches) if (b.difficulty) for (const d of b.difficulty) if (d > 0) counts[d]++;
  return counts.slice(1);
}
