"""The sharing controller for PyTorch: untie's src/sharing/controller.ts for
any torch.nn.Module whose repeated layers are a ModuleList (Hugging Face
BERT's bert.encoder.layer, a GPT's transformer.h, a plain stack).

Every layer keeps its own parameters, so each layer's gradient is readable
after an ordinary backward pass; tying is enforced by the update:

    loss.backward()
    sharing.before_update(step)      # measure agreement; the group's mean gradient into its first member
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)   # or sharing.clip_grad_norm_(...)
    optimizer.step()                 # updates each group's first member (the others have no .grad now)
    sharing.after_update(step, optimizer)   # copy it to the members; untie or split when the criterion says
    optimizer.zero_grad()

`step` is the 0-based index of the update. Only each tied group's first
member (its representative) has a .grad when the optimizer steps, so a torch
optimizer keeps one state per group; at untying each new group's first
member gets its own copy of that state (untie_optimizer "copy", the default),
that copy with the moments rescaled to the layer's own gradient ("rescale"),
or nothing ("reset"). Groups that do not split keep their state.

Under DistributedDataParallel the gradients are already all-reduced when
before_update runs, so every rank measures the same statistics; the decision
(and the criterion's state) is still broadcast from rank 0, and only rank 0
writes metrics.jsonl.
"""
import copy
import math

import torch

from .criteria import parse_criterion
from .errors import UntieError
from .metrics import MetricsLog
from .plan import describe_groups, groups_of, split_group, untie_all, validate_groups

UNTIE_OPTIMIZER = ("copy", "rescale", "reset")
# Optimizer state entries that scale like the gradient (rescaled by r) and like its square (by r^2).
_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")


def _unwrap(model):
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model


def _find_stack(model, layers):
    """(path, ModuleList) of the repeated layers: given by path or object, or the first ModuleList of 2+ alike modules."""
    named = dict(model.named_modules())
    if isinstance(layers, str):
        if layers not in named or not isinstance(named[layers], torch.nn.ModuleList):
            raise UntieError(f'the model has no ModuleList "{layers}" (its ModuleLists: {", ".join(n for n, m in named.items() if isinstance(m, torch.nn.ModuleList)) or "none"})')
        return layers, named[layers]
    if isinstance(layers, torch.nn.ModuleList):
        for n, m in named.items():
            if m is layers:
                return n, m
        raise UntieError("the ModuleList given as layers is not part of the model")
    if layers is not None:
        raise UntieError("layers must be the path of a ModuleList in the model (e.g. \"bert.encoder.layer\"), the ModuleList itself, or None")
    for n, m in named.items():
        if isinstance(m, torch.nn.ModuleList) and len(m) >= 2 and len({type(c) for c in m}) == 1:
            return n, m
    raise UntieError("the model has no ModuleList of two or more alike layers: pass layers=\"path.to.the.stack\"")


def _sumsq(t):
    return torch.linalg.vector_norm(t, dtype=torch.float64) ** 2


def _cosine(dot, a_sq, b_sq):
    denom = math.sqrt(a_sq) * math.sqrt(b_sq)
    return dot / denom if denom > 0 else 0.0


