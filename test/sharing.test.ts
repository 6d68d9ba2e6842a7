// The method: tying plans, the shared update, untie/split and the criteria,
// on the deep linear network (the same code ties BERT's layers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeepLinearNetwork } from '../src/models/linear.js';
import { Optimizer, clipGradNorm, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { SharingController, type RepeatedStack, type SharingOptions } from '../src/sharing/controller.js';
import { AdaptiveCriterion, FixedCriterion, MultiCriterion, NeverCriterion, parseCriterion, replay, type CheckStats, type Criterion } from '../src/sharing/criteria.js';
import { parseShare, planGroups, splitGroup } from '../src/sharing/plan.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor, backward } from '../src/tensor/tensor.js';
import { UntieError } from '../src/errors.js';
import { criterionOf, defaultRunConfig, resolveSchedule, type RunConfig } from '../src/train/config.js';

const D = 4, L = 4;

function randomNet(seed: number): DeepLinearNetwork {
  const net = new DeepLinearNetwork(L, D, 'identity');
  const rng = new Rng(seed);
  for (const layer of net.layers) for (let i = 0; i < D * D; i++) layer.weight.data[i] += 0.3 * rng.normal();
  return net;
}

function target(seed: number): Tensor {
  return Tensor.randn([D, D], new Rng(seed), 1);
}

function setup(share: string, criterion: Criterion, extra: Partial<SharingOptions> = {}, seed = 1) {
  const net = randomNet(seed);
  const ctrl = new SharingController(net.stack(), {
    groups: planGroups(parseShare(share, L)), criterion, sharedGrad: 'mean', untieOptimizer: 'copy', ...extra,
  });
  ctrl.tieWeights();
  const opt = new Optimizer({ ...defaultOptimizerConfig(), weightDecay: 0 });
  return { net, ctrl, opt };
}

function step(net: DeepLinearNetwork, ctrl: SharingController, opt: Optimizer, phi: Tensor, i: number, lr = 0.01) {
  net.zeroGrad();
  backward(net.loss(phi));
  ctrl.beforeUpdate(i);
  const trainable = ctrl.trainable(net.namedParameters());
  opt.step(trainable.map(([, t]) => t), trainable.map(([n]) => n), lr);
  return ctrl.afterUpdate(i, opt);
}

function weights(net: DeepLinearNetwork): Float32Array[] {
  return net.layers.map((l) => l.weight.data.slice());
}

test('plans: AxB parsing, grouping, splitting, and clear errors', () => {
  assert.deepEqual(planGroups(parseShare('1x4', 4)), [[0, 1, 2, 3]]);
  assert.deepEqual(planGroups(parseShare('2x2', 4)), [[0, 2], [1, 3]]);
  assert.deepEqual(planGroups(parseShare('4x1', 4)), [[0], [1], [2], [3]]);
  assert.deepEqual(splitGroup([0, 1, 2, 3], [2]), [[0, 1], [2, 3]]);
  assert.deepEqual(splitGroup([0, 1, 2, 3], [1, 3]), [[0], [1, 2], [3]]);
  assert.throws(() => parseShare('3x2', 4), UntieError);
  assert.throws(() => parseShare('two', 4), /not of the form AxB/);
  assert.throws(() => parseCriterion('sometimes', { totalSteps: 100 }), /not one of/);
});

test('the plan decides the unique parameter count', () => {
  for (const [share, groups] of [['1x4', 1], ['2x2', 2], ['4x1', 4]] as const) {
    const { net, ctrl } = setup(share, new NeverCriterion());
    assert.equal(ctrl.uniqueParameterCount(net.namedParameters()), groups * D * D);
  }
});

test("tying starts every member from its representative's draw, before any update", () => {
  const drawn = weights(randomNet(1));
  const { net } = setup('2x2', new NeverCriterion());
  assert.notDeepEqual(drawn[1], drawn[0], 'the layers were drawn apart');
  assert.deepEqual(weights(net), [drawn[0], drawn[1], drawn[0], drawn[1]]);
});

test('full sharing keeps every layer bit-identical at every step', () => {
  const { net, ctrl, opt } = setup('1x4', new NeverCriterion());
  const phi = target(2);
  for (let i = 0; i < 20; i++) {
    step(net, ctrl, opt, phi, i);
    const w = weights(net);
    for (let l = 1; l < L; l++) assert.deepEqual(w[l], w[0], `step ${i}: layer ${l} differs from layer 0`);
  }
  // and training did move them
  assert.notDeepEqual(weights(net)[0], randomNet(1).layers[0].weight.data);
});

test('partial sharing 2x2 ties positions {0,2} and {1,3} only', () => {
  const { net, ctrl, opt } = setup('2x2', new NeverCriterion());
  const phi = target(3);
  for (let i = 0; i < 5; i++) step(net, ctrl, opt, phi, i);
  const w = weights(net);
  assert.deepEqual(w[2], w[0]);
  assert.deepEqual(w[3], w[1]);
  assert.notDeepEqual(w[1], w[0]);
});

test('after untie the layers diverge', () => {
  const { net, ctrl, opt } = setup('1x4', new FixedCriterion(5));
  const phi = target(5);
  let untieStep = -1;
  for (let i = 0; i < 12; i++) {
    const events = step(net, ctrl, opt, phi, i);
    if (events.some((e) => e.type === 'untie')) untieStep = i;
  }
  assert.equal(untieStep, 4, 'step:5 unties after the 5th update (index 4)');
  assert.equal(ctrl.tied, false);
  const w = weights(net);
  for (let l = 1; l < L; l++) assert.notDeepEqual(w[l], w[0], `layer ${l} still equals layer 0`);
});

test('SWE-F with a check interval logs the tied phase\'s agreement and trains exactly as without it', () => {
  const phi = target(5);
  const plain = setup('1x4', new FixedCriterion(6));
  const observed = setup('1x4', new FixedCriterion(6, null, 2));
  const checks: number[] = [];
  for (let i = 0; i < 12; i++) {
    assert.deepEqual(step(plain.net, plain.ctrl, plain.opt, phi, i).filter((e) => e.type === 'sharing_check'), []);
    for (const e of step(observed.net, observed.ctrl, observed.opt, phi, i)) {
      if (e.type !== 'sharing_check') continue;
      checks.push(e.step);
      assert.equal(e.pairs.length, L - 1);
      for (const p of e.pairs) assert.ok(p.cosine > -1 && p.cosine <= 1 + 1e-6, `cosine ${p.cosine}`);
      assert.equal(e.decision, e.step === 5 ? 'untie' : 'none');
    }
  }
  assert.deepEqual(checks, [1, 3, 5], 'every 2nd update while tied (the untie comes after update index 5), none after');
  assert.deepEqual(weights(observed.net), weights(plain.net), 'measuring changes no update');
  assert.deepEqual(new FixedCriterion(6, null, 2).describe(), { kind: 'fixed', untieAt: 6, every: 2 });
  assert.equal((parseCriterion('fraction:0.1', { totalSteps: 3000 }) as FixedCriterion).every, 15, 'the default interval: ~20 checks before 10% of the run');
});

test('a run\'s schedule keeps the check interval of SWE-F and never (the user\'s K, or the default), and an old schedule without one gets the default', () => {
  const cfg = (untie: string, checkEvery: number): RunConfig => {
    const d = defaultRunConfig();
    return { ...d, train: { ...d.train, steps: 3000 }, sharing: { ...d.sharing, share: '1x12', untie, checkEvery } };
  };
  for (const untie of ['never', 'fraction:0.1', 'step:300']) {
    assert.equal(resolveSchedule(cfg(untie, 0)).checkEvery, 15, untie);
    assert.equal(resolveSchedule(cfg(untie, 7)).checkEvery, 7, untie);
    assert.equal((criterionOf(cfg(untie, 7)) as FixedCriterion | NeverCriterion).every, 7, untie);
    const old = { ...resolveSchedule(cfg(untie, 7)), checkEvery: null };
    assert.equal((criterionOf(cfg(untie, 7), old) as FixedCriterion | NeverCriterion).every, 15, `${untie}: a schedule saved before the interval was kept`);
  }
  assert.equal((criterionOf(cfg('fraction:0.1', 0)) as FixedCriterion).untieAt, 300);
});

test('untie with copied optimizer state equals an untied model built from the same weights and state', () => {
  const phi = target(6);
  const tied = setup('1x4', new FixedCriterion(6));
  for (let i = 0; i < 6; i++) step(tied.net, tied.ctrl, tied.opt, phi, i);
  assert.equal(tied.ctrl.tied, false);

  // Build the untied twin now: same weights, each layer with a copy of the shared state.
  const twin = setup('4x1', new NeverCriterion());
  const sharedState = tied.opt.stateOf(tied.net.layers[0].weight);
  twin.net.layers.forEach((layer, l) => {
    layer.weight.data.set(tied.net.layers[l].weight.data);
    twin.opt.setState(layer.weight, { step: sharedState.step, m: sharedState.m.slice(), v: sharedState.v.slice() });
  });
  for (let i = 6; i < 15; i++) {
    step(tied.net, tied.ctrl, tied.opt, phi, i);
    step(twin.net, twin.ctrl, twin.opt, phi, i);
  }
  assert.deepEqual(weights(tied.net), weights(twin.net));
});

test('untieOptimizer reset starts every layer from fresh optimizer state', () => {
  const { net, ctrl, opt } = setup('1x4', new FixedCriterion(3), { untieOptimizer: 'reset' });
  const phi = target(7);
  for (let i = 0; i < 3; i++) step(net, ctrl, opt, phi, i);
  for (const layer of net.layers) assert.equal(opt.hasState(layer.weight), false);
  step(net, ctrl, opt, phi, 3);
  for (const layer of net.layers) assert.equal(opt.stateOf(layer.weight).step, 1);
});

/** A stack of one-tensor layers whose gradients we set by hand. */
function handStack(grads: number[][]) {
  const layers = grads.map((g) => {
    const t = new Tensor(new Float32Array(g.length), [g.length], true, 'w');
    return [['w', t]] as [string, Tensor][];
  });
  const setGrads = () => layers.forEach(([[, t]], i) => (t.grad = Float32Array.from(grads[i])));
  return { stack: { layers, prefix: (i: number) => `layer.${i}.` }, setGrads };
}

test('SWE-M splits exactly between the adjacent layers whose correlation is below rho', () => {
  // cos(0,1) = 1, cos(1,2) = 0, cos(2,3) = 0.89, cos(3,4) = -1
  const grads = [[1, 0, 0], [2, 0, 0], [0, 1, 0], [0, 1, 0.5], [0, -1, -0.5]];
  const { stack, setGrads } = handStack(grads);
  const ctrl = new SharingController(stack, {
    groups: [[0, 1, 2, 3, 4]], criterion: new MultiCriterion({ threshold: 0.5, patience: 2, every: 1 }), sharedGrad: 'mean', untieOptimizer: 'copy',
  });
  const opt = new Optimizer(defaultOptimizerConfig());
  const run = (i: number) => {
    setGrads();
    ctrl.beforeUpdate(i);
    return ctrl.afterUpdate(i, opt);
  };
  const first = run(0);
  assert.deepEqual(ctrl.groups, [[0, 1, 2, 3, 4]], 'patience 2: one check below is not enough');
  const check = first.find((e) => e.type === 'sharing_check');
  assert.ok(check && check.type === 'sharing_check');
  assert.deepEqual(check.pairs.map((p) => Math.round(p.cosine * 100) / 100), [1, 0, 0.89, -1]);
  const second = run(1);
  assert.deepEqual(ctrl.groups, [[0, 1], [2, 3], [4]]);
  assert.ok(second.some((e) => e.type === 'split'));
});

test('SWE-A unties when more than half the pairs are below rho at C consecutive checks', () => {
  const crit = new AdaptiveCriterion({ threshold: 0.5, patience: 3, every: 10 });
  const groups = [[0, 1, 2, 3]];
  const stats = (step: number, cosines: number[]): CheckStats => ({ step, pairs: cosines.map((c, i) => ({ a: i, b: i + 1, cosine: c, perTensor: {} })) });
  assert.equal(crit.wantsStats(8), false);
  assert.equal(crit.wantsStats(9), true);
  assert.equal(crit.decide(9, groups, stats(9, [0.1, 0.2, 0.9])).action, 'none'); // 2 of 3 below: streak 1
  assert.equal(crit.decide(19, groups, stats(19, [0.1, 0.9, 0.9])).action, 'none'); // 1 of 3: streak resets
  assert.equal(crit.decide(29, groups, stats(29, [0.1, 0.2, 0.3])).action, 'none'); // streak 1
  assert.equal(crit.decide(39, groups, stats(39, [0.1, 0.2, 0.3])).action, 'none'); // streak 2
  assert.deepEqual(crit.decide(49, groups, stats(49, [0.4, 0.2, 0.6])), { action: 'untie', reason: 'correlation' }); // streak 3
  // Exactly half below is not "more than half": the streak resets.
  const five = [[0, 1, 2, 3, 4]];
  const again = new AdaptiveCriterion({ threshold: 0.5, patience: 2, every: 10 });
  assert.equal(again.decide(9, five, stats(9, [0.1, 0.2, 0.3, 0.9])).action, 'none'); // 3 of 4: streak 1
  assert.equal(again.decide(19, five, stats(19, [0.1, 0.2, 0.9, 0.9])).action, 'none'); // 2 of 4: streak resets
  assert.equal(again.decide(29, five, stats(29, [0.1, 0.2, 0.3, 0.9])).action, 'none'); // streak 1
  assert.equal(again.decide(39, five, stats(39, [0.1, 0.2, 0.3, 0.4])).action, 'untie'); // streak 2
});

test('SWE-A with a deadline unties by then even when the layers still agree, and says so', () => {
  const crit = parseCriterion('adaptive', { totalSteps: 100, every: 5, untieBy: 0.2 });
  const groups = [[0, 1, 2]];
  const agree = (step: number): CheckStats => ({ step, pairs: [{ a: 0, b: 1, cosine: 0.9, perTensor: {} }, { a: 1, b: 2, cosine: 0.95, perTensor: {} }] });
  for (let step = 0; step < 19; step++) assert.equal(crit.decide(step, groups, crit.wantsStats(step) ? agree(step) : null).action, 'none', `step ${step}`);
  assert.deepEqual(crit.decide(19, groups, agree(19)), { action: 'untie', reason: 'deadline' });
  assert.throws(() => parseCriterion('adaptive', { totalSteps: 100, untieBy: 1.5 }), /--untie-by/);
});

test('an adaptive run logs every check, and replaying the logged statistics reproduces its decision', () => {
  const phi = target(8);
  const options = { threshold: 0.9, patience: 2, every: 2 };
  const { net, ctrl, opt } = setup('1x4', new AdaptiveCriterion(options), {}, 3);
  const events = [];
  for (let i = 0; i < 60 && ctrl.tied; i++) events.push(...step(net, ctrl, opt, phi, i, 0.05));
  const checks = events.filter((e) => e.type === 'sharing_check');
  const untie = events.find((e) => e.type === 'untie');
  assert.ok(checks.length >= 2, 'checks were logged');
  assert.ok(untie, 'the run untied within 60 steps');
  // Round-trip the statistics through JSON, as metrics.jsonl stores them.
  const logged = JSON.parse(JSON.stringify(checks)) as { step: number; pairs: CheckStats['pairs'] }[];
  const decisions = replay(new AdaptiveCriterion(options), [[0, 1, 2, 3]], logged.map((c) => ({ step: c.step, pairs: c.pairs })));
  assert.deepEqual(decisions, [{ step: untie.step, decision: { action: 'untie', reason: 'correlation' } }]);
});

test('resuming from saved weights, optimizer and sharing state across the untie step equals an uninterrupted run', () => {
  const phi = target(9);
  const make = () => setup('1x4', new AdaptiveCriterion({ threshold: 0.9, patience: 2, every: 2 }), {}, 3);
  const full = make();
  let untiedAt = -1;
  for (let i = 0; i < 40; i++) {
    if (step(full.net, full.ctrl, full.opt, phi, i, 0.05).some((e) => e.type === 'untie')) untiedAt = i;
  }
  assert.ok(untiedAt >= 2 && untiedAt < 30, `the reference run unties mid-way (at ${untiedAt})`);
  // Cut before the untie, right at it (the untie happened in the last step before the cut), and after it.
  for (const cut of [1, untiedAt, untiedAt + 1, untiedAt + 6]) {
    const first = make();
    for (let i = 0; i < cut; i++) step(first.net, first.ctrl, first.opt, phi, i, 0.05);
    // Save everything as plain JSON, restore into fresh objects.
    const saved = JSON.stringify({
      weights: weights(first.net).map((w) => Array.from(w)),
      opt: first.net.layers.map((l) => (first.opt.hasState(l.weight) ? { ...first.opt.stateOf(l.weight), m: Array.from(first.opt.stateOf(l.weight).m), v: Array.from(first.opt.stateOf(l.weight).v) } : null)),
      sharing: first.ctrl.getState(),
    });
    const s = JSON.parse(saved);
    const second = make();
    second.net.layers.forEach((l, i) => {
      l.weight.data.set(s.weights[i]);
      if (s.opt[i]) second.opt.setState(l.weight, { step: s.opt[i].step, m: Float32Array.from(s.opt[i].m), v: Float32Array.from(s.opt[i].v) });
    });
    second.ctrl.setState(s.sharing);
    for (let i = cut; i < 40; i++) step(second.net, second.ctrl, second.opt, phi, i, 0.05);
    assert.deepEqual(weights(second.net), weights(full.net), `resumed at step ${cut}`);
  }
});

// ---- the shared update, untie and the statistics, against hand computations

const DW = [3, 4], DB = [3];

/**
 * A stack of n layers with two tensors each ('dense.weight', which decays, and
 * 'dense.bias', which does not) plus one tensor outside the stack, with tied
 * initial weights and hand-set (seeded) per-layer gradients.
 */
function handModel(n: number, seed: number) {
  const rng = new Rng(seed);
  const rand = (k: number) => Float32Array.from({ length: k }, () => rng.normal());
  const init = [rand(12), rand(3)];
  const layers = Array.from({ length: n }, () => [
    ['dense.weight', new Tensor(init[0].slice(), DW, true)],
    ['dense.bias', new Tensor(init[1].slice(), DB, true)],
  ] as [string, Tensor][]);
  const outside = new Tensor(rand(5), [5], true);
  const grads = layers.map(() => [rand(12), rand(3)]);
  const outsideGrad = rand(5);
  const setGrads = () => {
    layers.forEach((l, i) => l.forEach(([, t], j) => (t.grad = grads[i][j].slice())));
    outside.grad = outsideGrad.slice();
  };
  const stack: RepeatedStack = { layers, prefix: (i) => `layer.${i}.` };
  const named = (): [string, Tensor][] => [['embeddings.weight', outside], ...layers.flatMap((l, i) => l.map(([name, t]) => [`layer.${i}.${name}`, t] as [string, Tensor]))];
  return { layers, outside, grads, outsideGrad, setGrads, stack, named, init, outsideInit: outside.data.slice() };
}

/** The reduction of a group's hand-set gradients for tensor j, in float64. */
function reduced(grads: Float32Array[][], group: number[], j: number, rule: 'mean' | 'sum'): number[] {
  const out = Array.from(grads[group[0]][j], () => 0);
  for (const pos of group) grads[pos][j].forEach((g, k) => (out[k] += g));
  return rule === 'mean' ? out.map((x) => x / group.length) : out;
}

const sumSq = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, x) => a + x * x, 0);

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let k = 0; k < expected.length; k++) {
    assert.ok(Math.abs(actual[k] - expected[k]) <= tol * Math.max(1, Math.abs(expected[k])), `${what}[${k}]: ${actual[k]} vs ${expected[k]}`);
  }
}

