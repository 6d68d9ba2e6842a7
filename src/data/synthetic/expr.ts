/**
 * `expr`: arithmetic modulo a small prime, evaluated left to right. Each
 * sequence holds expressions "v op a op a ... = ?" with D operations
 * (+ a, - a, * a; a multiplier is never 0), and asks for the value, a masked
 * target of difficulty D:
 *
 *   [CLS] 3 + 4 * 2 = 4   1 - 3 = 3   2 * 4 + 1 - 0 = 4 ... [SEP]     (modulus 5)
 *
 * The value after D operations is the running state of D steps of the same
 * automaton (state: a residue; step: an affine map), so a model has to apply
 * one operation after another, D times, or compose the maps pairwise. Every
 * operation is a bijection of the residues, so the answer is uniform
 * whenever any one operand is unknown: leaving a step out buys nothing.
 *
 * Keys: modulus (a prime) and depth (the most operations in an expression).
 */
import type { Rng } from '../../tensor/rng.js';
import { CLS_ID, SEP_ID } from '../tokenizer.js';
import { roundsThatFit, shuffledLevels, tokenId, type SyntheticExample, type SyntheticTask, type TaskDefinition } from './task.js';

const OPERATORS = ['+', '-', '*'] as const;

export const exprTask: TaskDefinition = {
  name: 'expr',
  about: 'left-to-right arithmetic modulo a prime; masked values of expressions with D = 1..depth operations',
  keys: {
    modulus: { kind: 'int', min: 2, max: 97, default: 5, prime: true, about: 'the prime the arithmetic is modulo' },
    depth: { kind: 'int', min: 1, max: 16, default: 4, about: 'the most operations in an expression' },
  },
  build(params) {
    const p = params.modulus as number, depth = params.depth as number;
    const numberId = (v: number) => tokenId(v);
    const operatorId = (o: number) => tokenId(p + o);
    const equalsId = tokenId(p + OPERATORS.length);
    // An expression of d operations: the start, 2 tokens per operation, "=" and the value.
    const round = depth * (depth + 1) + 3 * depth;
    const task: SyntheticTask = {
      name: 'expr', params, spec: '', difficulty: 'depth', levels: depth,
      tokens: [...Array.from({ length: p }, (_, v) => String(v)), ...OPERATORS, '='],
      minLength: 2 + round,
      tooLong(seqLen) {
        let fits = 0;
        while (fits < 16 && 2 + (fits + 1) * (fits + 5) <= seqLen) fits++;
        return `synthetic:expr: depth=${depth} needs sequences of ${this.minLength} tokens (one expression of each depth 1..${depth}, 2 x depth + 3 tokens each, [CLS] and [SEP]), ` +
          `more than the sequence length ${seqLen}: raise --seq-len to ${this.minLength}, or ${fits >= 1 ? `keep depth in 1..${fits}` : 'no task of this kind fits'}`;
      },
      generate(rng: Rng, seqLen: number): SyntheticExample {
        const levels = shuffledLevels(rng, depth, roundsThatFit(seqLen, 0, round));
        const length = 2 + levels.reduce((n, d) => n + 2 * d + 3, 0);
        const ids = new Int32Array(length);
        const targets = new Int32Array(levels.length), difficulty = new Int32Array(levels.length);
        let t = 0;
        ids[t++] = CLS_ID;
        levels.forEach((d, e) => {
          let value = rng.int(p);
          ids[t++] = numberId(value);
          for (let step = 0; step < d; step++) {
            const o = rng.int(OPERATORS.length);
            const operand = OPERATORS[o] === '*' ? 1 + rng.int(p - 1) : rng.int(p);
            value = OPERATORS[o] === '+' ? (value + operand) % p : OPERATORS[o] === '-' ? (value - operand + p) % p : (value * operand) % p;
            ids[t++] = operatorId(o);
            ids[t++] = numberId(operand);
          }
          ids[t++] = equalsId;
          targets[e] = t;
          difficulty[e] = d;
          ids[t++] = numberId(value);
        });
        ids[t++] = SEP_ID;
        return { ids, targets, difficulty };
      },
    };
    return task;
  },
};

/**
 * The exact solver the tests check the generator against, from the text
 * alone: each expression, up to its "=", folded left to right in BigInt
 * arithmetic and reduced modulo `modulus` at the end (a different route to
 * the same residue than the generator's step-by-step reduction).
 */
export function solveExpr(tokens: readonly string[], modulus: number): { position: number; depth: number; answer: string }[] {
  const out: { position: number; depth: number; answer: string }[] = [];
  const m = BigInt(modulus);
  let i = 1; // after [CLS]
  while (tokens[i] !== '[SEP]') {
    let value = BigInt(tokens[i]);
    let depth = 0;
    for (i++; tokens[i] !== '='; i += 2, depth++) {
      const operand = BigInt(tokens[i + 1]);
      if (tokens[i] === '*' && operand % m === 0n) throw new Error('a multiplier of 0 makes the value independent of the rest');
      if (tokens[i] === '+') value += operand;
      else if (tokens[i] === '-') value -= operand;
      else if (tokens[i] === '*') value *= operand;
      else throw new Error(`${tokens[i]} is not an operator`);
    }
    out.push({ position: i + 1, depth, answer: String(((value % m) + m) % m) });
    i += 2;
  }
  return out;
}
