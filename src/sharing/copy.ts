/**
 * The layer copy: the one operation that makes a layer of a repeated stack a
 * copy of another, its tensors and, when the copy is to be updated on its
 * own, its optimizer state. Everything in this folder that makes layers
 * equal goes through it:
 *   - tying (a tied member takes its representative's weights after every
 *     update): tensors only, the member has no state of its own;
 *   - untying and splitting (the controller's regroup): each new group's
 *     representative takes a copy of the old group's state;
 *   - growing (progressive stacking): a new layer on top of the stack takes
 *     an old layer's tensors and a copy of its state (or, tied, joins its
 *     group and takes tensors only).
 */
import { kernels } from '../backend/index.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RepeatedStack } from './controller.js';

/** What the copy's optimizer state is. */
export interface StateCopy {
  optimizer: Optimizer;
  /**
   * 'copy': separate buffers holding the source's moments and step count
   * (scaled by `scale`); 'reset': no state, so the copy starts fresh at its
   * next update. A source without state (nothing updated it yet) gives none.
   */
  rule: 'copy' | 'reset';
  /** The position whose tensors hold the source's state, when not `from`: the representative of its tied group. */
  stateFrom?: number;
  /** With 'copy': a factor r per tensor (index within the layer, name) for the moments, m by r and v by r^2. */
  scale?: (tensor: number, name: string) => number;
}

/**
 * Makes layer `to` of `stack` a copy of layer `from`: its tensors (skipped
 * when `from === to`) and, with `state`, its optimizer state. Without
 * `state` the copy's own state is left alone: that of a tied member, which
 * its group's representative's state serves.
 */
export function copyLayer(stack: RepeatedStack, from: number, to: number, state?: StateCopy): void {
  const source = stack.layers[from], target = stack.layers[to];
  if (from !== to) target.forEach(([, t], j) => t.data.set(source[j][1].data));
  if (!state) return;
  const { optimizer } = state;
  const holder = stack.layers[state.stateFrom ?? from];
  target.forEach(([name, t], j) => {
    const src = holder[j][1];
    if (state.rule === 'reset' || !optimizer.hasState(src)) {
      optimizer.deleteState(t);
      return;
    }
    const s = optimizer.stateOf(src);
    const copied = { step: s.step, m: s.m.slice(), v: s.v.slice() };
    optimizer.setState(t, copied);
    const r = state.scale ? state.scale(j, name) : 1;
    if (r !== 1) scaleMoments(optimizer, t, r);
  });
}

/** Scales `t`'s optimizer moments in place: m by r, v by r^2 (the 'rescale' rule: Adam's next step, m / sqrt(v), is unchanged). */
export function scaleMoments(optimizer: Optimizer, t: Tensor, r: number): void {
  if (!optimizer.hasState(t)) return;
  const K = kernels();
  const s = optimizer.stateOf(t);
  K.scale(s.m, r, s.m);
  K.scale(s.v, r * r, s.v);
}
