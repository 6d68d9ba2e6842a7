// The method: tying plans, the shared update, untie/split and the criteria,
// on the deep linear network (the same code ties BERT's layers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeepLinearNetwork } from '../src/models/linear.js';
import { Optimizer, defaultOptimizerConfig } from '../src/optim/optimizers.js';
import { SharingController, type SharingOptions } from '../src/sharing/controller.js';
import { AdaptiveCriterion, FixedCriterion, MultiCriterion, NeverCriterion, parseCriterion, replay, type CheckStats, type Criterion } from '../src/sharing/criteria.js';
import { parseShare, planGroups, splitGroup } from '../src/sharing/plan.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor, backward } from '../src/tensor/tensor.js';
import { UntieError } from '../src/errors.js';

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

test('the mean rule is 1/n times the sum rule', () => {
  const phi = target(4);
  const grads = (rule: 'mean' | 'sum') => {
    const { net, ctrl } = setup('1x4', new NeverCriterion(), { sharedGrad: rule });
    net.zeroGrad();
    backward(net.loss(phi));
    ctrl.beforeUpdate(0);
    return net.layers[0].weight.grad!.slice();
  };
  const mean = grads('mean'), sum = grads('sum');
  for (let i = 0; i < mean.length; i++) assert.ok(Math.abs(mean[i] - sum[i] / L) <= 1e-6 * Math.max(1, Math.abs(mean[i])), `entry ${i}: ${mean[i]} vs ${sum[i] / L}`);
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
