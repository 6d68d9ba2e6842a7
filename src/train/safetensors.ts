/**
 * The safetensors format (Hugging Face), read and written by hand:
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to {dtype, shape, data_offsets: [start,
 * end]} (byte offsets into the data section) and may hold "__metadata__", a
 * string-to-string map (transformers wants {"format": "pt"}). Tensor data is
 * little-endian, row-major, contiguous, without gaps, and covers the data
 * section exactly. We pad the header with spaces so that the data starts at a
 * multiple of 8 bytes, as the reference writer does, and write tensors sorted
 * by name.
 *
 * Reads check the file thoroughly and turn anything wrong into an UntieError
 * naming the file: a checkpoint cut short by a full disk should say so, not
 * crash in JSON.parse or a typed-array constructor.
 */
import fs from 'node:fs';
import os from 'node:os';
import { check, UntieError } from '../errors.js';
import { writeFileAtomic } from './fsutil.js';

export type WritableTensor =
  | { dtype: 'F32'; shape: readonly number[]; data: Float32Array }
  | { dtype: 'I32'; shape: readonly number[]; data: Int32Array }
  /** I64 from BigInt64Array, or from safe integers (Int32Array, number[]). */
  | { dtype: 'I64'; shape: readonly number[]; data: BigInt64Array | Int32Array | readonly number[] };

/** F16 and BF16 are widened to f32 on read; `dtype` says what the file held. */
export type ReadTensor =
  | { dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; data: Float32Array }
  | { dtype: 'I32'; shape: number[]; data: Int32Array }
  | { dtype: 'I64'; shape: number[]; data: BigInt64Array };

export interface Safetensors {
  tensors: Record<string, ReadTensor>;
  metadata: Record<string, string>;
}

// Byte sizes of all dtypes the format defines (so any valid file validates);
// only some can be read into tensors.
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
const READABLE = new Set(['F32', 'F16', 'BF16', 'I32', 'I64']);
const HEADER_ALIGN = 8;
// The reference implementation refuses headers over 100 MB; a bigger size means a corrupt length.
const MAX_HEADER_BYTES = 100_000_000;

function assertLittleEndianHost(): void {
  // Typed arrays use the host byte order; every platform Node ships for is little-endian.
  check(os.endianness() === 'LE', 'safetensors I/O needs a little-endian machine.');
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The file as byte chunks (header, then each tensor), for writeSafetensors or tests. */
export function encodeSafetensors(
  tensors: Readonly<Record<string, WritableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array[] {
  assertLittleEndianHost();
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      check(typeof value === 'string', `safetensors metadata values must be strings; "${key}" is ${typeof value}.`);
    }
    header.__metadata__ = { ...metadata };
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    check(name !== '__metadata__', 'A tensor cannot be named "__metadata__" in a safetensors file.');
    const tensor = tensors[name];
    for (const d of tensor.shape) {
      check(Number.isInteger(d) && d >= 0, `Tensor "${name}" has an invalid shape [${tensor.shape.join(', ')}].`);
    }
    const n = numel(tensor.shape);
    check(
      tensor.data.length === n,
      `Tensor "${name}" has ${tensor.data.length} values but shape [${tensor.shape.join(', ')}] needs ${n}.`,
    );
    const bytes = tensorBytes(name, tensor);
    header[name] = { dtype: tensor.dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((HEADER_ALIGN - (jsonBytes % HEADER_ALIGN)) % HEADER_ALIGN);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.byteLength));
  return [prefix, headerBytes, ...chunks];
}

function tensorBytes(name: string, tensor: WritableTensor): Uint8Array {
  switch (tensor.dtype) {
    case 'F32':
    case 'I32':
      return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    case 'I64': {
      const data = tensor.data;
      if (data instanceof BigInt64Array) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const wide = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) {
        check(Number.isSafeInteger(data[i]), `Tensor "${name}" (I64) holds ${data[i]}, which is not a safe integer.`);
        wide[i] = BigInt(data[i]);
      }
      return new Uint8Array(wide.buffer);
    }
    default: {
      const dtype: string = (tensor as { dtype: string }).dtype;
      throw new UntieError(`Tensor "${name}": writing dtype ${dtype} is not supported; use F32, I32 or I64.`);
    }
  }
}

