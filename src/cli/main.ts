/**
 * The `untie` command line: picks a subcommand and runs it. Each subcommand
 * lives in its own file exporting `run(argv)` and `summary`; all they do is
 * parse arguments, call the library, and print.
 */
import fs from 'node:fs';
import { UntieError } from '../errors.js';
import { closest } from './args.js';

interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  train: () => import('./train.js'),
  eval: () => import('./eval.js'),
  'fill-mask': () => import('./fillmask.js'),
  export: () => import('./export.js'),
  finetune: () => import('./finetune.js'),
  linear: () => import('./linear.js'),
  compare: () => import('./compare.js'),
  report: () => import('./report.js'),
  serve: () => import('./serve.js'),
  runs: () => import('./runs.js'),
};

const summaries: Record<string, string> = {
  train: 'pre-train a BERT encoder with masked LM (shared layers, then untied)',
  eval: 'validation MLM loss and accuracy of a run or checkpoint',
  'fill-mask': 'most likely tokens for each [MASK] in a text',
  export: 'write a checkpoint (or a fine-tuned model) as a Hugging Face folder',
  finetune: 'fine-tune a checkpoint on POS tagging, spam detection or your own labelled texts',
  linear: 'deep linear networks: the theory of the method, simulated and plotted',
  compare: 'the headline experiment: baseline vs ALBERT-style vs SWE-F/A/M, in steps and seconds',
  report: 'write a run\'s charts and tables as one self-contained report.html',
  serve: 'a local page that follows the runs in a folder live (127.0.0.1)',
  runs: 'list the runs in a folder: status, steps, corpus, last validation loss',
};

function usage(): string {
  const width = Math.max(...Object.keys(summaries).map((k) => k.length));
  return [
    'usage: untie <command> [options]',
    '',
    'commands:',
    ...Object.entries(summaries).map(([k, s]) => `  ${k.padEnd(width)}  ${s}`),
    '',
    'Run `untie <command> --help` for a command\'s options; `untie --version` prints the version.',
  ].join('\n');
}

/** The package's version, from its package.json (two folders up from src/cli or dist/cli). */
export function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(`untie ${version()}`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    const guess = closest(name, Object.keys(commands));
    console.error(`untie: unknown command "${name}"${guess ? `: did you mean "untie ${guess}"?` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    const command = await load();
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UntieError) {
      console.error(`untie ${name}: error: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
