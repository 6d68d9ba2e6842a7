/**
 * A BERT-style WordPiece tokenizer, run by Hugging Face tokenizers (npm
 * `tokenizers`, a prebuilt Rust binding), saved in the files Hugging Face's
 * AutoTokenizer reads: tokenizer.json, vocab.txt, tokenizer_config.json
 * (BertTokenizerFast) and special_tokens_map.json.
 *
 * Ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK]; single sentences encode as
 * [CLS] A [SEP], pairs as [CLS] A [SEP] B [SEP] with type ids 0 / 1.
 *
 * The vocabulary is learned by our own deterministic builder
 * (./wordpiece.ts), not by the binding's trainer: that one breaks ties between
 * equally frequent pairs in hash order, so two trainings on the same text
 * differed, and so did every run's weights. Same texts and vocabulary size,
 * same tokenizer.json and vocab.txt, byte for byte.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  type Model,
  Tokenizer,
  WordPiece,
  bertNormalizer,
  bertPreTokenizer,
  templateProcessing,
  wordPieceDecoder,
} from 'tokenizers';
import { check, quoteError, UntieError } from '../errors.js';
import { countWords, learnWordPieceVocab } from './wordpiece.js';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;
export const DEFAULT_VOCAB_SIZE = 8192;
/** The largest vocabulary trainTokenizer builds (far beyond any BERT's 30-250K). */
export const MAX_VOCAB_SIZE = 1_000_000;

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
 * Trains a WordPiece vocabulary on `texts` (one sentence or paragraph each):
 * deterministic, so the same texts and vocabSize give the same tokenizer.
 */
export async function trainTokenizer(
  texts: Iterable<string>,
  options: TrainTokenizerOptions = {},
): Promise<WordPieceTokenizer> {
  const vocabSize = options.vocabSize ?? DEFAULT_VOCAB_SIZE;
  check(
    Number.isInteger(vocabSize) && vocabSize > SPECIAL_TOKENS.length && vocabSize <= MAX_VOCAB_SIZE,
    `Tokenizer vocab size must be an integer in (${SPECIAL_TOKENS.length}, ${MAX_VOCAB_SIZE}], got ${vocabSize}.`,
  );
  const wordCounts = countWords(texts);
  check(wordCounts.size > 0, 'Cannot train a tokenizer on an empty corpus: no non-blank text. Check the corpus.');
  const { tokens } = learnWordPieceVocab(wordCounts, vocabSize - SPECIAL_TOKENS.length);

  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((token, id) => {
    vocab[token] = id;
  });
  let nextId = SPECIAL_TOKENS.length;
  for (const token of tokens) {
    // Learned tokens cannot hold '[' (punctuation is split off), so this never skips one; it keeps ids dense if it did.
    if (Object.hasOwn(vocab, token)) continue;
    vocab[token] = nextId++;
  }
  const result = new WordPieceTokenizer(buildBertTokenizer(vocab));
  result.requestedVocabSize = vocabSize;
  return result;
}

/**
 * A tokenizer over a given vocabulary (the five specials, then `tokens` in
 * order): a generated corpus's own, not learned. Each token must be one word
 * the BERT pre-tokenizer keeps whole (lowercase letters and digits, or one
 * punctuation mark), so that its text encodes back to exactly its id.
 */
export function tokenizerFromVocabulary(tokens: readonly string[]): WordPieceTokenizer {
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((token, id) => (vocab[token] = id));
  for (const token of tokens) {
    check(/^([a-z0-9]+|[^\sa-zA-Z0-9])$/.test(token) && !Object.hasOwn(vocab, token), `tokenizerFromVocabulary: ${JSON.stringify(token)} is not a new single word`);
    vocab[token] = Object.keys(vocab).length;
  }
  return new WordPieceTokenizer(buildBertTokenizer(vocab));
}

