"""A run crossing over: untie trains to step 8, `untie export --sharing`
hands it to untie_torch, which goes on; and back, untie_torch's checkpoint
is continued by `untie train --resume`. Both untie at the step, and with the
check cosines, of the run that stayed in untie."""
import os
import random
import shutil

from tiny_bert import BertForMaskedLM, config_from_hf
from untie_torch import load_untie_export, read_metrics, save_untie_checkpoint
from untie_side import read_batches, untie_cli
from test_untie_parity import assert_same_decisions

EXPORT_AT, STEPS = 8, 24
# lr 0.01 spreads the tiny model's adjacent-layer cosines over 0.95-0.99 by step 20; with rho = 0.98 and C = 2,
# SWE-A unties at update 22 from the correlations (every check lies more than 1e-3 from rho).
# --norm post and --bias on: what `untie export --sharing` exports, said here rather than left to the presets' defaults.
TRAIN = ["--steps", str(STEPS), "--norm", "post", "--bias", "on", "--layers", "4", "--hidden", "32", "--heads", "4", "--intermediate", "64", "--seq-len", "32",
         "--max-positions", "32", "--vocab-size", "120", "--batch-size", "8", "--dropout", "0", "--lr", "0.01", "--warmup", "2",
         "--untie", "adaptive", "--untie-threshold", "0.98", "--untie-patience", "2", "--check-every", "2", "--untie-by", "0",
         "--save-every", "8", "--keep-last", "5", "--eval-every", "0", "--eval-batches", "1", "--threads", "1", "--quiet"]


def corpus(path):
    r = random.Random(0)
    words = ("the a cat dog sat ran on under mat house big small red blue green quickly slowly and but because when then there "
             "here it he she they we you saw found made took gave old new good bad first last long short man woman child day night "
             "year time way world life hand part place case week point").split()
    with open(path, "w") as f:
        for _ in range(1500):
            f.write(" ".join(r.choice(words) for _ in range(r.randint(6, 14))) + ".\n")


def continue_in_torch(export, steps, metrics):
    """Trains from the export as untie's trainer would, on the exported batches; returns model, optimizer, controller."""
    config = config_from_hf(os.path.join(export, "config.json"))
    model = BertForMaskedLM(config)
    info = load_untie_export(export, model)
    opt = info.make_optimizer(model)
    load_untie_export(export, model, opt)
    sharing = info.controller(model, metrics=metrics)
    batches = read_batches(os.path.join(export, "batches.safetensors"))
    for i, (ids, types, mask, labels) in enumerate(batches[:steps]):
        step = info.step + i
        for g in opt.param_groups:
            g["lr"] = info.learning_rate(step)
        opt.zero_grad(set_to_none=True)
        model(ids, types, mask, labels).backward()
        sharing.before_update(step, step / info.schedule["totalSteps"])
        sharing.clip_grad_norm_(model.parameters(), info.clip, info.clip_basis)
        opt.step()
        sharing.after_update(step, opt, (step + 1) / info.schedule["totalSteps"])
    return model, opt, sharing, info


def test_export_midway_continues_in_torch_and_back(tmp_path):
    root = str(tmp_path)
    corpus(os.path.join(root, "corpus.txt"))
    runs = os.path.join(root, "runs")
    untie_cli("train", "--corpus", os.path.join(root, "corpus.txt"), "--out", runs, "--name", "ref", *TRAIN)
    ref = read_metrics(os.path.join(runs, "ref", "metrics.jsonl"))
    assert [(r["step"], r["reason"]) for r in ref if r["type"] == "untie"] == [(22, "correlation")]
    margin = min(abs(p["cosine"] - 0.98) for r in ref if r["type"] == "sharing_check" for p in r["pairs"])
    assert margin > 1e-3

    # untie -> torch at step 8: the rest of the run in PyTorch, on the run's own batches
    export = os.path.join(root, "export")
    untie_cli("export", os.path.join(runs, "ref", f"checkpoint-{EXPORT_AT}"), export, "--sharing", "--batches", str(STEPS - EXPORT_AT))
    shutil.copyfile(os.path.join(runs, "ref", "metrics.jsonl"), os.path.join(root, "torch.jsonl"))
    continue_in_torch(export, STEPS - EXPORT_AT, os.path.join(root, "torch.jsonl"))
    ours = read_metrics(os.path.join(root, "torch.jsonl"))
    assert [r["step"] for r in ours if r["type"] == "sharing_check"] == list(range(2, 23, 2))  # none once untied
    worst = assert_same_decisions([r for r in ours if r["step"] > EXPORT_AT], [r for r in ref if r["step"] > EXPORT_AT and r["type"] != "train"])
    print(f"untie -> torch: worst cosine difference {worst:.2e}")

    # and back: torch trains 8 -> 16 and writes checkpoint-16 into the run; untie --resume finishes it
    cross = os.path.join(runs, "cross")
    shutil.copytree(os.path.join(runs, "ref"), cross)
    for step in (16, 24):
        shutil.rmtree(os.path.join(cross, f"checkpoint-{step}"))
    model, opt, sharing, info = continue_in_torch(export, 16 - EXPORT_AT, os.path.join(cross, "metrics.jsonl"))
    save_untie_checkpoint(cross, 16, model, opt, sharing, info)  # it trained on the run's batches 8..16: the resumed run skips them
    untie_cli("train", "--resume", cross, "--threads", "1", "--quiet")
    back = read_metrics(os.path.join(cross, "metrics.jsonl"))
    worst = assert_same_decisions([r for r in back if r["type"] != "train"], [r for r in ref if r["type"] != "train"])
    print(f"torch -> untie: worst cosine difference {worst:.2e}")
