/**
 * Anomaly detection (`untie train --detect-anomaly`), as PyTorch's
 * detect_anomaly: find where a NaN or infinity first appears, instead of
 * only seeing the loss turn NaN later.
 *
 * When on, every op's output is checked as it is made (the Tensor
 * constructor calls checkOutput), and every gradient as backward writes it
 * (accumulateGrad and the ops that accumulate into parameter gradients
 * directly call checkGradient). The first non-finite value throws an
 * AnomalyError naming the op, the tensor's shape, the layer (the innermost
 * anomalyScope, e.g. "bert.encoder.layer.3") and, for gradients, the
 * parameter. Since every earlier output passed, that op is where it starts.
 *
 * When off (the default), the cost is one property read per op output.
 * Op names come from the call stack, read only when on: at a failure for
 * the forward pass, at record time for the backward pass (that is what
 * makes anomaly mode slow, as PyTorch's is).
 */
import { UntieError } from '../errors.js';

/** Read on every op output; a plain object so that the check is one property load. */
export const anomalyMode = { on: false };

export interface OpContext {
  op: string;
  scope: string;
}

export class AnomalyError extends UntieError {
  constructor(message: string, readonly context: OpContext & { phase: 'forward' | 'backward'; value: number }) {
    super(message);
  }
}

const scopes: string[] = [];
let parameterNames: Map<object, string> = new Map();
let running: OpContext | null = null;

/** Switches anomaly detection on or off; `names` names parameter tensors in messages. */
export function setDetectAnomaly(on: boolean, names?: Map<object, string>): void {
  anomalyMode.on = on;
  parameterNames = names ?? new Map();
  scopes.length = 0;
  running = null;
}

/** Runs fn inside a named part of the model ("bert.encoder.layer.3"), for messages. Free when off. */
export function anomalyScope<T>(name: string, fn: () => T): T {
  if (!anomalyMode.on) return fn();
  scopes.push(name);
  try {
    return fn();
  } finally {
    scopes.pop();
  }
}

function currentScope(): string {
  return scopes.length > 0 ? scopes[scopes.length - 1] : 'the model';
}

/** Index of the first NaN or infinity, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** The op that is creating a tensor: the first caller outside the tensor and anomaly modules. */
function callerOp(): string {
  const original = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let sites: NodeJS.CallSite[] = [];
  try {
    Error.stackTraceLimit = 16;
    Error.prepareStackTrace = (_err, callSites) => callSites;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, callerOp);
    sites = (holder.stack as NodeJS.CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = original;
    Error.stackTraceLimit = limit;
  }
  for (const site of sites) {
    const file = site.getFileName() ?? '';
    if (/[\\/]tensor[\\/](tensor|anomaly)\.[cm]?[jt]s$/.test(file)) continue;
    const name = site.getFunctionName() ?? site.getMethodName();
    if (name) return name;
  }
  return 'an op';
}

/** The op and scope being recorded now (for the backward pass's messages). */
export function opContext(): OpContext {
  return { op: callerOp(), scope: currentScope() };
}

/** Tells checkGradient which op's backward is running. */
export function setRunningBackward(context: OpContext | null): void {
  running = context;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws if an op output holds a NaN or infinity (called by the Tensor constructor when on). */
export function checkOutput(data: Float32Array, shape: readonly number[]): void {
  const i = firstNonFinite(data);
  if (i < 0) return;
  const context = { op: callerOp(), scope: currentScope() };
  throw new AnomalyError(
    `--detect-anomaly: the first non-finite value of the forward pass is ${data[i]} in the output of ${context.op} ` +
      `(shape ${shapeText(shape)}, element ${i}) in ${context.scope}; every earlier output was finite.`,
    { ...context, phase: 'forward', value: data[i] },
  );
}

/** Throws if a gradient just written holds a NaN or infinity (called by backward's writers when on). */
export function checkGradient(tensor: { grad: Float32Array | null; shape: readonly number[] }): void {
  const grad = tensor.grad;
  if (grad === null) return;
  const i = firstNonFinite(grad);
  if (i < 0) return;
  const context = running ?? { op: 'an op', scope: 'the model' };
  const name = parameterNames.get(tensor);
  throw new AnomalyError(
    `--detect-anomaly: the first non-finite gradient is ${grad[i]}, written by the backward of ${context.op} in ${context.scope} ` +
      `into the gradient of ${name ? `parameter ${name}` : 'its input'} (shape ${shapeText(tensor.shape)}, element ${i}); every earlier gradient was finite.`,
    { ...context, phase: 'backward', value: grad[i] },
  );
}

/** Throws if a parameter holds a NaN or infinity; `when` says what last changed it ("after the update of step 7"). */
export function checkParameters(named: readonly (readonly [string, { data: Float32Array; shape: readonly number[] }])[], when: string): void {
  for (const [name, p] of named) {
    const i = firstNonFinite(p.data);
    if (i >= 0) {
      throw new AnomalyError(
        `--detect-anomaly: parameter ${name} (shape ${shapeText(p.shape)}) holds ${p.data[i]} at element ${i} ${when}, ` +
          'though its gradients were finite: the update overflowed (lower --lr, or keep --clip on).',
        { op: 'the optimizer update', scope: name, phase: 'backward', value: p.data[i] },
      );
    }
  }
}
