// bench:engine must not compare against PyTorch on the reference (netlib)
// BLAS: the rule that decides it, on the library lists and speeds seen on
// Debian with and without libopenblas0-pthread (and with netlib forced in
// front of OpenBLAS through LD_LIBRARY_PATH).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torchBlasProblem, type TorchBlas } from '../bench/torch-python.js';

const openblas = [
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3',
];
const netlib = '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3';
const report = (libs: string[] | null, gflops: number): TorchBlas => ({ torch: '1.13.0', blas_libraries: libs, gemm512_gflops: gflops });

test('torch on OpenBLAS (or MKL) is a fair yardstick', () => {
  assert.equal(torchBlasProblem(report(openblas, 40)), null);
  assert.equal(torchBlasProblem(report(openblas, 12)), null, 'a slow run on a loaded machine is still OpenBLAS');
  assert.equal(torchBlasProblem(report(['/opt/intel/lib/libmkl_rt.so.2'], 60)), null);
  assert.equal(torchBlasProblem(report(null, 40)), null, 'no /proc/self/maps, fast');
});

test('torch on the reference BLAS is refused, with the fix', () => {
  for (const r of [
    report([netlib, '/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3'], 2.5), // Debian without libopenblas0-pthread
    report([...openblas.slice(0, 2), '/tmp/netlib/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0'], 1.4), // netlib ahead of OpenBLAS
    report([netlib], 30), // only netlib mapped: the library decides, whatever the clock said
  ]) {
    const problem = torchBlasProblem(r);
    assert.ok(problem, `not refused: ${JSON.stringify(r)}`);
    assert.match(problem, /reference \(netlib\) BLAS/);
    assert.match(problem, /apt-get install libopenblas0-pthread/);
  }
  assert.match(torchBlasProblem(report(null, 2))!, /looks like the reference \(netlib\) BLAS/, 'no maps: judged by speed');
});
