// Fuzzing the readers of everything untie trusts from disk: random mutations
// of a real checkpoint's model.safetensors (header and data),
// optimizer.safetensors, config.json, tokenizer.json, trainer_state.json and
// checksums.sha256, of a run's config.json, and of a corpus file. Every case
// must end in success or an UntieError (a one-line message), never another
// exception, a crash or a hang (the test's timeout), and a successful load
// must not allocate more than its file justifies.
//
// UNTIE_FUZZ_CASES=N sets the number of cases (default 2700, 300 per target:
// about 4 s of CPU on the 2-core machine);
// UNTIE_FUZZ_SEED=S another sequence of mutations. A failure prints the
// target, the case number and the mutation, so it can be replayed.
//
// What it found (all fixed): a tokenizer.json whose template names an
// undefined special token made the Rust binding panic and abort the process
// at the first encode; one without [UNK] threw a plain Error; a config.json
// with a huge max_position_embeddings (or hidden_size) made load() allocate
// until the heap ran out; trainer_state.json fields of the wrong type were
// TypeErrors, and a negative step or a missing "elapsed" were accepted; a
// null config.json was a TypeError; JSON.parse messages (quoting the file)
// and escaped names made multi-line errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBrown, loadTextCorpus, sentenceText, splitDocuments } from '../src/data/corpus.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { countWords, learnWordPieceVocab } from '../src/data/wordpiece.js';
import { UntieError } from '../src/errors.js';
import { BertForMaskedLM, bertParameterCount } from '../src/models/bert.js';
import { Optimizer } from '../src/optim/optimizers.js';
import { SharingController } from '../src/sharing/controller.js';
import { Rng } from '../src/tensor/rng.js';
import { bertConfigFromHf, restoreCheckpoint, verifyChecksums, CHECKPOINT_FILES } from '../src/train/checkpoint.js';
import { criterionOf, defaultRunConfig, mergeConfig, readConfigFile, runConfigOf, type RunConfig } from '../src/train/config.js';
import { prepareData, type PreparedData } from '../src/train/data.js';
import { load } from '../src/train/load.js';
import { decodeSafetensors } from '../src/train/safetensors.js';
import { train } from '../src/train/trainer.js';

const CASES = Number(process.env.UNTIE_FUZZ_CASES ?? 2700);
const SEED = Number(process.env.UNTIE_FUZZ_SEED ?? 12);

let root: string;
let runDir: string;
let ckpt: string;
let cfg: RunConfig;
let corpusText: string;
const pristine = new Map<string, Buffer>();

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-fuzz-'));
  const corpus = path.join(root, 'corpus.txt');
  // 40 short-ish lines: small enough that a mutation can leave too little text to split (an UntieError), quick to learn from.
  corpusText = loadBrown()[0].sentences.slice(0, 40).map(sentenceText).join('\n') + '\n';
  fs.writeFileSync(corpus, corpusText);
  cfg = mergeConfig(defaultRunConfig('tiny'), {
    name: 'run', outDir: root,
    model: { layers: 2, hidden: 8, heads: 2, intermediate: 16, maxPositions: 16 },
    data: { corpus, seqLen: 16, vocabSize: 150, evalBatches: 1 },
    train: { steps: 2, batchSize: 2, threads: 1, saveEvery: 2, evalEvery: 2 },
    // SWE-M with the relative statistic and a check every step: trainer_state.json then holds streaks, check marks and the statistic's state.
    sharing: { share: '1x2', untie: 'multi', checkEvery: 1, statistic: 'relative' },
  }, 'config');
  await train({ config: cfg, progress: false });
  runDir = path.join(root, 'run');
  ckpt = path.join(runDir, 'checkpoint-2');
  for (const f of fs.readdirSync(ckpt)) pristine.set(f, fs.readFileSync(path.join(ckpt, f)));
  pristine.set('run-config.json', fs.readFileSync(path.join(runDir, 'config.json')));
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

// ---- mutations

const INTERESTING = ['-1', '0', '-0', '1', '1e309', '-1e309', '1e-320', '4294967296', '9007199254740993', '1e21', '0.5', 'NaN', 'null', 'true',
  '""', '"x"', '[]', '{}', '[[]]', '[-1]', '{"a":1}', '"\\u0000"', '"\\ud800"', '18446744073709551615', '99999999999999999999', '', '\0', '\n\n'];

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

