/**
 * File helpers for run folders. Imports nothing of untie's above src/errors.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';

const FS_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EIO: 'an input/output error (a failing disk or a lost network mount)',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'it already exists',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ELOOP: 'too many symbolic links',
};

/** The error code of a Node file-system error ("ENOSPC"), or null for anything else. */
export function fsErrorCode(err: unknown): string | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : null;
}

/** A file-system error in words: "no space left on the device (ENOSPC)". */
export function describeFsError(err: unknown): string {
  const code = fsErrorCode(err);
  if (code === null) return err instanceof Error ? err.message : String(err);
  return `${FS_ERRORS[code] ?? (err as Error).message.split(',')[0]} (${code})`;
}

/** A file-system error as "open runs/x/metrics.jsonl failed: permission denied (EACCES)". */
export function fsFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return `${e.syscall ?? 'file access'}${e.path ? ` ${e.path}` : ''} failed: ${describeFsError(err)}`;
}

/**
 * Creates `dir` and its missing parents, one level at a time, or says in one
 * line why it cannot: a part of the path is a file, permission denied, a
 * read-only or pseudo file system. (Node's recursive mkdir raises ENOTDIR
 * with a stack trace under a file, and loops forever under /proc.)
 */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(current);
    } catch (err) {
      const code = fsErrorCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UntieError(`cannot use the folder ${dir}: ${describeFsError(err)} at ${current}.`);
      missing.push(current);
      const parent = path.dirname(current);
      if (parent === current) throw new UntieError(`cannot use the folder ${dir}: its file system root does not exist.`);
      current = parent;
      continue;
    }
    if (!stat.isDirectory()) throw new UntieError(`cannot create the folder ${dir}: ${current} is a file, not a folder. Choose another path.`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      if (fsErrorCode(err) === 'EEXIST' && fs.statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new UntieError(`cannot create the folder ${d}: ${describeFsError(err)}. Choose another path.`);
    }
  }
}

/**
 * Checks that `dir` exists as a writable folder or could be created, leaving
 * nothing behind: its nearest existing ancestor must be a folder where a
 * folder can be made (tried with a probe that is removed at once, which also
 * catches pseudo file systems such as /proc). Lets a command refuse an odd
 * output path before a long run.
 */
export function checkCreatable(dir: string): void {
  let current = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(current, { throwIfNoEntry: false });
    } catch (err) {
      if (fsErrorCode(err) !== 'ENOTDIR') throw new UntieError(`cannot use the folder ${dir}: ${describeFsError(err)} at ${current}.`);
    }
    if (stat === undefined) {
      const parent = path.dirname(current);
      if (parent === current) throw new UntieError(`cannot use the folder ${dir}: its file system root does not exist.`);
      current = parent;
      continue;
    }
    if (!stat.isDirectory()) throw new UntieError(`cannot create the folder ${dir}: ${current} is a file, not a folder. Choose another path.`);
    if (current === path.resolve(dir)) {
      try {
        fs.accessSync(current, fs.constants.W_OK);
      } catch (err) {
        throw new UntieError(`cannot write in ${current}: ${describeFsError(err)}. Choose another path.`);
      }
      return;
    }
    const probe = path.join(current, `.untie-probe-${process.pid}-${Date.now().toString(36)}`);
    try {
      fs.mkdirSync(probe);
    } catch (err) {
      throw new UntieError(`cannot create the folder ${dir}: making a folder in ${current} fails with ${describeFsError(err)}. Choose another path.`);
    }
    fs.rmdirSync(probe);
    return;
  }
}

/** SHA-256 of a file's bytes, hex, read in 1 MB pieces. */
export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Bytes free for this user on the file system holding `dir`, or null if unknown. */
export function freeBytes(dir: string): number | null {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** "27.4 MB" */
export function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

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

