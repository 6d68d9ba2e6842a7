/**
 * A BERT-style WordPiece tokenizer, trained and run by Hugging Face
 * tokenizers (npm `tokenizers`, a prebuilt Rust binding), saved in the files
 * Hugging Face's AutoTokenizer reads: tokenizer.json, vocab.txt,
 * tokenizer_config.json (BertTokenizerFast) and special_tokens_map.json.
 *
 * Ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK]; single sentences encode as
 * [CLS] A [SEP], pairs as [CLS] A [SEP] B [SEP] with type ids 0 / 1.
 *
 * Known compromises of the node binding (0.23):
 * - `train()` only runs the model's default WordPiece trainer (vocab 30000,
 *   no special tokens, no min_frequency setting); there is no way to pass a
 *   configured trainer. We train that, then keep the specials plus the first
 *   `vocabSize - 5` learned tokens. Learned ids follow the merge order, and
 *   merges are made most-frequent pair first, so that prefix is what a trainer
 *   stopped at `vocabSize` would have produced; rare merges never make it in,
 *   which is what a min_frequency would be for.
 * - Training is not bit-reproducible: the Rust trainer breaks ties between
 *   equally frequent pairs in hash-map order, so two trainings on the same text
 *   differ in a handful of rare tokens. Runs reuse the saved tokenizer.json,
 *   which is what makes them comparable.
 * - Training prints a few empty progress lines on stdout (indicatif).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type Model,
  Tokenizer,
  WordPiece,
  bertNormalizer,
  bertPreTokenizer,
  templateProcessing,
  wordPieceDecoder,
} from 'tokenizers';
import { check, UntieError } from '../errors.js';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;
export const DEFAULT_VOCAB_SIZE = 8192;
/** The node binding's default WordPiece trainer stops at this many tokens. */
export const MAX_TRAINABLE_VOCAB_SIZE = 30000;

export const TOKENIZER_FILES = {
  tokenizer: 'tokenizer.json',
  vocab: 'vocab.txt',
  config: 'tokenizer_config.json',
  specialTokensMap: 'special_tokens_map.json',
} as const;

export interface TrainTokenizerOptions {
  /** Total vocabulary size including the 5 special tokens (default 8192). */
  vocabSize?: number;
}

export interface EncodeOptions {
  /** Add [CLS] ... [SEP] (default true, as Hugging Face does). */
  addSpecialTokens?: boolean;
}

export interface SaveTokenizerOptions {
  /** model_max_length written to tokenizer_config.json: the model's max positions (default 512). */
  modelMaxLength?: number;
}

export class WordPieceTokenizer {
  readonly padId = PAD_ID;
  readonly unkId = UNK_ID;
  readonly clsId = CLS_ID;
  readonly sepId = SEP_ID;
  readonly maskId = MASK_ID;
  readonly specialIds: readonly number[] = [PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID];
  /** Tokens in id order (what vocab.txt holds). */
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;
  /** Set when the tokenizer was trained in this process: the vocabSize asked for. */
  requestedVocabSize: number | undefined;

  /** Use trainTokenizer() or loadTokenizer(). */
  constructor(readonly inner: Tokenizer) {
    const entries = Object.entries(inner.getVocab(true)).sort((a, b) => a[1] - b[1]);
    const vocab: string[] = [];
    for (const [token, id] of entries) {
      check(id === vocab.length, `The tokenizer's vocabulary has a gap at id ${vocab.length}; it is not a BERT WordPiece vocabulary.`);
      vocab.push(token);
    }
    SPECIAL_TOKENS.forEach((token, id) => {
      check(
        vocab[id] === token,
        `The tokenizer has ${JSON.stringify(vocab[id])} at id ${id} where untie expects ${token}. ` +
          'Delete tokenizer.json (and vocab.txt) from the run folder to train a fresh one.',
      );
    });
    this.vocab = vocab;
    this.ids = new Map(vocab.map((token, id) => [token, id]));
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    const encoding = await this.inner.encode(text, null, { addSpecialTokens: options.addSpecialTokens ?? true });
    return encoding.getIds();
  }

