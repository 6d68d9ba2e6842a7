/**
 * A small seeded PRNG (xoshiro128**, seeded by splitmix32) whose whole state
 * is four uint32s, so it can be written into a checkpoint and restored
 * exactly. Everything random in untie (init, dropout seeds, masking, data
 * order) draws from one of these.
 */
import { UntieError } from '../errors.js';

export type RngState = [number, number, number, number];

/** True for a usable saved state: four uint32s, not all zero (xoshiro's one fixed point). */
export function isRngState(x: unknown): x is RngState {
  return Array.isArray(x) && x.length === 4 && x.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff) && x.some((v) => v !== 0);
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Hashes a string label to a uint32 (FNV-1a), for named sub-streams. */
export function hashString(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  private s: Uint32Array;

  constructor(seed = 0) {
    const next = splitmix32(seed);
    this.s = new Uint32Array([next(), next(), next(), next()]);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** A new generator for a named purpose, independent of this one's future draws. */
  static derive(seed: number, label: string): Rng {
    return new Rng((seed ^ hashString(label)) >>> 0);
  }

  /** Next uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal draw (Box-Muller; no cached spare, so the state stays four words). */
  normal(): number {
    let u1 = this.uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  getState(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: RngState): void {
    if (!isRngState(state)) throw new UntieError(`a saved random-generator state must be four uint32s, not all zero; got ${JSON.stringify(state)?.slice(0, 80)}`);
    this.s = new Uint32Array(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
