/**
 * The live page's HTTP server: lists the runs in a folder and shows each
 * with the run report's charts, redrawn as metrics.jsonl grows. It only
 * reads files (GET and HEAD; nothing else is answered), and by default
 * listens on 127.0.0.1 alone.
 *
 *   /                    the runs in the folder (live)
 *   /run/NAME            one run (live)
 *   /api/view            the list as JSON: { version, view }, or 204 when ?since= is current
 *   /api/run/NAME/view   one run, likewise
 *
 * Pages poll their /api URL about once a second. Each run's metrics.jsonl is
 * followed incrementally (only appended bytes are read; a torn last line
 * waits for its newline), and a view is rebuilt only when its file changed.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { UntieError } from '../errors.js';
import type { View } from '../report/blocks.js';
import { escapeHtml } from '../report/html.js';
import { renderPage } from '../report/page.js';
import { MetricsFollower, finetuneFolders, isRunDir, listRunDirs, readFinetunes, readRunConfig, type RunData } from '../report/read.js';
import { runStatus, runView, runsIndexView } from '../report/run.js';

export interface ServeOptions {
  /** A folder of runs (or one run folder). It need not exist yet: `train --ui` starts before its run does. */
  runsDir: string;
  /** 0: any free port. */
  port: number;
  host?: string;
  /** When `port` is taken, try the next ports instead of failing (for a default port). */
  portFallback?: boolean;
  /** How often pages poll for changes (default 1000 ms). */
  intervalMs?: number;
}

export interface RunningServer {
  /** http://host:port/ */
  url: string;
  port: number;
  host: string;
  /** The page of the run in folder `name` under runsDir. */
  runUrl(name: string): string;
  close(): Promise<void>;
}

/** One followed run folder: its metrics, its config, and its last view. */
class WatchedRun {
  private readonly follower: MetricsFollower;
  private configStamp = '';
  private config: ReturnType<typeof readRunConfig> = { config: null, error: 'no config.json' };
  private cached: { version: string; json: string; view: View } | null = null;
  private current: { stamp: string; run: RunData } | null = null;
  /** A rebuild costs about as much as it took last time; the next waits 20 times that (a long run's view takes a while). */
  private nextBuildAt = 0;

  constructor(readonly dir: string, readonly name: string) {
    this.follower = new MetricsFollower(path.join(dir, 'metrics.jsonl'));
  }

  /** Reads what changed on disk; returns the run as it is now and a version string for it. */
  refresh(now: number): { run: RunData; version: string } {
    this.follower.poll();
    let stamp = 'none';
    try {
      const st = fs.statSync(path.join(this.dir, 'config.json'));
      stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      // no config.json (yet)
    }
    if (stamp !== this.configStamp) {
      this.config = stamp === 'none' ? { config: null, error: isRunDir(this.dir) ? 'no config.json' : `no run folder ${this.dir} yet` } : readRunConfig(this.dir);
      this.configStamp = stamp;
    }
    // Fine-tuning results written into the run folder after (or during) training show on its page too.
    const finetunes = finetuneFolders(this.dir).map((f) => `${f.folder}:${f.modified}`).join(',');
    const files = `${this.follower.version}|${stamp}|${finetunes}`;
    if (this.current?.stamp !== files) {
      // a new RunData per change: the charts cache what they derive from one (run.ts)
      this.current = {
        stamp: files,
        run: {
          dir: this.dir, name: this.name, config: this.config.config, configError: this.config.error,
          records: this.follower.records.slice(), skippedLines: this.follower.skippedLines, partialLine: this.follower.partialLine,
          metricsModified: this.follower.modified, finetunes: readFinetunes(this.dir),
        },
      };
    }
    const run = this.current.run;
    return { run, version: `${files}|${runStatus(run, now)}` };
  }

  view(now: number, decorate: (v: View) => View): { version: string; json: string; view: View } {
    const { run, version } = this.refresh(now);
    if (this.cached?.version !== version && (!this.cached || now >= this.nextBuildAt)) {
      const started = performance.now();
      const view = decorate(runView(run, { now }));
      this.cached = { version, view, json: JSON.stringify({ version, view }) };
      this.nextBuildAt = now + 20 * (performance.now() - started);
    }
    return this.cached!;
  }
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.removeListener('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** The first port from `from` on that `host` lets us bind, or null among the next `tries`. */
export async function findFreePort(from: number, host: string, tries = 20): Promise<number | null> {
  for (let p = from; p < from + tries && p <= 65535; p++) {
    const probe = http.createServer();
    try {
      await listen(probe, p, host);
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      return p;
    } catch {
      // taken; try the next
    }
  }
  return null;
}

/** Host as it goes in a URL (IPv6 in brackets). */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const intervalMs = opts.intervalMs ?? 1000;
  const runsDir = opts.runsDir;
  const watched = new Map<string, WatchedRun>();
  let indexCache: { version: string; json: string; view: View } | null = null;

  /** The folder of run `name`: a direct child of runsDir, or runsDir itself when it is that run. */
  const runDirOf = (name: string): string | null => {
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) return null;
    if (isRunDir(runsDir) && path.basename(path.resolve(runsDir)) === name) return runsDir;
    return path.join(runsDir, name);
  };
  const watch = (dir: string, name: string): WatchedRun => {
    let w = watched.get(dir);
    if (!w) watched.set(dir, (w = new WatchedRun(dir, name)));
    return w;
  };
  const runLink = (name: string) => `/run/${encodeURIComponent(name)}`;
  const backLink = (v: View): View => ({
    ...v, blocks: [{ kind: 'html', html: `<p><a href="/">← all runs in ${escapeHtml(runsDir)}</a></p>` }, ...v.blocks],
  });

