/** `untie export CHECKPOINT OUTDIR`: a Hugging Face BertForMaskedLM folder. */
import { UntieError } from '../errors.js';
import { exportModel } from '../train/load.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'write a checkpoint (or a fine-tuned model) as a Hugging Face folder';
const flags: Flags = {};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export', argv, flags);
  if (values.help) {
    console.log(helpText('export', 'RUN_OR_CHECKPOINT OUTDIR', flags, `${summary}.\nThe folder loads with BertForMaskedLM.from_pretrained(OUTDIR) (a fine-tuned model: BertForTokenClassification /\nBertForSequenceClassification) and AutoTokenizer.from_pretrained(OUTDIR).`));
    return 0;
  }
  if (positionals.length !== 2) throw new UntieError('usage: untie export RUN_OR_CHECKPOINT OUTDIR');
  const files = exportModel(positionals[0], positionals[1]);
  console.log(`wrote ${positionals[1]}: ${files.join(', ')}`);
  return 0;
}
