/**
 * A deterministic WordPiece vocabulary builder: the same texts and vocabulary
 * size give the same vocabulary, on every run, machine and thread count.
 *
 * Why our own: the `tokenizers` binding's trainer counts words in hash maps
 * and assigns the continuation alphabet ("##x") in hash order, and its merge
 * queue breaks ties between equally frequent pairs by those ids, so two
 * trainings on the same text differ in their rarer tokens (and so do the
 * weights trained on them). Here every order is explicit:
 *
 * 1. Words: BERT's basic tokenization (`bertPreTokenize`: the BertNormalizer
 *    with lowercasing and accent stripping, then the BertPreTokenizer),
 *    reimplemented in TypeScript because calling the binding per text costs
 *    ~100 us each (~6 s on Brown, against ~0.4 s here). A test checks it
 *    against the binding's normalizer and pre-tokenizer.
 * 2. Alphabet: every character seen, then "##" + every character seen after
 *    a word's first, each list sorted by code point.
 * 3. Merges, as the Hugging Face WordPiece trainer makes them (a BPE over
 *    "##"-prefixed pieces): repeatedly merge the adjacent pair with the
 *    highest total count; ties go to the pair whose left id, then right id,
 *    is smallest (ids: alphabet order, then merge order). A merge yields
 *    `left + right without "##"`; a token made twice keeps its first id.
 *
 * The result is the token list in id order (specials not included); the
 * `tokenizers` WordPiece model encodes with it (greedy longest match).
 */
import { check } from '../errors.js';

/** Hugging Face's WordPiece encodes longer words as [UNK], so they teach the vocabulary nothing. */
export const MAX_WORD_CHARS = 100;
/** The pair-key packing below allows ids up to 2^21. */
export const MAX_LEARNED_VOCAB = 1 << 21;

const CONTINUATION = '##';

