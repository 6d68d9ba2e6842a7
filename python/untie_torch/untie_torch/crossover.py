"""Crossing over between untie and PyTorch, both ways.

untie -> torch: `untie export RUN/checkpoint-N OUT --sharing` writes the
Hugging Face folder (model.safetensors, config.json, tokenizer) plus
  optimizer.safetensors  "<param>.exp_avg", "<param>.exp_avg_sq" for every
                         parameter with optimizer state (a tied group's
                         state lives on its first member, as here)
  untie_state.json       format "untie-sharing" v1: step, the stack's name
                         prefix, sharing {groups, criterion state}, the
                         criterion's settings, sharedGrad, untieOptimizer,
                         the optimizer's settings and per-parameter step
                         counts, the learning-rate schedule (the
                         checkpoint's own: an --extend-to's where the run was
                         lengthened), clip, and untie's own trainer fields
                         (dropout RNG, data position, the resolved schedule,
                         ...) to carry back.
load_untie_export() reads it into a torch model and optimizer and builds the
controller, so the run goes on with the same groups, streaks and check marks.

torch -> untie: save_untie_checkpoint() writes RUN/checkpoint-M in untie's
checkpoint layout (model.safetensors and optimizer.safetensors by untie's
names, trainer_state.json, config.json, tokenizer files, checksums.sha256),
which `untie train --resume RUN` continues.
"""
import hashlib
import json
import math
import os
import shutil

import torch

from .controller import SharingController
from .criteria import criterion_from_description
from .errors import UntieError
from .safetensors_io import read_safetensors, write_safetensors

FORMAT = "untie-sharing"
VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def decays(name):
    """BERT's (and untie's) rule: no weight decay on biases and LayerNorm parameters."""
    low = name.lower()
    return not (name.endswith("bias") or "layernorm" in low or "layer_norm" in low)


def adamw_param_groups(model, weight_decay):
    """AdamW parameter groups with untie's decay rule (every parameter, tied members included)."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if decays(n)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if not decays(n)], "weight_decay": 0.0}]


def learning_rate(step, lr, warmup_steps, total_steps, kind="linear"):
    """untie's schedule (src/optim/schedule.ts) for 0-based update `step`."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if kind == "constant":
        return lr
    remaining = max(0, total_steps - step)
    span = max(1, total_steps - warmup_steps)
    left = min(1, remaining / span)
    return lr * 0.5 * (1 - math.cos(math.pi * left)) if kind == "cosine" else lr * left


