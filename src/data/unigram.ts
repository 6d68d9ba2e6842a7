/**
 * The unigram line: what a model that ignores context scores on masked-LM.
 *
 * The unigram predictor answers every masked position with the token
 * frequencies of the training split, whatever the context: its loss is the
 * cross-entropy of those frequencies on the validation targets, its accuracy
 * the share of targets equal to the most frequent token. A pre-trained model
 * that does not beat it clearly has learned word frequencies, nothing more.
 *
 * Counts cover the tokens a masked position can hold (every id but the
 * special ones), with add-one (Laplace) smoothing so that a token never seen
 * in training has a finite loss. The argmax breaks ties by the lower id.
 */
import { check } from '../errors.js';
import { IGNORE_INDEX } from './mlm.js';

export interface UnigramModel {
  /** Natural-log probability of each id (-Infinity for special ids). */
  logProbs: Float64Array;
  /** The most frequent non-special id: the unigram predictor's answer everywhere. */
  argmax: number;
  /** Non-special tokens counted. */
  tokens: number;
}

export interface UnigramScore {
  /** Mean cross-entropy (nats) over the labelled positions. */
  loss: number;
  accuracy: number;
  /** Labelled positions scored. */
  count: number;
}

/** Token frequencies of `sequences` (e.g. the packed training split), smoothed. */
export function unigramModel(sequences: readonly ArrayLike<number>[], vocabSize: number, specialIds: readonly number[]): UnigramModel {
  check(Number.isInteger(vocabSize) && vocabSize > specialIds.length, `unigram: vocabulary size ${vocabSize} leaves no ordinary tokens`);
  const special = new Uint8Array(vocabSize);
  for (const id of specialIds) if (id >= 0 && id < vocabSize) special[id] = 1;
  const counts = new Float64Array(vocabSize);
  let tokens = 0;
  for (const seq of sequences) {
    for (let i = 0; i < seq.length; i++) {
      const id = seq[i];
      check(Number.isInteger(id) && id >= 0 && id < vocabSize, `unigram: token id ${id} is outside the vocabulary of ${vocabSize}`);
      if (special[id]) continue;
      counts[id]++;
      tokens++;
    }
  }
  let ordinary = 0;
  for (let id = 0; id < vocabSize; id++) if (!special[id]) ordinary++;
  const denominator = tokens + ordinary; // add-one smoothing over the ordinary ids
  const logProbs = new Float64Array(vocabSize);
  let argmax = -1;
  for (let id = 0; id < vocabSize; id++) {
    if (special[id]) {
      logProbs[id] = -Infinity;
      continue;
    }
    logProbs[id] = Math.log((counts[id] + 1) / denominator);
    if (argmax < 0 || counts[id] > counts[argmax]) argmax = id;
  }
  return { logProbs, argmax, tokens };
}

/** The unigram predictor's loss and accuracy on the labelled positions of `batches`. */
export function unigramScore(model: UnigramModel, batches: readonly { labels: Int32Array }[]): UnigramScore {
  let lossSum = 0, correct = 0, count = 0;
  for (const b of batches) {
    for (let i = 0; i < b.labels.length; i++) {
      const target = b.labels[i];
      if (target === IGNORE_INDEX) continue;
      check(target >= 0 && target < model.logProbs.length, `unigram: label ${target} is outside the vocabulary of ${model.logProbs.length}`);
      lossSum -= model.logProbs[target];
      if (target === model.argmax) correct++;
      count++;
    }
  }
  check(count > 0, 'unigram: the validation batches have no labelled positions');
  return { loss: lossSum / count, accuracy: correct / count, count };
}
