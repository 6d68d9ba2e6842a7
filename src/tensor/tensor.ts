/**
 * Tensor (float32, row-major, contiguous) and the tape that makes reverse-mode
 * autodiff work. Each op (see ops.ts) computes its output with the kernels and,
 * when some input needs a gradient, records one backward closure on the tape.
 * `backward(loss)` runs the tape in reverse, then clears it, so the
 * intermediates it held can be collected.
 */
import { UntieError } from '../errors.js';
import { anomalyMode, checkGradient, checkOutput, opContext, setRunningBackward, type OpContext } from './anomaly.js';
import type { Rng } from './rng.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly data: Float32Array;
  readonly shape: Shape;
  /** Gradient of the loss with respect to this tensor, once backward has reached it. */
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  /** Optional name (parameters carry their Hugging Face-style name). */
  name: string;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false, name = '') {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new UntieError(`tensor shape ${shapeString(shape)} has a dimension that is not a non-negative integer`);
    }
    if (data.length !== sizeOf(shape)) {
      throw new UntieError(`tensor data has ${data.length} elements but shape ${shapeString(shape)} needs ${sizeOf(shape)}`);
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
    this.name = name;
    if (anomalyMode.on) checkOutput(data, shape); // --detect-anomaly: every op output passes through here
  }

  static zeros(shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), shape, requiresGrad);
  }

  static full(shape: Shape, value: number, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)).fill(value), shape, requiresGrad);
  }

  static from(values: ArrayLike<number>, shape?: Shape, requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(values), shape ?? [values.length], requiresGrad);
  }

  /** Normal(mean, std) entries drawn from `rng`. */
  static randn(shape: Shape, rng: Rng, std = 1, mean = 0, requiresGrad = false): Tensor {
    const data = new Float32Array(sizeOf(shape));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * rng.normal();
    return new Tensor(data, shape, requiresGrad);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new UntieError(`item() needs a one-element tensor, got shape ${shapeString(this.shape)}`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** A copy that shares nothing and records nothing. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape, false, this.name);
  }

  zeroGrad(): void {
    this.grad = null;
  }
}

type BackwardFn = () => void;

interface TapeEntry {
  output: Tensor;
  backward: BackwardFn;
  /** The op and layer that recorded it (only under --detect-anomaly). */
  context?: OpContext;
}

/**
 * The tape: entries in the order ops ran. Leaves (parameters) keep their
 * `.grad` after backward; intermediates lose theirs as soon as they have been
 * propagated, which keeps peak memory near the forward pass's.
 */
class Tape {
  entries: TapeEntry[] = [];
  enabled = true;

  record(output: Tensor, backward: BackwardFn): void {
    this.entries.push(anomalyMode.on ? { output, backward, context: opContext() } : { output, backward });
  }

  clear(): void {
    this.entries = [];
  }
}

const tape = new Tape();

/** True when an op with these inputs must record a backward closure. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!tape.enabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Records `backward` for `output` (which then requires grad). */
export function record(output: Tensor, backward: BackwardFn): Tensor {
  output.requiresGrad = true;
  tape.record(output, backward);
  return output;
}

/**
 * Adds `g` into `t.grad`. When `owned` is true the caller hands over `g`
 * (nobody else holds it), so a first gradient is taken without a copy.
 */
export function accumulateGrad(t: Tensor, g: Float32Array, owned: boolean, add: (dst: Float32Array, src: Float32Array) => void): void {
  if (!t.requiresGrad) return;
  if (t.grad === null) t.grad = owned ? g : g.slice();
  else add(t.grad, g);
  if (anomalyMode.on) checkGradient(t);
}

/**
 * Runs the tape backward from `loss` (a one-element tensor, seeded with
 * d loss / d loss = `seed`), then clears it. Parameter gradients accumulate
 * into `.grad` across calls until zeroed, so gradient accumulation is just
 * several forward/backward pairs before one optimizer step.
 */
export function backward(loss: Tensor, seed = 1): void {
  if (loss.size !== 1) throw new UntieError(`backward() needs a one-element loss, got shape ${shapeString(loss.shape)}`);
  const entries = tape.entries;
  tape.clear();
  if (!loss.requiresGrad) throw new UntieError('backward(): the loss does not depend on any tensor that requires grad');
  loss.grad = Float32Array.of(seed);
  try {
    for (let i = entries.length - 1; i >= 0; i--) {
      const { output, backward: run, context } = entries[i];
      if (output.grad === null) continue; // nothing flowed into this node
      if (context) setRunningBackward(context);
      run();
      output.grad = null; // intermediates are not leaves: free their gradient
    }
  } finally {
    if (anomalyMode.on) setRunningBackward(null);
  }
}

/** Runs `fn` without recording anything (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = tape.enabled;
  tape.enabled = false;
  try {
    return fn();
  } finally {
    tape.enabled = prev;
  }
}

/** Drops everything recorded since the last backward (e.g. after an error). */
export function clearTape(): void {
  tape.clear();
}

/** Number of recorded entries (tests use it to check nothing leaks). */
export function tapeLength(): number {
  return tape.entries.length;
}

/** A trainable leaf tensor. */
export function parameter(data: Float32Array, shape: Shape, name = ''): Tensor {
  return new Tensor(data, shape, true, name);
}