class UntieExport:
    """What load_untie_export read: the step, the run's settings, and a controller builder."""

    def __init__(self, folder, state):
        self.folder, self.state = folder, state
        self.step = state["step"]
        self.schedule = state["schedule"]
        self.optimizer_config = state["optimizer"]
        self.clip, self.clip_basis = state.get("clip", 0.0), state.get("clipBasis", "update")
        self.shared_grad, self.untie_optimizer = state["sharedGrad"], state["untieOptimizer"]
        self.stack = state["stack"]

    def controller(self, model, metrics=None, **kw):
        """A SharingController in the exported state (groups, criterion streaks, check marks); metrics resumes at the export's step."""
        criterion = criterion_from_description(self.state["criterion"])
        c = SharingController(model, criterion, share=self.state["sharing"]["groups"], layers=self.stack,
                              shared_grad=self.shared_grad, untie_optimizer=self.untie_optimizer, metrics=metrics,
                              resume_step=self.step, **kw)
        c.load_state_dict(self.state["sharing"])
        return c

    def learning_rate(self, step):
        s = self.schedule
        return learning_rate(step, s["lr"], s["warmupSteps"], s["totalSteps"], s["kind"])

    def make_optimizer(self, model):
        """torch.optim.AdamW with the run's settings and untie's decay rule (load the state with load_optimizer_state)."""
        o = self.optimizer_config
        if o["kind"] != "adamw":
            raise UntieError(f'the run used {o["kind"]}; untie_torch builds AdamW only: make that optimizer yourself and load its state')
        return torch.optim.AdamW(adamw_param_groups(model, o["weightDecay"]), lr=self.schedule["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])


def _named(model, name_map):
    model = model.module if hasattr(model, "module") and isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    return [((name_map(n) if name_map else n), p) for n, p in model.named_parameters()]


def load_untie_export(folder, model, optimizer=None, name_map=None):
    """Loads an `untie export --sharing` folder into `model` (and `optimizer`'s state when given).

    Every parameter of `model` (after name_map, which maps a torch name to
    untie's Hugging Face name) must be in model.safetensors with its shape.
    Returns an UntieExport (step, schedule, controller(...), make_optimizer(...)).
    """
    path = os.path.join(folder, "untie_state.json")
    if not os.path.exists(path):
        raise UntieError(f"{folder} has no untie_state.json: export the checkpoint with `untie export CHECKPOINT {folder} --sharing`")
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise UntieError(f'{path} is not an untie sharing export of version {VERSION} (format {state.get("format")!r}, version {state.get("version")!r})')
    weights, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    with torch.no_grad():
        for name, p in _named(model, name_map):
            if name not in weights:
                raise UntieError(f'{folder}/model.safetensors has no "{name}": the model is not the exported one (or pass name_map)')
            src = weights[name]
            if tuple(src.shape) != tuple(p.shape):
                raise UntieError(f'{folder}/model.safetensors: "{name}" has shape {list(src.shape)}, the model {list(p.shape)}')
            p.copy_(src.to(p.dtype))
    info = UntieExport(folder, state)
    if optimizer is not None:
        load_optimizer_state(info, model, optimizer, name_map)
    return info


def load_optimizer_state(info, model, optimizer, name_map=None):
    """Puts the export's moments and step counts into a torch Adam/AdamW's state, by parameter."""
    moments, _ = read_safetensors(os.path.join(info.folder, "optimizer.safetensors"))
    steps = info.optimizer_config["steps"]
    named = dict(_named(model, name_map))
    for name in steps:
        if name not in named:
            raise UntieError(f'the export has optimizer state for "{name}", which the model does not have')
    for name, n in steps.items():
        p = named[name]
        m, v = moments.get(f"{name}.exp_avg"), moments.get(f"{name}.exp_avg_sq")
        if m is None or v is None:
            raise UntieError(f'{info.folder}/optimizer.safetensors lacks the state of "{name}"')
        # torch >= 1.12 keeps Adam's step as a float tensor
        optimizer.state[p] = {"step": torch.tensor(float(n)), "exp_avg": m.to(p.device, p.dtype).reshape(p.shape).clone(),
                              "exp_avg_sq": v.to(p.device, p.dtype).reshape(p.shape).clone()}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_untie_checkpoint(run_dir, step, model, optimizer, controller, export, skip_batches=None, elapsed=None, name_map=None):
    """Writes run_dir/checkpoint-<step> in untie's layout, for `untie train --resume run_dir`.

    `export` is the UntieExport the torch run started from (untie's run
    config, tokenizer and trainer fields come from it). run_dir must be the
    untie run folder (its config.json and tokenizer). skip_batches: how many
    of untie's training batches the torch run consumed since the export
    (default: step - export.step, i.e. it trained on untie's own stream);
    the resumed untie run skips that many, so it goes on where torch stopped.
    Call on one rank only.
    """
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        raise UntieError(f"{run_dir} is not an untie run folder (no config.json): write the checkpoint into the run the export came from")
    expected, _ = read_safetensors(os.path.join(export.folder, "model.safetensors"))
    named = dict(_named(model, name_map))
    tensors = {}
    for name, ref in expected.items():
        if name not in named:
            continue  # a tensor Hugging Face keeps that untie's model does not train (none for untie's own export)
        tensors[name] = named[name].detach().float()
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise UntieError(f"the torch model lacks {missing[:3]} of the exported model's tensors (pass name_map)")
    moments, steps = {}, {}
    for name in tensors:
        st = optimizer.state.get(named[name])
        if not st:
            continue
        s = st["step"]
        steps[name] = int(s.item() if torch.is_tensor(s) else s)
        moments[f"{name}.exp_avg"] = st["exp_avg"].float()
        moments[f"{name}.exp_avg_sq"] = st["exp_avg_sq"].float()
    trainer = dict(export.state.get("trainer", {}))
    consumed = step - export.step if skip_batches is None else skip_batches
    data = trainer.pop("data", None)
    state = {
        "step": step,
        "dropoutRng": trainer.pop("dropoutRng", None),
        "data": {"untieTorch": {"from": data, "batches": consumed}} if consumed else data,
        "sharing": controller.state_dict(),
        "optimizerSteps": steps,
        "bestValLoss": trainer.pop("bestValLoss", None),
        "elapsed": elapsed if elapsed is not None else trainer.pop("elapsed", 0),
        **{k: v for k, v in trainer.items() if k not in ("elapsed",)},
    }
    final = os.path.join(run_dir, f"checkpoint-{step}")
    tmp = os.path.join(run_dir, f".tmp-checkpoint-{step}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        write_safetensors(os.path.join(tmp, "model.safetensors"), tensors)
        write_safetensors(os.path.join(tmp, "optimizer.safetensors"), moments)
        with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
            f.write("\n")
        for name in ("config.json",) + TOKENIZER_FILES:
            src = os.path.join(export.folder, name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(tmp, name))
        lines = [f"{_sha256(os.path.join(tmp, n))}  {n}\n" for n in sorted(os.listdir(tmp))]
        with open(os.path.join(tmp, "checksums.sha256"), "w", encoding="utf-8") as f:
            f.writelines(lines)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
