/**
 * Argument parsing on node:util's parseArgs, with errors a user can act on
 * and a generated --help listing every flag with its default.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UntieError } from '../errors.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  help: string;
  default?: string | boolean;
  short?: string;
}

export type Flags = Record<string, FlagSpec>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** `invocation` is how the message tells the user to ask for help (`untie COMMAND` by default; a script passes its own). */
export function parse(command: string, argv: string[], flags: Flags, invocation = `untie ${command}`): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [k, f] of Object.entries(flags)) options[k] = { type: f.type, ...(f.short ? { short: f.short } : {}) };
  // `--steps -1`: parseArgs takes "-1" for a flag; a number is the flag's value (checked, with its range, by numberFlag).
  const args = [...argv];
  for (let i = args.length - 1; i > 0; i--) {
    if (/^-\.?\d/.test(args[i]) && /^--[^=]+$/.test(args[i - 1]) && options[args[i - 1].slice(2)]?.type === 'string') args.splice(i - 1, 2, `${args[i - 1]}=${args[i]}`);
  }
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const unknown = /^Unknown option '(-{1,2})([^']*)'/.exec(msg);
    const guess = unknown ? closest(unknown[2], Object.keys(options)) : null;
    const hint = guess ? ` (did you mean --${guess}?)` : '';
    throw new UntieError(`${msg.replace(/\. To specify a positional.*$/s, '').replace(/\.+$/, '')}${hint}. Run \`${invocation} --help\` for the options.`);
  }
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours) between two words. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known name nearest to a misspelt one ("stesp" -> "steps"), or null when none is near (at most a third of its letters off). */
export function closest(word: string, known: readonly string[]): string | null {
  let best: string | null = null, bestDistance = Infinity;
  for (const k of known) {
    const dist = editDistance(word.toLowerCase(), k.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

export function helpText(command: string, synopsis: string, flags: Flags, description = '', invocation = `untie ${command}`): string {
  const lines = [`usage: ${invocation} ${synopsis}`];
  if (description) lines.push('', description);
  lines.push('', 'options:');
  const names = Object.entries(flags).map(([k, f]) => [`--${k}${f.type === 'string' ? ' VALUE' : ''}`, f] as const);
  const width = Math.max(...names.map(([n]) => n.length));
  for (const [n, f] of names) {
    const def = f.default === undefined || f.default === '' ? '' : ` (default: ${String(f.default)})`;
    lines.push(`  ${n.padEnd(width)}  ${f.help}${def}`);
  }
  lines.push(`  ${'--help'.padEnd(width)}  show this help`);
  return lines.join('\n');
}

/** Parses a numeric flag, with a message naming the flag. */
export function numberFlag(name: string, value: string | boolean | undefined, opts: { integer?: boolean; min?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    const kind = opts.integer ? 'a whole number' : 'a number';
    throw new UntieError(`--${name} must be ${kind}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got "${String(value)}"`);
  }
  return n;
}

/** Refuses positional arguments of a command that takes none (`untie train extra` used to run, ignoring "extra"). */
export function noPositionals(command: string, positionals: readonly string[]): void {
  if (positionals.length > 0) {
    throw new UntieError(`unexpected argument "${positionals[0]}": untie ${command} takes only options (--name VALUE). Run \`untie ${command} --help\` for the options.`);
  }
}

/**
 * How the user ran `untie <command>`, so that the commands we suggest (the
 * resume hint) work as typed: "npx untie train" under npx, "npm start --"
 * under `npm start` (whose script already says "train"), "node bin/untie.js
 * train" when run by path, else "untie train".
 */
export function commandAsRun(command: string, env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv, cwd = process.cwd()): string {
  if (env.npm_lifecycle_event === 'start' && command === 'train') return 'npm start --';
  if (env.npm_command === 'exec' || env.npm_lifecycle_event === 'npx') return `npx untie ${command}`;
  const script = argv[1] ?? '';
  if (/(^|[\\/])untie\.js$/.test(script)) {
    const relative = path.relative(cwd, script);
    const shown = relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : script;
    return `node ${/^[\w@%+=:,./-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, "'\\''")}'`} ${command}`;
  }
  return `untie ${command}`;
}
