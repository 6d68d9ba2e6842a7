/**
 * Reading run folders for reports and the live page: config.json and
 * metrics.jsonl, which may be half-written while a run is going (the last
 * line torn), or replaced whole when a run resumes. Nothing here writes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import type { MetricRecord } from '../train/metrics.js';

export interface RunData {
  dir: string;
  name: string;
  /** config.json as parsed (null: missing or unreadable, see configError). */
  config: Record<string, unknown> | null;
  configError: string | null;
  records: MetricRecord[];
  /** Complete lines of metrics.jsonl that are not records (corrupt); left out. */
  skippedLines: number;
  /** metrics.jsonl ends in a line still being written; left out until it is complete. */
  partialLine: boolean;
  /** When metrics.jsonl last changed (ms since the epoch), or null without one. */
  metricsModified: number | null;
  /** The results of `untie finetune` in the run folder (finetune-*\/results.json), by folder name; absent: not read. */
  finetunes?: FinetuneSummary[];
}

/** What a run's page shows of one `untie finetune` results folder. */
export interface FinetuneSummary {
  folder: string;
  task: string;
  mode: string;
  metric: string;
  /** Mean and standard deviation over seeds of the test score, in [0, 1]. */
  score: number;
  std: number;
  seeds: number;
  lr: number | null;
  /** The reference lines on the same split (null: not recorded, an older results.json). */
  majority: number | null;
  majorityLabel: string | null;
  bow: number | null;
  bowMethod: string | null;
  trainExamples: number | null;
  epochs: number | null;
  seconds: number | null;
  /** Set instead of the rest when results.json cannot be read. */
  error?: string;
}

/** The finetune-* results folders of a run, with each one's results.json change time (for the live page's version). */
export function finetuneFolders(dir: string): { folder: string; modified: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: { folder: string; modified: number }[] = [];
  for (const folder of names.filter((n) => n.startsWith('finetune-') && !n.includes('.tmp-')).sort()) {
    const st = fs.statSync(path.join(dir, folder, 'results.json'), { throwIfNoEntry: false });
    if (st) out.push({ folder, modified: st.mtimeMs });
  }
  return out;
}

/** Reads every finetune-*\/results.json of a run; one that cannot be read is listed with its error. */
export function readFinetunes(dir: string): FinetuneSummary[] {
  const number = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  const field = (v: unknown, key: string): unknown => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined);
  return finetuneFolders(dir).map(({ folder }): FinetuneSummary => {
    const empty = { folder, task: '?', mode: '?', metric: '?', score: NaN, std: NaN, seeds: 0, lr: null, majority: null, majorityLabel: null, bow: null, bowMethod: null, trainExamples: null, epochs: null, seconds: null };
    let r: unknown;
    try {
      r = JSON.parse(fs.readFileSync(path.join(dir, folder, 'results.json'), 'utf8'));
    } catch (err) {
      return { ...empty, error: `results.json is not valid JSON (${(err as Error).message})` };
    }
    const score = number(field(r, 'score')), std = number(field(r, 'std'));
    if (score === null || std === null) return { ...empty, error: 'results.json has no score' };
    // results.json before the reference lines had only the majority class, as "baseline".
    const majority = field(r, 'majority') ?? field(r, 'baseline');
    return {
      folder, task: text(field(r, 'task')) ?? '?', mode: text(field(r, 'mode')) ?? '?', metric: text(field(r, 'metric')) ?? '?', score, std,
      seeds: Array.isArray(field(r, 'seeds')) ? (field(r, 'seeds') as unknown[]).length : 0, lr: number(field(r, 'lr')),
      majority: number(field(majority, 'score')), majorityLabel: text(field(majority, 'label')),
      bow: number(field(field(r, 'bow'), 'score')), bowMethod: text(field(field(r, 'bow'), 'method')),
      trainExamples: number(field(field(field(r, 'splits'), 'train'), 'examples')), epochs: number(field(r, 'epochs')), seconds: number(field(r, 'seconds')),
    };
  });
}

/**
 * True for a folder that `untie train` made (or is making): it has
 * metrics.jsonl, or (in the first seconds of a run) config.json without the
 * model.safetensors that marks a checkpoint or an exported model.
 */
