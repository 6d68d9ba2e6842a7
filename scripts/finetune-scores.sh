#!/usr/bin/env bash
# The downstream numbers in the README: pre-train the default run (tiny
# preset, 1,000 steps), then fine-tune it on pos and spam, against the same
# shape trained from scratch and against frozen-encoder probes (of the
# pre-trained and of a random encoder); print a
# table (mean ± std over 3 seeds on the test split, the majority-class
# baseline, wall-clock and CPU seconds). One thread everywhere, as measured.
#
#   bash scripts/finetune-scores.sh [OUT [CHECKPOINT]]
#
# OUT (default runs) holds the run folder ft-base; CHECKPOINT (default: the
# run's newest, checkpoint-1000) picks another of its checkpoints, e.g.
# checkpoint-500. --from-scratch uses only the run's shape and tokenizer.
set -euo pipefail
out=${1:-runs}
run="$out/ft-base"
model="$run${2:+/$2}"
cd "$(dirname "$0")/.."
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
if [ ! -d "$run/checkpoint-1000" ]; then
  npx untie train --threads 1 --name ft-base --out "$out"
fi
for task in pos spam; do
  for mode in pretrained from-scratch frozen frozen-from-scratch; do
    flag=""
    [ "$mode" = from-scratch ] && flag=--from-scratch
    [ "$mode" = frozen ] && flag=--frozen
    [ "$mode" = frozen-from-scratch ] && flag="--frozen --from-scratch"
    npx untie finetune "$model" --task "$task" --threads 1 --quiet $flag
  done
done
node --input-type=module -e '
import fs from "node:fs";
const run = process.argv[1];
const dirs = fs.readdirSync(run).filter((d) => d.startsWith("finetune-") && !d.includes(".tmp-")).sort();
const pct = (x) => (100 * x).toFixed(1);
console.log("| task | encoder | test score (mean ± std, 3 seeds) | seeds | lr | majority baseline | wall s | CPU s |");
console.log("|---|---|---|---|---|---|---|---|");
for (const d of dirs) {
  const r = JSON.parse(fs.readFileSync(`${run}/${d}/results.json`, "utf8"));
  const acc = r.metric === "f1" ? ` (accuracy ${pct(r.runs.reduce((s, x) => s + x.test.accuracy, 0) / r.runs.length)})` : "";
  const base = r.metric === "f1" ? `${pct(r.baseline.score)} (accuracy ${pct(r.baseline.accuracy)})` : pct(r.baseline.score);
  console.log(`| ${r.task} (${r.metric}) | ${r.mode} | ${pct(r.score)} ± ${pct(r.std)}${acc} | ${r.scores.map(pct).join(", ")} | ${r.lr} | ${base} | ${r.seconds.toFixed(0)} | ${r.cpuSeconds.toFixed(0)} |`);
}
' "$run"
