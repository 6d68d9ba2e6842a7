/** `untie report RUN [--out FILE]`: the run's charts and tables as one self-contained report.html. */
import { UntieError } from '../errors.js';
import fs from 'node:fs';
import path from 'node:path';
import type { CompareResults } from '../experiments/compare.js';
import { writeCompareReport } from '../report/compare.js';
import { writeRunReport } from '../report/run.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'write a run\'s charts and tables as one self-contained report.html';
const flags: Flags = {
  out: { type: 'string', help: 'write the page here', default: 'RUN/report.html' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('report', argv, flags);
  if (values.help) {
    console.log(helpText('report', 'RUN [--out FILE]', flags, `${summary}: loss and accuracy against steps and seconds, learning rate, gradient norm, the untie/split events, the adjacent-layer gradient cosines, the tying plan over time, config and timings. The page works offline (everything is inline); a run still training gets a snapshot (see \`untie serve\` for a live page).`));
    return 0;
  }
  if (positionals.length !== 1) throw new UntieError('usage: untie report RUN [--out FILE] (RUN: a run folder made by `untie train`, e.g. runs/NAME, or a folder made by `untie compare`)');
  const target = positionals[0];
  const results = path.join(target, 'results.json');
  if (fs.existsSync(path.join(target, 'compare.json')) && fs.existsSync(results)) {
    // A folder made by `untie compare`: its report, redrawn from results.json.
    if (typeof values.out === 'string') throw new UntieError('--out is for run reports; a comparison\'s report is always DIR/report.html');
    let res: CompareResults;
    try {
      res = JSON.parse(fs.readFileSync(results, 'utf8')) as CompareResults;
    } catch (err) {
      throw new UntieError(`${results} is not valid JSON (${(err as Error).message}): rerun \`untie compare\` with the same flags to rewrite it`);
    }
    console.log(`wrote ${writeCompareReport(res, target)}`);
    return 0;
  }
  const file = writeRunReport(target, typeof values.out === 'string' ? values.out : undefined);
  console.log(`wrote ${file}`);
  return 0;
}