test('the shared update is one AdamW step (clipped, with weight decay) on the hand-computed mean or sum, for groups of 2, 3 and 6', () => {
  const lr = 0.1, wd = 0.1, maxNorm = 0.5;
  // A large eps makes Adam's first step depend on the gradient's size, not only its sign.
  const cfg = { kind: 'adamw' as const, beta1: 0.9, beta2: 0.999, eps: 0.05, weightDecay: wd };
  for (const share of ['3x2', '2x3', '1x6']) {
    for (const rule of ['mean', 'sum'] as const) {
      const what = `${share} ${rule}`;
      const m = handModel(6, 11);
      const groups = planGroups(parseShare(share, 6));
      const ctrl = new SharingController(m.stack, { groups, criterion: new NeverCriterion(), sharedGrad: rule, untieOptimizer: 'copy' });
      ctrl.tieWeights();
      const opt = new Optimizer(cfg);
      m.setGrads();
      ctrl.beforeUpdate(0);
      // The representative holds the reduction of every member's own gradient.
      for (const g of groups) for (const j of [0, 1]) assertNear(m.layers[g[0]][j][1].grad!, reduced(m.grads, g, j, rule), 1e-6, `${what}: group ${g} tensor ${j}`);
      const trainable = ctrl.trainable(m.named());
      // The optimizer sees the tensor outside the stack and each group's representative, once.
      const positions = trainable.map(([n]) => n).filter((n) => n.startsWith('layer.')).map((n) => Number(n.split('.')[1]));
      assert.deepEqual([...new Set(positions)].sort(), groups.map((g) => g[0]).sort());
      assert.equal(trainable.length, 1 + 2 * groups.length);
      // Clipping over the applied gradients: every group once, and the tensor outside the stack.
      let normSq = sumSq(m.outsideGrad);
      for (const g of groups) for (const j of [0, 1]) normSq += sumSq(reduced(m.grads, g, j, rule));
      const norms = ctrl.gradNorms(trainable.map(([, t]) => t));
      assert.ok(Math.abs(norms.update - Math.sqrt(normSq)) <= 1e-5 * Math.sqrt(normSq), `${what}: update norm ${norms.update} vs ${Math.sqrt(normSq)}`);
      const layersSq = sumSq(m.outsideGrad) + m.grads.reduce((a, gl) => a + sumSq(gl[0]) + sumSq(gl[1]), 0);
      assert.ok(Math.abs(norms.layers - Math.sqrt(layersSq)) <= 1e-5 * Math.sqrt(layersSq), `${what}: per-layer norm ${norms.layers} vs ${Math.sqrt(layersSq)}`);
      assert.ok(norms.update > maxNorm, 'the test clips');
      clipGradNorm(trainable.map(([, t]) => t), maxNorm, norms.update);
      opt.step(trainable.map(([, t]) => t), trainable.map(([n]) => n), lr);
      ctrl.afterUpdate(0, opt);
      const s = maxNorm / (Math.sqrt(normSq) + 1e-6);
      const adamw = (p: number, g: number, decay: number) => {
        const gc = s * g, mom = (1 - cfg.beta1) * gc, v = (1 - cfg.beta2) * gc * gc;
        return p * (1 - lr * decay) - (lr / (1 - cfg.beta1)) * mom / (Math.sqrt(v) / Math.sqrt(1 - cfg.beta2) + cfg.eps);
      };
      for (const g of groups) {
        [wd, 0].forEach((decay, j) => {
          const red = reduced(m.grads, g, j, rule);
          const expected = Array.from(m.init[j], (p, k) => adamw(p, red[k], decay));
          assertNear(m.layers[g[0]][j][1].data, expected, 2e-6, `${what}: weights of group ${g} tensor ${j}`);
          // Every member holds exactly its representative's weights.
          for (const pos of g.slice(1)) assert.deepEqual(m.layers[pos][j][1].data, m.layers[g[0]][j][1].data, `${what}: member ${pos}`);
        });
      }
      assertNear(m.outside.data, Array.from(m.outsideInit, (p, k) => adamw(p, m.outsideGrad[k], wd)), 2e-6, `${what}: the tensor outside the stack`);
    }
  }
});

