/**
 * Tensor (float32, row-major, contiguous) and the tape that makes reverse-mode
 * autodiff work. Each op (see ops.ts) computes its output with the kernels and,
 * when some input needs a gradient, records one backward closure on the tape.
 * `backward(loss)` runs the tape in reverse, then clears it, so the
 * intermediates it held can be collected; their gradients go back to the
 * buffer pool (pool.ts) as soon as they have been propagated, and `tidy`
 * returns the activations of a whole step.
 */
import { UntieError } from '../errors.js';
import { anomalyMode, checkGradient, checkOutput, opContext, setRunningBackward, type OpContext } from './anomaly.js';
import { alloc, isPooled, nextEpoch, release } from './pool.js';
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
  private buffer: Float32Array | null;
  /** True when `buffer` came from the pool for this tensor (ops' outputs), not a view of another's. */
  private ownsBuffer = false;
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
    this.buffer = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
    this.name = name;
    if (anomalyMode.on) checkOutput(data, shape); // --detect-anomaly: every op output passes through here
    // A scope tracks the tensors over pool buffers (ops' outputs and views of them), never a caller's own arrays.
    if (scope && isPooled(data)) scope.made.push(this);
  }

  /**
   * A tensor that owns `data`, a buffer from the pool (pool.ts: alloc):
   * `dispose` or the end of the enclosing `tidy` gives it back. Ops make their
   * outputs this way: alloc, compute into it, adopt (so that --detect-anomaly
   * checks what they computed).
   */
  static adopt(data: Float32Array, shape: Shape): Tensor {
    const t = new Tensor(data, shape);
    t.ownsBuffer = true;
    return t;
  }

  /** The elements. Throws once the tensor has been disposed. */
  get data(): Float32Array {
    if (this.buffer === null) {
      throw new UntieError(
        `a tensor of shape ${shapeString(this.shape)}${this.name ? ` (${this.name})` : ''} was used after its memory went back to the pool ` +
          '(it was disposed, or made inside a tidy() scope that has ended without returning it)',
      );
    }
    return this.buffer;
  }

  /** False once the tensor has been disposed. */
  get alive(): boolean {
    return this.buffer !== null;
  }

  /**
   * Gives this tensor's buffer (if it owns one) and gradient back to the pool;
   * using the tensor afterwards throws. A view (reshape) drops its reference
   * only: the buffer belongs to the tensor it views.
   */
  dispose(): void {
    if (this.buffer !== null && this.ownsBuffer) release(this.buffer);
    this.buffer = null;
    this.zeroGrad();
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

  /** Drops the gradient; its buffer goes back to the pool, so an array read from `.grad` before is not valid after. */
  zeroGrad(): void {
    release(this.grad);
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
  /** Entries ever recorded: the last entry on the tape, if any, is number recorded - 1. */
  recorded = 0;

  record(output: Tensor, backward: BackwardFn): void {
    this.entries.push(anomalyMode.on ? { output, backward, context: opContext() } : { output, backward });
    this.recorded++;
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

/** Which tensor's `.grad` an array became (backward gives an intermediate's gradient back only if it is still its own). */
const gradOwner = new WeakMap<Float32Array, Tensor>();

/**
 * Adds `g` into `t.grad`. When `owned` is true the caller hands over `g`
 * (nobody else holds it), so a first gradient is taken without a copy.
 * Returns whether `g` itself became `t.grad`.
 */
export function accumulateGrad(t: Tensor, g: Float32Array, owned: boolean, add: (dst: Float32Array, src: Float32Array) => void): boolean {
  if (!t.requiresGrad) return false;
  let adopted = false;
  if (t.grad === null) {
    if (!owned) {
      const copy = alloc(g.length);
      copy.set(g);
      g = copy;
    }
    t.grad = g;
    gradOwner.set(g, t);
    adopted = owned;
  } else {
    add(t.grad, g);
  }
  if (anomalyMode.on) checkGradient(t);
  return adopted;
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
      const g = output.grad;
      if (g === null) continue; // nothing flowed into this node
      if (context) setRunningBackward(context);
      run();
      // Intermediates are not leaves: their gradient is done with, unless run()
      // handed the array on as an input's gradient (reshape does).
      output.grad = null;
      if (gradOwner.get(g) === output) release(g);
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

// ---------------------------------------------------------------- tidy scopes

interface Scope {
  made: Tensor[];
  parent: Scope | null;
}

let scope: Scope | null = null;

/** The tensors a scope's result holds: itself if a Tensor, else those among the elements of an array or the values of an object. */
function tensorsIn(result: unknown): Tensor[] {
  if (result instanceof Tensor) return [result];
  if (result === null || typeof result !== 'object') return [];
  const values = Array.isArray(result) ? result : Object.values(result);
  return values.filter((v): v is Tensor => v instanceof Tensor);
}

/**
 * Runs `fn`, then gives every buffer that ops made inside it back to the pool,
 * except the buffers of the tensors `fn` returns (a Tensor, or an array or
 * object holding Tensors); those pass to the enclosing scope. Tensors made
 * inside and not returned are disposed: using one afterwards throws.
 *
 *   const loss = tidy(() => { const out = model.mlm(batch); backward(out.loss); return out.loss.item(); });
 *
 * When `fn` leaves entries on the tape (a forward pass whose backward is
 * still to come), nothing is released, since the tape may still need any of
 * the buffers; they pass to the enclosing scope. The outermost scope also
 * marks a step for the pool (see pool.ts: nextEpoch).
 */
export function tidy<T>(fn: () => T): T {
  const outer = scope;
  const mine: Scope = { made: [], parent: outer };
  const recordedBefore = tape.recorded;
  scope = mine;
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scope = outer;
    if (outer) outer.made.push(...mine.made);
    throw err;
  }
  scope = outer;
  const pending = tape.entries.length > 0 && tape.recorded > recordedBefore;
  if (pending) {
    if (outer) outer.made.push(...mine.made);
    return result;
  }
  const keep = new Set<Float32Array>();
  for (const t of tensorsIn(result)) if (t.alive) keep.add(t.data);
  for (const t of mine.made) {
    if (!t.alive) continue;
    if (keep.has(t.data)) {
      if (outer) outer.made.push(t);
    } else {
      t.dispose();
    }
  }
  if (!outer) nextEpoch();
  return result;
}

/** A trainable leaf tensor. */
export function parameter(data: Float32Array, shape: Shape, name = ''): Tensor {
  return new Tensor(data, shape, true, name);
}