/** Writes a .safetensors file atomically (temporary file, then rename). */
export function writeSafetensors(
  file: string,
  tensors: Readonly<Record<string, WritableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads and validates a .safetensors file. */
export function readSafetensors(file: string): Safetensors {
  check(fs.existsSync(file), `${file} does not exist. Check the checkpoint path.`);
  return decodeSafetensors(fs.readFileSync(file), file);
}

/** Parses safetensors bytes; `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): Safetensors {
  assertLittleEndianHost();
  const corrupt = (what: string) =>
    new UntieError(
      `${source} is not a valid safetensors file: ${what}. It looks truncated or corrupted ` +
        '(an interrupted write, a full disk, or not a safetensors file); use another checkpoint or re-create it.',
    );
  if (bytes.byteLength < 8) throw corrupt(`it is only ${bytes.byteLength} bytes long, shorter than the 8-byte header size`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerSize = view.getBigUint64(0, true);
  if (headerSize > BigInt(bytes.byteLength - 8)) {
    throw corrupt(`the header claims ${headerSize} bytes but only ${bytes.byteLength - 8} follow`);
  }
  if (headerSize > BigInt(MAX_HEADER_BYTES)) throw corrupt(`the header size ${headerSize} is implausibly large`);
  const headerEnd = 8 + Number(headerSize);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerSize)).toString('utf8'));
  } catch {
    throw corrupt('its JSON header does not parse');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw corrupt('its header is not a JSON object');

  const dataLength = bytes.byteLength - headerEnd;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; start: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt('__metadata__ is not an object');
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw corrupt(`__metadata__.${key} is not a string`);
        metadata[key] = v;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof info !== 'object' || info === null) throw corrupt(`the entry for "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw corrupt(`"${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw corrupt(`"${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw corrupt(`"${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [start, end] = offsets as [number, number];
    if (end > dataLength) {
      throw corrupt(`"${name}" ends at byte ${end} of the data, but the data section has only ${dataLength} bytes`);
    }
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (end - start !== expected) {
      throw corrupt(`"${name}" (${dtype}, shape [${shape.join(', ')}]) needs ${expected} bytes but its offsets span ${end - start}`);
    }
    entries.push({ name, dtype, shape: shape as number[], start, end });
  }
  // The data must be covered exactly: sorted by start, each tensor begins where the last ended.
  const sorted = [...entries].sort((a, b) => a.start - b.start || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.start < cursor) throw corrupt(`"${e.name}" overlaps the tensor before it`);
    if (e.start > cursor) throw corrupt(`there is a gap in the data before "${e.name}"`);
    cursor = e.end;
  }
  if (cursor !== dataLength) throw corrupt(`the tensors cover ${cursor} bytes of data, but ${dataLength} are present`);

  const tensors: Record<string, ReadTensor> = {};
  for (const e of entries) {
    if (!READABLE.has(e.dtype)) {
      throw new UntieError(`${source}: tensor "${e.name}" has dtype ${e.dtype}, which untie cannot read (F32, F16, BF16, I32, I64).`);
    }
    // Copy (Buffer#slice would not): the offsets need not be aligned for a typed-array view of the file buffer.
    const raw = new Uint8Array(bytes.subarray(headerEnd + e.start, headerEnd + e.end));
    tensors[e.name] = decodeTensor(e.dtype, e.shape, raw);
  }
  return { tensors, metadata };
}

function decodeTensor(dtype: string, shape: number[], raw: Uint8Array): ReadTensor {
  switch (dtype) {
    case 'F32':
      return { dtype, shape, data: new Float32Array(raw.buffer, 0, raw.byteLength / 4) };
    case 'I32':
      return { dtype, shape, data: new Int32Array(raw.buffer, 0, raw.byteLength / 4) };
    case 'I64':
      return { dtype, shape, data: new BigInt64Array(raw.buffer, 0, raw.byteLength / 8) };
    case 'F16': {
      const half = new Uint16Array(raw.buffer, 0, raw.byteLength / 2);
      const out = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) out[i] = halfToFloat(half[i]);
      return { dtype, shape, data: out };
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const half = new Uint16Array(raw.buffer, 0, raw.byteLength / 2);
      const bits = new Uint32Array(half.length);
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
      return { dtype, shape, data: new Float32Array(bits.buffer) };
    }
    default:
      throw new UntieError(`Cannot read safetensors dtype ${dtype}.`);
  }
}

/** IEEE 754 binary16 bits to a number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