/** One update of a hand model: set the gradients, the sharing hook, AdamW, the sharing hook. */
function handStep(m: ReturnType<typeof handModel>, ctrl: SharingController, opt: Optimizer, step: number) {
  m.setGrads();
  ctrl.beforeUpdate(step);
  const trainable = ctrl.trainable(m.named());
  opt.step(trainable.map(([, t]) => t), trainable.map(([n]) => n), 0.01);
  return ctrl.afterUpdate(step, opt);
}

test('untie gives every layer its own copy of the shared moments: separate buffers, equal values', () => {
  const m = handModel(4, 12);
  const ctrl = new SharingController(m.stack, { groups: [[0, 1, 2, 3]], criterion: new FixedCriterion(1), sharedGrad: 'mean', untieOptimizer: 'copy' });
  const opt = new Optimizer(defaultOptimizerConfig());
  const events = handStep(m, ctrl, opt, 0);
  assert.deepEqual(events.map((e) => [e.type, e.step]), [['untie', 0]]);
  for (const j of [0, 1]) {
    const red = reduced(m.grads, [0, 1, 2, 3], j, 'mean');
    for (const [l, layer] of m.layers.entries()) {
      const s = opt.stateOf(layer[j][1]);
      assert.equal(s.step, 1);
      assertNear(s.m, red.map((g) => 0.1 * g), 1e-6, `layer ${l} m`);
      assertNear(s.v, red.map((g) => 0.001 * g * g), 1e-6, `layer ${l} v`);
    }
    // Changing one layer's moments changes no other layer's.
    const before = m.layers.map((layer) => [opt.stateOf(layer[j][1]).m.slice(), opt.stateOf(layer[j][1]).v.slice()]);
    for (const [l, layer] of m.layers.entries()) {
      opt.stateOf(layer[j][1]).m[0] += 1;
      opt.stateOf(layer[j][1]).v[1] += 1;
      m.layers.forEach((other, o) => {
        if (o === l) return;
        assert.deepEqual(opt.stateOf(other[j][1]).m, before[o][0], `layer ${l}'s m is layer ${o}'s`);
        assert.deepEqual(opt.stateOf(other[j][1]).v, before[o][1], `layer ${l}'s v is layer ${o}'s`);
      });
      before[l] = [opt.stateOf(layer[j][1]).m.slice(), opt.stateOf(layer[j][1]).v.slice()];
    }
  }
});