/** One byte-level mutation; returns the new bytes and what was done. */
function mutateBytes(bytes: Buffer, rng: Rng): [Buffer, string] {
  const n = bytes.length;
  const at = rng.int(Math.max(1, n));
  switch (rng.int(7)) {
    case 0: {
      const b = Buffer.from(bytes);
      const flips = 1 + rng.int(4);
      for (let k = 0; k < flips && n > 0; k++) b[rng.int(n)] ^= 1 << rng.int(8);
      return [b, `flip ${flips} bit(s)`];
    }
    case 1: {
      const b = Buffer.from(bytes);
      if (n > 0) b[at] = rng.int(256);
      return [b, `set byte ${at}`];
    }
    case 2:
      return [bytes.subarray(0, at), `truncate to ${at}`];
    case 3: {
      const len = 1 + rng.int(64);
      return [Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(n, at + len))]), `delete ${len} at ${at}`];
    }
    case 4: {
      const ins = rng.uniform() < 0.5 ? Buffer.from(INTERESTING[rng.int(INTERESTING.length)]) : randomBytes(rng, 1 + rng.int(16));
      return [Buffer.concat([bytes.subarray(0, at), ins, bytes.subarray(at)]), `insert ${JSON.stringify(ins.toString('latin1'))} at ${at}`];
    }
    case 5: {
      const len = 1 + rng.int(32);
      return [Buffer.concat([bytes.subarray(0, at + len), bytes.subarray(at)]), `duplicate ${len} at ${at}`];
    }
    default: {
      // Replace a number in the text by an interesting value.
      const text = bytes.toString('latin1');
      const numbers = [...text.matchAll(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi)];
      if (numbers.length === 0) return [Buffer.from(bytes), 'no number to replace'];
      const m = numbers[rng.int(numbers.length)];
      const v = INTERESTING[rng.int(INTERESTING.length)];
      return [Buffer.from(text.slice(0, m.index) + v + text.slice(m.index! + m[0].length), 'latin1'), `number ${m[0]} at ${m.index} -> ${v}`];
    }
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const INTERESTING_VALUES: Json[] = [-1, 0, -0, 1, 0.5, 1e9, 2 ** 31, 2 ** 32, 2 ** 53, 1e300, -1e300, '', 'x', '-1', null, true, false, [], {}, [0, 0, 0, 0], [1, 2, 3], { a: 1 }];