  /** Encodes many texts in parallel (Rust threads); much faster than encode() in a loop. */
  async encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    const encodings = await this.inner.encodeBatch([...texts], { addSpecialTokens: options.addSpecialTokens ?? true });
    return encodings.map((e) => e.getIds());
  }

  /** Text from ids, special tokens skipped by default; "##" pieces joined. */
  async decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    for (const id of ids) this.checkId(id);
    return this.inner.decode([...ids], options.skipSpecialTokens ?? true);
  }

  idToToken(id: number): string {
    this.checkId(id);
    return this.vocab[id];
  }

  /** The id of a vocabulary entry, or undefined if the token is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  tokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.idToToken(id));
  }

  /** The text as the model sees it before splitting: lowercased, accents stripped, control chars removed. */
  normalize(text: string): string {
    const normalizer = this.inner.getNormalizer();
    return normalizer ? normalizer.normalizeString(text) : text;
  }

  private checkId(id: number): void {
    check(
      Number.isInteger(id) && id >= 0 && id < this.vocab.length,
      `Token id ${id} is outside the vocabulary [0, ${this.vocab.length}). The ids and the tokenizer do not belong together.`,
    );
  }

  /** Writes tokenizer.json, vocab.txt, tokenizer_config.json and special_tokens_map.json into dir. */
  save(dir: string, options: SaveTokenizerOptions = {}): void {
    fs.mkdirSync(dir, { recursive: true });
    // tokenizer.json goes through the binding's own serialiser, so it is exactly the format HF reads.
    const tmp = path.join(dir, `.${TOKENIZER_FILES.tokenizer}.tmp-${process.pid}`);
    this.inner.save(tmp, true);
    fs.renameSync(tmp, path.join(dir, TOKENIZER_FILES.tokenizer));
    writeText(path.join(dir, TOKENIZER_FILES.vocab), this.vocab.join('\n') + '\n');
    const specialTokensMap = {
      unk_token: '[UNK]',
      sep_token: '[SEP]',
      pad_token: '[PAD]',
      cls_token: '[CLS]',
      mask_token: '[MASK]',
    };
    const addedTokensDecoder: Record<string, object> = {};
    SPECIAL_TOKENS.forEach((content, id) => {
      addedTokensDecoder[String(id)] = {
        content,
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: true,
      };
    });
    const config = {
      tokenizer_class: 'BertTokenizerFast',
      do_lower_case: true,
      // Must agree with the BertNormalizer in tokenizer.json, or BertTokenizerFast rebuilds it.
      strip_accents: null,
      tokenize_chinese_chars: true,
      clean_up_tokenization_spaces: true,
      model_max_length: options.modelMaxLength ?? 512,
      ...specialTokensMap,
      added_tokens_decoder: addedTokensDecoder,
      ...(this.requestedVocabSize !== undefined ? { untie_requested_vocab_size: this.requestedVocabSize } : {}),
    };
    writeText(path.join(dir, TOKENIZER_FILES.config), JSON.stringify(config, null, 2) + '\n');
    writeText(path.join(dir, TOKENIZER_FILES.specialTokensMap), JSON.stringify(specialTokensMap, null, 2) + '\n');
  }
}