class SharingController:
    """Ties a model's repeated layers, measures their gradients' agreement, and unties them (see the module doc).

    model: the module (or its DDP wrapper). criterion: a criterion (see
    criteria.py) or untie's --untie text ("adaptive", "step:N", ...), which
    then needs total_steps and takes criterion_kw (threshold, patience,
    every, untie_by, statistic). share: "AxB" (default: all tied) or a list
    of groups. metrics: a metrics.jsonl path or MetricsLog (rank 0 writes).
    process_group: the DDP group (default: the world, when initialised).
    """

    def __init__(self, model, criterion="adaptive", share=None, layers=None, shared_grad="mean", untie_optimizer="copy",
                 metrics=None, total_steps=None, process_group=None, resume_step=0, **criterion_kw):
        self.model = _unwrap(model)
        path, stack = _find_stack(self.model, layers)
        self.stack_path = path
        self.prefix_base = path + "." if path else ""
        self.layers = [list(layer.named_parameters()) for layer in stack]
        self.n = len(self.layers)
        if self.n == 0:
            raise UntieError("a repeated stack needs at least one layer")
        names = [n for n, _ in self.layers[0]]
        seen = set()
        for pos, layer in enumerate(self.layers):
            if [n for n, _ in layer] != names:
                raise UntieError("the layers of a repeated stack must have the same parameters")
            for (name, t), (_, ref) in zip(layer, self.layers[0]):
                if t.shape != ref.shape:
                    raise UntieError(f"parameter {name} differs in shape across the stack")
                if id(t) in seen:
                    raise UntieError(f"{self.prefix(pos)}{name} is the same tensor as another layer's: the layers are already aliased; give each layer its own parameters")
                seen.add(id(t))
        if shared_grad not in ("mean", "sum"):
            raise UntieError(f'shared_grad must be "mean" or "sum", got "{shared_grad}"')
        if untie_optimizer not in UNTIE_OPTIMIZER:
            raise UntieError(f'untie_optimizer must be "copy", "rescale" or "reset", got "{untie_optimizer}"')
        if isinstance(criterion, str):
            if total_steps is None:
                raise UntieError(f'criterion "{criterion}" needs total_steps (the run\'s updates), or pass a criterion object')
            criterion = parse_criterion(criterion, total_steps, **criterion_kw)
        self.criterion = criterion
        self.shared_grad, self.untie_optimizer = shared_grad, untie_optimizer
        self.groups = groups_of(share if share is not None else f"1x{self.n}", self.n)
        self.process_group = process_group
        self._pending_stats = None
        self._pending_events = []
        self._member_grads = {}  # this step's own gradients of the non-representative members (their .grad is None meanwhile)
        self._rep_own_sq = {}    # each tied representative tensor's own gradient energy, before the reduction
        self._rep_shared_sq = {}  # ... and after it
        self._rep_own_grads = {}  # with "rescale": each tied representative's own gradient
        self._metrics = MetricsLog(metrics, resume_step) if isinstance(metrics, str) else metrics

    # ---- what a model declares
    def prefix(self, position):
        return f"{self.prefix_base}{position}."

    @property
    def tied(self):
        return any(len(g) > 1 for g in self.groups)

    @property
    def rank(self):
        return torch.distributed.get_rank(self.process_group) if self._distributed() else 0

    def _distributed(self):
        return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size(self.process_group) > 1

    @torch.no_grad()
    def tie_weights(self):
        """Every member takes its representative's weights (the "one random draw, copied" init)."""
        for g in self.groups:
            for pos in g[1:]:
                for (_, t), (_, src) in zip(self.layers[pos], self.layers[g[0]]):
                    t.copy_(src)

    def representatives(self):
        return {g[0] for g in self.groups}

    def unique_parameter_count(self):
        """Parameters of the stack as the plan counts them (tied groups once)."""
        return sum(t.numel() for pos in self.representatives() for _, t in self.layers[pos])

    # ---- around the optimizer step
    def before_update(self, step, progress=None):
        """After backward, before clipping and optimizer.step() of update `step` (0-based)."""
        if step == 0 and self.tied:
            self._untie_before_first_update(progress)
        self._member_grads, self._rep_own_sq, self._rep_shared_sq, self._rep_own_grads = {}, {}, {}, {}
        for g in self.groups:
            if len(g) > 1:
                for pos in g:
                    for name, t in self.layers[pos]:
                        self._require_grad(t, name, pos)
        self._pending_stats = self.measure(step) if self.tied and self.criterion.wants_stats(step, progress) else None
        with torch.no_grad():
            for g in self.groups:
                if len(g) == 1:
                    continue
                for j, (_, t) in enumerate(self.layers[g[0]]):
                    rep_grad = t.grad
                    self._rep_own_sq[t] = _sumsq(rep_grad)
                    if self.untie_optimizer == "rescale":
                        self._rep_own_grads[t] = rep_grad.clone()
                    for pos in g[1:]:
                        member = self.layers[pos][j][1]
                        rep_grad.add_(member.grad)
                        # The optimizer must not see the member: it holds no state of its own while tied.
                        self._member_grads[member] = member.grad
                        member.grad = None
                    if self.shared_grad == "mean":
                        rep_grad.mul_(1 / len(g))
                    self._rep_shared_sq[t] = _sumsq(rep_grad)

    def _untie_before_first_update(self, progress):
        decision = self._agree(self.criterion.decide(-1, self.groups, None, progress), True)
        if decision["action"] != "untie":
            return
        self.groups = untie_all(self.groups)
        self._pending_events.append(self._event("untie", -1, decision.get("reason")))

    def _require_grad(self, t, name, pos):
        # A tied member without a gradient would silently shrink the group's mean: refuse it.
        if t.grad is None:
            raise UntieError(f"tied parameter {self.prefix(pos)}{name} has no gradient: every member of a tied group must take part "
                             "in the forward pass (was backward() called? with DDP, find_unused_parameters hides no layer)")
        return t.grad

    @torch.no_grad()
    def measure(self, step):
        """Cosines of adjacent group members' gradients, per tensor and pooled (the whole gradients concatenated), in float64."""
        sq_cache = {}

        def sq(t):
            if t not in sq_cache:
                sq_cache[t] = _sumsq(t.grad)
            return sq_cache[t]

        raw = []  # per pair: per tensor (dot, a, b) as 0-dim tensors, read back in one go
        for g in self.groups:
            for i in range(len(g) - 1):
                A, B = self.layers[g[i]], self.layers[g[i + 1]]
                raw.append((g[i], g[i + 1], [(name, torch.dot(ta.grad.reshape(-1).double(), tb.grad.reshape(-1).double()), sq(ta), sq(tb))
                                             for (name, ta), (_, tb) in zip(A, B)]))
        flat = torch.stack([x for _, _, per in raw for (_, d, a, b) in per for x in (d, a, b)]).tolist() if raw else []
        pairs, k = [], 0
        for a, b, per in raw:
            per_tensor, dot_sum, a_sum, b_sum = {}, 0.0, 0.0, 0.0
            for name, *_ in per:
                d, na, nb = flat[k], flat[k + 1], flat[k + 2]
                k += 3
                per_tensor[name] = _cosine(d, na, nb)
                dot_sum, a_sum, b_sum = dot_sum + d, a_sum + na, b_sum + nb
            pairs.append({"a": a, "b": b, "cosine": _cosine(dot_sum, a_sum, b_sum), "perTensor": per_tensor})
        return {"step": step, "pairs": pairs}

    def grad_norms(self, params):
        """{"update", "layers"} norms of this step's gradient over `params`, after before_update and before clipping.

        update: the gradient the optimizer applies (a tied group once, with its
        mean or sum); layers: every layer's own gradient, as an untied model sees it.
        """
        params = list(params)
        ids = {id(p) for p in params}
        with torch.no_grad():
            sqs = [_sumsq(p.grad) for p in params if p.grad is not None]
            update = float(torch.stack(sqs).sum()) if sqs else 0.0
            shared = [v for p, v in self._rep_shared_sq.items() if id(p) in ids]
            own = [v for p, v in self._rep_own_sq.items() if id(p) in ids]
            own += [_sumsq(g) for p, g in self._member_grads.items() if id(p) in ids]
            layers = update - (float(torch.stack(shared).sum()) if shared else 0.0) + (float(torch.stack(own).sum()) if own else 0.0)
        return {"update": math.sqrt(update), "layers": math.sqrt(max(layers, 0.0))}

    def clip_grad_norm_(self, params, max_norm, basis="update"):
        """untie's clipping: bound the "update" or the "layers" norm (see grad_norms) by max_norm (0: no clipping).

        Refuses a non-finite gradient before anything is scaled. Returns the
        norms before clipping.
        """
        if basis not in ("update", "layers"):
            raise UntieError(f'basis must be "update" or "layers", got "{basis}"')
        params = list(params)
        norms = self.grad_norms(params)
        norm = norms[basis]
        if not (math.isfinite(norms["update"]) and math.isfinite(norms["layers"])):
            raise UntieError(f"the gradient norm is {norm}: some gradient holds NaN or infinite values, so no update can be made from it")
        if max_norm > 0 and norm > max_norm:
            s = max_norm / (norm + 1e-6)
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(s)
        return norms

    def after_update(self, step, optimizer, progress=None):
        """After optimizer.step() of update `step`: copy representatives to members, ask the criterion, untie or split.

        Returns the records written to metrics.jsonl (on every rank), steps counted in completed updates.
        """
        with torch.no_grad():
            for g in self.groups:
                for pos in g[1:]:
                    for (_, t), (_, src) in zip(self.layers[pos], self.layers[g[0]]):
                        t.copy_(src)
        stats, self._pending_stats = self._pending_stats, None
        events, self._pending_events = self._pending_events, []
        if self.tied:
            decision = self._agree(self.criterion.decide(step, self.groups, stats, progress), stats is not None)
            if stats is not None:
                threshold, statistic = self.criterion.threshold, self.criterion.statistic
                values = self.criterion.last_values if statistic else None
                compared = values if values is not None else [p["cosine"] for p in stats["pairs"]]
                record = {"type": "sharing_check", "step": step, "pairs": stats["pairs"],
                          "below": 0 if threshold is None else sum(1 for v in compared if v < threshold)}
                if threshold is not None:
                    record["threshold"] = threshold
                record["decision"] = decision["action"]
                if statistic:
                    record["statistic"], record["values"] = statistic, values
                events.append(record)
            if decision["action"] == "untie":
                self.regroup(untie_all(self.groups), optimizer)
                events.append(self._event("untie", step, decision.get("reason")))
            elif decision["action"] == "split":
                nxt = []
                for g in self.groups:
                    cuts = [g.index(b) for a, b in decision["between"] if a in g and b in g and g.index(b) == g.index(a) + 1]
                    nxt.extend(split_group(g, cuts))
                self.regroup(nxt, optimizer)
                events.append(self._event("split", step, "correlation"))
        self._member_grads, self._rep_own_grads = {}, {}
        records = [{**e, "step": e["step"] + 1} for e in events]
        if self._metrics is not None and self.rank == 0:
            for r in records:
                self._metrics.write(r)
        return records

    def _event(self, kind, step, reason):
        e = {"type": kind, "step": step, "groups": [list(g) for g in self.groups], "description": describe_groups(self.groups)}
        if reason is not None:
            e["reason"] = reason
        return e

    def _agree(self, decision, measured):
        """Rank 0's decision and criterion state, on every rank (a no-op outside DDP)."""
        if not self._distributed():
            return decision
        dist = torch.distributed
        # One small collective on every tied step says whether there is anything to hand out.
        device = self.layers[0][0][1].device if dist.get_backend(self.process_group) == "nccl" else torch.device("cpu")
        flag = torch.tensor([1 if measured or decision["action"] != "none" else 0], device=device)
        dist.broadcast(flag, src=self._global_rank0(), group=self.process_group)
        if int(flag.item()) == 0:
            return decision
        box = [decision, self.criterion.get_state()]
        dist.broadcast_object_list(box, src=self._global_rank0(), group=self.process_group)
        self.criterion.set_state(box[1])
        return box[0]

    def _global_rank0(self):
        if self.process_group is None:
            return 0
        return torch.distributed.distributed_c10d._get_global_rank(self.process_group, 0)

    # ---- untying
    def regroup(self, nxt, optimizer):
        """Moves to `nxt` groups (each a subset of an old group); splitting groups hand their optimizer state on."""
        validate_groups(nxt, self.n)
        old_of = {p: tuple(g) for g in self.groups for p in g}
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        handed = {}
        for g in nxt:
            old = old_of[g[0]]
            if any(old_of[p] != old for p in g):
                raise UntieError("a regrouping may only split groups, not merge them")
            if len(old) == len(g):
                continue  # the same group: same representative, same state
            for _, src in self.layers[old[0]]:
                if src not in handed:
                    st = optimizer.state.get(src)
                    handed[src] = _clone_state(st) if st else None
        for g in nxt:
            old = old_of[g[0]]
            if len(old) == len(g):
                continue
            for j, (name, t) in enumerate(self.layers[g[0]]):
                if id(t) not in in_optimizer:
                    raise UntieError(f"{self.prefix(g[0])}{name} is not in the optimizer: build it over all of model.parameters() "
                                     "(tied members get a gradient only once untied)")
                s = handed[self.layers[old[0]][j][1]]
                if s is None or self.untie_optimizer == "reset":
                    optimizer.state.pop(t, None)
                    continue
                st = _clone_state(s)
                if self.untie_optimizer == "rescale":
                    r = self._rescale_ratio(old, g, j, name)
                    for k in _FIRST_MOMENTS:
                        if k in st:
                            st[k].mul_(r)
                    for k in _SECOND_MOMENTS:
                        if k in st:
                            st[k].mul_(r * r)
                optimizer.state[t] = st
        self.groups = [list(g) for g in nxt]

    def _rescale_ratio(self, old, g, j, name):
        rep = self.layers[old[0]][j][1]
        shared = self._rep_shared_sq.get(rep)

        def own(pos):
            t = self.layers[pos][j][1]
            return self._rep_own_grads.get(t) if pos == old[0] else self._member_grads.get(t, t.grad)

        if shared is None or any(own(pos) is None for pos in g):
            raise UntieError(f"untie_optimizer 'rescale' needs the gradients of the step that unties ({self.prefix(g[0])}{name}): "
                             "call regroup after before_update of that step")
        with torch.no_grad():
            if len(g) == 1:
                energy = float(_sumsq(own(g[0])))
            else:
                reduced = own(g[0]).clone()
                for pos in g[1:]:
                    reduced.add_(own(pos))
                if self.shared_grad == "mean":
                    reduced.mul_(1 / len(g))
                energy = float(_sumsq(reduced))
        shared = float(shared)
        return math.sqrt(energy / shared) if shared > 0 and energy > 0 else 1.0

    # ---- state
    def state_dict(self):
        """The tying plan and the criterion's state: trainer_state.json's "sharing" in untie."""
        return {"groups": [list(g) for g in self.groups], "criterion": self.criterion.get_state()}

    def load_state_dict(self, state):
        if not isinstance(state, dict) or not isinstance(state.get("groups"), list) or not isinstance(state.get("criterion"), dict):
            raise UntieError('a sharing state must hold "groups" (a list) and "criterion" (an object)')
        groups = [list(g) for g in state["groups"]]
        validate_groups(groups, self.n)
        self.groups = groups
        self.criterion.set_state(copy.deepcopy(state["criterion"]))


def _clone_state(state):
    return {k: (v.clone() if torch.is_tensor(v) else copy.deepcopy(v)) for k, v in state.items()}
