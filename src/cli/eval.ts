/** `untie eval RUN_OR_CHECKPOINT`: validation loss and accuracy of the model's objective (masked LM or next token). */
import { UntieError } from '../errors.js';
import { prepareEvaluation } from '../train/data.js';
import { loadLanguageModel } from '../train/load.js';
import { divergedLoss, evaluate } from '../train/trainer.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'validation loss and accuracy (masked LM or next token) of a run or checkpoint';
const flags: Flags = {
  json: { type: 'boolean', help: 'print {"val_loss", "val_acc", "unigram_val_loss", "unigram_val_acc", "tokens", "checkpoint"} as JSON (a decoder\'s also "val_ppl")' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('eval', argv, flags);
  if (values.help) {
    console.log(helpText('eval', 'RUN_OR_CHECKPOINT', flags, `${summary}, on the run's own validation set (same corpus, split, and masking or windows, as in training).`));
    return 0;
  }
  if (positionals.length !== 1) throw new UntieError('usage: untie eval RUN_OR_CHECKPOINT');
  const loaded = loadLanguageModel(positionals[0]);
  if (!loaded.runDir || !loaded.runConfig) throw new UntieError(`${positionals[0]} is not part of a run folder, so its validation set is unknown. Pass the run folder or one of its checkpoint-<step> folders.`);
  const cfg = loaded.runConfig;
  const kind = loaded.model.kind;
  // The unigram line (token frequencies of the training split) on the same targets, as training prints it.
  const { validation, unigram } = await prepareEvaluation(cfg.data, loaded.runDir, cfg.train.batchSize, loaded.tokenizer, kind);
  const result = evaluate(loaded.model, validation);
  // load() refuses non-finite weights; finite but huge ones still give a diverged loss.
  const diverged = divergedLoss(result.loss, loaded.tokenizer.vocabSize);
  if (diverged) throw new UntieError(`${loaded.modelDir}: the validation loss is ${diverged}: this model diverged before it was saved. Evaluate an earlier checkpoint.`);
  const decoder = kind === 'gpt';
  if (values.json) {
    console.log(JSON.stringify({
      val_loss: result.loss, val_acc: result.accuracy, ...(decoder ? { val_ppl: Math.exp(result.loss) } : {}),
      unigram_val_loss: unigram.loss, unigram_val_acc: unigram.accuracy, tokens: result.tokens, checkpoint: loaded.modelDir,
    }));
  } else {
    const scored = decoder
      ? `perplexity ${Math.exp(result.loss).toFixed(2)} (unigram ${Math.exp(unigram.loss).toFixed(2)}), next-token accuracy ${(100 * result.accuracy).toFixed(2)}% (unigram ${(100 * unigram.accuracy).toFixed(2)}%) over ${result.tokens} tokens`
      : `accuracy ${(100 * result.accuracy).toFixed(2)}% (unigram ${(100 * unigram.accuracy).toFixed(2)}%) over ${result.tokens} masked tokens`;
    console.log(`${loaded.modelDir}: validation loss ${result.loss.toFixed(4)} (unigram ${unigram.loss.toFixed(4)}), ${scored}`);
  }
  return 0;
}
