/**
 * The tensor buffer pool. A training step makes and drops about a gigabyte of
 * float32 arrays (activations, gradients); allocating them fresh costs a
 * zero-fill, page faults and garbage collection every step. Ops take their
 * outputs from here instead, and buffers come back:
 * - when backward has propagated an intermediate's gradient (tensor.ts),
 * - when an op no longer needs a buffer it kept for its backward (ops.ts),
 * - when a parameter's gradient is zeroed (Module.zeroGrad, Tensor.zeroGrad),
 * - at the end of a `tidy` scope, for every tensor made inside it that the
 *   scope does not return (tensor.ts).
 * A buffer is handed out again only after it came back, so an array a caller
 * still holds is never recycled unless the caller gave it back.
 *
 * Buffers are grouped in size classes (eight per power of two, so at most
 * 12.5% is unused): a step whose shapes vary a little, such as the number of
 * masked positions, still reuses last step's buffers. Each request gets a
 * view of exactly the length asked for. Contents of `alloc` are whatever was
 * there before: ops overwrite their outputs; `zeros` clears.
 */

/** Below this many floats an array is cheap to allocate, and is not pooled. */
const MIN_POOLED = 1024;

/** A class's free buffers are dropped when it went unused for this many epochs (tidy scopes, i.e. steps). */
const STALE_EPOCHS = 4;

/** How many classes above its own a request may take a free buffer from. */
const LARGER_CLASSES = 3;

/** The byte size of the class that holds `n` floats: 2^e (1 + j/8). */
function classBytes(n: number): number {
  const e = 31 - Math.clz32(n);
  if (e < 3) return n * 4;
  const step = 1 << (e - 3);
  return (((n + step - 1) >>> (e - 3)) << (e - 3)) * 4;
}

interface SizeClass {
  free: ArrayBuffer[];
  lastUsed: number;
}

const classes = new Map<number, SizeClass>();
/** The view each buffer currently handed out was given as (weak: a buffer nobody returns is simply collected). */
const handedOut = new WeakMap<ArrayBuffer, Float32Array>();
let epoch = 0;

const stats = { allocs: 0, reused: 0, fresh: 0, released: 0, freeBytes: 0 };

/** A float32 array of length `n` with unspecified contents. */
export function alloc(n: number): Float32Array {
  if (n < MIN_POOLED) return new Float32Array(n);
  stats.allocs++;
  const bytes = classBytes(n);
  let cls = classes.get(bytes);
  if (!cls) classes.set(bytes, (cls = { free: [], lastUsed: epoch }));
  cls.lastUsed = epoch;
  let buf = cls.free.pop();
  // None free in its class: take one from the next few classes up (at most
  // ~50% larger), so that a size that moves a little from step to step (the
  // masked positions) does not make a new buffer every time.
  for (let up = 0, b = bytes; !buf && up < LARGER_CLASSES; up++) {
    b = classBytes(b / 4 + 1);
    const larger = classes.get(b);
    if (larger && larger.free.length > 0) {
      larger.lastUsed = epoch;
      buf = larger.free.pop();
    }
  }
  if (buf) {
    stats.reused++;
    stats.freeBytes -= buf.byteLength;
  } else {
    stats.fresh++;
    buf = new ArrayBuffer(bytes);
  }
  const view = new Float32Array(buf, 0, n);
  handedOut.set(buf, view);
  return view;
}

/** True while `a` is a pool buffer handed out and not yet given back. */
export function isPooled(a: Float32Array): boolean {
  return handedOut.get(a.buffer as ArrayBuffer) === a;
}

/** A float32 array of length `n`, all zeros. */
export function zeros(n: number): Float32Array {
  const a = alloc(n);
  if (n >= MIN_POOLED) a.fill(0);
  return a;
}

/**
 * Gives `a` back for reuse. Only an array exactly as `alloc` handed it out is
 * taken (not a subarray of it, not one already given back); anything else is
 * left alone, so releasing is always safe for arrays the caller owns.
 * Returns whether the array was taken.
 */
export function release(a: Float32Array | null | undefined): boolean {
  if (!a) return false;
  const buf = a.buffer as ArrayBuffer;
  if (handedOut.get(buf) !== a) return false;
  handedOut.delete(buf);
  const bytes = buf.byteLength;
  const cls = classes.get(bytes);
  if (!cls) return false;
  cls.free.push(buf);
  stats.released++;
  stats.freeBytes += bytes;
  return true;
}

/**
 * Marks the end of a step (called by the outermost tidy scope): size classes
 * that went unused for a while give their free buffers up to the garbage
 * collector, so the pool holds about one step's working set, not the union
 * of every shape ever seen.
 */
export function nextEpoch(): void {
  epoch++;
  for (const [bytes, cls] of classes) {
    if (epoch - cls.lastUsed >= STALE_EPOCHS && cls.free.length > 0) {
      stats.freeBytes -= bytes * cls.free.length;
      cls.free = [];
    }
  }
}

/** Counters since start: allocations served, of which reused / fresh; releases; bytes now free in the pool. */
export function poolStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Drops every free buffer (tests; or to hand memory back after a large job). */
export function drainPool(): void {
  classes.clear();
  stats.freeBytes = 0;
}
