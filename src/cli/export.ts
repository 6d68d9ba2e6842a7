/** `untie export CHECKPOINT OUTDIR`: a Hugging Face folder (BertForMaskedLM, or RobertaPreLayerNormForMaskedLM for a Pre-LN model). */
import { UntieError } from '../errors.js';
import { exportModel } from '../train/load.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'write a checkpoint (or a fine-tuned model) as a Hugging Face folder';
const flags: Flags = {};

const about = `${summary}.
A Post-LN model (--norm post) loads with BertForMaskedLM.from_pretrained(OUTDIR) (a fine-tuned model:
BertForTokenClassification / BertForSequenceClassification). Hugging Face's BERT has no Pre-LN form, so a
Pre-LN model (--norm pre) is written as RoBERTa-PreLayerNorm, the same computation under other names:
RobertaPreLayerNormForMaskedLM (RobertaPreLayerNormForTokenClassification / ...ForSequenceClassification),
transformers >= 4.27. Either way AutoTokenizer.from_pretrained(OUTDIR) loads untie's WordPiece tokenizer,
and untie reads the folder back (eval, fill-mask, finetune).`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export', argv, flags);
  if (values.help) {
    console.log(helpText('export', 'RUN_OR_CHECKPOINT OUTDIR', flags, about));
    return 0;
  }
  if (positionals.length !== 2) throw new UntieError('usage: untie export RUN_OR_CHECKPOINT OUTDIR');
  const out = positionals[1];
  const r = exportModel(positionals[0], out);
  console.log(`wrote ${out}: ${r.files.join(', ')}`);
  console.log(`Hugging Face: ${r.architecture}.from_pretrained(${JSON.stringify(out)}) and AutoTokenizer.from_pretrained(${JSON.stringify(out)}) load it.`);
  if (r.modelType !== 'bert') {
    console.log(
      'This is a Pre-LN model, which Hugging Face\'s BERT classes cannot hold: it is written as RoBERTa-PreLayerNorm ' +
        `(model_type "${r.modelType}", transformers >= 4.27), which computes the same function.`,
    );
    if (r.architecture.endsWith('ForSequenceClassification')) {
      console.log('Its classification head gives the same logits; fine-tuning it further in Hugging Face adds one dropout (on the first token) that untie\'s head does not have.');
    }
  }
  return 0;
}