export function isRunDir(dir: string): boolean {
  if (fs.existsSync(path.join(dir, 'metrics.jsonl'))) return true;
  return fs.existsSync(path.join(dir, 'config.json')) && !fs.existsSync(path.join(dir, 'model.safetensors'));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The run folders directly inside `dir`, by name (or `dir` itself when it is one). */
export function listRunDirs(dir: string): string[] {
  if (isRunDir(dir)) return [dir];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.')).sort().map((n) => path.join(dir, n)).filter((p) => isDir(p) && isRunDir(p));
}

/** Throws, with what to do, unless `dir` is a run folder. */
export function checkRunDir(dir: string, command: string): void {
  if (!fs.existsSync(dir)) throw new UntieError(`${dir} does not exist. Pass a run folder made by \`untie train\` (runs/NAME).`);
  if (!isDir(dir)) throw new UntieError(`${dir} is a file, not a run folder. Pass the folder that \`untie train\` made (runs/NAME).`);
  if (isRunDir(dir)) return;
  if (fs.existsSync(path.join(dir, 'model.safetensors'))) {
    const parent = path.dirname(path.resolve(dir));
    throw new UntieError(isRunDir(parent)
      ? `${dir} is a checkpoint, not a run. Pass its run folder: untie ${command} ${path.dirname(dir)}`
      : `${dir} holds a model (model.safetensors), not a run: there is no metrics.jsonl to draw. Pass a folder made by \`untie train\` (runs/NAME).`);
  }
  const inside = listRunDirs(dir).map((p) => path.basename(p));
  if (inside.length > 0) {
    const shown = inside.slice(0, 5).join(', ') + (inside.length > 5 ? `, ... (${inside.length} in all)` : '');
    throw new UntieError(`${dir} is a folder of runs, not a run: it holds ${shown}. Pass one of them (untie ${command} ${path.join(dir, inside[0])}), or see them all with \`untie serve ${dir}\`.`);
  }
  throw new UntieError(`${dir} is not a run folder: it has neither metrics.jsonl nor config.json. Pass a folder made by \`untie train\` (runs/NAME).`);
}

/** A line of metrics.jsonl as a record, or null when it is not one. */
function parseRecord(line: string): MetricRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const r = value as Record<string, unknown>;
  if (typeof r.type !== 'string' || typeof r.step !== 'number' || !Number.isFinite(r.step)) return null;
  return r as MetricRecord;
}

/**
 * Follows a growing metrics.jsonl: each poll reads only the bytes appended
 * since the last, keeps a torn last line pending until its newline arrives,
 * and starts over when the file is replaced (a resumed run rewrites it) or
 * shrinks.
 */
export class MetricsFollower {
  records: MetricRecord[] = [];
  skippedLines = 0;
  private offset = 0;
  private identity = '';
  private pending = '';
  private decoder = new TextDecoder('utf-8');
  modified: number | null = null;

  constructor(readonly file: string) {}

  /** The text after the last newline: a line being written. */
  get partialLine(): boolean {
    return this.pending.trim() !== '';
  }

  /** Changes whenever the records do. */
  get version(): string {
    return `${this.identity}:${this.offset}:${this.pending.length}`;
  }

  private reset(identity: string): void {
    this.records = [];
    this.skippedLines = 0;
    this.offset = 0;
    this.pending = '';
    this.decoder = new TextDecoder('utf-8');
    this.identity = identity;
  }

  /** Reads what was appended since the last call. Returns true when anything changed. */
  poll(): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      const had = this.identity !== '';
      this.reset('');
      this.modified = null;
      return had;
    }
    const identity = `${st.dev}:${st.ino}:${st.birthtimeMs}`;
    let changed = false;
    if (identity !== this.identity || st.size < this.offset) {
      this.reset(identity);
      changed = true;
    }
    this.modified = st.mtimeMs;
    if (st.size === this.offset) return changed;
    const fd = fs.openSync(this.file, 'r');
    let bytes: Buffer;
    try {
      bytes = Buffer.alloc(st.size - this.offset);
      let got = 0;
      while (got < bytes.length) {
        const n = fs.readSync(fd, bytes, got, bytes.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      bytes = bytes.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
    this.offset += bytes.length;
    this.pending += this.decoder.decode(bytes, { stream: true });
    const lastNewline = this.pending.lastIndexOf('\n');
    if (lastNewline >= 0) {
      for (const line of this.pending.slice(0, lastNewline).split('\n')) {
        if (line.trim() === '') continue;
        const r = parseRecord(line);
        if (r) this.records.push(r);
        else this.skippedLines++;
      }
      this.pending = this.pending.slice(lastNewline + 1);
    }
    return true;
  }

  /** A last line without its newline that is nevertheless a whole record (a file written by hand). */
  pendingRecord(): MetricRecord | null {
    return this.partialLine ? parseRecord(this.pending) : null;
  }
}

/** Reads config.json, saying what is wrong instead of throwing. */
export function readRunConfig(dir: string): { config: Record<string, unknown> | null; error: string | null } {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return { config: null, error: 'no config.json' };
  try {
    const value: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return { config: null, error: 'config.json is not a JSON object' };
    return { config: value as Record<string, unknown>, error: null };
  } catch (err) {
    return { config: null, error: `config.json is not valid JSON (${(err as Error).message})` };
  }
}

/** A run folder as it is now. Throws an UntieError when `dir` is not a run. */
export function readRun(dir: string, command = 'report'): RunData {
  checkRunDir(dir, command);
  const follower = new MetricsFollower(path.join(dir, 'metrics.jsonl'));
  follower.poll();
  const last = follower.pendingRecord();
  const { config, error } = readRunConfig(dir);
  return {
    dir, name: path.basename(path.resolve(dir)), config, configError: error,
    records: last ? [...follower.records, last] : follower.records,
    skippedLines: follower.skippedLines, partialLine: follower.partialLine && !last, metricsModified: follower.modified,
    finetunes: readFinetunes(dir),
  };
}
