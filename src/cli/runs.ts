/** `untie runs [DIR]`: the runs in a folder, one line each (what `untie serve` lists on its page). */
import fs from 'node:fs';
import { UntieError } from '../errors.js';
import { listRunDirs, readRun } from '../report/read.js';
import { SUMMARY_COLUMNS, summaryCells } from '../report/run.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'list the runs in a folder: status, steps, corpus, last validation loss';
const flags: Flags = {
  json: { type: 'boolean', help: 'print one JSON object per run (the same columns)' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('runs', argv, flags);
  if (values.help) {
    console.log(helpText('runs', '[DIR]', flags, `${summary}. DIR (default: runs) is a folder of runs, as \`untie train --out\` makes them, or one run folder.`));
    return 0;
  }
  if (positionals.length > 1) throw new UntieError(`untie runs takes one folder, got ${positionals.length}: ${positionals.join(' ')}`);
  const dir = positionals[0] ?? 'runs';
  if (!fs.existsSync(dir)) throw new UntieError(`${dir} does not exist. Pass the folder that holds your runs (untie train --out, default runs).`);
  const rows = listRunDirs(dir).map((d) => summaryCells(readRun(d, 'runs')).cells);
  if (values.json) {
    for (const cells of rows) console.log(JSON.stringify(Object.fromEntries(SUMMARY_COLUMNS.map((c, i) => [c, cells[i]]))));
    return 0;
  }
  if (rows.length === 0) {
    console.log(`no runs in ${dir} (a run is a folder that \`untie train\` made, with config.json and metrics.jsonl)`);
    return 0;
  }
  const widths = SUMMARY_COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  for (const cells of [[...SUMMARY_COLUMNS], ...rows]) console.log(cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  return 0;
}