test("untieOptimizer rescale scales each layer's copy by ||own gradient|| / ||shared gradient||, per tensor", () => {
  for (const rule of ['mean', 'sum'] as const) {
    const m = handModel(3, 13);
    const ctrl = new SharingController(m.stack, { groups: [[0, 1, 2]], criterion: new FixedCriterion(1), sharedGrad: rule, untieOptimizer: 'rescale' });
    const opt = new Optimizer(defaultOptimizerConfig());
    handStep(m, ctrl, opt, 0);
    assert.equal(ctrl.tied, false);
    for (const j of [0, 1]) {
      const red = reduced(m.grads, [0, 1, 2], j, rule);
      for (const [l, layer] of m.layers.entries()) {
        const r = Math.sqrt(sumSq(m.grads[l][j]) / sumSq(red));
        const s = opt.stateOf(layer[j][1]);
        assertNear(s.m, red.map((g) => r * 0.1 * g), 1e-5, `${rule}: layer ${l} tensor ${j} m`);
        assertNear(s.v, red.map((g) => r * r * 0.001 * g * g), 1e-5, `${rule}: layer ${l} tensor ${j} v`);
      }
    }
  }
});

test('a split hands its optimizer state only to the parts of the group that split; other groups keep theirs', () => {
  for (const mode of ['copy', 'rescale', 'reset'] as const) {
    const m = handModel(4, 14);
    // Layers 0 and 1 disagree (cosine -1); layers 2 and 3 agree (cosine 1).
    m.grads[1] = m.grads[0].map((g) => g.map((x) => -0.5 * x));
    m.grads[3] = m.grads[2].map((g) => g.map((x) => 2 * x));
    const ctrl = new SharingController(m.stack, {
      groups: [[0, 1], [2, 3]], criterion: new MultiCriterion({ threshold: 0.5, patience: 2, every: 1 }), sharedGrad: 'mean', untieOptimizer: mode,
    });
    const opt = new Optimizer(defaultOptimizerConfig());
    handStep(m, ctrl, opt, 0);
    assert.deepEqual(ctrl.groups, [[0, 1], [2, 3]]);
    const events = handStep(m, ctrl, opt, 1);
    assert.deepEqual(ctrl.groups, [[0], [1], [2, 3]], mode);
    assert.ok(events.some((e) => e.type === 'split'));
    // The same gradient twice: m = (0.1 + 0.9 * 0.1) g after two steps.
    for (const j of [0, 1]) {
      const t = m.layers[2][j][1];
      assert.ok(opt.hasState(t), `${mode}: the group that did not split kept its state`);
      assert.equal(opt.stateOf(t).step, 2, `${mode}: the group that did not split kept its step count`);
      assertNear(opt.stateOf(t).m, reduced(m.grads, [2, 3], j, 'mean').map((g) => 0.19 * g), 1e-6, `${mode}: group [2,3] m`);
      const red = reduced(m.grads, [0, 1], j, 'mean');
      for (const pos of [0, 1]) {
        const p = m.layers[pos][j][1];
        if (mode === 'reset') {
          assert.equal(opt.hasState(p), false, `reset: layer ${pos} starts afresh`);
          continue;
        }
        const r = mode === 'rescale' ? Math.sqrt(sumSq(m.grads[pos][j]) / sumSq(red)) : 1;
        assert.equal(opt.stateOf(p).step, 2, `${mode}: layer ${pos} continues the group's step count`);
        assertNear(opt.stateOf(p).m, red.map((g) => r * 0.19 * g), 1e-5, `${mode}: layer ${pos} m`);
      }
    }
  }
});

