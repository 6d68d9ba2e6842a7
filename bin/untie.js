#!/usr/bin/env node
// The untie command: runs the compiled CLI (npm install builds dist/) in this process.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Under npm (`npx untie`, `npm start`) a shell sits between npm and this
// process. npm passes a SIGTERM it receives on to that shell, which dies of it
// and leaves this process running with no parent (a `serve` kept answering on
// its port). So when the process that started us is gone, take it as that
// SIGTERM: train stops after its step and saves, serve closes its port.
if (process.env.npm_command || process.env.npm_lifecycle_event) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 200);
  watch.unref();
}

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('untie: dist/ is missing. Run `npm install` (or `npm run build`) in the untie folder first.');
  process.exitCode = 1;
} else {
  const { main } = await import(entry.href);
  // exitCode, not process.exit(): exit() would cut off stdout still draining into a pipe (64 KB).
  process.exitCode = await main(process.argv.slice(2));
}
