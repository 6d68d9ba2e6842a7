"""BERT for masked LM in plain PyTorch (no `transformers`), mirroring untie's
src/models/bert.ts: Hugging Face parameter names, Post-LN (or Pre-LN), exact
(erf) GELU, additive key mask, MLM decoder tied to the word embeddings.

Used two ways:
- imported by test/torch_parity.py, which loads untie's weights and compares
  loss and gradients;
- run as a script by bench/engine.ts, which times one training step
  (forward, backward, AdamW) at a given thread count and prints one JSON line.

Parameters are a dict name -> tensor, and the model is a function of them,
so the same code serves a loaded checkpoint and a freshly initialised one.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def param_shapes(cfg):
    """(name, shape) for every parameter, in untie's registration order."""
    C, I, V = cfg["hidden"], cfg["intermediate"], cfg["vocabSize"]
    out = [
        ("bert.embeddings.word_embeddings.weight", (V, C)),
        ("bert.embeddings.position_embeddings.weight", (cfg["maxPositions"], C)),
        ("bert.embeddings.token_type_embeddings.weight", (cfg["typeVocabSize"], C)),
        ("bert.embeddings.LayerNorm.weight", (C,)),
        ("bert.embeddings.LayerNorm.bias", (C,)),
    ]
    for i in range(cfg["layers"]):
        p = f"bert.encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            out += [(p + f"attention.self.{proj}.weight", (C, C)), (p + f"attention.self.{proj}.bias", (C,))]
        out += [
            (p + "attention.output.dense.weight", (C, C)), (p + "attention.output.dense.bias", (C,)),
            (p + "attention.output.LayerNorm.weight", (C,)), (p + "attention.output.LayerNorm.bias", (C,)),
            (p + "intermediate.dense.weight", (I, C)), (p + "intermediate.dense.bias", (I,)),
            (p + "output.dense.weight", (C, I)), (p + "output.dense.bias", (C,)),
            (p + "output.LayerNorm.weight", (C,)), (p + "output.LayerNorm.bias", (C,)),
        ]
    if cfg.get("norm", "post") == "pre":
        out += [("bert.encoder.final_layer_norm.weight", (C,)), ("bert.encoder.final_layer_norm.bias", (C,))]
    out += [
        ("cls.predictions.transform.dense.weight", (C, C)), ("cls.predictions.transform.dense.bias", (C,)),
        ("cls.predictions.transform.LayerNorm.weight", (C,)), ("cls.predictions.transform.LayerNorm.bias", (C,)),
        ("cls.predictions.bias", (V,)),
    ]
    return out


