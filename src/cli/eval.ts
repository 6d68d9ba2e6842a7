/** `untie eval RUN_OR_CHECKPOINT`: validation MLM loss and accuracy. */
import { UntieError } from '../errors.js';
import { prepareEvaluation } from '../train/data.js';
import { load } from '../train/load.js';
import { divergedLoss, evaluate } from '../train/trainer.js';
import { helpText, parse, type Flags } from './args.js';

export const summary = 'validation MLM loss and accuracy of a run or checkpoint';
const flags: Flags = {
  json: { type: 'boolean', help: 'print {"val_loss", "val_acc", "unigram_val_loss", "unigram_val_acc", "tokens", "checkpoint"} as JSON' },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('eval', argv, flags);
  if (values.help) {
    console.log(helpText('eval', 'RUN_OR_CHECKPOINT', flags, `${summary}, on the run's own validation set (same corpus, split and masking as in training).`));
    return 0;
  }
  if (positionals.length !== 1) throw new UntieError('usage: untie eval RUN_OR_CHECKPOINT');
  const loaded = load(positionals[0]);
  if (!loaded.runDir || !loaded.runConfig) throw new UntieError(`${positionals[0]} is not part of a run folder, so its validation set is unknown. Pass the run folder or one of its checkpoint-<step> folders.`);
  const cfg = loaded.runConfig;
  // The unigram line (word frequencies of the training split) on the same masked positions, as training prints it.
  const { validation, unigram } = await prepareEvaluation(cfg.data, loaded.runDir, cfg.train.batchSize, loaded.tokenizer);
  const result = evaluate(loaded.model, validation);
  // load() refuses non-finite weights; finite but huge ones still give a diverged loss.
  const diverged = divergedLoss(result.loss, loaded.tokenizer.vocabSize);
  if (diverged) throw new UntieError(`${loaded.modelDir}: the validation loss is ${diverged}: this model diverged before it was saved. Evaluate an earlier checkpoint.`);
  if (values.json) {
    console.log(JSON.stringify({
      val_loss: result.loss, val_acc: result.accuracy, unigram_val_loss: unigram.loss, unigram_val_acc: unigram.accuracy, tokens: result.tokens, checkpoint: loaded.modelDir,
    }));
  } else {
    console.log(
      `${loaded.modelDir}: validation loss ${result.loss.toFixed(4)} (unigram ${unigram.loss.toFixed(4)}), ` +
        `accuracy ${(100 * result.accuracy).toFixed(2)}% (unigram ${(100 * unigram.accuracy).toFixed(2)}%) over ${result.tokens} masked tokens`,
    );
  }
  return 0;
}
