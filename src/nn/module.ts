/**
 * Module: a named tree of parameters, as torch.nn.Module but without magic.
 * A module registers its parameters and children explicitly; names join with
 * dots, so a BERT model's names are exactly Hugging Face's.
 */
import { Tensor } from '../tensor/tensor.js';

export abstract class Module {
  training = true;
  private readonly ownParams: [string, Tensor][] = [];
  private readonly children: [string, Module][] = [];

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    t.name = name;
    this.ownParams.push([name, t]);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.push([name, m]);
    return m;
  }

  /** Every parameter with its dotted name, in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.ownParams) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Switches dropout on (train) or off (eval) in this module and all below. */
  train(on = true): this {
    this.training = on;
    for (const [, m] of this.children) m.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const t of this.parameters()) t.zeroGrad();
  }
}
