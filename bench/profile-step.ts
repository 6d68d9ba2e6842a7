// Per-kernel time of one tiny-preset BERT forward+backward (median-free: mean of 3 steps after one warm-up).
// `node --import tsx bench/profile-step.ts [threads]` — for finding hot spots, not for reporting.
import { BertForMaskedLM } from "../src/models/bert.js";
import { backward, tidy } from "../src/tensor/tensor.js";
import { kernels, useKernels } from "../src/backend/index.js";
import { Rng } from "../src/tensor/rng.js";
const K = kernels();
K.setThreads(Number(process.argv[2] ?? 1));
const times: Record<string, number> = {}; const calls: Record<string, number> = {}; const flops: Record<string, number> = {};
const wrapped: any = { name: K.name };
for (const k of Object.keys(K) as (keyof typeof K)[]) {
  const f = (K as any)[k];
  if (typeof f !== 'function') continue;
  wrapped[k] = (...a: any[]) => { const t = performance.now(); const r = f.apply(K, a); const dt = performance.now() - t; times[k] = (times[k] ?? 0) + dt; calls[k] = (calls[k] ?? 0) + 1;
    if (k === 'matmul') { const key = `mm b${a[3]} m${a[4]} n${a[5]} k${a[6]} ${a[7]?'T':'N'}${a[8]?'T':'N'}`; times[key] = (times[key] ?? 0) + dt; calls[key] = (calls[key] ?? 0) + 1; flops[key] = 2*a[3]*a[4]*a[5]*a[6]; }
    return r; };
}
useKernels(wrapped);
const m = new BertForMaskedLM({ vocabSize: 8192, hidden: 128, layers: 6, heads: 4, intermediate: 512, maxPositions: 128, typeVocabSize: 2, dropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12, initStd: 0.02, norm: 'post', bias: true, positionInit: 'normal' }, 0);
const rng = new Rng(1); const B = 32, T = 128, n = B*T;
const ids = new Int32Array(n).map(() => 5 + rng.int(8000)); const labels = new Int32Array(n).fill(-100);
for (let i = 0; i < n; i++) if (rng.uniform() < 0.15) labels[i] = ids[i];
const batch = { inputIds: ids, labels, tokenTypeIds: new Int32Array(n), attentionMask: new Float32Array(n).fill(1), batchSize: B, seqLen: T };
let wall = 0;
for (let i = 0; i < 4; i++) {
  if (i === 1) { for (const k in times) { times[k] = 0; calls[k] = 0; } wall = 0; }
  const t0 = performance.now();
  m.zeroGrad(); tidy(() => backward(m.mlm(batch).loss));
  wall += performance.now() - t0;
}
const tot = Object.entries(times).filter(([k]) => !k.startsWith('mm ')).reduce((a, [, b]) => a + b, 0);
console.log('wall per step', (wall/3).toFixed(0), 'kernel total', (tot / 3).toFixed(0));
for (const [k, v] of Object.entries(times).sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(k.padEnd(34), (v / 3).toFixed(1), 'ms', calls[k] / 3, flops[k] ? (flops[k]*calls[k]/ (v/1000) / 1e9).toFixed(0) + ' GF/s' : '');
