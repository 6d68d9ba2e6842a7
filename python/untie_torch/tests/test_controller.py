"""The controller's rules on small stacks, against hand computations."""
import json

import pytest
import torch
from torch import nn

from untie_torch import FixedCriterion, MultiCriterion, NeverCriterion, SharingController, UntieError, read_metrics


class Stack(nn.Module):
    """A plain stack: x -> tanh(W_i x + b_i) for i = 0..n-1, then a sum."""

    def __init__(self, n=4, d=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.blocks = nn.ModuleList(nn.Linear(d, d) for _ in range(n))
        self.head = nn.Linear(d, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        for b in self.blocks:
            x = torch.tanh(b(x))
        return self.head(x).sum()


def own_grads(model, x):
    """Each layer's own gradient of the loss, with the weights as they are."""
    model.zero_grad(set_to_none=True)
    model(x).backward()
    return [[p.grad.clone() for p in b.parameters()] for b in model.blocks]


@pytest.mark.parametrize("rule", ["mean", "sum"])
def test_shared_gradient_is_the_mean_or_sum_of_the_members(rule):
    torch.manual_seed(0)
    model = Stack()
    sharing = SharingController(model, NeverCriterion(), share="2x2", shared_grad=rule)
    sharing.tie_weights()
    x = torch.randn(5, 3)
    expected = own_grads(model, x)
    model.zero_grad(set_to_none=True)
    model(x).backward()
    sharing.before_update(0)
    for group in ([0, 2], [1, 3]):
        rep = list(model.blocks[group[0]].parameters())
        for j, p in enumerate(rep):
            total = expected[group[0]][j] + expected[group[1]][j]
            want = total / 2 if rule == "mean" else total
            assert torch.allclose(p.grad, want, rtol=1e-6, atol=1e-7)
        for p in model.blocks[group[1]].parameters():
            assert p.grad is None  # the optimizer must not see a member while tied
    # the head is not in the stack: its gradient is untouched
    assert model.head.weight.grad is not None


def test_tied_members_stay_bit_identical_and_untie_copies_optimizer_state():
    torch.manual_seed(0)
    model = Stack()
    sharing = SharingController(model, FixedCriterion(3), share="1x4")
    sharing.tie_weights()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    x = torch.randn(5, 3)
    events = []
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        model(x).backward()
        sharing.before_update(step)
        opt.step()
        # only the representative holds optimizer state while tied
        assert all(p in opt.state for p in model.blocks[0].parameters())
        assert not any(p in opt.state for b in model.blocks[1:] for p in b.parameters())
        before = {k: v.clone() for k, v in opt.state[model.blocks[0].weight].items()}
        events += sharing.after_update(step, opt)
        for b in model.blocks[1:]:
            for p, q in zip(b.parameters(), model.blocks[0].parameters()):
                assert torch.equal(p, q)
    assert [e["type"] for e in events] == ["untie"] and events[0]["step"] == 3 and events[0]["reason"] == "step"
    assert sharing.groups == [[0], [1], [2], [3]]
    states = [opt.state[b.weight] for b in model.blocks]
    for s in states:
        assert torch.equal(s["exp_avg"], before["exp_avg"]) and torch.equal(s["exp_avg_sq"], before["exp_avg_sq"])
        assert float(s["step"]) == 3
    # separate tensors: changing one layer's moments leaves the others alone
    ptrs = {s["exp_avg"].data_ptr() for s in states} | {s["exp_avg_sq"].data_ptr() for s in states}
    assert len(ptrs) == 8
    states[1]["exp_avg"].add_(1.0)
    assert torch.equal(states[0]["exp_avg"], before["exp_avg"])
    # untied: each layer now takes its own update
    opt.zero_grad(set_to_none=True)
    model(x).backward()
    sharing.before_update(3)
    opt.step()
    sharing.after_update(3, opt)
    assert not torch.equal(model.blocks[0].weight, model.blocks[3].weight)


def test_step_zero_never_updates_tied_and_reset_touches_only_split_groups():
    model = Stack()
    sharing = SharingController(model, FixedCriterion(0), share="1x4")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(2, 3)).backward()
    sharing.before_update(0)
    assert sharing.groups == [[0], [1], [2], [3]]
    assert all(p.grad is not None for p in model.parameters())  # nothing was reduced
    records = sharing.after_update(0, opt)
    assert records == [{"type": "untie", "step": 0, "groups": [[0], [1], [2], [3]], "description": "[0] [1] [2] [3]", "reason": "step"}]

    # SWE-M splitting one of two groups with "reset": the other group keeps its state
    model = Stack()
    crit = MultiCriterion(threshold=0.99, patience=1, every=1)
    sharing = SharingController(model, crit, share="2x2", untie_optimizer="reset")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).backward()
    sharing.before_update(0)
    opt.step()
    kept = opt.state[model.blocks[1].weight]["exp_avg"].clone()
    sharing.regroup([[0], [2], [1, 3]], opt)
    assert model.blocks[0].weight not in opt.state and model.blocks[2].weight not in opt.state
    assert torch.equal(opt.state[model.blocks[1].weight]["exp_avg"], kept)


def test_a_tied_member_without_a_gradient_is_an_error():
    model = Stack()
    sharing = SharingController(model, NeverCriterion(), share="1x4")
    x = torch.randn(2, 3)
    loss = model.head(torch.tanh(model.blocks[0](x))).sum()  # layers 1..3 skipped
    loss.backward()
    with pytest.raises(UntieError, match=r"blocks\.1\.weight has no gradient"):
        sharing.before_update(0)


def test_checks_are_logged_as_untie_logs_them(tmp_path):
    model = Stack()
    metrics = str(tmp_path / "metrics.jsonl")
    sharing = SharingController(model, "adaptive", total_steps=40, threshold=0.999, patience=2, every=2, metrics=metrics)
    sharing.tie_weights()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(6):
        opt.zero_grad(set_to_none=True)
        model(torch.randn(4, 3, generator=torch.Generator().manual_seed(step))).backward()
        sharing.before_update(step)
        opt.step()
        sharing.after_update(step, opt)
    records = read_metrics(metrics)
    checks = [r for r in records if r["type"] == "sharing_check"]
    assert [r["step"] for r in checks] == [2, 4]
    assert list(checks[0]) == ["type", "step", "pairs", "below", "threshold", "decision"]
    assert [(p["a"], p["b"]) for p in checks[0]["pairs"]] == [(0, 1), (1, 2), (2, 3)]
    assert set(checks[0]["pairs"][0]["perTensor"]) == {"weight", "bias"}
    untie = [r for r in records if r["type"] == "untie"]
    assert len(untie) == 1 and untie[0]["step"] == 4 and untie[0]["reason"] == "correlation"
    json.dumps(records)  # plain JSON


def test_state_round_trip_and_bad_state():
    model = Stack()
    a = SharingController(model, MultiCriterion(threshold=0.5, patience=3, every=1), share="1x4")
    a.load_state_dict({"groups": [[0, 1], [2, 3]], "criterion": {"streaks": {"1-2": 2}, "statistic": {"ema": {}, "first": {}}, "marks": -1}})
    assert a.state_dict()["groups"] == [[0, 1], [2, 3]]
    assert a.state_dict()["criterion"]["streaks"] == {"1-2": 2}
    with pytest.raises(UntieError):
        a.load_state_dict({"groups": [[0, 1], [1, 2, 3]], "criterion": {}})
