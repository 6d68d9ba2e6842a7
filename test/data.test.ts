import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UntieError } from '../src/errors.js';
import {
  countWords,
  loadBrown,
  loadTextCorpus,
  sentenceText,
  splitDocuments,
  splitSentences,
  universalTag,
  UNIVERSAL_TAGS,
  type Document,
} from '../src/data/corpus.js';
import {
  CLS_ID,
  loadOrTrainTokenizer,
  loadTokenizer,
  MASK_ID,
  PAD_ID,
  SEP_ID,
  SPECIAL_TOKENS,
  trainTokenizer,
  UNK_ID,
  type WordPieceTokenizer,
} from '../src/data/tokenizer.js';
import {
  buildValidationBatches,
  IGNORE_INDEX,
  makeMaskedBatch,
  maskingConfig,
  MlmDataset,
  packSequences,
  tokenizeDocuments,
  type MlmBatch,
} from '../src/data/mlm.js';
import { Rng } from '../src/tensor/rng.js';

const VOCAB_SIZE = 4096;
let brown: Document[];
let train: Document[];
let validation: Document[];
let tokenizer: WordPieceTokenizer;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-data-test-'));
  brown = loadBrown();
  ({ train, validation } = splitDocuments(brown, { seed: 7, validationFraction: 0.1 }));
  // A third of the training split keeps the test quick; the vocabulary is still well formed.
  const texts = train.filter((_, i) => i % 3 === 0).flatMap((d) => d.sentences.map(sentenceText));
  tokenizer = await trainTokenizer(texts, { vocabSize: VOCAB_SIZE });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function assertUntieError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UntieError, `expected UntieError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

// --- Corpus ---

test('Brown: 500 documents, 1.16M words, one tag per word', () => {
  assert.equal(brown.length, 500);
  assert.equal(new Set(brown.map((d) => d.id)).size, 500);
  assert.equal(brown[0].id, 'ca01');
  assert.equal(brown[499].id, 'cr09');
  const words = countWords(brown);
  assert.ok(words > 1_150_000 && words < 1_170_000, `${words} words`);
  assert.equal(words, 1_161_192); // the Brown corpus's token count, punctuation included
  const first = brown[0].sentences[0];
  assert.deepEqual(first.words.slice(0, 4), ['The', 'Fulton', 'County', 'Grand']);
  assert.deepEqual(first.tags.slice(0, 4), ['at', 'np-tl', 'nn-tl', 'jj-tl']);
  assert.deepEqual(first.universalTags.slice(0, 4), ['DET', 'NOUN', 'NOUN', 'ADJ']);
  let other = 0;
  for (const doc of brown) {
    for (const s of doc.sentences) {
      assert.ok(s.words.length > 0);
      assert.equal(s.tags.length, s.words.length);
      assert.equal(s.universalTags.length, s.words.length);
      for (const w of s.words) assert.ok(!/\s/.test(w) && w.length > 0);
      for (const u of s.universalTags) if (u === 'X') other++;
    }
  }
  // X is for foreign words, interjections and the odd untagged token only.
  assert.ok(other / words < 0.005, `X share ${other / words}`);
});

test('universal tags: modifiers, contractions, negation and punctuation', () => {
  const cases: [string, string][] = [
    ['nn-tl', 'NOUN'], ['np$', 'NOUN'], ['nns$-hl', 'NOUN'], ['pps+bez', 'PRON'], ['md*', 'VERB'],
    ['*', 'ADV'], ['fw-nn', 'X'], ['--', '.'], ['---hl', '.'], ['.-hl', '.'], ["''", '.'], ['``', '.'],
    ['pp$$', 'PRON'], ['cs', 'ADP'], ['to', 'PRT'], ['rp', 'PRT'], ['cd-tl', 'NUM'], ['bedz*', 'VERB'],
    ['wdt', 'DET'], ['ql', 'ADV'], ['uh', 'X'], ['nil', 'X'], ['zzz', 'X'],
  ];
  for (const [raw, expected] of cases) assert.equal(universalTag(raw), expected, raw);
  // The corpus uses exactly the 12 universal tags: none outside the list, none of the list unused.
  const used = new Set<string>();
  for (const doc of brown) for (const s of doc.sentences) for (const u of s.universalTags) used.add(u);
  assert.deepEqual([...used].sort(), [...UNIVERSAL_TAGS].sort());
});

test('split: by document, deterministic from the seed, disjoint and complete', () => {
  const again = splitDocuments(brown, { seed: 7, validationFraction: 0.1 });
  assert.deepEqual(again.validation.map((d) => d.id), validation.map((d) => d.id));
  assert.equal(validation.length, 50);
  assert.equal(train.length, 450);
  const trainIds = new Set(train.map((d) => d.id));
  for (const d of validation) assert.ok(!trainIds.has(d.id));
  assert.equal(new Set([...trainIds, ...validation.map((d) => d.id)]).size, 500);
  // Corpus order is kept inside each part.
  assert.deepEqual(train.map((d) => d.id), [...train.map((d) => d.id)].sort());
  const other = splitDocuments(brown, { seed: 8, validationFraction: 0.1 });
  assert.notDeepEqual(other.validation.map((d) => d.id), validation.map((d) => d.id));
  // A validation share draws documents from across genres, not one block.
  assert.ok(new Set(validation.map((d) => d.id[1])).size >= 8);
  assertUntieError(() => splitDocuments(brown, { seed: 1, validationFraction: 1 }), /validationFraction/);
  assertUntieError(() => splitDocuments([], { seed: 1, validationFraction: 0.1 }), /empty corpus/);
  assertUntieError(() => splitDocuments(brown.slice(0, 1), { seed: 1, validationFraction: 0.1 }), /too few/);
});

test('text corpus: a file or a folder of .txt files; sentences split sensibly', () => {
  const dir = path.join(tmp, 'corpus');
  fs.mkdirSync(path.join(dir, 'nested'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.txt'), 'First sentence here. Second one, hard\nwrapped over lines!\n\n"Quoted?" New paragraph.\n');
  fs.writeFileSync(path.join(dir, 'nested', 'b.txt'), 'Only one line without a stop');
  fs.writeFileSync(path.join(dir, 'notes.md'), 'Ignored: not a .txt file.');
  fs.writeFileSync(path.join(dir, 'empty.txt'), '\n  \n');
  const docs = loadTextCorpus(dir);
  assert.deepEqual(docs.map((d) => d.id), ['a.txt', path.join('nested', 'b.txt')]);
  assert.deepEqual(
    docs[0].sentences.map((s) => s.words.join(' ')),
    ['First sentence here.', 'Second one, hard wrapped over lines!', '"Quoted?"', 'New paragraph.'],
  );
  assert.deepEqual(docs[0].sentences[0].tags, []);
  // One file is one document: cut into blocks of paragraphs (here 2), so it can be split for validation.
  const single = loadTextCorpus(path.join(dir, 'a.txt'));
  assert.deepEqual(single.map((d) => d.id), ['a.txt#paragraphs-1-1', 'a.txt#paragraphs-2-2']);
  assert.deepEqual(single.flatMap((d) => d.sentences), docs[0].sentences);
  const { train: t1, validation: v1 } = splitDocuments(single, { seed: 0, validationFraction: 0.05 });
  assert.equal(t1.length + v1.length, 2);
  assert.equal(v1.length, 1);
  // Very long runs without punctuation are cut, so no "sentence" is unbounded.
  const long = splitSentences(Array.from({ length: 1000 }, (_, i) => `w${i}`).join(' '));
  assert.ok(long.length >= 4 && long.every((s) => s.words.length <= 256));
});

test('a single text file is a corpus: blocks of paragraphs, else lines, else sentences, in order', () => {
  // 250 lines, no blank line: one paragraph, so lines are the unit; 100 blocks of consecutive lines.
  const lines = Array.from({ length: 250 }, (_, i) => `Line number ${i} says something.`);
  const file = path.join(tmp, 'lines.txt');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const blocks = loadTextCorpus(file);
  assert.equal(blocks.length, 100);
  assert.equal(blocks[0].id, 'lines.txt#lines-1-2');
  assert.deepEqual(blocks.flatMap((d) => d.sentences.map((s) => s.words.join(' '))), lines);
  const { train: tr, validation: va } = splitDocuments(blocks, { seed: 3, validationFraction: 0.05 });
  assert.equal(va.length, 5);
  assert.equal(tr.length, 95);
  // Paragraphs win over lines when there are several.
  fs.writeFileSync(file, 'A first\nparagraph here.\n\nA second one.\n\nAnd a third.');
  assert.deepEqual(loadTextCorpus(file).map((d) => d.sentences.length), [1, 1, 1]);
  // One line of several sentences: sentences are the unit.
  fs.writeFileSync(file, 'One. Two. Three.');
  assert.deepEqual(loadTextCorpus(file).map((d) => d.id), ['lines.txt#sentences-1-1', 'lines.txt#sentences-2-2', 'lines.txt#sentences-3-3']);
  // A single sentence cannot be split: the split says so.
  fs.writeFileSync(file, 'Just one sentence');
  assertUntieError(() => splitDocuments(loadTextCorpus(file), { seed: 0, validationFraction: 0.05 }), /too few/);
});

test('text corpus errors say what is wrong and what to do', () => {
  assertUntieError(() => loadTextCorpus(path.join(tmp, 'missing')), /does not exist.*--corpus/);
  const noText = path.join(tmp, 'no-text');
  fs.mkdirSync(noText);
  fs.writeFileSync(path.join(noText, 'readme.md'), 'hello');
  assertUntieError(() => loadTextCorpus(noText), /no \.txt files/);
  const blank = path.join(tmp, 'blank.txt');
  fs.writeFileSync(blank, '   \n\n');
  assertUntieError(() => loadTextCorpus(blank), /contains no text/);
});

// --- Tokenizer ---

test('tokenizer: BERT special ids, requested vocab size, [CLS] ... [SEP]', async () => {
  assert.equal(tokenizer.vocabSize, VOCAB_SIZE);
  SPECIAL_TOKENS.forEach((token, id) => {
    assert.equal(tokenizer.idToToken(id), token);
    assert.equal(tokenizer.tokenToId(token), id);
  });
  assert.deepEqual([PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID], [0, 1, 2, 3, 4]);
  const ids = await tokenizer.encode('The jury said it did find that many laws are outmoded.');
  assert.equal(ids[0], CLS_ID);
  assert.equal(ids[ids.length - 1], SEP_ID);
  const bare = await tokenizer.encode('The jury said it did find that many laws are outmoded.', { addSpecialTokens: false });
  assert.deepEqual(bare, ids.slice(1, -1));
  assert.deepEqual(tokenizer.tokens(bare).slice(0, 3), ['the', 'jury', 'said']);
  // Special tokens in text are recognised whole, not split.
  const withMask = await tokenizer.encode('the [MASK] said', { addSpecialTokens: false });
  assert.ok(withMask.includes(MASK_ID));
  assertUntieError(() => tokenizer.idToToken(VOCAB_SIZE), /outside the vocabulary/);
});

test('tokenizer round trip: decode(encode(text)) is the normalised text', async () => {
  const texts = validation.slice(0, 10).flatMap((d) => d.sentences.map(sentenceText));
  assert.ok(texts.length > 500);
  const encoded = await tokenizer.encodeBatch(texts, { addSpecialTokens: false });
  let checked = 0;
  for (let i = 0; i < texts.length; i++) {
    if (encoded[i].includes(UNK_ID)) continue; // only in-vocabulary text round-trips
    checked++;
    const decoded = await tokenizer.decode(encoded[i]);
    // The decoder re-joins "##" pieces and tidies space before punctuation; compare without spaces.
    assert.equal(decoded.replace(/\s+/g, ''), tokenizer.normalize(texts[i]).replace(/\s+/g, ''), texts[i]);
    if (i < 200) assert.deepEqual(await tokenizer.encode(decoded, { addSpecialTokens: false }), encoded[i]);
  }
  assert.ok(checked > 0.95 * texts.length, `${checked} of ${texts.length} sentences free of [UNK]`);
  assert.equal(
    await tokenizer.decode(await tokenizer.encode('The Jury said it did find that many laws are outmoded.')),
    'the jury said it did find that many laws are outmoded.',
  );
});

test('tokenizer save/load: HF files, identical ids, reused when present', async () => {
  const dir = path.join(tmp, 'tok');
  tokenizer.save(dir, { modelMaxLength: 128 });
  for (const f of ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), f);
  }
  const vocabLines = fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8').split('\n');
  assert.equal(vocabLines.pop(), '');
  assert.deepEqual(vocabLines, tokenizer.vocab);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  assert.equal(json.model.type, 'WordPiece');
  assert.equal(json.normalizer.type, 'BertNormalizer');
  assert.equal(json.normalizer.lowercase, true);
  assert.equal(json.pre_tokenizer.type, 'BertPreTokenizer');
  assert.equal(json.post_processor.type, 'TemplateProcessing');
  assert.equal(json.decoder.type, 'WordPiece');
  assert.deepEqual(json.added_tokens.map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special]), [
    [0, '[PAD]', true], [1, '[UNK]', true], [2, '[CLS]', true], [3, '[SEP]', true], [4, '[MASK]', true],
  ]);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(config.tokenizer_class, 'BertTokenizerFast');
  assert.equal(config.do_lower_case, true);
  assert.equal(config.model_max_length, 128);
  assert.equal(config.mask_token, '[MASK]');

  const reloaded = loadTokenizer(dir);
  const texts = validation.slice(0, 5).flatMap((d) => d.sentences.map(sentenceText));
  assert.deepEqual(await reloaded.encodeBatch(texts), await tokenizer.encodeBatch(texts));
  assert.deepEqual(reloaded.vocab, tokenizer.vocab);

  let called = false;
  const reused = await loadOrTrainTokenizer(dir, () => { called = true; return []; }, { vocabSize: VOCAB_SIZE });
  assert.equal(reused.trained, false);
  assert.equal(called, false);
  await assert.rejects(loadOrTrainTokenizer(dir, () => [], { vocabSize: 8192 }), (err: unknown) => {
    assert.ok(err instanceof UntieError);
    assert.match(err.message, /vocab size of 4096.*8192/);
    return true;
  });
  await assert.rejects(trainTokenizer(['', '  ']), UntieError);
  await assert.rejects(trainTokenizer(['a b c'], { vocabSize: 2_000_000 }), /1000000/);
  await assert.rejects(trainTokenizer(['ab cd ef'], { vocabSize: 8 }), /distinct characters/);
  assertUntieError(() => loadTokenizer(path.join(tmp, 'nowhere')), /No tokenizer\.json/);
  fs.writeFileSync(path.join(tmp, 'tokenizer.json'), '{"version": "1.0", "mod');
  assertUntieError(() => loadTokenizer(tmp), /truncated or corrupted/);
});

test('tokenizer encodes the whole Brown corpus in seconds (batched)', async (t) => {
  const texts = brown.flatMap((d) => d.sentences.map(sentenceText));
  const start = performance.now();
  const ids = await tokenizer.encodeBatch(texts, { addSpecialTokens: false });
  const seconds = (performance.now() - start) / 1000;
  assert.equal(ids.length, texts.length);
  const tokens = ids.reduce((n, x) => n + x.length, 0);
  assert.ok(tokens > 1_161_192, `${tokens} tokens`); // wordpieces outnumber words
  t.diagnostic(`encoded ${texts.length} sentences, ${tokens} tokens in ${seconds.toFixed(2)} s`);
  // About 2-4 s on 2 idle cores; the bound is loose so a busy CI machine does not flake, yet
  // catches a fall back to one call per sentence (minutes).
  assert.ok(seconds < 60, `${seconds.toFixed(1)} s`);
});

// --- Masked LM ---

test('packing: [CLS] ... [SEP] within max length, sentences kept whole and in order', () => {
  const doc = (lengths: number[], base: number) =>
    lengths.map((n, s) => Int32Array.from({ length: n }, (_, i) => base + s * 100 + i + 10));
  const docs = [doc([3, 4, 5, 20], 1000), doc([2], 5000), doc([], 9000)];
  const seqs = packSequences(docs, { maxLength: 12 });
  for (const s of seqs) {
    assert.ok(s.length <= 12);
    assert.equal(s[0], CLS_ID);
    assert.equal(s[s.length - 1], SEP_ID);
    for (const t of s.subarray(1, -1)) assert.ok(t >= 10);
  }
  // 3+4 fit in 10; 5 starts a new one; 20 is cut into 10 + 10; the next document starts fresh.
  assert.deepEqual(seqs.map((s) => s.length - 2), [7, 5, 10, 10, 2]);
  const interior = seqs.slice(0, 4).flatMap((s) => Array.from(s.subarray(1, -1)));
  assert.deepEqual(interior, docs[0].flatMap((s) => Array.from(s)));
  assertUntieError(() => packSequences(docs, { maxLength: 2 }), /Sequence length/);
});

async function brownSequences(docs: Document[], maxLength: number): Promise<Int32Array[]> {
  return packSequences(await tokenizeDocuments(tokenizer, docs), { maxLength });
}

test('masking: 15% of eligible tokens, 80/10/10, never specials or padding', async () => {
  const seqs = await brownSequences(validation.slice(0, 25), 64);
  const masking = maskingConfig(tokenizer);
  const rng = new Rng(3);
  const special = new Set([PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID]);
  let eligible = 0;
  let selected = 0;
  let masked = 0;
  let random = 0;
  let kept = 0;
  let batches = 0;
  for (let round = 0; round < 8; round++) {
    for (let start = 0; start < seqs.length; start += 16) {
      const chunk = seqs.slice(start, start + 16);
      const batch = makeMaskedBatch(chunk, 64, masking, rng);
      batches++;
      assert.equal(batch.inputIds.length, chunk.length * 64);
      chunk.forEach((orig, b) => {
        for (let t = 0; t < 64; t++) {
          const k = b * 64 + t;
          const input = batch.inputIds[k];
          const label = batch.labels[k];
          assert.equal(batch.tokenTypeIds[k], 0);
          assert.equal(batch.attentionMask[k], t < orig.length ? 1 : 0);
          if (t >= orig.length) {
            assert.equal(input, PAD_ID);
            assert.equal(label, IGNORE_INDEX);
            continue;
          }
          if (special.has(orig[t])) {
            assert.equal(input, orig[t]);
            assert.equal(label, IGNORE_INDEX);
            continue;
          }
          eligible++;
          if (label === IGNORE_INDEX) {
            assert.equal(input, orig[t]);
            continue;
          }
          selected++;
          assert.equal(label, orig[t]);
          if (input === MASK_ID) masked++;
          else if (input === orig[t]) kept++;
          else {
            random++;
            assert.ok(!special.has(input) && input < tokenizer.vocabSize && input >= 0);
          }
        }
      });
    }
  }
  assert.ok(eligible > 100_000, `${eligible} eligible tokens`);
  const rate = selected / eligible;
  assert.ok(Math.abs(rate - 0.15) < 0.005, `selected ${rate}`);
  // A random replacement equal to the original (1 in ~4000) counts as "kept"; well within tolerance.
  assert.ok(Math.abs(masked / selected - 0.8) < 0.015, `[MASK] ${masked / selected}`);
  assert.ok(Math.abs(random / selected - 0.1) < 0.01, `random ${random / selected}`);
  assert.ok(Math.abs(kept / selected - 0.1) < 0.01, `kept ${kept / selected}`);
  assert.ok(batches > 0);
});

function sameBatch(a: MlmBatch, b: MlmBatch): boolean {
  return (
    a.batchSize === b.batchSize && a.seqLen === b.seqLen &&
    a.inputIds.every((v, i) => v === b.inputIds[i]) && a.labels.every((v, i) => v === b.labels[i]) &&
    a.attentionMask.every((v, i) => v === b.attentionMask[i])
  );
}

test('dataset: seeded order per epoch; state round trip resumes with identical batches', async () => {
  const seqs = (await brownSequences(validation.slice(0, 3), 32)).slice(0, 50);
  assert.equal(seqs.length, 50);
  const options = { seqLen: 32, seed: 11, masking: maskingConfig(tokenizer) };
  const a = new MlmDataset(seqs, options);
  for (let i = 0; i < 5; i++) a.nextBatch(8); // 40 of 50: the next batches cross into epoch 1
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const expected = [a.nextBatch(8), a.nextBatch(8), a.nextBatch(8)];
  assert.equal(a.epoch, 1);

  const b = new MlmDataset(seqs, options);
  b.setState(saved);
  for (const batch of expected) assert.ok(sameBatch(b.nextBatch(8), batch));
  assert.deepEqual(b.getState(), a.getState());

  // Same seed, same stream; another seed, another stream.
  const c = new MlmDataset(seqs, options);
  const d = new MlmDataset(seqs, { ...options, seed: 12 });
  const first = new MlmDataset(seqs, options).nextBatch(8);
  assert.ok(sameBatch(c.nextBatch(8), first));
  assert.ok(!sameBatch(d.nextBatch(8), first));

  // Each epoch visits every sequence exactly once, in a different order.
  const e = new MlmDataset(seqs, { ...options, masking: { ...options.masking, maskProbability: 1e-9 } });
  const epochs: string[][] = [[], []];
  for (let epoch = 0; epoch < 2; epoch++) {
    for (let i = 0; i < 50; i++) {
      const batch = e.nextBatch(1);
      // Nearly nothing is masked at this probability; undo the forced single target to read the sequence.
      const ids = Array.from(batch.inputIds);
      batch.labels.forEach((label, k) => { if (label !== IGNORE_INDEX) ids[k] = label; });
      epochs[epoch].push(ids.join(','));
    }
  }
  const originals = seqs.map((s) => [...Array.from(s), ...new Array(32 - s.length).fill(PAD_ID)].join(','));
  assert.deepEqual([...epochs[0]].sort(), [...originals].sort());
  assert.deepEqual([...epochs[1]].sort(), [...originals].sort());
  assert.notDeepEqual(epochs[0], epochs[1]);

  assertUntieError(() => b.setState({ epoch: 0, position: 999, rng: [1, 2, 3, 4] }), /does not fit this dataset/);
  assertUntieError(() => new MlmDataset([], options), /no sequences/);
});

test('validation set: masked once with a fixed seed, the same in every run', async () => {
  const seqs = await brownSequences(validation.slice(0, 4), 64);
  const options = { seqLen: 64, batchSize: 16, masking: maskingConfig(tokenizer) };
  const v1 = buildValidationBatches(seqs, options);
  const v2 = buildValidationBatches(seqs, options);
  assert.equal(v1.length, Math.ceil(seqs.length / 16));
  assert.equal(v1[v1.length - 1].batchSize, seqs.length - 16 * (v1.length - 1));
  v1.forEach((batch, i) => assert.ok(sameBatch(batch, v2[i])));
  // Training draws (any seed) do not disturb it.
  new MlmDataset(seqs, { seqLen: 64, seed: 99, masking: options.masking }).nextBatch(4);
  assert.ok(sameBatch(buildValidationBatches(seqs, options)[0], v1[0]));
  assert.ok(!sameBatch(buildValidationBatches(seqs, { ...options, seed: 5 })[0], v1[0]));
});

test('unigram line: loss and accuracy on a hand-made corpus equal a hand computation', async () => {
  const { unigramModel, unigramScore } = await import('../src/data/unigram.js');
  // vocab 8: ids 0-4 special, 5..7 ordinary. Training tokens: 5 x3, 6 x1, 7 x0 (plus specials, not counted).
  const model = unigramModel([Int32Array.from([2, 5, 5, 6, 3]), Int32Array.from([2, 5, 3, 0])], 8, [0, 1, 2, 3, 4]);
  // add-one over the 3 ordinary ids: p(5) = 4/7, p(6) = 2/7, p(7) = 1/7
  assert.equal(model.argmax, 5);
  assert.equal(model.tokens, 4);
  assert.ok(Math.abs(Math.exp(model.logProbs[5]) - 4 / 7) < 1e-12);
  assert.equal(model.logProbs[4], -Infinity);
  const labels = Int32Array.from([-100, 5, 6, -100, 7, 5]);
  const score = unigramScore(model, [{ labels }]);
  const hand = -(Math.log(4 / 7) + Math.log(2 / 7) + Math.log(1 / 7) + Math.log(4 / 7)) / 4;
  assert.equal(score.count, 4);
  assert.ok(Math.abs(score.loss - hand) < 1e-12, `${score.loss} vs ${hand}`);
  assert.equal(score.accuracy, 2 / 4);
  assert.throws(() => unigramScore(model, [{ labels: Int32Array.from([-100]) }]), /no labelled positions/);
});
