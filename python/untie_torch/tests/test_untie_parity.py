"""untie and untie_torch on the same tiny BERT, weights and batches: the same
check cosines (within 1e-4) and the same untie step."""
import os

import torch

from tiny_bert import BertForMaskedLM, default_config, random_batches
from untie_torch import SharingController, parse_criterion, read_metrics
from untie_torch.crossover import adamw_param_groups, learning_rate
from untie_torch.safetensors_io import read_safetensors
from untie_side import run_reference, write_batches

COSINE_ATOL = 1e-4


def torch_run(config, weights, batches, spec, metrics):
    model = BertForMaskedLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name])
    criterion = parse_criterion(spec["untie"], spec["steps"], threshold=spec["threshold"], patience=spec["patience"],
                                every=spec["every"], untie_by=spec["untieBy"])
    sharing = SharingController(model, criterion, share=spec["share"], metrics=metrics)
    opt = torch.optim.AdamW(adamw_param_groups(model, 0.01), lr=spec["lr"], betas=(0.9, 0.999), eps=1e-6)
    for step, (ids, types, mask, labels) in enumerate(batches[:spec["steps"]]):
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, spec["lr"], spec["warmupSteps"], spec["steps"])
        opt.zero_grad(set_to_none=True)
        model(ids, types, mask, labels).backward()
        sharing.before_update(step, step / spec["steps"])
        sharing.clip_grad_norm_(model.parameters(), spec["clip"])
        opt.step()
        sharing.after_update(step, opt, (step + 1) / spec["steps"])
    return model


def cosines(records):
    return [(r["step"], p["a"], p["b"], p["cosine"]) for r in records if r["type"] == "sharing_check" for p in r["pairs"]]


def assert_same_decisions(ours, theirs):
    a, b = cosines(ours), cosines(theirs)
    assert [x[:3] for x in a] == [x[:3] for x in b], "the checks differ in step or pairs"
    worst = max(abs(x[3] - y[3]) for x, y in zip(a, b))
    assert worst <= COSINE_ATOL, f"check cosines differ by {worst}"
    untie = lambda rs: [(r["type"], r["step"], r.get("reason"), r["groups"]) for r in rs if r["type"] in ("untie", "split")]  # noqa: E731
    assert untie(ours) == untie(theirs)
    return worst


def test_same_cosines_and_untie_step_as_untie(tmp_path):
    config = default_config(layers=4, hidden=32, heads=4, intermediate=64, vocabSize=64, maxPositions=16)
    batches = random_batches(config, 24, batch=8, seq=16, seed=3)
    write_batches(str(tmp_path / "batches.safetensors"), batches)
    spec = dict(config=config, seed=5, share="1x4", untie="adaptive", threshold=0.9968, patience=2, every=2, untieBy=0,
                steps=24, lr=3e-3, warmupSteps=2, clip=1.0, batches=str(tmp_path / "batches.safetensors"), out=str(tmp_path / "untie"))
    run_reference(spec, str(tmp_path))
    weights, _ = read_safetensors(str(tmp_path / "untie" / "model.safetensors"))
    torch_run(config, weights, batches, spec, str(tmp_path / "torch.jsonl"))
    theirs = read_metrics(str(tmp_path / "untie" / "metrics.jsonl"))
    ours = read_metrics(str(tmp_path / "torch.jsonl"))
    worst = assert_same_decisions(ours, theirs)
    print(f"worst cosine difference {worst:.2e}")
    # At this scale the cosines sit near 0.99; rho = 0.9968 puts 2 or 3 of the 3 pairs below it at the checks after
    # updates 16 and 18 (no check within 2.5e-4 of rho), so SWE-A unties from the correlations, not a deadline.
    untie = [r for r in theirs if r["type"] == "untie"]
    assert [(r["step"], r["reason"]) for r in untie] == [(18, "correlation")]
    margin = min(abs(c[3] - spec["threshold"]) for c in cosines(theirs))
    assert margin > 2 * COSINE_ATOL, f"a check lies within {margin} of rho: the comparison would hinge on rounding"
