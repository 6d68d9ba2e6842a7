/**
 * A user's own labelled texts: a CSV file (RFC 4180, a header row naming the
 * columns; parsed by npm `csv-parse`) or JSON Lines (one object per line),
 * with a text and a label column/key ("text" and "label" unless named).
 * Sequence classification from [CLS], scored by accuracy. The label set is
 * read from the file (sorted, so ids do not depend on row order) unless the
 * caller fixes it, in which case any other label is an error.
 *
 * Split by a hash of each text (see splitByKey): 20% test, 10% dev, the rest
 * train.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { UntieError } from '../../errors.js';
import type { WordPieceTokenizer } from '../tokenizer.js';
import { capItems, encodeSequences, splitByKey, type ReaderLimits, type TaskData } from './task.js';

export const CLASSIFY_FRACTIONS = { test: 0.2, dev: 0.1 } as const;
/** Fewer rows than this cannot fill a train, a dev and a test split. */
export const MIN_ROWS = 10;

export interface ClassifyOptions {
  textColumn: string;
  labelColumn: string;
  /** The label names, in id order; labels in the file outside it are an error. Default: those in the file, sorted. */
  labels?: string[];
}

export interface LabelledText {
  text: string;
  label: string;
  /** Where the row is, for messages: "line 7". */
  where: string;
}

type Row = { values: Record<string, unknown>; where: string };

function csvRows(file: string, content: string): { rows: Row[]; columns: string[] } {
  let parsed: { record: Record<string, string>; info: { lines: number } }[];
  try {
    parsed = parseCsv(content, { columns: true, info: true, bom: true, skip_empty_lines: true }) as typeof parsed;
  } catch (err) {
    throw new UntieError(`${file} is not a valid CSV file: ${(err as Error).message}. Quote fields that hold commas, quotes or line breaks ("...", with "" for a quote).`);
  }
  const header = content.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0];
  const columns = parsed.length > 0 ? Object.keys(parsed[0].record) : header.split(',');
  return { rows: parsed.map((p) => ({ values: p.record, where: `line ${p.info.lines}` })), columns };
}

function jsonlRows(file: string, content: string): { rows: Row[]; columns: string[] } {
  const rows: Row[] = [];
  const columns = new Set<string>();
  content.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new UntieError(`${file} line ${i + 1} is not valid JSON (${(err as Error).message}). Each line of a .jsonl file must be one JSON object.`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UntieError(`${file} line ${i + 1} is not a JSON object. Each line of a .jsonl file must be one object, e.g. {"text": "...", "label": "..."}.`);
    for (const k of Object.keys(value)) columns.add(k);
    rows.push({ values: value as Record<string, unknown>, where: `line ${i + 1}` });
  });
  return { rows, columns: [...columns] };
}

