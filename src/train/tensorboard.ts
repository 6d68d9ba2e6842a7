/**
 * TensorBoard scalar logs, written without TensorFlow: an event file
 * `events.out.tfevents.<unix seconds>.<hostname>` is a sequence of TFRecords,
 *
 *   u64 length | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
 *
 * (all little-endian), each holding one serialised `Event` protobuf. The first
 * event carries file_version "brain.Event:2"; each later one a wall time, a
 * step and a Summary with one scalar Value. The few protobuf fields we need
 * are encoded by hand:
 *
 *   Event:   wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
 *            summary = 5 (Summary)
 *   Summary: value = 1 (repeated Value)
 *   Value:   tag = 1 (string), simple_value = 2 (float)
 *
 * The reader below exists for tests and for report building; it verifies
 * every CRC.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { check, UntieError } from '../errors.js';

// --- CRC32C (Castagnoli), reflected polynomial 0x82f63b78 ---

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add a constant (so CRCs of CRCs stay unlikely). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// --- Minimal protobuf encoding ---

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

class ProtoWriter {
  private bytes: number[] = [];

  private varint(value: bigint): void {
    // int64 is encoded as its 64-bit two's complement, so negatives take 10 bytes.
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int64(field: number, value: number): this {
    this.key(field, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  double(field: number, value: number): this {
    this.key(field, WIRE_FIXED64);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.bytes.push(...b);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, WIRE_FIXED32);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.bytes.push(...b);
    return this;
  }

  bytesField(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.varint(BigInt(value.length));
    for (const byte of value) this.bytes.push(byte);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytesField(field, Buffer.from(value, 'utf8'));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** A serialised Event holding one scalar. */
export function encodeScalarEvent(tag: string, value: number, step: number, wallTime: number): Uint8Array {
  const summaryValue = new ProtoWriter().string(1, tag).float(2, value).finish();
  const summary = new ProtoWriter().bytesField(1, summaryValue).finish();
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytesField(5, summary).finish();
}

/** The serialised first Event of a file. */
export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, 'brain.Event:2').finish();
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// --- Writer ---

/**
 * Appends scalars to a new event file in `logDir`. Each record is written
 * (and so visible to a running TensorBoard) as soon as it is added; a crash
 * loses at most the record being written.
 */
export class ScalarEventWriter {
  readonly path: string;
  private fd: number | null;

  constructor(logDir: string) {
    fs.mkdirSync(logDir, { recursive: true });
    const now = Date.now() / 1000;
    // Two writers in one folder within a second would share a name; TensorBoard reads every
    // events.out.tfevents.* file, so a suffix keeps both.
    let file = path.join(logDir, `events.out.tfevents.${Math.floor(now)}.${os.hostname()}`);
    for (let k = 1; fs.existsSync(file); k++) {
      file = path.join(logDir, `events.out.tfevents.${Math.floor(now)}.${os.hostname()}.${k}`);
    }
    this.path = file;
    this.fd = fs.openSync(file, 'a');
    this.writeRecord(encodeFileVersionEvent(now));
  }

  addScalar(tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    check(tag.length > 0, 'A TensorBoard scalar needs a non-empty tag.');
    check(Number.isSafeInteger(step), `A TensorBoard step must be an integer, got ${step}.`);
    this.writeRecord(encodeScalarEvent(tag, value, step, wallTime));
  }

