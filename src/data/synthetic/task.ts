/**
 * What every generated corpus is: a task with a few integer or choice keys,
 * its own small vocabulary (after the five special tokens), and a generator
 * that writes one sequence at a time, [CLS] ... [SEP], saying which positions
 * hold the answers (the masked-LM targets) and how hard each answer is (its
 * hop count, its nesting depth). Nothing is read from disk: a corpus is its
 * spec (`synthetic:NAME:key=value,...`) and a seed.
 */
import { UntieError } from '../../errors.js';
import type { Rng } from '../../tensor/rng.js';
import { SPECIAL_TOKENS } from '../tokenizer.js';

/** One generated sequence. */
export interface SyntheticExample {
  /** Token ids, [CLS] first and [SEP] last, the answers in place (not masked). At most the sequence length. */
  ids: Int32Array;
  /** Positions of the answers: the masked-LM targets, ascending. */
  targets: Int32Array;
  /** The difficulty of each target (1 .. levels), in the order of `targets`. */
  difficulty: Int32Array;
  /** The token shown at each target in place of its answer (default [MASK]): a query that says what is asked. */
  shown?: Int32Array;
}

export interface SyntheticTask {
  /** The task's name (hops, expr). */
  name: string;
  /** Every key's value, defaults filled in. */
  params: Readonly<Record<string, number | string>>;
  /** The canonical spec, keys sorted: `synthetic:hops:hops=4,map=cycle,symbols=8`. */
  spec: string;
  /** What a target's difficulty counts: "hops" or "depth". */
  difficulty: string;
  /** Difficulties run from 1 to this. */
  levels: number;
  /** The vocabulary after the five special tokens, in id order (id = SPECIAL_TOKENS.length + index). */
  tokens: readonly string[];
  /** The shortest sequence length (with [CLS] and [SEP]) that holds one target of every difficulty. */
  minLength: number;
  /**
   * The one-line error for a sequence length under minLength: what a sequence
   * holds, and the range of the task's size key that fits `seqLen`.
   */
  tooLong(seqLen: number): string;
  /** One sequence of at most `seqLen` tokens, drawn from `rng`; every difficulty appears equally often. */
  generate(rng: Rng, seqLen: number): SyntheticExample;
}

export type KeySpec =
  | { kind: 'int'; min: number; max: number; default: number; about: string; prime?: boolean }
  | { kind: 'choice'; values: readonly string[]; default: string; about: string };

export interface TaskDefinition {
  name: string;
  about: string;
  keys: Record<string, KeySpec>;
  build(params: Record<string, number | string>): SyntheticTask;
}

/** The id of the task's token number `index` (the ids after the five specials). */
export function tokenId(index: number): number {
  return SPECIAL_TOKENS.length + index;
}

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** "symbols (whole number 2..26, default 8)" for error messages and help. */
export function describeKey(name: string, k: KeySpec): string {
  return k.kind === 'int'
    ? `${name} (${k.prime ? 'a prime' : 'a whole number'} in ${k.min}..${k.max}, default ${k.default})`
    : `${name} (${k.values.join(' | ')}, default ${k.default})`;
}

/**
 * Reads `key=value,key=value` against a task's keys: every key known, every
 * value in range, each given once; defaults for the rest.
 */
export function parseParams(def: TaskDefinition, text: string): Record<string, number | string> {
  const where = `synthetic:${def.name}`;
  const known = () => Object.entries(def.keys).map(([n, k]) => describeKey(n, k)).join(', ');
  const params: Record<string, number | string> = {};
  for (const part of text === '' ? [] : text.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    const spec = Object.hasOwn(def.keys, key) ? def.keys[key] : undefined;
    if (!spec) throw new UntieError(`${where}: unknown key "${key}"; its keys are ${known()}`);
    if (eq < 0 || value === '') throw new UntieError(`${where}: key "${key}" has no value; write ${key}=VALUE with ${describeKey(key, spec)}`);
    if (Object.hasOwn(params, key)) throw new UntieError(`${where}: key "${key}" is given twice`);
    if (spec.kind === 'choice') {
      if (!spec.values.includes(value)) throw new UntieError(`${where}: ${key}=${value} is not allowed: ${key} must be one of ${spec.values.join(', ')}`);
      params[key] = value;
    } else {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(Number.isSafeInteger(n) && n >= spec.min && n <= spec.max) || (spec.prime && !isPrime(n))) {
        throw new UntieError(`${where}: ${key}=${value} is out of range: ${key} must be ${spec.prime ? 'a prime' : 'a whole number'} in ${spec.min}..${spec.max}`);
      }
      params[key] = n;
    }
  }
  for (const [key, spec] of Object.entries(def.keys)) if (!Object.hasOwn(params, key)) params[key] = spec.default;
  return params;
}

/** `synthetic:NAME:k=v,...` with the keys sorted: one spelling per task. */
export function canonicalSpec(name: string, params: Record<string, number | string>): string {
  return `synthetic:${name}:${Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join(',')}`;
}

/**
 * How many rounds (one target of every difficulty each) fit in `seqLen`
 * tokens: the body a round takes is `roundLength`, [CLS] and [SEP] take two.
 */
export function roundsThatFit(seqLen: number, fixed: number, roundLength: number): number {
  return Math.floor((seqLen - 2 - fixed) / roundLength);
}

/** 1..levels, `rounds` times over, in a random order: the difficulties of one sequence's targets. */
export function shuffledLevels(rng: Rng, levels: number, rounds: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) for (let k = 1; k <= levels; k++) out.push(k);
  return rng.shuffle(out);
}
