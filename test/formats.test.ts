import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UntieError } from '../src/errors.js';
import { writeFileAtomic } from '../src/train/fsutil.js';
import {
  decodeSafetensors,
  halfToFloat,
  readSafetensors,
  writeSafetensors,
  type WritableTensor,
} from '../src/train/safetensors.js';
import {
  crc32c,
  encodeScalarEvent,
  maskedCrc32c,
  readScalarEvents,
  ScalarEventWriter,
  tfRecord,
} from '../src/train/tensorboard.js';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'untie-formats-test-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectUntieError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UntieError, `expected UntieError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

/** A safetensors file from a hand-written header, for cases the writer cannot produce. */
function rawSafetensors(header: unknown, data: Uint8Array, pad = true): Buffer {
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([size, Buffer.from(json), data]);
}

// --- safetensors ---

const sample: Record<string, WritableTensor> = {
  'bert.embeddings.word_embeddings.weight': { dtype: 'F32', shape: [3, 2], data: Float32Array.from([1, -2, 3.5, 0, 1e-30, -7]) },
  'bert.encoder.layer.0.attention.self.query.bias': { dtype: 'F32', shape: [3], data: Float32Array.from([0.25, 0.5, 0.75]) },
  'bert.embeddings.position_ids': { dtype: 'I64', shape: [1, 4], data: [0, 1, 2, 3] },
  'step': { dtype: 'I64', shape: [], data: BigInt64Array.from([123456789012n]) },
  'counts': { dtype: 'I32', shape: [2], data: Int32Array.from([-5, 7]) },
  'empty': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
};

test('safetensors: round trip of F32, I32, I64, scalars and empty tensors, with metadata', () => {
  const file = path.join(tmp, 'model.safetensors');
  writeSafetensors(file, sample, { format: 'pt' });
  const { tensors, metadata } = readSafetensors(file);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual(Object.keys(tensors).sort(), Object.keys(sample).sort());
  const emb = tensors['bert.embeddings.word_embeddings.weight'];
  assert.equal(emb.dtype, 'F32');
  assert.deepEqual(emb.shape, [3, 2]);
  assert.deepEqual(Array.from(emb.data as Float32Array), Array.from(Float32Array.from([1, -2, 3.5, 0, 1e-30, -7])));
  assert.deepEqual(Array.from(tensors['bert.embeddings.position_ids'].data as BigInt64Array), [0n, 1n, 2n, 3n]);
  assert.deepEqual(tensors['step'].shape, []);
  assert.equal((tensors['step'].data as BigInt64Array)[0], 123456789012n);
  assert.deepEqual(Array.from(tensors['counts'].data as Int32Array), [-5, 7]);
  assert.deepEqual(tensors['empty'].shape, [0, 4]);
  assert.equal(tensors['empty'].data.length, 0);
  // Writing replaces the file atomically and leaves no temporary files behind.
  writeSafetensors(file, { x: { dtype: 'F32', shape: [1], data: Float32Array.from([2]) } });
  assert.deepEqual(Object.keys(readSafetensors(file).tensors), ['x']);
  assert.deepEqual(readSafetensors(file).metadata, {});
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('tmp')), []);
});

test('safetensors: byte layout follows the spec', () => {
  const file = path.join(tmp, 'layout.safetensors');
  writeSafetensors(file, sample, { format: 'pt' });
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  const headerText = bytes.subarray(8, 8 + n).toString('utf8');
  assert.equal(headerText[0], '{');
  assert.match(headerText, /^[^ ]*\}( *)$/, 'padding is trailing spaces only');
  const header = JSON.parse(headerText);
  assert.deepEqual(header.__metadata__, { format: 'pt' });
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  assert.deepEqual(names, [...names].sort(), 'tensors in name order');
  let cursor = 0;
  const size: Record<string, number> = { F32: 4, I32: 4, I64: 8 };
  for (const name of names) {
    const { dtype, shape, data_offsets: [start, end] } = header[name];
    assert.equal(dtype, sample[name].dtype);
    assert.deepEqual(shape, sample[name].shape);
    assert.equal(start, cursor, `${name} starts where the previous ended`);
    assert.equal(end - start, shape.reduce((a: number, b: number) => a * b, 1) * size[dtype]);
    cursor = end;
  }
  assert.equal(bytes.length, 8 + n + cursor, 'data section fully covered, nothing after it');
  // The values are little-endian f32 at their offsets.
  const [qStart] = header['bert.encoder.layer.0.attention.self.query.bias'].data_offsets;
  assert.equal(bytes.readFloatLE(8 + n + qStart + 4), 0.5);
});

