// Builds native/wasm/untie.wasm, the WebAssembly build of the kernels in
// native/ (the wasm backend, src/backend/wasm.ts), with clang and wasm-ld:
//
//   npm run build:wasm            rebuild the shipped file
//   npm run build:wasm -- --check rebuild into a temporary folder and fail
//                                 unless it is byte-identical to the shipped one
//
// The file is committed, so `npm install` needs no compiler for it. The build
// is reproducible: no debug info, no paths, no timestamps and no producers
// section end up in the module, so the same clang gives the same bytes. The
// shipped file was built by Debian 12's clang 14.0.6 and lld 14 (`apt-get
// install clang lld`); another clang version may order or choose instructions
// differently, and --check then says which compiler it used.
//
// CLANG and WASM_LD override the tools; otherwise clang++ (or clang++-NN)
// and wasm-ld (or wasm-ld-NN) on PATH are used.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, delimiter } from 'node:path';

const OUT = 'native/wasm/untie.wasm';
const SOURCES = ['native/gemm.cc', 'native/ops.cc', 'native/simd.cc', 'native/wasm/runtime.cc', 'native/wasm/exports.cc'];
// SIMD128 for the kernels; bulk memory for memcpy/memset (memory.copy/fill);
// non-trapping float-to-int and sign extension, which every engine with
// SIMD128 has. -ffp-contract=off as the native build: a * b + c stays two
// roundings (SIMD128 has no FMA anyway).
const CFLAGS = [
  '--target=wasm32', '-msimd128', '-mbulk-memory', '-mnontrapping-fptoint', '-msign-ext',
  '-O3', '-std=c++17', '-ffreestanding', '-nostdlib', '-nostdinc++', '-fno-exceptions', '-fno-rtti',
  '-fno-threadsafe-statics', '-fno-math-errno', '-ffp-contract=off', '-fvisibility=hidden',
  '-isystem', 'native/wasm/include', '-Wall', '-Wno-unknown-pragmas',
];
// Memory is imported (src/backend/wasm.ts creates it at a fixed size and
// never grows it, so views into it stay valid); the 1 MB stack comes first,
// so an overflow traps instead of writing over data. __heap_base tells the
// JavaScript allocator where free memory starts; __wasm_call_ctors runs the
// static initialisers.
const LDFLAGS = [
  '--no-entry', '--import-memory', '--stack-first', '-z', 'stack-size=1048576', '--strip-all', '--gc-sections',
  '--export=__heap_base', '--export=__wasm_call_ctors',
];

/** The first of `names` found on PATH, else the highest-numbered name-NN there. */
function findTool(envName, names) {
  if (process.env[envName]) return process.env[envName];
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of names) for (const d of dirs) if (existsSync(join(d, name))) return name;
  let best = null, bestVersion = -1;
  for (const d of dirs) {
    let entries = [];
    try { entries = readdirSync(d); } catch { continue; }
    for (const e of entries) {
      for (const name of names) {
        const m = e.match(new RegExp(`^${name.replace(/[+]/g, '\\+')}-(\\d+)$`));
        if (m && Number(m[1]) > bestVersion) { best = e; bestVersion = Number(m[1]); }
      }
    }
  }
  return best;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`untie build:wasm: ${cmd} failed (exit ${r.status})`);
    process.exit(1);
  }
}

const check = process.argv.includes('--check');
const clang = findTool('CLANG', ['clang++']);
const ld = findTool('WASM_LD', ['wasm-ld']);
if (!clang || !ld) {
  console.error(`untie build:wasm: needs clang and wasm-ld (missing: ${[!clang && 'clang++', !ld && 'wasm-ld'].filter(Boolean).join(', ')}).`);
  console.error('untie build:wasm: on Debian or Ubuntu: apt-get install clang lld');
  process.exit(1);
}
const version = spawnSync(clang, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];

const dir = mkdtempSync(join(tmpdir(), 'untie-wasm-'));
try {
  const objects = SOURCES.map((src, i) => {
    const obj = join(dir, `${i}.o`);
    run(clang, [...CFLAGS, '-c', src, '-o', obj]);
    return obj;
  });
  const built = join(dir, 'untie.wasm');
  run(ld, [...LDFLAGS, ...objects, '-o', built]);
  if (check) {
    const same = existsSync(OUT) && Buffer.compare(readFileSync(built), readFileSync(OUT)) === 0;
    if (!same) {
      console.error(`untie build:wasm --check: ${OUT} differs from a fresh build by ${version}.`);
      console.error('untie build:wasm --check: run `npm run build:wasm` and commit the result (the shipped file is built by Debian 12 clang 14).');
      process.exitCode = 1;
    } else {
      console.log(`${OUT} matches a fresh build (${version}, ${readFileSync(built).length} bytes)`);
    }
  } else {
    copyFileSync(built, OUT);
    console.log(`built ${OUT} (${readFileSync(OUT).length} bytes) with ${version}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
