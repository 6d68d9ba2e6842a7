/**
 * Tying plans. A model's repeated stack has n layer positions; a plan maps
 * them to parameter groups. "A x B" is a unit of A distinct layers repeated B
 * times (A * B = n): position i belongs to group i mod A. 1 x n ties every
 * layer (ALBERT), n x 1 ties none (BERT).
 *
 * A group is the ordered list of its member positions. Untying makes every
 * member its own group; SWE-M splits a group between two adjacent members.
 */
import { UntieError } from '../errors.js';

export type Groups = number[][];

export interface ShareSpec {
  /** A: distinct layers in the repeated unit. */
  unit: number;
  /** B: how many times the unit repeats. */
  repeats: number;
}

/** Parses "AxB" (e.g. "1x12", "3x4", "12x1") for a stack of `layers` positions. */
export function parseShare(text: string, layers: number): ShareSpec {
  const m = /^\s*(\d+)\s*[xX×]\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UntieError(`--share "${text}" is not of the form AxB (a unit of A layers repeated B times), e.g. 1x${layers} (all tied) or ${layers}x1 (none tied)`);
  const unit = Number(m[1]), repeats = Number(m[2]);
  if (unit < 1 || repeats < 1 || unit * repeats !== layers) {
    throw new UntieError(`--share ${unit}x${repeats} does not fit a stack of ${layers} layers: A x B must equal ${layers}`);
  }
  return { unit, repeats };
}

/** The groups of an "A x B" plan: group j holds positions j, j+A, j+2A, ... */
export function planGroups(spec: ShareSpec): Groups {
  const groups: Groups = [];
  for (let j = 0; j < spec.unit; j++) {
    const members: number[] = [];
    for (let r = 0; r < spec.repeats; r++) members.push(j + r * spec.unit);
    groups.push(members);
  }
  return groups;
}

/** Checks that `groups` partition 0..n-1 with each group in increasing order. */
export function validateGroups(groups: Groups, n: number): void {
  const seen = new Array<boolean>(n).fill(false);
  for (const g of groups) {
    if (g.length === 0) throw new UntieError('a tying plan has an empty group');
    for (let i = 0; i < g.length; i++) {
      const p = g[i];
      if (!Number.isInteger(p) || p < 0 || p >= n || seen[p]) throw new UntieError(`a tying plan does not partition the ${n} layers: position ${p}`);
      if (i > 0 && g[i - 1] >= p) throw new UntieError('a tying plan lists a group out of order');
      seen[p] = true;
    }
  }
  if (seen.some((s) => !s)) throw new UntieError(`a tying plan does not cover all ${n} layers`);
}

/** Every member its own group. */
export function untieAll(groups: Groups): Groups {
  return groups.flat().sort((a, b) => a - b).map((p) => [p]);
}

/**
 * Splits group `g` before each member index in `cuts` (1..len-1): cutting
 * [0,1,2,3] at [2] gives [0,1] and [2,3].
 */
export function splitGroup(group: number[], cuts: number[]): number[][] {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b);
  const out: number[][] = [];
  let start = 0;
  for (const c of sorted) {
    if (c <= start || c >= group.length) continue;
    out.push(group.slice(start, c));
    start = c;
  }
  out.push(group.slice(start));
  return out;
}

/** A short human-readable description: "[0,1,2,3] [4] [5]". */
export function describeGroups(groups: Groups): string {
  return groups.map((g) => `[${g.join(',')}]`).join(' ');
}

/**
 * A plan's depth and shape, in the AxB notation when it has one (A groups of
 * B members each): "12 layers 12x1" untied, "12 layers 1x12" all tied,
 * "12 layers 3x4" a 3-layer unit repeated 4 times, as tied growth makes it;
 * else its groups.
 */
export function describePlan(groups: Groups): string {
  const size = groups[0]?.length ?? 0;
  const shape = groups.every((g) => g.length === size) ? `${groups.length}x${size}` : describeGroups(groups);
  return `${groups.flat().length} layers ${shape}`;
}