function writeText(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/**
 * Trains a WordPiece vocabulary on `texts` (one sentence or paragraph each).
 * The binding trains from files only, so the text goes through a temp file.
 */
export async function trainTokenizer(
  texts: Iterable<string>,
  options: TrainTokenizerOptions = {},
): Promise<WordPieceTokenizer> {
  const vocabSize = options.vocabSize ?? DEFAULT_VOCAB_SIZE;
  check(
    Number.isInteger(vocabSize) && vocabSize > SPECIAL_TOKENS.length && vocabSize <= MAX_TRAINABLE_VOCAB_SIZE,
    `Tokenizer vocab size must be an integer in (${SPECIAL_TOKENS.length}, ${MAX_TRAINABLE_VOCAB_SIZE}], got ${vocabSize}. ` +
      `(${MAX_TRAINABLE_VOCAB_SIZE} is the most the tokenizers node binding can train.)`,
  );
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-tokenizer-'));
  let learned: string[];
  try {
    const trainFile = path.join(tmpDir, 'train.txt');
    const fd = fs.openSync(trainFile, 'w');
    let lines = 0;
    try {
      let chunk: string[] = [];
      for (const text of texts) {
        const line = text.replace(/\s+/g, ' ').trim();
        if (line.length === 0) continue;
        chunk.push(line);
        lines++;
        if (chunk.length >= 4096) {
          fs.writeSync(fd, chunk.join('\n') + '\n');
          chunk = [];
        }
      }
      if (chunk.length > 0) fs.writeSync(fd, chunk.join('\n') + '\n');
    } finally {
      fs.closeSync(fd);
    }
    check(lines > 0, 'Cannot train a tokenizer on an empty corpus: no non-blank text. Check the corpus.');
    const trainer = newBertTokenizer(WordPiece.empty());
    trainer.train([trainFile]);
    learned = Object.entries(trainer.getVocab(true))
      .sort((a, b) => a[1] - b[1])
      .map(([token]) => token);
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }

  // The trainer's ids: the alphabet (single characters, then "##" + character,
  // the latter in hash order), then one token per merge, most frequent first.
  // Sort the alphabet so its ids do not depend on hash order; keep merge order.
  const isAlphabet = (t: string) => [...t].length === 1 || (t.startsWith('##') && [...t].length === 3);
  let alphabetSize = 0;
  while (alphabetSize < learned.length && isAlphabet(learned[alphabetSize])) alphabetSize++;
  const alphabet = learned.slice(0, alphabetSize);
  const singles = alphabet.filter((t) => !t.startsWith('##')).sort(byCodePoint);
  const continuations = alphabet.filter((t) => t.startsWith('##')).sort(byCodePoint);
  const ordered = [...singles, ...continuations, ...learned.slice(alphabetSize)];
  check(
    vocabSize >= SPECIAL_TOKENS.length + alphabetSize,
    `The corpus has ${alphabetSize} distinct characters and word-continuation characters; a vocab size of ${vocabSize} ` +
      `cannot hold them and the ${SPECIAL_TOKENS.length} special tokens. Use a vocab size of at least ` +
      `${SPECIAL_TOKENS.length + alphabetSize + 1000}.`,
  );

  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((token, id) => {
    vocab[token] = id;
  });
  let nextId = SPECIAL_TOKENS.length;
  for (const token of ordered) {
    if (nextId >= vocabSize) break;
    if (Object.hasOwn(vocab, token)) continue;
    vocab[token] = nextId++;
  }
  const tokenizer = newBertTokenizer(WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##' }));
  tokenizer.addSpecialTokens([...SPECIAL_TOKENS]);
  tokenizer.setPostProcessor(
    templateProcessing('[CLS] $A [SEP]', '[CLS] $A [SEP] $B:1 [SEP]:1', [
      ['[CLS]', CLS_ID],
      ['[SEP]', SEP_ID],
    ]),
  );
  const result = new WordPieceTokenizer(tokenizer);
  result.requestedVocabSize = vocabSize;
  return result;
}

function newBertTokenizer(model: Model): Tokenizer {
  const tokenizer = new Tokenizer(model);
  tokenizer.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
  tokenizer.setPreTokenizer(bertPreTokenizer());
  tokenizer.setDecoder(wordPieceDecoder('##', true));
  return tokenizer;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Saves `tokenizer` into dir (see WordPieceTokenizer.save). */
export function saveTokenizer(tokenizer: WordPieceTokenizer, dir: string, options: SaveTokenizerOptions = {}): void {
  tokenizer.save(dir, options);
}

/** True when dir holds a saved tokenizer.json. */
export function hasTokenizer(dir: string): boolean {
  return fs.existsSync(path.join(dir, TOKENIZER_FILES.tokenizer));
}

/** Loads dir/tokenizer.json (as written by save(), or any BERT WordPiece tokenizer with untie's special ids). */
export function loadTokenizer(dir: string): WordPieceTokenizer {
  const file = path.join(dir, TOKENIZER_FILES.tokenizer);
  check(fs.existsSync(file), `No ${TOKENIZER_FILES.tokenizer} in ${dir}. Train one first (untie train does this).`);
  let inner: Tokenizer;
  try {
    inner = Tokenizer.fromFile(file);
  } catch (err) {
    throw new UntieError(
      `${file} could not be read as a Hugging Face tokenizer (${(err as Error).message}). ` +
        'It may be truncated or corrupted: delete it to train a fresh one.',
    );
  }
  const tokenizer = new WordPieceTokenizer(inner);
  const configFile = path.join(dir, TOKENIZER_FILES.config);
  if (fs.existsSync(configFile)) {
    try {
      const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { untie_requested_vocab_size?: unknown };
      if (typeof config.untie_requested_vocab_size === 'number') tokenizer.requestedVocabSize = config.untie_requested_vocab_size;
    } catch {
      // tokenizer_config.json is for Hugging Face; tokenizer.json alone defines the tokenizer.
    }
  }
  return tokenizer;
}

/**
 * Reuses dir's tokenizer when present, else trains one on texts() and saves
 * it. A saved tokenizer trained for a different vocab size is an error, not a
 * silent reuse.
 */
export async function loadOrTrainTokenizer(
  dir: string,
  texts: () => Iterable<string>,
  options: TrainTokenizerOptions & SaveTokenizerOptions = {},
): Promise<{ tokenizer: WordPieceTokenizer; trained: boolean }> {
  const vocabSize = options.vocabSize ?? DEFAULT_VOCAB_SIZE;
  if (hasTokenizer(dir)) {
    const tokenizer = loadTokenizer(dir);
    const savedSize = tokenizer.requestedVocabSize ?? tokenizer.vocabSize;
    check(
      savedSize === vocabSize,
      `${path.join(dir, TOKENIZER_FILES.tokenizer)} was trained for a vocab size of ${savedSize}, but ${vocabSize} was asked for. ` +
        `Set the vocab size to ${savedSize}, or delete the tokenizer files in ${dir} to train a new one.`,
    );
    return { tokenizer, trained: false };
  }
  const tokenizer = await trainTokenizer(texts(), { vocabSize });
  tokenizer.save(dir, options);
  return { tokenizer, trained: true };
}
