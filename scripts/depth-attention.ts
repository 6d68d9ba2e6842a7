/**
 * What the layers of a model trained on `synthetic:hops` look at: for each
 * query "xK" (K hops from x), the attention (averaged over the validation
 * queries) from the query's position, layer by layer, onto the pair of each
 * step of the chain (the pair that starts at x, at f(x), at f(f(x)), ...),
 * and onto all the pairs together. A model that follows pointers one layer
 * at a time shows step j's pair lighting up at a later layer than step
 * j-1's.
 *
 *   node --import tsx scripts/depth-attention.ts RUN_DIR [RUN_DIR ...] [--out FILE.json]
 *
 * Reads each run's newest checkpoint (its model and tokenizer) and its
 * config's corpus; prints one table per run and hop count (rows: layers;
 * columns: step 1..K's pair, then all pairs; cells: the head-averaged
 * attention and, in brackets, the best head's), and how far apart adjacent
 * layers' weights are (0 for a tied stack; a stack untied from tied weights
 * shows how much its layers have diverged since).
 */
import fs from 'node:fs';
import { parseSyntheticCorpus, syntheticValidation } from '../src/data/synthetic/index.js';
import { IGNORE_INDEX } from '../src/data/mlm.js';
import { load } from '../src/train/load.js';
import { noGrad, tidy, type Tensor } from '../src/tensor/tensor.js';

interface HopAttention {
  hops: number;
  queries: number;
  /** [layer][column]: column j-1 the pair of step j (j = 1..hops), the last column all the pairs together. */
  meanHead: number[][];
  bestHead: number[][];
}

/** Attention from each pair "ab" onto the pair that starts at b (its successor) and the one after: composing f with itself. */
interface PairAttention {
  pairs: number;
  /** [layer]: onto the successor, onto the successor's successor (head mean, and best head). */
  meanHead: number[][];
  bestHead: number[][];
}

/** Adjacent layers' distance: ||W_l - W_l+1|| / ||W_l|| over all of a layer's weights together. */
function layerDistances(layers: { namedParameters(): [string, Tensor][] }[]): number[] {
  const flat = layers.map((layer) => layer.namedParameters().map(([, t]) => t.data));
  return flat.slice(1).map((next, i) => {
    let diff = 0, norm = 0;
    flat[i].forEach((w, j) => {
      for (let k = 0; k < w.length; k++) {
        diff += (w[k] - next[j][k]) ** 2;
        norm += w[k] ** 2;
      }
    });
    return Math.sqrt(diff / norm);
  });
}

