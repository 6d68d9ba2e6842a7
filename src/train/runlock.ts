/**
 * One writer per run folder: `untie train` holds <run>/train.lock (the pid,
 * host and start time) while it writes there, so two `train --resume` on one
 * folder cannot interleave checkpoints and metrics. The lock is made by
 * hard-linking a complete temporary file to the lock name, so it is created
 * atomically and never seen half-written. A lock whose process is gone (a
 * crash, kill -9) is stale: the next run takes it over and says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { describeFsError, fsErrorCode } from './fsutil.js';

export const LOCK_FILE = 'train.lock';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function parseLock(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (Number.isSafeInteger(v.pid) && (v.pid as number) > 0 && typeof v.host === 'string' && typeof v.started === 'string') return v as LockInfo;
  } catch {
    // not a lock we wrote
  }
  return null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return fsErrorCode(err) === 'EPERM'; // exists, owned by someone else
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The live process (this host's, or any other host's) that holds `runDir`'s lock, or null when none does. */
export function lockHolder(runDir: string): LockInfo | null {
  const text = readText(path.join(runDir, LOCK_FILE));
  const holder = text === null ? null : parseLock(text);
  if (!holder) return null;
  return holder.host !== os.hostname() || processAlive(holder.pid) ? holder : null;
}

export class RunLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly file: string, private readonly contents: string, readonly tookOverStale: LockInfo | null) {
    process.once('exit', this.onExit);
  }

  /**
   * Takes the lock of `runDir` (which must exist), or throws an UntieError
   * naming the process that holds it. `tookOverStale` tells whether a dead
   * run's lock was replaced.
   */
  static acquire(runDir: string): RunLock {
    const file = path.join(runDir, LOCK_FILE);
    const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
    const contents = JSON.stringify(info) + '\n';
    let stale: LockInfo | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (createExclusive(file, contents)) return new RunLock(file, contents, stale);
      const text = readText(file);
      if (text === null) continue; // released between our attempt and the read: try again
      const holder = parseLock(text);
      if (holder && holder.host !== os.hostname()) {
        throw new UntieError(
          `${runDir} is in use by untie on host ${holder.host} (pid ${holder.pid}, since ${holder.started}). ` +
            `One run folder takes one writer. If that run is over, delete ${file} and try again.`,
        );
      }
      if (holder && processAlive(holder.pid)) {
        throw new UntieError(
          `${runDir} is in use by another untie (pid ${holder.pid}, since ${holder.started}): two runs writing one folder would interleave ` +
            `its checkpoints. Wait for it to finish or stop it (Ctrl-C); if no untie is running there, delete ${file}.`,
        );
      }
      stale = holder ?? { pid: 0, host: os.hostname(), started: 'unknown' };
      removeIfUnchanged(file, text);
    }
    throw new UntieError(`could not take the lock ${file}: other processes keep taking it. Make sure only one untie writes to ${runDir}.`);
  }

  /** Deletes the lock file if it is still ours. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.onExit);
    if (readText(this.file) === this.contents) fs.rmSync(this.file, { force: true });
  }
}

/** Creates `file` holding `contents` if it does not exist; false if it does. */
function createExclusive(file: string, contents: string): boolean {
  const tmp = `${file}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    fs.writeFileSync(tmp, contents);
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (err) {
      const code = fsErrorCode(err);
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      // A file system without hard links: an exclusive create is the next best (a crash may leave it empty).
      try {
        fs.writeFileSync(file, contents, { flag: 'wx' });
        return true;
      } catch (err2) {
        if (fsErrorCode(err2) === 'EEXIST') return false;
        throw err2;
      }
    }
  } catch (err) {
    throw new UntieError(`cannot write the lock ${file}: ${describeFsError(err)}.`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Removes a stale lock, unless another process replaced it after we read it. */
function removeIfUnchanged(file: string, seen: string): void {
  const aside = `${file}.stale-${process.pid}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return; // gone already
  }
  if (readText(aside) !== seen) {
    // Someone took the lock in between: put theirs back (unless yet another appeared).
    try {
      fs.linkSync(aside, file);
    } catch {
      // a newer lock is in place; theirs was taken over by it
    }
  }
  fs.rmSync(aside, { force: true });
}
