/**
 * Argument parsing on node:util's parseArgs, with errors a user can act on
 * and a generated --help listing every flag with its default.
 */
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

export function parse(command: string, argv: string[], flags: Flags): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [k, f] of Object.entries(flags)) options[k] = { type: f.type, ...(f.short ? { short: f.short } : {}) };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UntieError(`${msg.replace(/\. To specify a positional.*$/s, '').replace(/\.+$/, '')}. Run \`untie ${command} --help\` for the options.`);
  }
}

export function helpText(command: string, synopsis: string, flags: Flags, description = ''): string {
  const lines = [`usage: untie ${command} ${synopsis}`];
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
