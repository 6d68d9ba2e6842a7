/** `untie generate RUN_OR_CHECKPOINT "prompt"`: a decoder's continuation of a prompt, sampled reproducibly. */
import { UntieError } from '../errors.js';
import { generate } from '../train/inference.js';
import { loadDecoder } from '../train/load.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'continue a prompt with a GPT decoder (sampling reproducible by --seed)';
const flags: Flags = {
  'max-tokens': { type: 'string', help: 'tokens to generate at most (it stops earlier at [SEP], the end of a document)', default: '50' },
  temperature: { type: 'string', help: 'divides the logits before sampling; 0 = always the most likely token', default: '0.8' },
  'top-k': { type: 'string', help: 'sample among the k most likely tokens (0 = all)', default: '50' },
  seed: { type: 'string', help: 'sampling seed: the same seed, prompt and model give the same text', default: '0' },
  json: { type: 'boolean', help: 'print {"text", "continuation", "tokens", "stopped", "seed", "checkpoint"} as JSON' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('generate', argv, flags);
  if (values.help) {
    console.log(helpText('generate', 'RUN_OR_CHECKPOINT "prompt"', flags, `${summary}.\nThe model reads [SEP] and then the prompt, as a document starts in its training stream (an empty prompt starts a fresh document).`));
    return 0;
  }
  if (positionals.length !== 2) throw new UntieError('usage: untie generate RUN_OR_CHECKPOINT "prompt"');
  const options = {
    maxTokens: numberFlag('max-tokens', values['max-tokens'], { integer: true, min: 1 }),
    temperature: numberFlag('temperature', values.temperature, { min: 0 }),
    topK: numberFlag('top-k', values['top-k'], { integer: true, min: 0 }),
    seed: numberFlag('seed', values.seed, { integer: true, min: 0 }),
  };
  const loaded = loadDecoder(positionals[0]);
  const out = await generate(loaded, positionals[1], options);
  if (values.json) console.log(JSON.stringify({ ...out, checkpoint: loaded.modelDir }));
  else console.log(out.text);
  return 0;
}