/** One structure-aware JSON mutation: a value replaced, a key dropped or added, or an array changed. */
function mutateJson(value: Json, rng: Rng): [Json, string] {
  const copy = JSON.parse(JSON.stringify(value)) as Json;
  // Pick a random container along a random path.
  const paths: (string | number)[][] = [];
  const walk = (v: Json, p: (string | number)[]) => {
    paths.push(p);
    if (paths.length > 5000) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(copy, []);
  const target = paths[rng.int(paths.length)];
  if (target.length === 0) return [INTERESTING_VALUES[rng.int(INTERESTING_VALUES.length)], 'replace the whole document'];
  let parent: Json = copy;
  for (const key of target.slice(0, -1)) parent = (parent as Record<string, Json>)[key as string];
  const key = target[target.length - 1];
  const container = parent as Record<string | number, Json>;
  const where = target.join('.');
  switch (rng.int(4)) {
    case 0:
      if (Array.isArray(container)) (container as Json[]).splice(key as number, 1);
      else delete container[key];
      return [copy, `drop ${where}`];
    case 1:
      if (Array.isArray(container)) (container as Json[]).push(INTERESTING_VALUES[rng.int(INTERESTING_VALUES.length)]);
      else container[`extra${rng.int(100)}`] = INTERESTING_VALUES[rng.int(INTERESTING_VALUES.length)];
      return [copy, `add beside ${where}`];
    default: {
      const v = INTERESTING_VALUES[rng.int(INTERESTING_VALUES.length)];
      container[key] = v;
      return [copy, `${where} = ${JSON.stringify(v)}`];
    }
  }
}

/** A mutation of a JSON file: structure-aware half of the time, bytes otherwise. */
function mutateJsonFile(bytes: Buffer, rng: Rng): [Buffer, string] {
  if (rng.uniform() < 0.5) return mutateBytes(bytes, rng);
  const [v, what] = mutateJson(JSON.parse(bytes.toString('utf8')) as Json, rng);
  return [Buffer.from(JSON.stringify(v) ?? ''), what];
}

/** A mutation of a safetensors file: its header (as JSON, with a consistent length), its length field, or its bytes. */
function mutateSafetensors(bytes: Buffer, rng: Rng): [Buffer, string] {
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = bytes.subarray(8, 8 + headerLen), data = bytes.subarray(8 + headerLen);
  switch (rng.int(4)) {
    case 0: {
      const [h, what] = mutateJson(JSON.parse(header.toString('utf8')) as Json, rng);
      const text = Buffer.from(JSON.stringify(h) ?? '');
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(BigInt(text.length));
      return [Buffer.concat([prefix, text, data]), `header: ${what}`];
    }
    case 1: {
      const b = Buffer.from(bytes);
      const lengths = [0n, 1n, BigInt(headerLen - 1), BigInt(headerLen + 1), BigInt(bytes.length), 2n ** 63n, 2n ** 64n - 1n, BigInt(rng.int(1 << 30))];
      const v = lengths[rng.int(lengths.length)];
      b.writeBigUInt64LE(v, 0);
      return [b, `header length = ${v}`];
    }
    case 2: {
      // Data bytes only: bit flips in the tensors (NaN, infinities, or just other weights).
      const b = Buffer.from(bytes);
      for (let k = 0; k < 1 + rng.int(4); k++) b[8 + headerLen + rng.int(Math.max(1, data.length))] ^= 1 << rng.int(8);
      return [b, 'data bit flips'];
    }
    default:
      return mutateBytes(bytes, rng);
  }
}

// ---- targets: each writes the mutated file and calls the reader that trusts it

interface Target {
  name: string;
  file: string;
  mutate(bytes: Buffer, rng: Rng): [Buffer, string];
  read(file: string): void | Promise<void>;
}

function freshModel(): BertForMaskedLM {
  const hf = bertConfigFromHf(JSON.parse(pristine.get('config.json')!.toString('utf8')), 'config.json');
  return new BertForMaskedLM(hf, 0);
}

/**
 * A case's checkpoint folder: the pristine files (without checksums, so the
 * readers meet the damage themselves) with one replaced. The folder is kept
 * between cases; only the file the last case replaced is put back.
 */
let lastReplaced: string | null = null;
function caseFolder(name: string, bytes: Buffer): string {
  const dir = path.join(root, 'case');
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir);
    for (const [f, b] of pristine) if (f !== 'run-config.json' && f !== 'corpus.txt' && f !== CHECKPOINT_FILES.checksums) fs.writeFileSync(path.join(dir, f), b);
  }
  if (lastReplaced !== null) {
    const original = pristine.get(lastReplaced);
    if (original === undefined || lastReplaced === CHECKPOINT_FILES.checksums) fs.rmSync(path.join(dir, lastReplaced), { force: true });
    else fs.writeFileSync(path.join(dir, lastReplaced), original);
  }
  fs.writeFileSync(path.join(dir, name), bytes);
  lastReplaced = name;
  return dir;
}

let dataset: PreparedData['train'];

function restoreInto(dir: string): void {
  const model = freshModel();
  const named = model.namedParameters();
  const sharing = new SharingController(model.stack(), { groups: [[0, 1]], criterion: criterionOf(cfg), sharedGrad: 'mean', untieOptimizer: 'copy' });
  sharing.tieWeights();
  restoreCheckpoint(dir, 2, { model, optimizer: new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 }), sharing, named, dataset, batchSize: 2, gradAccum: 1, tokenizerDir: dir });
}

