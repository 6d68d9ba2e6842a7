#!/usr/bin/env bash
# The fine-tuning numbers in docs/finetune.md: pos and spam fine-tuned from a
# random encoder (--from-scratch), from a 30-step pre-training run and from
# the default run (`untie train`: tiny preset, 1,000 steps), 3 seeds each,
# beside both reference lines (majority class, bag of words), with the time
# each took. One thread everywhere, one command at a time, as measured.
#
#   bash scripts/finetune-scores.sh [--table] [OUT [LR_GRID]]
#
# --table prints the table from the results already there and trains nothing.
# OUT (default runs) holds the run folders default and steps30 (trained when
# missing); LR_GRID (default 1e-3, the rate the full grid chose before) is
# passed as --lr-grid; pass 1e-4,3e-4,1e-3 for the recipe's whole grid (5
# runs a command instead of 3). A fine-tune whose results folder exists is
# not run again. Prefix with `nice -n 10` on a shared machine.
set -euo pipefail
table_only=false
if [ "${1:-}" = --table ]; then table_only=true; shift; fi
out=${1:-runs}
grid=${2:-1e-3}
cd "$(dirname "$0")/.."
if ! $table_only; then
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -d "$out/steps30/checkpoint-30" ] || npx untie train --threads 1 --name steps30 --steps 30 --out "$out"
  [ -d "$out/default/checkpoint-1000" ] || npx untie train --threads 1 --name default --out "$out"
  for task in spam pos; do
    for encoder in scratch steps30 default; do
      case $encoder in
        scratch) model="$out/default"; flag=--from-scratch; dir="$out/default/finetune-$task-scratch" ;;
        *) model="$out/$encoder"; flag=""; dir="$out/$encoder/finetune-$task" ;;
      esac
      [ -f "$dir/results.json" ] && continue
      echo "== $task from $encoder; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
      npx untie finetune "$model" --task "$task" --threads 1 --lr-grid "$grid" --quiet $flag
    done
  done
fi
node --input-type=module -e '
import fs from "node:fs";
const out = process.argv[1];
const pct = (x) => (100 * x).toFixed(1);
console.log("| task (metric) | encoder | test score, mean ± std (3 seeds) | per seed | majority class | bag of words | updates a run (epochs) | best dev at update | wall s | CPU s |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const task of ["spam", "pos"]) {
  for (const [encoder, dir] of [["random (--from-scratch)", `${out}/default/finetune-${task}-scratch`], ["30-step run", `${out}/steps30/finetune-${task}`], ["default run (1,000 steps)", `${out}/default/finetune-${task}`]]) {
    if (!fs.existsSync(`${dir}/results.json`)) continue;
    const r = JSON.parse(fs.readFileSync(`${dir}/results.json`, "utf8"));
    const acc = (s) => (r.metric === "f1" ? ` (acc. ${pct(s.accuracy)})` : "");
    const meanAcc = r.metric === "f1" ? ` (acc. ${pct(r.runs.reduce((s, x) => s + x.test.accuracy, 0) / r.runs.length)})` : "";
    const best = r.runs.map((x) => `${x.bestStep}${x.stoppedEarly ? "*" : ""}`).join(", ");
    console.log(`| ${task} (${r.metric}) | ${encoder} | ${pct(r.score)} ± ${pct(r.std)}${meanAcc} | ${r.scores.map(pct).join(", ")} | ${pct(r.majority.score)}${acc(r.majority)} | ${pct(r.bow.score)}${acc(r.bow)} | ${r.updatesPerRun} (${r.epochs}) | ${best} | ${r.seconds.toFixed(0)} | ${r.cpuSeconds.toFixed(0)} |`);
  }
}
console.log("\n(*: stopped early, dev not improving for 3 evaluations)");
' "$out"
