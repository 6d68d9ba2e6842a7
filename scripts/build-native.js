// Builds the native kernels (native/, via node-gyp) during `npm install`.
// A failed build does not fail the install: untie then runs on its pure
// TypeScript reference kernels and says so once when it starts. CI sets
// UNTIE_REQUIRE_NATIVE=1 so that a broken build is caught there.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('binding.gyp')) process.exit(0);
const env = { ...process.env };
// Build against the local Node headers when they are installed (no download).
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
const result = spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit', env, shell: true });
if (result.status !== 0) {
  console.error('\nuntie: the native kernels did not build; untie will run on the (much slower) reference kernels.');
  console.error('untie: to retry: npm run build:native   (needs python3, make and a C++ compiler)');
  if (process.env.UNTIE_REQUIRE_NATIVE === '1') process.exit(1);
}
