#!/usr/bin/env node
// The untie command: runs the compiled CLI (npm install builds dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('untie: dist/ is missing. Run `npm install` (or `npm run build`) in the untie folder first.');
  process.exitCode = 1;
} else {
  const { main } = await import(entry.href);
  // exitCode, not process.exit(): exit() would cut off stdout still draining into a pipe (64 KB).
  process.exitCode = await main(process.argv.slice(2));
}