test('the pooled cosine is the cosine of the concatenated gradients; per-tensor cosines are plain cosines', () => {
  const m = handModel(4, 15);
  // Tensors of very different gradient energy, so that weighting by size or by energy would differ.
  m.grads.forEach((g) => g[1].forEach((_, k) => (g[1][k] *= 30)));
  const ctrl = new SharingController(m.stack, { groups: [[0, 1, 2], [3]], criterion: new AdaptiveCriterion({ threshold: 0.5, patience: 3, every: 1 }), sharedGrad: 'mean', untieOptimizer: 'copy' });
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let d = 0;
    for (let k = 0; k < a.length; k++) d += a[k] * b[k];
    return d / Math.sqrt(sumSq(a) * sumSq(b));
  };
  m.setGrads();
  const stats = ctrl.measure(0);
  assert.deepEqual(stats.pairs.map((p) => [p.a, p.b]), [[0, 1], [1, 2]], 'adjacent members of tied groups only');
  for (const p of stats.pairs) {
    const concat = (l: number) => [...m.grads[l][0], ...m.grads[l][1]];
    assert.ok(Math.abs(p.cosine - cos(concat(p.a), concat(p.b))) < 1e-6, `pooled ${p.a}-${p.b}: ${p.cosine}`);
    assert.ok(Math.abs(p.perTensor['dense.weight'] - cos(m.grads[p.a][0], m.grads[p.b][0])) < 1e-6);
    assert.ok(Math.abs(p.perTensor['dense.bias'] - cos(m.grads[p.a][1], m.grads[p.b][1])) < 1e-6);
  }
  // The check logged by afterUpdate carries the same numbers.
  const opt = new Optimizer(defaultOptimizerConfig());
  const check = handStep(m, ctrl, opt, 0).find((e) => e.type === 'sharing_check');
  assert.ok(check && check.type === 'sharing_check');
  assert.deepEqual(check.pairs, stats.pairs);
});

