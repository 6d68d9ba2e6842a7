/**
 * `hops`: pointer following. Each sequence lists a function f on a few
 * symbols as pairs, one token "ab" per pair meaning f(a) = b (every symbol
 * once as a first element, in a random order; a new f in every sequence, so
 * nothing can be memorised), then asks queries: a query token "xK" stands in
 * place of its answer (the masked target) and asks where K steps of f lead
 * from x. The answer of a K-hop query is a target of difficulty K.
 *
 *   [CLS] ce ac eb da bd   d1 b3 e2 ... [SEP]     answers: a, c, d
 *
 * A model finds f(x) by attending from the query to the pair whose first
 * symbol is x and reading its second; K hops chain K such look-ups, each
 * needing the previous one's result, so deeper queries need more layers (a
 * stack can also compose f with itself, f^2 = f(f(.)), to cover K hops in
 * about log2 K + 1 steps; either way, depth grows with K).
 *
 * Why this format (the pilot, docs/depth.md): written as two tokens "a b",
 * a pair needs an induction head (b must first learn that a precedes it),
 * and a query "hK x [MASK]" needs the [MASK] to fetch x from the position
 * before it. With both, a 2-layer model (untie, and PyTorch alike) stalled
 * at ruling out the start symbol for thousands of steps; with pair tokens
 * but "hK x [MASK]" queries an 8-layer one still did not learn 2 or 3 hops in
 * 2,000-4,000 steps. With one token per pair and per query, the same 8-layer
 * model reaches 98% on 1 hop, 82% on 2 and 59% on 3 in a 1,500-step run.
 *
 * Keys: symbols (how many, named a, b, c, ...), hops (the hardest query) and
 * map: `cycle` (f is one cycle through all symbols, so f^K(x) != x for
 * K < symbols and every answer is uniform over the other symbols: no
 * shortcut), `permutation` (any bijection: short cycles make f^K(x) = x a
 * frequent answer) or `function` (any map: chains merge, the answer is often
 * a symbol the map's image favours).
 */
import type { Rng } from '../../tensor/rng.js';
import { CLS_ID, SEP_ID } from '../tokenizer.js';
import { roundsThatFit, shuffledLevels, tokenId, type SyntheticExample, type SyntheticTask, type TaskDefinition } from './task.js';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

export const hopsTask: TaskDefinition = {
  name: 'hops',
  about: 'a random function on a few symbols, listed as pairs; masked answers to "where do K steps lead from x", K = 1..hops',
  keys: {
    symbols: { kind: 'int', min: 2, max: LETTERS.length, default: 8, about: 'symbols the function maps (a, b, c, ...)' },
    hops: { kind: 'int', min: 1, max: 16, default: 4, about: 'the most steps a query asks for' },
    map: { kind: 'choice', values: ['cycle', 'permutation', 'function'], default: 'cycle', about: 'what kind of function each sequence lists' },
  },
  build(params) {
    const symbols = params.symbols as number, hops = params.hops as number, map = params.map as 'cycle' | 'permutation' | 'function';
    const symbolId = (s: number) => tokenId(s);
    const pairId = (a: number, b: number) => tokenId(symbols + a * symbols + b);
    const queryId = (x: number, k: number) => tokenId(symbols + symbols * symbols + x * hops + k - 1);
    // One token per pair, one per query; a round asks one query of every hop count.
    const fixed = symbols, round = hops;
    const pairTokens: string[] = [], queryTokens: string[] = [];
    for (let a = 0; a < symbols; a++) for (let b = 0; b < symbols; b++) pairTokens.push(LETTERS[a] + LETTERS[b]);
    for (let x = 0; x < symbols; x++) for (let k = 1; k <= hops; k++) queryTokens.push(`${LETTERS[x]}${k}`);
    const task: SyntheticTask = {
      name: 'hops', params, spec: '', difficulty: 'hops', levels: hops,
      tokens: [...LETTERS.slice(0, symbols), ...pairTokens, ...queryTokens],
      minLength: 2 + fixed + round,
      tooLong(seqLen) {
        const maxSymbols = seqLen - 2 - round;
        const maxHops = seqLen - 2 - 2;
        const fits = maxSymbols >= 2 ? `keep symbols in 2..${Math.min(maxSymbols, LETTERS.length)} (at hops=${hops})`
          : maxHops >= 1 ? `keep hops in 1..${maxHops} (at symbols=2)` : 'no task of this kind fits';
        return `synthetic:hops: symbols=${symbols} and hops=${hops} need sequences of ${this.minLength} tokens (one per pair, one query per hop count, [CLS] and [SEP]), ` +
          `more than the sequence length ${seqLen}: raise --seq-len to ${this.minLength}, or ${fits}`;
      },
      generate(rng: Rng, seqLen: number): SyntheticExample {
        const f = drawMap(rng, symbols, map);
        const order = rng.shuffle(Array.from({ length: symbols }, (_, i) => i));
        const levels = shuffledLevels(rng, hops, roundsThatFit(seqLen, fixed, round));
        const ids = new Int32Array(2 + fixed + levels.length);
        const targets = new Int32Array(levels.length), difficulty = new Int32Array(levels.length), shown = new Int32Array(levels.length);
        let t = 0;
        ids[t++] = CLS_ID;
        for (const a of order) ids[t++] = pairId(a, f[a]);
        levels.forEach((k, q) => {
          const start = rng.int(symbols);
          let at = start;
          for (let step = 0; step < k; step++) at = f[at];
          targets[q] = t;
          difficulty[q] = k;
          shown[q] = queryId(start, k);
          ids[t++] = symbolId(at);
        });
        ids[t++] = SEP_ID;
        return { ids, targets, difficulty, shown };
      },
    };
    return task;
  },
};

/** f as an array: f[a] is the image of symbol a. */
function drawMap(rng: Rng, n: number, map: 'cycle' | 'permutation' | 'function'): Int32Array {
  const f = new Int32Array(n);
  if (map === 'function') {
    for (let a = 0; a < n; a++) f[a] = rng.int(n);
    return f;
  }
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  if (map === 'cycle') {
    // One cycle through every symbol, in a random order.
    for (let i = 0; i < n; i++) f[order[i]] = order[(i + 1) % n];
  } else {
    for (let a = 0; a < n; a++) f[a] = order[a];
  }
  return f;
}

/**
 * The exact solver the tests check the generator against, written from the
 * format alone: reads the pairs as text up to the first query, then answers
 * each query "xK" by following the pairs K times from x. Returns, per query, the
 * position where its answer stands, the hop count and the answer.
 */
export function solveHops(tokens: readonly string[]): { position: number; hops: number; answer: string }[] {
  const next = new Map<string, string>();
  const out: { position: number; hops: number; answer: string }[] = [];
  for (let i = 1; tokens[i] !== '[SEP]'; i++) {
    const pair = /^([a-z])([a-z])$/.exec(tokens[i]), query = /^([a-z])(\d+)$/.exec(tokens[i]);
    if (pair) {
      if (next.has(pair[1]) || out.length > 0) throw new Error(`${tokens[i]} is not a new pair before the queries`);
      next.set(pair[1], pair[2]);
    } else if (query) {
      let at = query[1];
      for (let k = 0; k < Number(query[2]); k++) {
        const to = next.get(at);
        if (to === undefined) throw new Error(`no pair starts with ${at}`);
        at = to;
      }
      out.push({ position: i, hops: Number(query[2]), answer: at });
    } else throw new Error(`${tokens[i]} is neither a pair nor a query`);
  }
  return out;
}
