/**
 * Writing an export folder whole or not at all: the files go into a hidden
 * folder beside the destination, which is renamed into place only once all
 * of them are written. A failed export leaves no half-written folder, and a
 * replaced one (--force) is removed only after its replacement is complete.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { checkCreatable, describeFsError, fsErrorCode, makeDirectory } from '../train/fsutil.js';

export interface ExportFolderOptions {
  /** Replace a folder that holds files. */
  force?: boolean;
  /** What is being exported: a destination that is it, or holds it, is refused even with force. */
  source?: string;
}

/**
 * Refuses `outDir` before anything is written: a file, a folder that holds
 * files (unless `force`), the source or a folder that holds it, or a place
 * where no folder can be made.
 */
export function checkExportFolder(outDir: string, opts: ExportFolderOptions = {}): void {
  if (opts.source !== undefined) {
    const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : path.resolve(p));
    const source = real(opts.source), target = real(outDir);
    if (source === target || source.startsWith(target + path.sep)) {
      throw new UntieError(`${outDir} holds the model being exported (${opts.source}): export into another folder`);
    }
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(outDir, { throwIfNoEntry: false });
  } catch (err) {
    if (fsErrorCode(err) !== 'ENOTDIR') throw new UntieError(`cannot use the folder ${outDir}: ${describeFsError(err)}`);
    // A part of the path is a file: checkCreatable below says which.
  }
  if (stat && !stat.isDirectory()) throw new UntieError(`${outDir} is a file, not a folder: choose a folder to export into`);
  if (stat && !opts.force) {
    const entries = fs.readdirSync(outDir);
    if (entries.length > 0) {
      const shown = entries.sort().slice(0, 4).join(', ') + (entries.length > 4 ? ', ...' : '');
      throw new UntieError(`${outDir} is not empty (${shown}): choose an empty or new folder, or pass --force to replace it`);
    }
  }
  checkCreatable(path.dirname(path.resolve(outDir)));
}

/**
 * Runs `write(stagingDir)`, then puts the staging folder in `outDir`'s
 * place (see checkExportFolder, which this calls first). On any error the
 * staging folder is removed and `outDir` is left as it was.
 */
export async function writeFolderWhole<T>(outDir: string, opts: ExportFolderOptions, write: (stagingDir: string) => Promise<T> | T): Promise<T> {
  checkExportFolder(outDir, opts);
  const target = path.resolve(outDir);
  makeDirectory(path.dirname(target));
  const stamp = `${process.pid}-${Date.now().toString(36)}`;
  const staging = path.join(path.dirname(target), `.${path.basename(target)}.partial-${stamp}`);
  fs.mkdirSync(staging);
  let result: T;
  try {
    result = await write(staging);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  // The old folder (empty, or replaced with --force) steps aside before the new one takes its name.
  const old = fs.existsSync(target) ? path.join(path.dirname(target), `.${path.basename(target)}.old-${stamp}`) : null;
  try {
    if (old) fs.renameSync(target, old);
    fs.renameSync(staging, target);
  } catch (err) {
    if (old && !fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
    fs.rmSync(staging, { recursive: true, force: true });
    throw new UntieError(`cannot move the export into ${outDir}: ${describeFsError(err)}. Nothing was changed there.`);
  }
  if (old) fs.rmSync(old, { recursive: true, force: true });
  return result;
}
