/** `untie serve [RUNS_DIR]`: a local page that follows the runs in a folder live. */
import fs from 'node:fs';
import { UntieError } from '../errors.js';
import { listRunDirs } from '../report/read.js';
import { startServer } from '../serve/server.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'a local page that follows the runs in a folder live (127.0.0.1)';

export const DEFAULT_PORT = 6007;

const flags: Flags = {
  port: { type: 'string', help: `port to listen on (0 = any free port; when the default is taken, the next free one)`, default: String(DEFAULT_PORT) },
  host: { type: 'string', help: 'address to listen on; 0.0.0.0 lets every machine that can reach this one read the runs', default: '127.0.0.1' },
};

/** --port and --host as the server takes them; shared with `train --ui`. */
export function serverFlags(values: Record<string, string | boolean | undefined>): { port: number; host: string; portFallback: boolean } {
  const port = numberFlag('port', values.port, { integer: true, min: 0 });
  if (port !== undefined && port > 65535) throw new UntieError(`--port must be at most 65535, got ${port}`);
  const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
  if (host.trim() === '') throw new UntieError('--host needs an address, e.g. 127.0.0.1');
  return { port: port ?? DEFAULT_PORT, host, portFallback: port === undefined };
}

/** Says so when the page is reachable from other machines. */
export function exposureNote(host: string): string | null {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' ? null
    : `note: listening on ${host}: anyone who can reach this machine on that address can read these runs (the server only reads files).`;
}

/** Resolves on Ctrl-C or SIGTERM. */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('serve', argv, flags);
  if (values.help) {
    console.log(helpText('serve', '[RUNS_DIR] [--port P] [--host H]', flags,
      `${summary}. RUNS_DIR (default: runs) is a folder of runs or one run folder. The page lists the runs and shows each with the charts of \`untie report\`, redrawn as the run writes metrics.jsonl. The server only reads files; Ctrl-C stops it.`));
    return 0;
  }
  if (positionals.length > 1) throw new UntieError(`untie serve takes one folder, got ${positionals.length}: ${positionals.join(' ')}`);
  const runsDir = positionals[0] ?? 'runs';
  if (!fs.existsSync(runsDir)) throw new UntieError(`${runsDir} does not exist. Pass the folder that holds your runs (untie train --out, default runs), or a run folder.`);
  if (!fs.statSync(runsDir).isDirectory()) throw new UntieError(`${runsDir} is a file. Pass the folder that holds your runs, or a run folder.`);
  const { port, host, portFallback } = serverFlags(values);
  const server = await startServer({ runsDir, port, host, portFallback });
  if (portFallback && server.port !== port) console.log(`port ${port} is in use; using ${server.port} (choose one with --port)`);
  const runs = listRunDirs(runsDir);
  console.log(`serving ${runsDir} at ${server.url} (${runs.length === 0 ? 'no runs yet: they appear as they start' : `${runs.length} run${runs.length > 1 ? 's' : ''}`}; reads files only; Ctrl-C stops)`);
  const note = exposureNote(host);
  if (note) console.log(note);
  await untilStopped();
  await server.close();
  return 0;
}