// Control characters BertNormalizer removes: Unicode "other" (Cc Cf Cn Co Cs), except tab, LF and CR (whitespace).
const REMOVED = /[\0\ufffd]|(?![\t\n\r])[\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}]/gu;
const WHITESPACE = /[\t\n\r\p{White_Space}]/gu;
// CJK Unified Ideographs blocks that BERT splits into single characters.
const CJK = /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B920}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu;
const NONSPACING_MARK = /\p{Mn}/gu;
// BertPreTokenizer: ASCII punctuation (symbols included) or any Unicode punctuation is a word of its own.
const WORD_OR_PUNCTUATION = /[!-/:-@[-`{-~\p{P}]|[^\t\n\r !-/:-@[-`{-~\p{P}]+/gu;

/**
 * BERT's basic tokenization of `text` into words: what the `tokenizers`
 * BertNormalizer (clean text, CJK split, strip accents, lowercase) and
 * BertPreTokenizer produce, in order.
 */
export function bertPreTokenize(text: string): string[] {
  let s = text;
  // Printable ASCII with tab/LF/CR (most English text) needs only the last steps.
  if (!/^[\t\n\r\x20-\x7e]*$/.test(s)) {
    s = s.replace(REMOVED, '').replace(WHITESPACE, ' ');
    s = s.replace(CJK, ' $& ');
    // Accents are stripped before lowercasing, as in Hugging Face's BertNormalizer.
    s = s.normalize('NFD').replace(NONSPACING_MARK, '');
  }
  // Rust lowercases char by char: no final-sigma rule, so capital sigma is always σ.
  s = s.includes('Σ') ? s.split('Σ').map((part) => part.toLowerCase()).join('σ') : s.toLowerCase();
  return s.match(WORD_OR_PUNCTUATION) ?? [];
}

/** Word frequencies over `texts`, in first-seen order. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  // Tokenizing texts in batches of ~256 KB keeps the per-call overhead of the regexes small.
  let batch: string[] = [];
  let batchChars = 0;
  const flush = () => {
    for (const word of bertPreTokenize(batch.join('\n'))) counts.set(word, (counts.get(word) ?? 0) + 1);
    batch = [];
    batchChars = 0;
  };
  for (const text of texts) {
    batch.push(text);
    batchChars += text.length;
    if (batchChars >= 1 << 18) flush();
  }
  if (batch.length > 0) flush();
  return counts;
}

function byCodePoint(a: string, b: string): number {
  const ca = a.codePointAt(a.startsWith(CONTINUATION) ? 2 : 0) ?? 0;
  const cb = b.codePointAt(b.startsWith(CONTINUATION) ? 2 : 0) ?? 0;
  return ca - cb;
}

/** A max-heap of pair counts: highest count first, then the smallest key (left id, then right id). */
class PairQueue {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } | undefined {
    if (this.keys.length === 0) return undefined;
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop() as number;
    const lastKey = this.keys.pop() as number;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < this.keys.length && this.before(l, best)) best = l;
        if (r < this.keys.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

const KEY_BASE = MAX_LEARNED_VOCAB;

/**
 * Learns up to `size` tokens (alphabet first, then merges) from word counts.
 * Returns fewer when the words run out of pairs to merge. Throws when the
 * alphabet alone does not fit in `size`.
 */
export function learnWordPieceVocab(wordCounts: ReadonlyMap<string, number>, size: number): { tokens: string[]; alphabetSize: number } {
  check(Number.isInteger(size) && size > 0 && size <= MAX_LEARNED_VOCAB, `A WordPiece vocabulary must hold between 1 and ${MAX_LEARNED_VOCAB} tokens, got ${size}.`);
  // Words in a fixed order (first seen), each as its characters.
  const words: string[][] = [];
  const freqs: number[] = [];
  const singles = new Set<string>();
  const continuations = new Set<string>();
  for (const [word, count] of wordCounts) {
    const chars = [...word];
    if (chars.length === 0 || chars.length > MAX_WORD_CHARS) continue;
    chars.forEach((c, i) => {
      singles.add(c);
      if (i > 0) continuations.add(CONTINUATION + c);
    });
    words.push(chars);
    freqs.push(count);
  }
  const alphabet = [...[...singles].sort(byCodePoint), ...[...continuations].sort(byCodePoint)];
  check(
    alphabet.length <= size,
    `The corpus has ${alphabet.length} distinct characters and word-continuation characters, more than the ${size} learned tokens ` +
      `the vocabulary size leaves room for. Use a vocabulary size of at least ${alphabet.length + 1000}.`,
  );
  const tokens = [...alphabet];
  const idOf = new Map(tokens.map((t, id) => [t, id]));

  // Each word as token ids; pair counts weighted by word frequency; where each pair occurs.
  const symbols: number[][] = words.map((chars) => chars.map((c, i) => idOf.get(i === 0 ? c : CONTINUATION + c) as number));
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPairs = (w: number, sign: 1 | -1, newId: number, touched: Set<number> | null) => {
    const sym = symbols[w];
    const f = freqs[w] * sign;
    for (let i = 0; i + 1 < sym.length; i++) {
      const key = sym[i] * KEY_BASE + sym[i + 1];
      const count = (pairCounts.get(key) ?? 0) + f;
      if (count === 0) pairCounts.delete(key);
      else pairCounts.set(key, count);
      if (sign > 0 && (touched === null || sym[i] === newId || sym[i + 1] === newId)) {
        const list = pairWords.get(key);
        if (list === undefined) pairWords.set(key, [w]);
        else if (list[list.length - 1] !== w) list.push(w);
        touched?.add(key);
      }
    }
  };
  for (let w = 0; w < symbols.length; w++) addPairs(w, 1, -1, null);
  const queue = new PairQueue();
  for (const [key, count] of pairCounts) queue.push(count, key);

  // Invariant: every pair with a positive count has a queue entry with at
  // least that count. Counts only rise for pairs holding the new token, and
  // those are pushed again after each merge; a popped entry whose count is
  // stale is re-queued with the current count (or dropped if a higher entry
  // exists), so the entry that survives is the true maximum.
  const visited = new Int32Array(symbols.length);
  let mergeIndex = 0;
  while (tokens.length < size) {
    const top = queue.pop();
    if (top === undefined) break;
    const current = pairCounts.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0 && current < top.count) queue.push(current, top.key);
      continue;
    }
    const left = Math.floor(top.key / KEY_BASE), right = top.key % KEY_BASE;
    const merged = tokens[left] + tokens[right].slice(CONTINUATION.length);
    let newId = idOf.get(merged);
    if (newId === undefined) {
      newId = tokens.length;
      tokens.push(merged);
      idOf.set(merged, newId);
    }
    mergeIndex++;
    const touched = new Set<number>();
    const affected = pairWords.get(top.key) ?? [];
    pairWords.delete(top.key);
    for (const w of affected) {
      if (visited[w] === mergeIndex) continue;
      visited[w] = mergeIndex;
      const sym = symbols[w];
      let found = false;
      for (let i = 0; i + 1 < sym.length; i++) if (sym[i] === left && sym[i + 1] === right) { found = true; break; }
      if (!found) continue;
      addPairs(w, -1, newId, null);
      const out: number[] = [];
      for (let i = 0; i < sym.length; i++) {
        if (sym[i] === left && i + 1 < sym.length && sym[i + 1] === right) {
          out.push(newId);
          i++;
        } else {
          out.push(sym[i]);
        }
      }
      symbols[w] = out;
      addPairs(w, 1, newId, touched);
    }
    for (const key of touched) {
      const count = pairCounts.get(key);
      if (count !== undefined && count > 0) queue.push(count, key);
    }
  }
  return { tokens, alphabetSize: alphabet.length };
}
