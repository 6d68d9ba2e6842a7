/**
 * A small builder for ONNX graphs: each call adds one node and returns the
 * name of the value it computes, so a model's forward pass reads as a
 * sequence of calls, as it does in untie's own modules.
 */
import os from 'node:os';
import { UntieError } from '../errors.js';
import { ATTRIBUTE_TYPES, ONNX_FLOAT, ONNX_INT64, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.js';

export const attr = {
  int: (name: string, i: number): OnnxAttribute => ({ name, type: ATTRIBUTE_TYPES.int, i }),
  ints: (name: string, ints: number[]): OnnxAttribute => ({ name, type: ATTRIBUTE_TYPES.ints, ints }),
  float: (name: string, f: number): OnnxAttribute => ({ name, type: ATTRIBUTE_TYPES.float, f }),
};

/** A dimension: a fixed size or a symbolic name, so the runtime accepts any size there ("batch", "sequence"). */
export type Dim = number | string;

export function tensorInfo(name: string, elemType: number, dims: Dim[]): OnnxValueInfo {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim } } } };
}

/** ONNX stores tensor bytes little-endian; untie's typed arrays are in the machine's order. */
function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  if (os.endianness() !== 'LE') throw new UntieError('ONNX export needs a little-endian machine (ONNX stores tensors little-endian)');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly names = new Set<string>();
  private readonly int64Constants = new Map<string, string>();
  private readonly floatConstants = new Map<number, string>();

  private fresh(hint: string): string {
    let name = hint;
    for (let n = 1; this.names.has(name); n++) name = `${hint}_${n}`;
    this.names.add(name);
    return name;
  }

  /** A float32 initializer under `name` (a model parameter keeps its own name). */
  weight(name: string, data: Float32Array, dims: number[]): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: the value "${name}" is defined twice`);
    this.names.add(name);
    this.initializers.push({ name, dims, data_type: ONNX_FLOAT, raw_data: littleEndianBytes(data) });
    return name;
  }

  /** An int64 constant (a shape, axes, an index), shared by every node that uses the same values. dims [] is a scalar. */
  int64s(values: number[], dims: number[] = [values.length]): string {
    const key = `${dims.join('x')}:${values.join(',')}`;
    let name = this.int64Constants.get(key);
    if (name === undefined) {
      name = this.fresh(`const_i64_${values.join('_').replace(/-/g, 'm')}`);
      this.initializers.push({ name, dims, data_type: ONNX_INT64, raw_data: littleEndianBytes(BigInt64Array.from(values, BigInt)) });
      this.int64Constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    let name = this.floatConstants.get(value);
    if (name === undefined) {
      name = this.fresh(`const_f32_${this.floatConstants.size}`);
      this.initializers.push({ name, dims: [], data_type: ONNX_FLOAT, raw_data: littleEndianBytes(Float32Array.of(value)) });
      this.floatConstants.set(value, name);
    }
    return name;
  }

  /**
   * Adds a node of `opType` (ONNX's default domain) and returns its output's
   * name, `out` if given (a graph output), else one made from `hint`.
   * Empty strings in `inputs` are omitted optional inputs.
   */
  op(opType: string, inputs: string[], attributes: OnnxAttribute[] = [], opts: { hint?: string; out?: string } = {}): string {
    const output = opts.out ?? this.fresh(opts.hint ?? opType);
    if (opts.out !== undefined) {
      if (this.names.has(output)) throw new Error(`ONNX graph: the value "${output}" is defined twice`);
      this.names.add(output);
    }
    while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs = inputs.slice(0, -1);
    this.nodes.push({ input: inputs, output: [output], name: `${opType}_${this.nodes.length}`, op_type: opType, attribute: attributes });
    return output;
  }
}