def init_params(cfg, seed=0):
    """BERT's init: N(0, initStd) for matrices and embeddings, LayerNorm 1/0, biases 0."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg):
        if "LayerNorm" in name or "layer_norm" in name:
            t = torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
        elif name.endswith("bias"):
            t = torch.zeros(shape)
        else:
            t = torch.randn(shape, generator=g) * cfg.get("initStd", 0.02)
        params[name] = t.requires_grad_(True)
    return params


def _ln(P, prefix, x, eps):
    return F.layer_norm(x, (x.shape[-1],), P[prefix + ".weight"], P[prefix + ".bias"], eps)


def _lin(P, prefix, x):
    return F.linear(x, P[prefix + ".weight"], P[prefix + ".bias"])


def _attention(P, p, x, key_mask, cfg, training):
    B, T, C = x.shape
    H = cfg["heads"]
    D = C // H

    def split(t):
        return t.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)

    q = split(_lin(P, p + "attention.self.query", x))
    k = split(_lin(P, p + "attention.self.key", x))
    v = split(_lin(P, p + "attention.self.value", x))
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + key_mask
    probs = F.dropout(torch.softmax(scores, dim=-1), cfg["attentionDropout"], training)
    context = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, C)
    return _lin(P, p + "attention.output.dense", context)


def _layer(P, i, x, key_mask, cfg, training):
    p = f"bert.encoder.layer.{i}."
    eps, drop = cfg["layerNormEps"], cfg["dropout"]

    def ffn(h):
        return _lin(P, p + "output.dense", F.gelu(_lin(P, p + "intermediate.dense", h)))

    if cfg.get("norm", "post") == "post":
        h = _ln(P, p + "attention.output.LayerNorm", x + F.dropout(_attention(P, p, x, key_mask, cfg, training), drop, training), eps)
        return _ln(P, p + "output.LayerNorm", h + F.dropout(ffn(h), drop, training), eps)
    h = x + F.dropout(_attention(P, p, _ln(P, p + "attention.output.LayerNorm", x, eps), key_mask, cfg, training), drop, training)
    return h + F.dropout(ffn(_ln(P, p + "output.LayerNorm", h, eps)), drop, training)


def mlm_loss(P, cfg, input_ids, token_type_ids, attention_mask, labels, gather=True, training=True):
    """Mean cross-entropy over the masked positions (labels != -100).

    gather=True projects only the masked positions onto the vocab (as untie
    does); gather=False projects every position and lets ignore_index drop
    the rest (as Hugging Face does). Both give the same loss and gradients.
    """
    B, T = input_ids.shape
    C, eps = cfg["hidden"], cfg["layerNormEps"]
    positions = torch.arange(T).unsqueeze(0).expand(B, T)
    x = (F.embedding(input_ids, P["bert.embeddings.word_embeddings.weight"])
         + F.embedding(positions, P["bert.embeddings.position_embeddings.weight"])
         + F.embedding(token_type_ids, P["bert.embeddings.token_type_embeddings.weight"]))
    x = F.dropout(_ln(P, "bert.embeddings.LayerNorm", x, eps), cfg["dropout"], training)
    # Same additive key mask as untie: 0 where attended, -1e9 on padding.
    key_mask = torch.where(attention_mask > 0, 0.0, -1e9).to(torch.float32).view(B, 1, 1, T)
    for i in range(cfg["layers"]):
        x = _layer(P, i, x, key_mask, cfg, training)
    if cfg.get("norm", "post") == "pre":
        x = _ln(P, "bert.encoder.final_layer_norm", x, eps)
    flat_labels = labels.reshape(-1)
    h = x.reshape(-1, C)
    if gather:
        sel = (flat_labels != -100).nonzero().squeeze(1)
        h, flat_labels = h.index_select(0, sel), flat_labels.index_select(0, sel)
    h = _ln(P, "cls.predictions.transform.LayerNorm", F.gelu(_lin(P, "cls.predictions.transform.dense", h)), eps)
    logits = F.linear(h, P["bert.embeddings.word_embeddings.weight"], P["cls.predictions.bias"])
    return F.cross_entropy(logits, flat_labels, ignore_index=-100)


def random_batch(cfg, batch, seq, mask_prob, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, cfg["vocabSize"], (batch, seq), generator=g)
    tt = torch.zeros(batch, seq, dtype=torch.long)
    am = torch.ones(batch, seq)
    chosen = torch.rand(batch, seq, generator=g) < mask_prob
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return ids, tt, am, labels


def decays(name):
    """BERT's rule, as untie's optim: no weight decay on biases and LayerNorm."""
    return not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name.lower())


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.loads(args.config)
    P = init_params(cfg, seed=1)
    groups = [
        {"params": [t for n, t in P.items() if decays(n)], "weight_decay": 0.01},
        {"params": [t for n, t in P.items() if not decays(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.999), eps=1e-6)
    ids, tt, am, labels = random_batch(cfg, args.batch, args.seq, args.mask_prob, seed=2)
    times, cpu = [], []
    for i in range(args.warmup + args.steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        # --bf16: PyTorch's mixed precision recipe on CPU (autocast to bfloat16; float32 weights and optimizer).
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = mlm_loss(P, cfg, ids, tt, am, labels, gather=True, training=True)
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1000
        dc = (time.process_time() - c0) * 1000
        if i >= args.warmup:
            times.append(dt)
            cpu.append(dc)
    print(json.dumps({
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "bf16": args.bf16,
        "step_ms_median": statistics.median(times),
        "step_ms": times,
        "cpu_ms_median": statistics.median(cpu),
        "loss": float(loss),
    }))


def main(argv):
    ap = argparse.ArgumentParser(description="Time one BERT MLM training step in plain PyTorch.")
    ap.add_argument("--config", required=True, help="untie BertConfig as JSON")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--mask-prob", type=float, default=0.15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="run forward and backward under CPU autocast to bfloat16")
    bench(ap.parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