/** Reads and checks a CSV or JSONL file of labelled texts. Throws an UntieError naming the file, line and field of the first problem. */
export function readLabelledFile(file: string, opts: ClassifyOptions): { examples: LabelledText[]; labels: string[] } {
  if (!fs.existsSync(file)) throw new UntieError(`${file} does not exist. Pass --data with a .csv or .jsonl file of labelled texts.`);
  const ext = path.extname(file).toLowerCase();
  const isCsv = ext === '.csv', isJsonl = ext === '.jsonl' || ext === '.ndjson';
  if (!isCsv && !isJsonl) throw new UntieError(`${file}: unknown file type "${ext}". Use a .csv file (with a header row) or a .jsonl file (one JSON object per line).`);
  if (!fs.statSync(file).isFile()) throw new UntieError(`${file} is a folder, not a file. Pass --data with a .csv or .jsonl file of labelled texts.`);
  const content = fs.readFileSync(file, 'utf8');
  if (content.trim() === '') throw new UntieError(`${file} is empty. Pass --data with a .csv file (a header row, then a text and a label per row) or a .jsonl file (one {"text": ..., "label": ...} per line).`);
  const { rows, columns } = isCsv ? csvRows(file, content) : jsonlRows(file, content);
  const kind = isCsv ? 'column' : 'key';
  for (const col of [opts.textColumn, opts.labelColumn]) {
    if (!columns.includes(col)) {
      // A spreadsheet's "CSV" in some locales separates fields with ';' (or a tab): one column whose name holds them.
      const separator = isCsv && columns.length === 1 ? [';', '\t'].find((c) => columns[0].includes(c)) : undefined;
      if (separator) throw new UntieError(`${file} separates its fields with ${separator === ';' ? '";"' : 'tabs'}; untie reads comma-separated CSV. Save it as CSV with commas (quoting fields that hold commas), or as .jsonl.`);
      throw new UntieError(`${file} has no ${kind} "${col}" (it has: ${columns.join(', ') || 'none'}). Name the text and label ${kind}s with --text-column and --label-column.`);
    }
  }
  const examples: LabelledText[] = [];
  for (const row of rows) {
    const text = row.values[opts.textColumn], label = row.values[opts.labelColumn];
    if (typeof text !== 'string' || text.trim() === '') {
      throw new UntieError(`${file} ${row.where}: the text ("${opts.textColumn}") is ${typeof text === 'string' ? 'empty' : text === undefined ? 'missing' : `not a string (${JSON.stringify(text)})`}. Every row needs a text; remove the row or fill it in.`);
    }
    const isValue = typeof label === 'string' || typeof label === 'number' || typeof label === 'boolean';
    if (!isValue || String(label).trim() === '') {
      throw new UntieError(`${file} ${row.where}: the label ("${opts.labelColumn}") is ${label === undefined || label === null || String(label).trim() === '' ? 'missing' : `not a string or number (${JSON.stringify(label)})`}. Every row needs a label.`);
    }
    examples.push({ text, label: String(label).trim(), where: row.where });
  }
  if (examples.length < MIN_ROWS) throw new UntieError(`${file} has ${examples.length} labelled row(s); at least ${MIN_ROWS} are needed to make train, dev and test splits.`);
  let labels: string[];
  if (opts.labels) {
    labels = opts.labels;
    const known = new Set(labels);
    const bad = examples.find((e) => !known.has(e.label));
    if (bad) throw new UntieError(`${file} ${bad.where}: unknown label "${bad.label}" (known labels: ${labels.join(', ')}). Fix the row or add the label to --labels.`);
  } else {
    labels = [...new Set(examples.map((e) => e.label))].sort();
  }
  if (labels.length < 2) throw new UntieError(`${file}: every row has the label "${labels[0]}"; classification needs at least two labels.`);
  return { examples, labels };
}

/**
 * A label that dev or test hold but the training rows do not can never be
 * predicted: its rows would count as errors without a word, and dev would
 * choose between runs on rows no run could get right. Refused, with what to do.
 */
function checkLabelsTrained(file: string, labels: readonly string[], train: readonly LabelledText[], trainRows: number, scored: [string, readonly LabelledText[]][]): void {
  const trained = new Set(train.map((e) => e.label));
  for (const label of labels) {
    if (trained.has(label)) continue;
    const where = scored.map(([name, rows]) => [name, rows.filter((e) => e.label === label).length] as const).filter(([, n]) => n > 0);
    if (where.length === 0) continue; // a label named by --labels with no row anywhere: an unused output, harmless
    const capped = train.length < trainRows ? ` of the ${train.length} kept by --max-examples (raise it, or 0 for all)` : '';
    throw new UntieError(`${file}: the label "${label}" has no training row${capped} (its rows went to ${where.map(([name, n]) => `${name}: ${n}`).join(', ')}), so no model can learn it. Add more "${label}" rows, or remove or relabel them.`);
  }
}

export async function readClassifyTask(tokenizer: WordPieceTokenizer, file: string, opts: ClassifyOptions, limits: ReaderLimits): Promise<TaskData> {
  const { examples, labels } = readLabelledFile(file, opts);
  const split = splitByKey(examples, (e) => e.text, CLASSIFY_FRACTIONS, 'classify');
  const train = capItems(split.train, limits.maxTrain, 'classify-train');
  const dev = capItems(split.dev, limits.maxDev, 'classify-dev');
  checkLabelsTrained(file, labels, train, split.train.length, [['dev', dev], ['test', split.test]]);
  const encode = (es: LabelledText[]) => encodeSequences(tokenizer, es.map((e) => e.text), es.map((e) => labels.indexOf(e.label)), limits.maxLength);
  const source = (es: LabelledText[], of: number) => `${es.length} of ${of} rows of ${path.basename(file)}`;
  return {
    task: 'classify', kind: 'sequence', labelNames: labels, metric: 'accuracy', positiveLabel: null,
    train: await encode(train), dev: await encode(dev), test: await encode(split.test),
    splits: {
      train: { examples: train.length, source: source(train, split.train.length) },
      dev: { examples: dev.length, source: source(dev, split.dev.length) },
      test: { examples: split.test.length, source: source(split.test, split.test.length) },
    },
  };
}
