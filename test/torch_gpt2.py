"""PyTorch side of test/gpt.test.ts: GPT-2 in plain PyTorch (no `transformers`).

Usage: torch_gpt2.py DIR [DIR ...] (one torch import for several cases). Each
DIR holds what untie wrote: model.safetensors and config.json in Hugging
Face's GPT2LMHeadModel layout (Conv1D weights stored (in, out), Q, K and V
fused into c_attn, lm_head tied to wte), and inputs.safetensors (input_ids,
labels; -100 where a position has no target). This computes GPT-2's
next-token loss from those files alone, as GPT2LMHeadModel does with the
labels already shifted (every tensor in the file must be one it uses, and
every weight it uses must come from the file), and writes DIR/grads.safetensors (every gradient,
under the same names) and DIR/torch.json (the loss).

It reads and writes safetensors by hand (the `safetensors` package may be
missing): u64 header length, JSON header, little-endian row-major data.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = bytearray(raw[8 + n:])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        t = torch.frombuffer(data[start:end], dtype=DTYPES[meta["dtype"]]) if end > start else torch.empty(0, dtype=DTYPES[meta["dtype"]])
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def gpt2_loss(P, cfg, input_ids, labels):
    """GPT2LMHeadModel's forward in eval mode: Pre-LN blocks, causal attention, ln_f, logits = h wte^T."""
    B, T = input_ids.shape
    C, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    D = C // H
    act = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}[cfg["activation_function"]]

    def ln(name, x):
        return F.layer_norm(x, (C,), P[name + ".weight"], P[name + ".bias"], eps)

    def conv1d(name, x):  # GPT-2's Conv1D: x W + b with W stored (in, out)
        return x @ P[name + ".weight"] + P[name + ".bias"]

    x = P["transformer.wte.weight"][input_ids] + P["transformer.wpe.weight"][torch.arange(T)]
    future = ~torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        q, k, v = conv1d(p + "attn.c_attn", ln(p + "ln_1", x)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
        context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(p + "attn.c_proj", context)
        x = x + conv1d(p + "mlp.c_proj", act(conv1d(p + "mlp.c_fc", ln(p + "ln_2", x))))
    logits = ln("transformer.ln_f", x) @ P["transformer.wte.weight"].T
    return F.cross_entropy(logits.reshape(B * T, -1), labels.reshape(-1), ignore_index=-100)


def main(d):
    torch.set_num_threads(1)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"], cfg
    P = {k: v.requires_grad_(True) for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
    inputs = read_safetensors(os.path.join(d, "inputs.safetensors"))
    loss = gpt2_loss(P, cfg, inputs["input_ids"].long(), inputs["labels"].long())
    loss.backward()
    unused = [k for k, v in P.items() if v.grad is None]
    assert not unused, f"tensors in the file that GPT-2 does not use: {unused}"
    write_safetensors(os.path.join(d, "grads.safetensors"), {k: v.grad if v.grad is not None else torch.zeros_like(v) for k, v in P.items()})
    with open(os.path.join(d, "torch.json"), "w") as f:
        json.dump({"loss": loss.item(), "torch_version": torch.__version__}, f)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