const targets: Target[] = [
  {
    name: 'model.safetensors (load, as eval does)', file: 'model.safetensors', mutate: mutateSafetensors,
    read: (file) => {
      const loaded = load(caseFolder('model.safetensors', fs.readFileSync(file)));
      assert.ok(bertParameterCount(loaded.model.config) * 2 <= fs.statSync(file).size, 'a model larger than its weights file');
    },
  },
  {
    name: 'model.safetensors (decode)', file: 'model.safetensors', mutate: mutateSafetensors,
    read: (file) => {
      const bytes = fs.readFileSync(file);
      const { tensors } = decodeSafetensors(bytes, file);
      let decoded = 0;
      for (const t of Object.values(tensors)) decoded += t.data.byteLength;
      assert.ok(decoded <= 2 * bytes.length, `decoded ${decoded} bytes from a ${bytes.length}-byte file`);
    },
  },
  { name: 'optimizer.safetensors (resume)', file: 'optimizer.safetensors', mutate: mutateSafetensors, read: (file) => restoreInto(caseFolder('optimizer.safetensors', fs.readFileSync(file))) },
  { name: 'trainer_state.json (resume)', file: 'trainer_state.json', mutate: mutateJsonFile, read: (file) => restoreInto(caseFolder('trainer_state.json', fs.readFileSync(file))) },
  {
    name: 'config.json of a checkpoint (load)', file: 'config.json', mutate: mutateJsonFile,
    read: (file) => {
      const loaded = load(caseFolder('config.json', fs.readFileSync(file)));
      assert.ok(bertParameterCount(loaded.model.config) * 2 <= pristine.get('model.safetensors')!.length, 'a model larger than its weights file');
    },
  },
  {
    name: 'tokenizer.json (load and encode)', file: 'tokenizer.json', mutate: mutateJsonFile,
    read: async (file) => {
      const dir = caseFolder('tokenizer.json', fs.readFileSync(file));
      const tokenizer = loadTokenizer(dir);
      // A tokenizer that loads must work: encode and decode without surprises.
      const ids = await tokenizer.encode('The jury said it did find that many laws are [MASK].');
      await tokenizer.decode(ids);
    },
  },
  {
    name: 'checksums.sha256 (verify)', file: 'checksums.sha256', mutate: mutateBytes,
    read: (file) => {
      const dir = caseFolder('checksums.sha256', fs.readFileSync(file));
      verifyChecksums(dir, Object.values(CHECKPOINT_FILES));
    },
  },
  {
    name: 'config.json of a run (resume, eval)', file: 'run-config.json', mutate: mutateJsonFile,
    read: (file) => {
      const c = runConfigOf(readConfigFile(file), runDir);
      assert.equal(typeof c.model.hidden, 'number');
    },
  },
  {
    name: 'a corpus file (load, split, vocabulary)', file: 'corpus.txt', mutate: mutateBytes,
    read: (file) => {
      const docs = loadTextCorpus(file);
      const { train: trainDocs } = splitDocuments(docs, { seed: 0, validationFraction: 0.05 });
      learnWordPieceVocab(countWords(trainDocs.flatMap((d) => d.sentences.map(sentenceText))), 400);
    },
  },
];

test(`fuzz: ${CASES} random mutations of checkpoint, config, tokenizer, state and corpus files end in success or an UntieError`, { timeout: 600_000 }, async (t) => {
  // The data stream the trainer state restores into (built once; each case restores its position).
  dataset = (await prepareData(cfg.data, cfg.train.seed, runDir, cfg.train.batchSize)).train;
  // Each pristine file passes its reader (so a failure below is the mutation's doing).
  const scratch = path.join(root, 'scratch');
  fs.mkdirSync(scratch);
  pristine.set('corpus.txt', Buffer.from(corpusText));
  const fileFor = (target: Target, bytes: Buffer) => {
    const f = path.join(scratch, target.file);
    fs.writeFileSync(f, bytes);
    return f;
  };
  for (const target of targets) await target.read(fileFor(target, pristine.get(target.file)!));

  const rng = new Rng(SEED);
  const outcomes = new Map<string, { ok: number; refused: number; slowest: number; total: number; cpu: number }>();
  for (let i = 0; i < CASES; i++) {
    const target = targets[i % targets.length];
    const [bytes, what] = target.mutate(pristine.get(target.file)!, rng);
    const file = fileFor(target, bytes);
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    let refused = false;
    try {
      await target.read(file);
    } catch (err) {
      if (!(err instanceof UntieError)) {
        assert.fail(`case ${i} (seed ${SEED}), ${target.name}, mutation "${what}": ${err instanceof Error ? err.stack : String(err)}`);
      }
      assert.ok(!err.message.includes('\n'), `case ${i}, ${target.name}, "${what}": the message has several lines: ${err.message}`);
      refused = true;
    }
    const cpu = process.cpuUsage(cpuStart);
    const o = outcomes.get(target.name) ?? { ok: 0, refused: 0, slowest: 0, total: 0, cpu: 0 };
    o.cpu += (cpu.user + cpu.system) / 1000;
    if (refused) o.refused++;
    else o.ok++;
    const ms = performance.now() - start;
    o.slowest = Math.max(o.slowest, ms);
    o.total += ms;
    outcomes.set(target.name, o);
  }
  for (const [name, o] of outcomes) {
    const n = o.ok + o.refused;
    t.diagnostic(`${name}: ${o.ok} loaded, ${o.refused} refused with an UntieError; ${(o.total / n).toFixed(1)} ms a case (${(o.cpu / n).toFixed(1)} ms CPU), slowest ${o.slowest.toFixed(1)} ms`);
  }
  assert.equal([...outcomes.values()].reduce((n, o) => n + o.ok + o.refused, 0), CASES);
  // Some mutations must be refused and some accepted in every target, or the fuzzing is not reaching the reader.
  for (const [name, o] of outcomes) assert.ok(o.refused > 0, `${name}: no mutation was refused`);
});