  /** Adds several scalars at one step (e.g. {"train/loss": 2.3, "train/lr": 1e-4}). */
  addScalars(values: Readonly<Record<string, number>>, step: number, wallTime = Date.now() / 1000): void {
    for (const [tag, value] of Object.entries(values)) this.addScalar(tag, value, step, wallTime);
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private writeRecord(data: Uint8Array): void {
    check(this.fd !== null, `The TensorBoard writer for ${this.path} is closed.`);
    fs.writeSync(this.fd, tfRecord(data));
  }
}

// --- Reader ---

export interface ScalarEvent {
  tag: string;
  step: number;
  wallTime: number;
  value: number;
}

export interface EventFile {
  fileVersion: string | undefined;
  scalars: ScalarEvent[];
}

interface ProtoField {
  field: number;
  wire: number;
  /** varint (as bigint) */
  varint?: bigint;
  /** fixed32/fixed64/length-delimited payload */
  bytes?: Uint8Array;
}

function parseProto(bytes: Uint8Array, fail: (what: string) => never): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= bytes.length || shift > 63n) fail('a protobuf varint is cut off');
      const byte = bytes[pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) fail('a protobuf field runs past its message');
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < bytes.length) {
    const key = Number(readVarint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === WIRE_VARINT) fields.push({ field, wire, varint: readVarint() });
    else if (wire === WIRE_FIXED64) fields.push({ field, wire, bytes: take(8) });
    else if (wire === WIRE_FIXED32) fields.push({ field, wire, bytes: take(4) });
    else if (wire === WIRE_LENGTH_DELIMITED) fields.push({ field, wire, bytes: take(Number(readVarint())) });
    else fail(`unsupported protobuf wire type ${wire}`);
  }
  return fields;
}

/** Reads an event file, verifying every record's CRCs; returns its scalars in file order. */
export function readScalarEvents(file: string): EventFile {
  check(fs.existsSync(file), `${file} does not exist.`);
  const bytes = fs.readFileSync(file);
  const fail = (what: string): never => {
    throw new UntieError(`${file} is not a valid TensorBoard event file: ${what}. It looks truncated or corrupted.`);
  };
  let fileVersion: string | undefined;
  const scalars: ScalarEvent[] = [];
  let pos = 0;
  for (let record = 0; pos < bytes.length; record++) {
    if (pos + 12 > bytes.length) fail(`record ${record} has a cut-off header`);
    const lengthBytes = bytes.subarray(pos, pos + 8);
    if (bytes.readUInt32LE(pos + 8) !== maskedCrc32c(lengthBytes)) fail(`record ${record} has a bad length CRC`);
    const length = Number(bytes.readBigUInt64LE(pos));
    if (pos + 12 + length + 4 > bytes.length) fail(`record ${record} is cut off`);
    const data = bytes.subarray(pos + 12, pos + 12 + length);
    if (bytes.readUInt32LE(pos + 12 + length) !== maskedCrc32c(data)) fail(`record ${record} has a bad data CRC`);
    pos += 12 + length + 4;

    let wallTime = 0;
    let step = 0;
    const summaries: Uint8Array[] = [];
    for (const f of parseProto(data, fail)) {
      if (f.field === 1 && f.wire === WIRE_FIXED64) wallTime = Buffer.from(f.bytes!).readDoubleLE(0);
      else if (f.field === 2 && f.wire === WIRE_VARINT) step = Number(BigInt.asIntN(64, f.varint!));
      else if (f.field === 3 && f.wire === WIRE_LENGTH_DELIMITED) fileVersion = Buffer.from(f.bytes!).toString('utf8');
      else if (f.field === 5 && f.wire === WIRE_LENGTH_DELIMITED) summaries.push(f.bytes!);
    }
    for (const summary of summaries) {
      for (const v of parseProto(summary, fail)) {
        if (v.field !== 1 || v.wire !== WIRE_LENGTH_DELIMITED) continue;
        let tag = '';
        let value: number | undefined;
        for (const f of parseProto(v.bytes!, fail)) {
          if (f.field === 1 && f.wire === WIRE_LENGTH_DELIMITED) tag = Buffer.from(f.bytes!).toString('utf8');
          else if (f.field === 2 && f.wire === WIRE_FIXED32) value = Buffer.from(f.bytes!).readFloatLE(0);
        }
        if (value !== undefined) scalars.push({ tag, step, wallTime, value });
      }
    }
  }
  return { fileVersion, scalars };
}
