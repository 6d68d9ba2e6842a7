"""Helpers that drive untie (node) from the tests: its CLI and the reference loop."""
import json
import os
import shutil
import subprocess

import pytest
import torch

from untie_torch import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
ENV = dict(os.environ, UNTIE_BACKEND=os.environ.get("UNTIE_BACKEND", ""), OPENBLAS_NUM_THREADS="1")


def node():
    exe = shutil.which("node")
    if exe is None or not os.path.exists(os.path.join(REPO, "node_modules", "tsx")):
        pytest.skip("node and untie's node_modules (npm install) are needed to run untie's side")
    return exe


def run_node(args, timeout=600):
    r = subprocess.run([node(), "--import", "tsx", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"untie failed ({' '.join(args)}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return r.stdout


CLI = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })"


def untie_cli(*args):
    """`untie ARGS` from the sources (no build needed)."""
    return run_node(["-e", CLI, *args])


def write_batches(path, batches):
    """(ids, types, mask, labels) per step -> one safetensors file of [steps, batch, seq] tensors, as untie_reference.ts reads it."""
    write_safetensors(path, {
        "input_ids": torch.stack([b[0] for b in batches]).to(torch.int32),
        "token_type_ids": torch.stack([b[1] for b in batches]).to(torch.int32),
        "attention_mask": torch.stack([b[2] for b in batches]).to(torch.float32),
        "labels": torch.stack([b[3] for b in batches]).to(torch.int32),
    })


def read_batches(path):
    from untie_torch import read_safetensors
    t, _ = read_safetensors(path)
    n = t["input_ids"].shape[0]
    return [(t["input_ids"][i].long(), t["token_type_ids"][i].long(), t["attention_mask"][i].float(), t["labels"][i].long()) for i in range(n)]


def run_reference(spec, workdir):
    path = os.path.join(workdir, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    run_node([os.path.join(HERE, "untie_reference.ts"), path])
