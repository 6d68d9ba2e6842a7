/** `untie fill-mask RUN_OR_CHECKPOINT "text with [MASK]"`. */
import { UntieError } from '../errors.js';
import { fillMask } from '../train/inference.js';
import { load } from '../train/load.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'most likely tokens for each [MASK] in a text';
const flags: Flags = {
  'top-k': { type: 'string', help: 'predictions per mask', default: '5' },
  json: { type: 'boolean', help: 'print the predictions as JSON (a list per mask, as Hugging Face\'s pipeline)' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('fill-mask', argv, flags);
  if (values.help) {
    console.log(helpText('fill-mask', 'RUN_OR_CHECKPOINT "text with [MASK]"', flags, summary + '.'));
    return 0;
  }
  if (positionals.length !== 2) throw new UntieError('usage: untie fill-mask RUN_OR_CHECKPOINT "text with [MASK]"');
  const topK = numberFlag('top-k', values['top-k'], { integer: true, min: 1 }) ?? 5;
  const preds = await fillMask(load(positionals[0]), positionals[1], topK);
  if (values.json) {
    console.log(JSON.stringify(preds.length === 1 ? preds[0] : preds));
    return 0;
  }
  preds.forEach((list, m) => {
    if (preds.length > 1) console.log(`[MASK] #${m + 1}`);
    for (const p of list) console.log(`  ${p.score.toFixed(4)}  ${p.token_str.padEnd(14)} ${p.sequence}`);
  });
  return 0;
}
