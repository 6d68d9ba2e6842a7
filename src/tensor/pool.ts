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

import { kernels } from '../backend/index.js';
import type { KernelMemory } from '../backend/kernels.js';

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

/**
 * A pooled buffer: a float32 array of its class's size, either an ordinary
 * array or a block of a backend's memory (the wasm kernels' module memory,
 * where they read and write tensors in place; see backend/kernels.ts:
 * KernelMemory), which must be given back to that memory when dropped.
 */
interface Block {
  floats: Float32Array;
  memory: KernelMemory | null;
}

interface SizeClass {
  free: Block[];
  lastUsed: number;
}

/** Size classes per memory the buffers come from (null: ordinary arrays). */
const pools = new Map<KernelMemory | null, Map<number, SizeClass>>();
/** The block behind each view handed out and not yet given back (weak: a buffer nobody returns is simply collected). */
const handedOut = new WeakMap<Float32Array, Block>();
/**
 * A block of backend memory whose view was collected without coming back
 * (a tensor dropped outside any tidy scope) goes back to that memory, as an
 * ordinary array would go to the garbage collector.
 */
const lost = new FinalizationRegistry<Block>((block) => block.memory?.free(block.floats));
let epoch = 0;

const stats = { allocs: 0, reused: 0, fresh: 0, released: 0, freeBytes: 0 };

/** A float32 array of length `n` with unspecified contents. */
export function alloc(n: number): Float32Array {
  if (n < MIN_POOLED) return new Float32Array(n);
  stats.allocs++;
  // Buffers live where the active kernels want them (the wasm module's memory), else in ordinary arrays.
  const memory = kernels().memory ?? null;
  let classes = pools.get(memory);
  if (!classes) pools.set(memory, (classes = new Map()));
  const bytes = classBytes(n);
  let cls = classes.get(bytes);
  if (!cls) classes.set(bytes, (cls = { free: [], lastUsed: epoch }));
  cls.lastUsed = epoch;
  let block = cls.free.pop();
  // None free in its class: take one from the next few classes up (at most
  // ~50% larger), so that a size that moves a little from step to step (the
  // masked positions) does not make a new buffer every time.
  for (let up = 0, b = bytes; !block && up < LARGER_CLASSES; up++) {
    b = classBytes(b / 4 + 1);
    const larger = classes.get(b);
    if (larger && larger.free.length > 0) {
      larger.lastUsed = epoch;
      block = larger.free.pop();
    }
  }
  if (block) {
    stats.reused++;
    stats.freeBytes -= block.floats.byteLength;
  } else {
    stats.fresh++;
    // A full backend memory falls back to an ordinary array (its kernels then copy it per call).
    const inMemory = memory?.alloc(bytes / 4) ?? null;
    block = inMemory ? { floats: inMemory, memory } : { floats: new Float32Array(bytes / 4), memory: null };
  }
  const view = block.floats.subarray(0, n);
  handedOut.set(view, block);
  if (block.memory) lost.register(view, block, view);
  return view;
}

/** True while `a` is a pool buffer handed out and not yet given back. */
export function isPooled(a: Float32Array): boolean {
  return handedOut.has(a);
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
  const block = handedOut.get(a);
  if (!block) return false;
  handedOut.delete(a);
  if (block.memory) lost.unregister(a);
  const bytes = block.floats.byteLength;
  let classes = pools.get(block.memory);
  if (!classes) pools.set(block.memory, (classes = new Map()));
  let cls = classes.get(bytes);
  if (!cls) classes.set(bytes, (cls = { free: [], lastUsed: epoch }));
  cls.free.push(block);
  stats.released++;
  stats.freeBytes += bytes;
  return true;
}

/** Drops free blocks: ordinary arrays to the garbage collector, backend memory back to its owner. */
function drop(blocks: Block[]): void {
  for (const b of blocks) {
    stats.freeBytes -= b.floats.byteLength;
    b.memory?.free(b.floats);
  }
}

/**
 * Marks the end of a step (called by the outermost tidy scope): size classes
 * that went unused for a while give their free buffers up to the garbage
 * collector, so the pool holds about one step's working set, not the union
 * of every shape ever seen.
 */
export function nextEpoch(): void {
  epoch++;
  for (const classes of pools.values()) {
    for (const cls of classes.values()) {
      if (epoch - cls.lastUsed >= STALE_EPOCHS && cls.free.length > 0) {
        drop(cls.free);
        cls.free = [];
      }
    }
  }
}

/** Counters since start: allocations served, of which reused / fresh; releases; bytes now free in the pool. */
export function poolStats(): Readonly<typeof stats> {
  return { ...stats };
}

/** Drops every free buffer (tests; or to hand memory back after a large job). */
export function drainPool(): void {
  for (const classes of pools.values()) for (const cls of classes.values()) drop(cls.free);
  pools.clear();
  stats.freeBytes = 0;
}
