/** `untie report RUN [--out FILE]`: the run's charts and tables as one self-contained report.html. */
import { UntieError } from '../errors.js';
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
  if (positionals.length !== 1) throw new UntieError('usage: untie report RUN [--out FILE] (RUN: a run folder made by `untie train`, e.g. runs/NAME)');
  const file = writeRunReport(positionals[0], typeof values.out === 'string' ? values.out : undefined);
  console.log(`wrote ${file}`);
  return 0;
}
