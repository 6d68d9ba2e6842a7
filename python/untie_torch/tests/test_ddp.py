"""Under DistributedDataParallel (2 processes on CPU, gloo): tied layers stay
bit-identical on every rank, every rank unties at the same step, and the
records are written once."""
import json
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tiny_bert import BertForMaskedLM, default_config, random_batches
from untie_torch import SharingController, read_metrics

STEPS = 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        c = default_config(layers=4, dropout=0.1, attentionDropout=0.1)
        model = BertForMaskedLM(c, seed=0)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        # Rank-dependent dropout and data: only the all-reduced gradients agree.
        torch.manual_seed(100 + rank)
        sharing = SharingController(ddp, "adaptive", total_steps=100, threshold=0.999, patience=3, every=1,
                                    metrics=os.path.join(out, "metrics.jsonl"))
        sharing.tie_weights()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batches = random_batches(c, STEPS, seed=10 + rank)
        layers = model.bert.encoder.layer
        identical, untied_at = [], None
        for step, (ids, types, mask, labels) in enumerate(batches):
            opt.zero_grad(set_to_none=True)
            ddp(ids, types, mask, labels).backward()
            sharing.before_update(step)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            for r in sharing.after_update(step, opt):
                if r["type"] == "untie":
                    untied_at = r["step"]
            if sharing.tied:
                identical.append(all(torch.equal(p, q) for layer in layers[1:] for p, q in zip(layer.parameters(), layers[0].parameters())))
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump({"identical": identical, "untied_at": untied_at, "groups": sharing.groups,
                       "ranks_equal": all(torch.equal(gathered[0], g) for g in gathered)}, f)
    finally:
        dist.destroy_process_group()


def test_tied_layers_stay_bit_identical_under_ddp(tmp_path):
    out = str(tmp_path)
    mp.spawn(worker, args=(2, free_port(), out), nprocs=2, join=True)
    results = [json.load(open(os.path.join(out, f"rank{r}.json"))) for r in range(2)]
    for r in results:
        assert r["identical"] and all(r["identical"]), "a tied member drifted from its representative"
        assert r["ranks_equal"], "the ranks' weights differ"
        assert r["groups"] == [[0], [1], [2], [3]]
    # threshold 0.999 puts every pair below rho: untie after the third check (update 3), on both ranks
    assert results[0]["untied_at"] == results[1]["untied_at"] == 3
    records = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert [r["type"] for r in records] == ["sharing_check"] * 3 + ["untie"]  # once, not once per rank
