/** `untie predict RUN|FINETUNE_DIR "text" ...`: labels for new text from a fine-tuned classifier (fill-mask's counterpart). */
import fs from 'node:fs';
import { UntieError } from '../errors.js';
import { classifyTexts, openClassifier, tagWords } from '../train/inference.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'label new text with a fine-tuned classifier (a label per text, or a tag per word)';
const flags: Flags = {
  file: { type: 'string', help: 'read the texts from this file, one per line ("-": standard input)' },
  json: { type: 'boolean', help: 'print JSON: per text {"label", "score", "scores"} (spam, classify) or a list of {"word", "label", "score"} (pos)' },
};

const DESCRIPTION = `${summary}.

The model is what \`untie finetune\` kept: pass the run folder (when it holds one
finetune-<task> folder), the finetune-<task> folder, or its best/ (or an
exported copy). Texts come as arguments, from --file, or from standard input
(one per line) when none are given and input is piped. A spam or classify
model prints each text's label and probability; a pos model prints each word
with its tag (word/TAG).`;

async function readLines(file: string): Promise<string[]> {
  let content: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    content = Buffer.concat(chunks).toString('utf8');
  } else {
    if (!fs.existsSync(file)) throw new UntieError(`${file} does not exist. Pass --file with a text file of one text per line.`);
    content = fs.readFileSync(file, 'utf8');
  }
  return content.split(/\r?\n/).filter((line) => line.trim() !== '');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('predict', argv, flags);
  if (values.help) {
    console.log(helpText('predict', 'RUN|FINETUNE_DIR "text" ... | --file FILE', flags, DESCRIPTION));
    return 0;
  }
  if (positionals.length === 0) throw new UntieError('usage: untie predict RUN|FINETUNE_DIR "text" ... (or --file FILE, or texts on standard input)');
  const [target, ...args] = positionals;
  const file = typeof values.file === 'string' ? values.file : undefined;
  if (file !== undefined && args.length > 0) throw new UntieError('give the texts either as arguments or with --file, not both');
  // Load the model first: a wrong folder is reported before waiting on standard input.
  const classifier = openClassifier(target);
  const texts = file !== undefined ? await readLines(file) : args.length > 0 ? args : !process.stdin.isTTY ? await readLines('-') : [];
  if (texts.length === 0) throw new UntieError('no text to label: give texts as arguments, with --file FILE, or on standard input');
  if (classifier.model.kind === 'sequence') {
    const preds = await classifyTexts(classifier, texts);
    if (values.json) console.log(JSON.stringify(preds));
    else preds.forEach((p, i) => console.log(`${p.label}\t${p.score.toFixed(4)}\t${texts[i]}`));
  } else {
    const tagged = await tagWords(classifier, texts);
    if (values.json) console.log(JSON.stringify(tagged));
    else for (const words of tagged) console.log(words.map((w) => `${w.word}/${w.label}`).join(' '));
  }
  return 0;
}