  const indexView = (now: number): { version: string; json: string; view: View } => {
    const runs = listRunDirs(runsDir).map((dir) => watch(dir, path.basename(path.resolve(dir))).refresh(now));
    const version = runs.map((r) => `${r.run.name}=${r.version}`).join(';');
    if (indexCache?.version !== version) {
      const exists = fs.existsSync(runsDir);
      const view = runsIndexView(`untie runs in ${runsDir}`, runs.map((r) => r.run), (r) => runLink(r.name), {
        now, empty: exists ? `No runs in ${runsDir} yet; they appear here as \`untie train --out ${runsDir}\` starts them.` : `${runsDir} does not exist yet.`,
      });
      indexCache = { version, view, json: JSON.stringify({ version, view }) };
    }
    return indexCache;
  };

  const send = (res: http.ServerResponse, status: number, type: string, body: string, head: boolean) => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.end(head ? undefined : body);
  };
  const live = (url: string, version: string) => ({ viewUrl: url, version, intervalMs });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { Allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const since = url.searchParams.get('since');
    const now = Date.now();
    const answer = (v: { version: string; json: string }) => {
      if (since === v.version) {
        res.writeHead(204, { 'Cache-Control': 'no-store' });
        res.end();
      } else send(res, 200, 'application/json; charset=utf-8', v.json, head);
    };
    let m: RegExpExecArray | null;
    if (url.pathname === '/') {
      const v = indexView(now);
      send(res, 200, 'text/html; charset=utf-8', renderPage(v.view, live('/api/view', v.version)), head);
    } else if (url.pathname === '/api/view') {
      answer(indexView(now));
    } else if ((m = /^\/(api\/)?run\/([^/]+)(\/view)?$/.exec(url.pathname)) && Boolean(m[1]) === Boolean(m[3])) {
      let name: string;
      try {
        name = decodeURIComponent(m[2]);
      } catch {
        name = '';
      }
      const dir = runDirOf(name);
      if (!dir) {
        send(res, 404, 'text/plain; charset=utf-8', `no run named ${name}\n`, head);
        return;
      }
      const w = watch(dir, name);
      const v = w.view(now, backLink);
      if (m[1]) answer(v);
      else send(res, 200, 'text/html; charset=utf-8', renderPage(v.view, live(`/api/run/${encodeURIComponent(name)}/view`, v.version)), head);
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found: this server has / (the runs) and /run/NAME (one run)\n', head);
    }
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      // A run folder changing under us must not stop the server; the page retries.
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `error reading the runs: ${(err as Error).message}\n`, false);
      else res.end();
    }
  });

  let port: number;
  try {
    port = await listen(server, opts.port, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' && opts.portFallback && opts.port !== 0) {
      const free = await findFreePort(opts.port + 1, host);
      if (free === null) throw new UntieError(`ports ${opts.port}-${opts.port + 20} on ${host} are all in use. Pick one with --port P (or --port 0 for any free port).`);
      port = await listen(server, free, host);
    } else if (code === 'EADDRINUSE') {
      const free = await findFreePort(opts.port + 1, host);
      throw new UntieError(`port ${opts.port} on ${host} is in use (another untie serve, TensorBoard, or another program). `
        + (free !== null ? `Port ${free} is free: run again with --port ${free}` : 'Pick another with --port P') + ' (or --port 0 for any free port).');
    } else if (code === 'EACCES') {
      throw new UntieError(`not allowed to listen on port ${opts.port} (ports below 1024 need privileges). Pick a port above 1024 with --port.`);
    } else if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new UntieError(`cannot listen on host "${host}": it is not an address of this machine. Use --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface).`);
    } else throw err;
  }

  const base = `http://${urlHost(host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host)}:${port}`;
  return {
    url: `${base}/`, port, host,
    runUrl: (name) => `${base}${runLink(name)}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections(); // polling pages hold keep-alive connections open
    }),
  };
}
