/**
 * File helpers for run folders. Imports nothing of untie's above src/errors.ts.
 */
import fs from 'node:fs';
import path from 'node:path';

/**
 * Writes `data` (one buffer/string, or a list of buffers written in order) to
 * a temporary file beside `file`, fsyncs it and renames it over `file`: a
 * crash leaves either the old file or the new one, never half of the new one.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
      for (const chunk of chunks) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        let written = 0;
        while (written < bytes.byteLength) {
          written += fs.writeSync(fd, bytes, written, bytes.byteLength - written);
        }
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(dir);
}

/** Best effort: make a rename in dir durable (not possible on every platform, e.g. Windows). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // The file itself is complete either way; only the rename's durability is at stake.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

