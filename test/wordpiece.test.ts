import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bertNormalizer, bertPreTokenizer } from 'tokenizers';
import { loadBrown, sentenceText } from '../src/data/corpus.js';
import { bertPreTokenize, countWords, learnWordPieceVocab } from '../src/data/wordpiece.js';
import { Rng } from '../src/tensor/rng.js';

const execFileAsync = promisify(execFile);
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
let brownTexts: string[] | undefined;
/** Brown's sentences as plain text (parsed once: it takes a second or two). */
function brown(): string[] {
  brownTexts ??= loadBrown().flatMap((d) => d.sentences.map(sentenceText));
  return brownTexts;
}

/** What the `tokenizers` binding's BertNormalizer + BertPreTokenizer make of text (as our tokenizer.json configures them). */
function bindingWords(text: string): string[] {
  const normalizer = bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: true });
  return bertPreTokenizer().preTokenizeString(normalizer.normalizeString(text)).map(([word]) => word);
}

const TRICKY = [
  'Café Ñoño naïve résumé Ångström', 'ΟΔΥΣΣΕΥΣ Σίσυφος', '我爱北京天安门 and 漢字', 'İstanbul IJssel ǅemal',
  'zero\u200bwidth soft\u00adhyphen', 'ctrl\u0000\u0001\u000b\u000c\u007f chars', 'next\u0085line', 'no\u00a0break\u3000ideo\u2028sep',
  '👍🏽 emoji 🇫🇷 flags', '！？fullwidth，punct。', 'em—dash – en… ellipsis', '€100 $5 £3 ¥7 100% #tag @user', "don't e-mail o'clock",
  'tab\tnew\nline\r\ncr', '\ufeffbom', 'combining e\u0301 a\u0308 n\u0303', '한국어 텍스트', 'العَرَبِيَّة', 'हिन्दी देवनागरी', 'private\ue000use',
  'bad\ufffdchar', '«quotes» „deutsch“ ‘single’', 'math ∑ ∞ ≤ ± × ÷', 'under_score back\\slash pipe|tilde~caret^', 'ＡＢＣ fullwidth latin',
  'ß straße ﬁ ligature', 'Ⅻ roman ① circled', 'x²+y³ ½', '\u0130\u0049\u0131', 'word\u2060joiner',
];

test('bertPreTokenize splits and normalises exactly as the binding\'s BertNormalizer + BertPreTokenizer', () => {
  for (const text of TRICKY) assert.deepEqual(bertPreTokenize(text), bindingWords(text), JSON.stringify(text));
  // Random strings over the same characters, mixed with ASCII.
  const pool = [...new Set([...TRICKY.join(''), ...'abcXYZ019 .,;:!?()[]{}<>\'"-'])];
  const rng = new Rng(12);
  for (let i = 0; i < 300; i++) {
    let text = '';
    const length = 1 + Math.floor(rng.uniform() * 40);
    for (let k = 0; k < length; k++) text += pool[Math.floor(rng.uniform() * pool.length)];
    assert.deepEqual(bertPreTokenize(text), bindingWords(text), JSON.stringify(text));
  }
  const sample = brown().slice(0, 2000).join('\n');
  assert.deepEqual(bertPreTokenize(sample), bindingWords(sample));
});

test('WordPiece merges: most frequent pair first, ties to the smaller (left, right) id, whatever the word order', () => {
  // Alphabet ids: a=0 b=1 ##a=2 ##b=3. Pairs (a,##b) and (b,##a) both occur twice: (0,3) < (1,2), so "ab" first.
  const expected = ['a', 'b', '##a', '##b', 'ab', 'ba'];
  assert.deepEqual(learnWordPieceVocab(new Map([['ab', 2], ['ba', 2]]), 10).tokens, expected);
  assert.deepEqual(learnWordPieceVocab(new Map([['ba', 2], ['ab', 2]]), 10).tokens, expected);
  // A higher count wins over a smaller id.
  assert.deepEqual(learnWordPieceVocab(new Map([['ab', 1], ['ba', 3]]), 10).tokens, ['a', 'b', '##a', '##b', 'ba', 'ab']);
  // "abab" = a ##b ##a ##b: three pairs of count 1; (a,##b)=(0,3) goes first, then (##a,##b)=(2,3) -> "##ab", then "abab".
  assert.deepEqual(learnWordPieceVocab(new Map([['abab', 1]]), 10).tokens, ['a', 'b', '##a', '##b', 'ab', '##ab', 'abab']);
  // "aaaa" = a ##a ##a ##a holds (##a,##a) twice (overlapping), so it beats (a,##a); merging goes left to right.
  assert.deepEqual(learnWordPieceVocab(new Map([['aaaa', 1]]), 10).tokens, ['a', '##a', '##aa', 'aaa', 'aaaa']);
  // A token reached by two different merges keeps one id; the size stops the merges.
  assert.deepEqual(learnWordPieceVocab(new Map([['ab', 5], ['ba', 2]]), 5).tokens, ['a', 'b', '##a', '##b', 'ab']);
  assert.throws(() => learnWordPieceVocab(new Map([['abc', 1]]), 4), /distinct characters/);

  // On real text the vocabulary does not depend on the order the words were counted in.
  const counts = countWords(brown().slice(0, 5000));
  const shuffled = new Map(new Rng(3).shuffle([...counts.entries()]));
  const a = learnWordPieceVocab(counts, 3000).tokens, b = learnWordPieceVocab(shuffled, 3000).tokens;
  assert.equal(a.length, 3000);
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, a.length);
});

test('tokenizer training is byte-for-byte reproducible across runs and thread counts', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-wordpiece-'));
  try {
    // A quarter of Brown with vocab 4096 reaches the rare merges, where most count ties are.
    const corpusFile = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(corpusFile, brown().filter((_, i) => i % 4 === 0).join('\n'));
    const script = [
      "import fs from 'node:fs';",
      `import { trainTokenizer } from ${JSON.stringify(path.join(root, 'src/data/tokenizer.ts'))};`,
      `const texts = fs.readFileSync(${JSON.stringify(corpusFile)}, 'utf8').split('\\n');`,
      'const tokenizer = await trainTokenizer(texts, { vocabSize: 4096 });',
      'tokenizer.save(process.argv[2], { modelMaxLength: 128 });',
      'const ids = await tokenizer.encodeBatch(texts.slice(0, 2000));',
      'console.log(JSON.stringify(ids.flat().reduce((h, id) => (h * 31 + id) % 1000000007, 7)));',
    ].join('\n');
    const scriptFile = path.join(tmp, 'train.mts');
    fs.writeFileSync(scriptFile, script);
    // Two processes at once: one with the binding's thread pool at 1 thread, one at its default (all cores).
    const runs = await Promise.all([{ RAYON_NUM_THREADS: '1' }, {}].map(async (extra, k) => {
      const out = path.join(tmp, `run-${k}`);
      const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
      if (!('RAYON_NUM_THREADS' in extra)) delete env.RAYON_NUM_THREADS;
      const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', scriptFile, out], { cwd: root, env, encoding: 'utf8' });
      return { out, printed: stdout.trim() };
    }));
    for (const file of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const first = fs.readFileSync(path.join(runs[0].out, file));
      for (const r of runs.slice(1)) assert.ok(first.equals(fs.readFileSync(path.join(r.out, file))), `${file} differs between runs`);
    }
    assert.equal(fs.readFileSync(path.join(runs[0].out, 'vocab.txt'), 'utf8').split('\n').length, 4096 + 1);
    for (const r of runs.slice(1)) assert.equal(r.printed, runs[0].printed, 'encodings differ between thread counts');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
