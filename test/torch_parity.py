"""PyTorch side of test/torch-parity.test.ts.

Usage: torch_parity.py DIR [DIR ...] (one torch import for several cases). For each DIR, reads DIR/manifest.json (config, parameters and
inputs as raw little-endian float32/int32 files written by untie), computes
the MLM loss with bench/torch_bert.py in float32, projecting every position
onto the vocab and dropping unmasked ones with ignore_index=-100 (untie
projects only the masked positions: same maths, a different code path), and
writes DIR/torch.json with the loss and one raw float32 gradient file per
parameter.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_bert import mlm_loss  # noqa: E402

DTYPES = {"float32": torch.float32, "int32": torch.int32}


def load(d, entry):
    with open(os.path.join(d, entry["file"]), "rb") as f:
        raw = bytearray(f.read())
    t = torch.frombuffer(raw, dtype=DTYPES[entry["dtype"]]) if raw else torch.empty(0, dtype=DTYPES[entry["dtype"]])
    return t.reshape(entry["shape"]).clone()


def main(d):
    torch.set_num_threads(1)
    with open(os.path.join(d, "manifest.json")) as f:
        man = json.load(f)
    cfg = man["config"]
    P = {p["name"]: load(d, p).requires_grad_(True) for p in man["params"]}
    inp = {k: load(d, v) for k, v in man["inputs"].items()}
    loss = mlm_loss(P, cfg, inp["input_ids"].long(), inp["token_type_ids"].long(),
                    inp["attention_mask"], inp["labels"].long(), gather=False, training=False)
    loss.backward()
    grads = []
    for name, t in P.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        file = "grad." + name + ".f32"
        with open(os.path.join(d, file), "wb") as f:
            f.write(g.detach().contiguous().numpy().astype("<f4").tobytes())
        grads.append({"name": name, "file": file, "shape": list(t.shape)})
    with open(os.path.join(d, "torch.json"), "w") as f:
        json.dump({"loss": loss.item(), "torch_version": torch.__version__, "grads": grads}, f)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