function analyse(runDir: string): { run: string; corpus: string; layers: number; layerDistance: number[]; byHops: HopAttention[]; pairs: PairAttention } {
  const { model, tokenizer, runConfig } = load(runDir);
  if (!runConfig) throw new Error(`${runDir}: no run config beside the checkpoint`);
  const corpus = runConfig.data.corpus;
  const task = parseSyntheticCorpus(corpus);
  if (task.name !== 'hops') throw new Error(`${runDir} trained on ${corpus}, not on synthetic:hops`);
  const vocab = tokenizer.vocab;
  const layers = model.bert.encoder.layer;
  const L = layers.length, H = model.config.heads;
  const seqLen = runConfig.data.seqLen;
  const batches = syntheticValidation(task, { seqLen, batchSize: 32, count: 256, splitSeed: runConfig.data.splitSeed });
  const sums = new Map<number, { n: number; mean: number[][]; best: number[][] }>();
  const pairSums = { n: 0, mean: Array.from({ length: L }, () => [0, 0]), best: Array.from({ length: L }, () => [0, 0]) };
  model.eval();
  for (const b of batches) {
    const probs: Float32Array[] = [];
    layers.forEach((layer, l) => (layer.attention.watch = (p: Tensor) => (probs[l] = p.data.slice())));
    noGrad(() => tidy(() => void model.encode(b)));
    for (let r = 0; r < b.batchSize; r++) {
      const row = r * seqLen;
      // The pairs, read as text: a two-letter token "ab" at position t says f(a) = b.
      const pairAt = new Map<string, number>(), next = new Map<string, string>();
      for (let t = 1; /^[a-z][a-z]$/.test(vocab[b.inputIds[row + t]]); t++) {
        const tok = vocab[b.inputIds[row + t]];
        pairAt.set(tok[0], t);
        next.set(tok[0], tok[1]);
      }
      for (const [a, t] of pairAt) {
        const succ = pairAt.get(next.get(a)!)!, succ2 = pairAt.get(next.get(next.get(a)!)!)!;
        pairSums.n++;
        for (let l = 0; l < L; l++) {
          [succ, succ2].forEach((c, j) => {
            let sum = 0, best = 0;
            for (let h = 0; h < H; h++) {
              const v = probs[l][((r * H + h) * seqLen + t) * seqLen + c];
              sum += v;
              best = Math.max(best, v);
            }
            pairSums.mean[l][j] += sum / H;
            pairSums.best[l][j] += best;
          });
        }
      }
      for (let p = 0; p < seqLen; p++) {
        if (b.labels[row + p] === IGNORE_INDEX) continue;
        const k = b.difficulty![row + p];
        const columns: number[][] = [];
        let at = vocab[b.inputIds[row + p]][0]; // the query token "xK" starts at x
        for (let j = 0; j < k; j++) {
          columns.push([pairAt.get(at)!]);
          at = next.get(at)!;
        }
        columns.push([...pairAt.values()]);
        if (!sums.has(k)) sums.set(k, { n: 0, mean: Array.from({ length: L }, () => new Array(k + 1).fill(0)), best: Array.from({ length: L }, () => new Array(k + 1).fill(0)) });
        const s = sums.get(k)!;
        s.n++;
        for (let l = 0; l < L; l++) {
          columns.forEach((cs, j) => {
            let sum = 0, best = 0;
            for (let h = 0; h < H; h++) {
              let a = 0;
              for (const c of cs) a += probs[l][((r * H + h) * seqLen + p) * seqLen + c];
              sum += a;
              best = Math.max(best, a);
            }
            s.mean[l][j] += sum / H;
            s.best[l][j] += best;
          });
        }
      }
    }
  }
  layers.forEach((layer) => (layer.attention.watch = null));
  const byHops = [...sums.entries()].sort((a, b) => a[0] - b[0]).map(([hops, s]) => ({
    hops, queries: s.n, meanHead: s.mean.map((row) => row.map((v) => v / s.n)), bestHead: s.best.map((row) => row.map((v) => v / s.n)),
  }));
  const pairs = { pairs: pairSums.n, meanHead: pairSums.mean.map((row) => row.map((v) => v / pairSums.n)), bestHead: pairSums.best.map((row) => row.map((v) => v / pairSums.n)) };
  return { run: runDir, corpus, layers: L, layerDistance: layerDistances(layers), byHops, pairs };
}

function main(): void {
  const argv = process.argv.slice(2);
  const o = argv.indexOf('--out');
  const out = o >= 0 ? argv[o + 1] : undefined;
  const runs = argv.filter((_, i) => o < 0 || (i !== o && i !== o + 1));
  if (runs.length === 0) {
    console.error('usage: node --import tsx scripts/depth-attention.ts RUN_DIR [RUN_DIR ...] [--out FILE.json]');
    process.exitCode = 2;
    return;
  }
  const results = runs.map(analyse);
  for (const r of results) {
    console.log(`${r.run} (${r.corpus})`);
    console.log(`  adjacent layers' weight distance ||W_l - W_l+1|| / ||W_l||: ${r.layerDistance.map((d) => d.toFixed(3)).join(' ')}`);
    for (const h of r.byHops) {
      console.log(`  ${h.hops} hop${h.hops > 1 ? 's' : ''} (${h.queries} queries): attention from the query onto [step 1..${h.hops}'s pair, all pairs] — head mean (best head)`);
      h.meanHead.forEach((row, l) => console.log(`    layer ${String(l).padStart(2)}: ${row.map((v, j) => `${v.toFixed(2)} (${h.bestHead[l][j].toFixed(2)})`).join('  ')}`));
    }
  }
  for (const r of results) {
    console.log(`${r.run}: attention from each pair onto [its successor pair, the one after] — head mean (best head)`);
    r.pairs.meanHead.forEach((row, l) => console.log(`    layer ${String(l).padStart(2)}: ${row.map((v, j) => `${v.toFixed(2)} (${r.pairs.bestHead[l][j].toFixed(2)})`).join('  ')}`));
  }
  if (out) fs.writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
}

main();
