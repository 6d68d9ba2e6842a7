"""Share, then untie, a tiny BERT under DistributedDataParallel.

    torchrun --nproc_per_node 2 python/untie_torch/examples/train_ddp.py --out runs/ddp     # CPU, gloo
    torchrun --nproc_per_node 8 .../train_ddp.py --backend nccl --hidden 768 --layers 12 ...  # GPUs

Each rank trains on its own random-token MLM batches; DDP averages the
gradients, untie_torch ties the layers (1x<layers>), measures adjacent-layer
gradient cosines every --check-every steps and unties by SWE-A (or
--untie step:N, multi, never), deciding on rank 0 and logging to
OUT/metrics.jsonl once. --from EXPORT continues an `untie export --sharing`
folder instead of starting fresh (on its batches.safetensors when present).
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tiny_bert import BertForMaskedLM, config_from_hf, default_config, random_batches  # noqa: E402
from untie_torch import SharingController, load_untie_export, read_safetensors  # noqa: E402
from untie_torch.crossover import adamw_param_groups, learning_rate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/ddp")
    ap.add_argument("--backend", default="gloo")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--untie", default="adaptive")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--check-every", type=int, default=2)
    ap.add_argument("--from", dest="source", default=None, help="an `untie export --sharing` folder to continue")
    args = ap.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if args.backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.set_num_threads(1)
    metrics = os.path.join(args.out, "metrics.jsonl")

    if args.source:
        config = config_from_hf(os.path.join(args.source, "config.json"))
        model = BertForMaskedLM(config).to(device)
        info = load_untie_export(args.source, model)
        opt = info.make_optimizer(model)
        load_untie_export(args.source, model, opt)
        sharing = info.controller(model, metrics=metrics)
        start, total = info.step, info.schedule["totalSteps"]
        lr_at = info.learning_rate
        clip, basis = info.clip, info.clip_basis
        path = os.path.join(args.source, "batches.safetensors")
        if os.path.exists(path):
            t, _ = read_safetensors(path)
            batches = [tuple(t[k][i] for k in ("input_ids", "token_type_ids", "attention_mask", "labels")) for i in range(t["input_ids"].shape[0])]
            batches = [(a.long(), b.long(), c.float(), d.long()) for a, b, c, d in batches]
        else:
            batches = random_batches(config, total - start, batch=args.batch_size, seq=32, seed=rank)
    else:
        config = default_config(layers=args.layers, hidden=args.hidden, heads=4, intermediate=4 * args.hidden, vocabSize=128, maxPositions=32)
        model = BertForMaskedLM(config, seed=0).to(device)
        opt = torch.optim.AdamW(adamw_param_groups(model, 0.01), lr=args.lr, eps=1e-6)
        sharing = SharingController(model, args.untie, total_steps=args.steps, threshold=args.threshold, every=args.check_every, metrics=metrics)
        sharing.tie_weights()
        start, total = 0, args.steps
        lr_at = lambda s: learning_rate(s, args.lr, max(1, args.steps // 10), args.steps)  # noqa: E731
        clip, basis = 1.0, "update"
        batches = random_batches(config, total, batch=args.batch_size, seq=32, seed=rank)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    began = time.time()
    for i, batch in enumerate(batches[: total - start]):
        step = start + i
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss = ddp(*(x.to(device) for x in batch))
        loss.backward()
        sharing.before_update(step, step / total)
        sharing.clip_grad_norm_(model.parameters(), clip, basis)
        opt.step()
        for record in sharing.after_update(step, opt, (step + 1) / total):
            if rank == 0 and record["type"] != "sharing_check":
                print(f"step {record['step']}: {record['type']} ({record.get('reason')}) -> {record['description']}", flush=True)
        if rank == 0 and (step + 1) % 10 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f} ({world} ranks, {time.time() - began:.1f} s)", flush=True)
    if rank == 0:
        print(f"done: groups {sharing.groups}; records in {metrics}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