test('step:N makes exactly the first N updates tied: N = 0, 1 and the last step', () => {
  const T = 5, phi = target(10);
  const allEqual = (net: DeepLinearNetwork) => weights(net).every((w) => w.every((x, k) => x === weights(net)[0][k]));
  for (const N of [0, 1, T]) {
    const { net, ctrl, opt } = setup('1x4', parseCriterion(`step:${N}`, { totalSteps: T }));
    const untieAfter: number[] = [];
    const tiedAfter: boolean[] = [];
    for (let i = 0; i < T; i++) {
      for (const e of step(net, ctrl, opt, phi, i)) if (e.type === 'untie') untieAfter.push(e.step + 1);
      tiedAfter.push(allEqual(net));
    }
    assert.deepEqual(untieAfter, [N], `step:${N} unties once, after ${N} updates`);
    // Tied updates keep the layers equal; the first untied update separates them.
    assert.deepEqual(tiedAfter, Array.from({ length: T }, (_, i) => i < N), `step:${N}`);
  }
});

test('a tied member without a gradient is an error, not a smaller mean', () => {
  const m = handModel(3, 16);
  const ctrl = new SharingController(m.stack, { groups: [[0, 1, 2]], criterion: new NeverCriterion(), sharedGrad: 'mean', untieOptimizer: 'copy' });
  m.setGrads();
  m.layers[2][1][1].grad = null;
  assert.throws(() => ctrl.beforeUpdate(0), /tied parameter layer\.2\.dense\.bias has no gradient/);
  // An untied layer may lack one (it simply is not updated).
  const untied = new SharingController(m.stack, { groups: [[0], [1], [2]], criterion: new NeverCriterion(), sharedGrad: 'mean', untieOptimizer: 'copy' });
  untied.beforeUpdate(0);
});

test('clipping refuses a NaN or infinite gradient before scaling anything', () => {
  for (const bad of [NaN, Infinity]) {
    const a = new Tensor(new Float32Array(3), [3], true), b = new Tensor(new Float32Array(2), [2], true);
    a.grad = Float32Array.from([3, 4, 0]);
    b.grad = Float32Array.from([bad, 1]);
    assert.throws(() => clipGradNorm([a, b], 1), (err: Error) => err instanceof UntieError && /gradient norm is (NaN|Infinity)/.test(err.message));
    assert.deepEqual(a.grad, Float32Array.from([3, 4, 0]), 'nothing was scaled');
  }
  const a = new Tensor(new Float32Array(2), [2], true);
  a.grad = Float32Array.from([3, 4]);
  assert.equal(clipGradNorm([a], 1), 5);
  assertNear(a.grad, [0.6, 0.8], 1e-6, 'clipped to norm 1');
  // With a given norm (the per-layer one), that norm sets the factor.
  a.grad = Float32Array.from([3, 4]);
  assert.equal(clipGradNorm([a], 1, 10), 10);
  assertNear(a.grad, [0.3, 0.4], 1e-6, 'clipped by the given norm');
});