/** The whole pipeline around a WordPiece vocabulary: BERT uncased normalizer and pre-tokenizer, [CLS] A [SEP] template, specials. */
function buildBertTokenizer(vocab: Record<string, number>): Tokenizer {
  const tokenizer = newBertTokenizer(WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##' }));
  tokenizer.addSpecialTokens([...SPECIAL_TOKENS]);
  tokenizer.setPostProcessor(
    templateProcessing('[CLS] $A [SEP]', '[CLS] $A [SEP] $B:1 [SEP]:1', [
      ['[CLS]', CLS_ID],
      ['[SEP]', SEP_ID],
    ]),
  );
  return tokenizer;
}

let canonicalJson: Record<string, unknown> | null = null;
/** tokenizer.json as untie writes it, for a vocabulary of the specials alone (parsed; built once). */
function canonicalTokenizerJson(): Record<string, unknown> {
  if (canonicalJson === null) {
    const vocab: Record<string, number> = {};
    SPECIAL_TOKENS.forEach((token, id) => (vocab[token] = id));
    // The binding serialises to files only.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-tokenizer-'));
    try {
      buildBertTokenizer(vocab).save(path.join(dir, TOKENIZER_FILES.tokenizer));
      canonicalJson = JSON.parse(fs.readFileSync(path.join(dir, TOKENIZER_FILES.tokenizer), 'utf8')) as Record<string, unknown>;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return canonicalJson;
}

/**
 * The vocabulary of a parsed tokenizer.json, after checking that everything
 * around it is exactly what untie writes. The binding is never handed a
 * pipeline it has not been checked for: fuzzing found that a tokenizer.json
 * whose template names a special token it does not define loads, then makes
 * the Rust code panic and abort the whole process at the first encode.
 */
function checkedVocabulary(json: unknown, file: string): Record<string, number> {
  const fail = (what: string) =>
    new UntieError(`${file} is not a tokenizer untie wrote (${what}). It may be damaged: delete the tokenizer files to train a fresh one.`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fail('not a JSON object');
  const given = json as Record<string, unknown>;
  const canonical = canonicalTokenizerJson();
  for (const key of ['added_tokens', 'normalizer', 'pre_tokenizer', 'post_processor', 'decoder', 'truncation', 'padding']) {
    if (!isDeepStrictEqual(given[key] ?? null, canonical[key] ?? null)) throw fail(`its "${key}" is ${JSON.stringify(given[key] ?? null)?.slice(0, 80)}, not BERT uncased's`);
  }
  const model = given.model as Record<string, unknown> | null;
  if (typeof model !== 'object' || model === null || Array.isArray(model)) throw fail('it has no "model"');
  const { vocab, ...settings } = model;
  const { vocab: _v, ...canonicalSettings } = canonical.model as Record<string, unknown>;
  if (!isDeepStrictEqual(settings, canonicalSettings)) throw fail(`its model is ${JSON.stringify(settings).slice(0, 120)}, not a WordPiece model as untie writes it`);
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw fail('its model has no vocabulary');
  const entries = Object.entries(vocab as Record<string, unknown>);
  const seen = new Uint8Array(entries.length);
  for (const [token, id] of entries) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length || seen[id as number]) {
      throw fail(`the id of ${JSON.stringify(token).slice(0, 40)} is ${JSON.stringify(id)}; ids must be 0 .. ${entries.length - 1}, each once`);
    }
    seen[id as number] = 1;
  }
  SPECIAL_TOKENS.forEach((token, id) => {
    // The binding's WordPiece.init throws a plain Error without [UNK]; untie needs all five at their ids.
    if ((vocab as Record<string, unknown>)[token] !== id) throw fail(`${token} is not at id ${id}`);
  });
  return vocab as Record<string, number>;
}

function newBertTokenizer(model: Model): Tokenizer {
  const tokenizer = new Tokenizer(model);
  tokenizer.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true }));
  tokenizer.setPreTokenizer(bertPreTokenizer());
  tokenizer.setDecoder(wordPieceDecoder('##', true));
  return tokenizer;
}

/** Saves `tokenizer` into dir (see WordPieceTokenizer.save). */
export function saveTokenizer(tokenizer: WordPieceTokenizer, dir: string, options: SaveTokenizerOptions = {}): void {
  tokenizer.save(dir, options);
}

/** True when dir holds a saved tokenizer.json. */
export function hasTokenizer(dir: string): boolean {
  return fs.existsSync(path.join(dir, TOKENIZER_FILES.tokenizer));
}

/**
 * Loads dir/tokenizer.json as written by save(): a BERT uncased WordPiece
 * tokenizer with untie's special ids. Everything but the vocabulary must be
 * exactly what save() writes (see checkedVocabulary).
 */
export function loadTokenizer(dir: string): WordPieceTokenizer {
  const file = path.join(dir, TOKENIZER_FILES.tokenizer);
  check(fs.existsSync(file), `No ${TOKENIZER_FILES.tokenizer} in ${dir}. Train one first (untie train does this).`);
  const size = fs.statSync(file).size;
  check(size <= 1 << 28, `${file} is ${size} bytes, far more than a WordPiece tokenizer: it is not one. Delete it to train a fresh one.`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UntieError(
      `${file} could not be read as a Hugging Face tokenizer (${quoteError(err)}). ` +
        'It may be truncated or corrupted: delete it to train a fresh one.',
    );
  }
  const inner = buildBertTokenizer(checkedVocabulary(json, file));
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
 * it (unless `save` is false: then the caller saves it once it may write). A
 * saved tokenizer trained for a different vocab size is an error, not a
 * silent reuse.
 */
export async function loadOrTrainTokenizer(
  dir: string,
  texts: () => Iterable<string>,
  options: TrainTokenizerOptions & SaveTokenizerOptions & { save?: boolean } = {},
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
  if (options.save ?? true) tokenizer.save(dir, options);
  return { tokenizer, trained: true };
}