test('safetensors: reads F16 and BF16 as f32', () => {
  const f16 = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x0000, 0x8000]);
  const bf16 = Uint16Array.from([0x3f80, 0xc040, 0x4049]); // 1, -3, 3.140625
  const data = Buffer.concat([Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]);
  const bytes = rawSafetensors(
    {
      __metadata__: { format: 'pt' },
      h: { dtype: 'F16', shape: [8], data_offsets: [0, 16] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
    },
    data,
  );
  const { tensors } = decodeSafetensors(bytes);
  assert.equal(tensors.h.dtype, 'F16');
  assert.deepEqual(Array.from(tensors.h.data as Float32Array), [1, -2, 0.5, 65504, Math.fround(2 ** -24), Infinity, 0, -0]);
  assert.deepEqual(Array.from(tensors.b.data as Float32Array), [1, -3, 3.140625]);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
});

test('safetensors: truncated or corrupted files give an UntieError naming the file', () => {
  const file = path.join(tmp, 'good.safetensors');
  writeSafetensors(file, sample, { format: 'pt' });
  const good = fs.readFileSync(file);
  const n = Number(good.readBigUInt64LE(0));
  const bad = path.join(tmp, 'bad.safetensors');
  const expectBad = (bytes: Uint8Array, detail: RegExp) => {
    fs.writeFileSync(bad, bytes);
    expectUntieError(() => readSafetensors(bad), /bad\.safetensors/, /truncated or corrupted/, detail);
  };
  expectBad(good.subarray(0, good.length - 1), /ends at byte \d+ of the data, but the data section has only/);
  expectBad(good.subarray(0, 8 + n + 3), /ends at byte|cover/);
  expectBad(good.subarray(0, 5), /only 5 bytes/);
  expectBad(good.subarray(0, 40), /header claims/);
  expectBad(Buffer.concat([good, Buffer.from([0, 0, 0, 0])]), /cover .* but .* are present/);
  const garbled = Buffer.from(good);
  garbled[8 + 1] = 0x7b; // '{' inside the JSON
  expectBad(garbled, /JSON header does not parse/);
  const data4 = new Uint8Array(16);
  expectBad(rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [3], data_offsets: [4, 16] } }, data4), /overlaps/);
  expectBad(rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, data4), /gap/);
  expectBad(rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data4), /needs 12 bytes/);
  expectBad(rawSafetensors({ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, data4), /unknown dtype/);
  expectBad(rawSafetensors({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, data4), /invalid shape/);
  expectBad(rawSafetensors({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data4), /data section has only 16/);
  expectBad(rawSafetensors([1, 2], new Uint8Array(0)), /not a JSON object/);
  expectBad(rawSafetensors({ __metadata__: { format: 1 } }, new Uint8Array(0)), /__metadata__\.format/);
  // Unpadded headers are valid (the spec allows them); readable dtypes only.
  const unpadded = rawSafetensors({ a: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(Int32Array.from([9]).buffer), false);
  assert.deepEqual(Array.from(decodeSafetensors(unpadded).tensors.a.data as Int32Array), [9]);
  expectUntieError(() => decodeSafetensors(rawSafetensors({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4))), /U8.*cannot read/);
  expectUntieError(() => readSafetensors(path.join(tmp, 'absent.safetensors')), /does not exist/);
  expectUntieError(
    () => writeSafetensors(bad, { a: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
    /3 values but shape \[2, 2\] needs 4/,
  );
});

test('writeFileAtomic: writes chunks in order, replaces, leaves no temporary file', () => {
  const file = path.join(tmp, 'sub', 'state.json');
  writeFileAtomic(file, 'first');
  writeFileAtomic(file, [Buffer.from('ab'), new Uint8Array([0x63]), Buffer.from('d')]);
  assert.equal(fs.readFileSync(file, 'utf8'), 'abcd');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['state.json']);
});

// --- TensorBoard ---

test('CRC32C: the standard check value and TFRecord masking', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // 32 zero bytes (RFC 3720 test vector)
  const crc = crc32c(Buffer.from('123456789'));
  assert.equal(maskedCrc32c(Buffer.from('123456789')), ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

test('event encoding: Event / Summary / Value protobuf bytes', () => {
  const bytes = Buffer.from(encodeScalarEvent('a', 1, 3, 0));
  const expected = Buffer.from([
    0x09, 0, 0, 0, 0, 0, 0, 0, 0, // wall_time = 0.0 (field 1, fixed64)
    0x10, 0x03, // step = 3 (field 2, varint)
    0x2a, 0x0a, // summary (field 5), 10 bytes
    0x0a, 0x08, // Summary.value (field 1), 8 bytes
    0x0a, 0x01, 0x61, // Value.tag = "a"
    0x15, 0x00, 0x00, 0x80, 0x3f, // Value.simple_value = 1.0f
  ]);
  assert.deepEqual(bytes, expected);
  const record = Buffer.from(tfRecord(bytes));
  assert.equal(record.readBigUInt64LE(0), BigInt(bytes.length));
  assert.equal(record.readUInt32LE(8), maskedCrc32c(record.subarray(0, 8)));
  assert.deepEqual(record.subarray(12, 12 + bytes.length), bytes);
  assert.equal(record.readUInt32LE(12 + bytes.length), maskedCrc32c(bytes));
});

test('event file: name, file_version first, scalars round trip with CRCs verified', () => {
  const dir = path.join(tmp, 'run');
  const writer = new ScalarEventWriter(dir);
  assert.match(path.basename(writer.path), new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  const written: { tag: string; value: number; step: number; wallTime: number }[] = [];
  for (let step = 0; step < 50; step++) {
    const loss = 10 / (step + 1);
    writer.addScalars({ 'train/loss': loss, 'train/lr': 1e-4 * step }, step, 1700000000.5 + step);
    written.push({ tag: 'train/loss', value: loss, step, wallTime: 1700000000.5 + step });
    written.push({ tag: 'train/lr', value: 1e-4 * step, step, wallTime: 1700000000.5 + step });
  }
  writer.addScalar('big/step', -1.5, 2 ** 40, 1);
  writer.addScalar('negative/step', 2, -3, 1);
  writer.close();
  expectUntieError(() => writer.addScalar('x', 1, 1), /closed/);

  const events = readScalarEvents(writer.path);
  assert.equal(events.fileVersion, 'brain.Event:2');
  assert.equal(events.scalars.length, written.length + 2);
  written.forEach((w, i) => {
    const got = events.scalars[i];
    assert.equal(got.tag, w.tag);
    assert.equal(got.step, w.step);
    assert.equal(got.wallTime, w.wallTime);
    assert.equal(got.value, Math.fround(w.value)); // simple_value is a float32
  });
  assert.deepEqual(events.scalars.slice(-2).map((s) => [s.tag, s.step, s.value]), [['big/step', 2 ** 40, -1.5], ['negative/step', -3, 2]]);

  // The first record is the file_version event.
  const bytes = fs.readFileSync(writer.path);
  const firstLength = Number(bytes.readBigUInt64LE(0));
  const first = bytes.subarray(12, 12 + firstLength);
  assert.equal(first[0], 0x09);
  assert.ok(first.includes(Buffer.from([0x1a, 13, ...Buffer.from('brain.Event:2')])));

  // Any flipped byte or a cut-off tail is detected.
  const corrupt = path.join(dir, 'corrupt.tfevents');
  const flipped = Buffer.from(bytes);
  flipped[bytes.length - 10] ^= 0x01;
  fs.writeFileSync(corrupt, flipped);
  expectUntieError(() => readScalarEvents(corrupt), /bad data CRC/);
  fs.writeFileSync(corrupt, bytes.subarray(0, bytes.length - 3));
  expectUntieError(() => readScalarEvents(corrupt), /cut off/);
  const badLength = Buffer.from(bytes);
  badLength[0] ^= 0x40;
  fs.writeFileSync(corrupt, badLength);
  expectUntieError(() => readScalarEvents(corrupt), /bad length CRC/);

  // A second writer in the same second gets its own file.
  const w2 = new ScalarEventWriter(dir);
  const w3 = new ScalarEventWriter(dir);
  assert.notEqual(w2.path, w3.path);
  w2.close();
  w3.close();
});
