/**
 * metrics.jsonl: one JSON object per line, each with a "type" and a "step"
 * (updates completed). On resume from checkpoint-N the records after step N,
 * which the resumed run will write again, are dropped first, so the file of
 * a resumed run equals that of an uninterrupted one.
 */
import fs from 'node:fs';
import { writeFileAtomic } from './fsutil.js';

export type MetricRecord = Record<string, unknown> & { type: string; step: number };

export class MetricsLog {
  readonly previous: MetricRecord[];

  constructor(readonly file: string, resumeStep: number) {
    this.previous = resumeStep > 0 ? readMetrics(file).filter((r) => r.step <= resumeStep) : [];
    writeFileAtomic(file, this.previous.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  write(record: MetricRecord): void {
    fs.appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

/** Reads a metrics.jsonl file; a torn last line (a crash mid-write) is skipped. */
export function readMetrics(file: string): MetricRecord[] {
  if (!fs.existsSync(file)) return [];
  const out: MetricRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      // only the last line can be torn; anything unparsable is not a record
    }
  }
  return out;
}
