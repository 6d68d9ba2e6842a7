"""Untying criteria, as src/sharing/criteria.ts and statistics.ts: the same
rules, the same defaults and the same JSON state, so a run's criterion can
move between untie and untie_torch mid-way.

Steps are 0-based update indices: decide(step, ...) runs after update
`step`, so step + 1 updates are done; decide(-1, ...) is asked once before
the first update (step:0 never updates tied).

A decision is a dict: {"action": "none"}, {"action": "untie", "reason": ...}
or {"action": "split", "between": [[a, b], ...]}.
"""
import copy
import math

from .errors import UntieError

UNTIE_STATISTICS = ("cosine", "ema", "relative", "tensor-median")
EMA_WEIGHT = 0.2
RELATIVE_BASELINE_CHECKS = 3
DEFAULT_CHECK_FRACTION = 0.005
NONE = {"action": "none"}


def js_round(x):
    """JavaScript's Math.round (halves up), not Python's round (halves to even)."""
    return math.floor(x + 0.5)


def default_check_every(total_steps):
    """About 20 checks before 10% of the run (the paper: every 1k of 500k)."""
    return max(1, math.floor((0.1 * total_steps) / 20))


def _median(xs):
    if not xs:
        return float("nan")
    s = sorted(xs)
    m = len(s) >> 1
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


class StatisticTracker:
    """Turns each check's pair statistics into the values compared with rho (see statistics.ts)."""

    def __init__(self, kind="cosine"):
        if kind not in UNTIE_STATISTICS:
            raise UntieError(f'statistic "{kind}" is not one of: {", ".join(UNTIE_STATISTICS)}')
        self.kind = kind
        self.state = {"ema": {}, "first": {}}

    def values(self, stats):
        return [self._value(p) for p in stats["pairs"]]

    def _value(self, p):
        key = f'{p["a"]}-{p["b"]}'
        if self.kind == "cosine":
            return p["cosine"]
        if self.kind == "ema":
            prev = self.state["ema"].get(key)
            nxt = p["cosine"] if prev is None else (1 - EMA_WEIGHT) * prev + EMA_WEIGHT * p["cosine"]
            self.state["ema"][key] = nxt
            return nxt
        if self.kind == "relative":
            first = self.state["first"].setdefault(key, [])
            if len(first) < RELATIVE_BASELINE_CHECKS:
                first.append(p["cosine"])
            base = sum(first) / len(first)
            return 1 if len(first) < RELATIVE_BASELINE_CHECKS or not base > 0 else p["cosine"] / base
        return _median(list(p["perTensor"].values()))

    def get_state(self):
        return copy.deepcopy(self.state)

    def set_state(self, state):
        if state is None:
            state = {}
        if not isinstance(state, dict):
            raise UntieError(f"a saved untie statistic state is damaged: {state!r} is not an object")
        ema, first = state.get("ema", {}), state.get("first", {})
        ok = lambda v: isinstance(v, (int, float)) and -1 - 1e-6 <= v <= 1 + 1e-6  # noqa: E731
        if not isinstance(ema, dict) or not all(ok(v) for v in ema.values()):
            raise UntieError('a saved untie statistic state is damaged: "ema" must map layer pairs to cosines in [-1, 1]')
        if not isinstance(first, dict) or not all(isinstance(xs, list) and len(xs) <= RELATIVE_BASELINE_CHECKS and all(ok(x) for x in xs) for xs in first.values()):
            raise UntieError(f'a saved untie statistic state is damaged: "first" must map layer pairs to at most {RELATIVE_BASELINE_CHECKS} cosines in [-1, 1]')
        self.state = {"ema": dict(ema), "first": copy.deepcopy(first)}


class CheckMarks:
    """Every K updates, or (budget runs) at the first update past each multiple of a fraction of the run."""

    def __init__(self, every, every_fraction=None):
        self.every, self.every_fraction, self.last_mark = every, every_fraction, -1

    def due(self, step, progress=None):
        if self.every_fraction is None or progress is None:
            return (step + 1) % self.every == 0
        mark = math.floor(progress / self.every_fraction)
        if mark <= self.last_mark or mark == 0:
            return False
        self.last_mark = mark
        return True


def _streak(v, what):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise UntieError(f"a saved criterion {what} must be a whole number >= 0, got {v!r}")
    return v


def _mark(v):
    if not isinstance(v, int) or isinstance(v, bool) or v < -1:
        raise UntieError(f'a saved criterion "marks" must be a whole number >= -1, got {v!r}')
    return v


def _no_state(kind, state):
    if not isinstance(state, dict) or len(state) > 0:
        raise UntieError(f"the saved criterion state {state!r} does not belong to the {kind} criterion, which keeps none")


def _tied(groups):
    return any(len(g) > 1 for g in groups)


class NeverCriterion:
    """Stay tied to the end; with a check interval it still measures (and logs) agreement."""
    kind = "never"
    threshold = None
    statistic = None

    def __init__(self, every=None, every_fraction=None):
        self.every = every
        self.marks = CheckMarks(every, every_fraction) if every is not None else None

    def wants_stats(self, step, progress=None):
        return self.marks is not None and self.marks.due(step, progress)

    def decide(self, step, groups, stats, progress=None):
        return NONE

    def describe(self):
        return {"kind": self.kind, "every": self.every}

    def get_state(self):
        return {"marks": self.marks.last_mark} if self.marks else {}

    def set_state(self, state):
        if self.marks:
            self.marks.last_mark = _mark(state.get("marks", -1))
        else:
            _no_state(self.kind, state)


class FixedCriterion:
    """SWE-F, step:N: the first N updates are made tied, every later one untied (N = 0: never tied)."""
    kind = "fixed"
    threshold = None
    statistic = None

    def __init__(self, untie_at, fraction=None):
        if not isinstance(untie_at, int) or untie_at < 0:
            raise UntieError(f"step:N needs a whole number of steps >= 0, got {untie_at}")
        self.untie_at, self.fraction = untie_at, fraction

    def wants_stats(self, step, progress=None):
        return False

    def decide(self, step, groups, stats=None, progress=None):
        due = progress >= self.fraction if self.fraction is not None and progress is not None else step + 1 >= self.untie_at
        return {"action": "untie", "reason": "step"} if _tied(groups) and due else NONE

    def describe(self):
        d = {"kind": self.kind, "untieAt": self.untie_at}
        if self.fraction is not None:
            d["fraction"] = self.fraction
        return d

    def get_state(self):
        return {}

    def set_state(self, state):
        _no_state(self.kind, state)


class _Correlation:
    """What SWE-A and SWE-M share: rho, C, K, the deadline and the statistic."""

    def __init__(self, threshold=0.5, patience=3, every=1, deadline=None, statistic="cosine", every_fraction=None, deadline_fraction=None):
        if not -1 < threshold < 1:
            raise UntieError(f"the untie threshold rho must be in (-1, 1), got {threshold}")
        if not isinstance(patience, int) or patience < 1:
            raise UntieError(f"the untie patience C must be a whole number >= 1, got {patience}")
        if not isinstance(every, int) or every < 1:
            raise UntieError(f"the check interval K must be a whole number >= 1, got {every}")
        if deadline is not None and (not isinstance(deadline, int) or deadline < 1):
            raise UntieError(f"the untie deadline must be a whole number of steps >= 1, got {deadline}")
        self.options = {"threshold": threshold, "patience": patience, "every": every, "deadline": deadline, "statistic": statistic,
                        "everyFraction": every_fraction, "deadlineFraction": deadline_fraction}
        self.tracker = StatisticTracker(statistic)
        self.marks = CheckMarks(every, every_fraction)
        self.last_values = None

    @property
    def threshold(self):
        return self.options["threshold"]

    @property
    def statistic(self):
        s = self.options["statistic"]
        return s if s and s != "cosine" else None

    def wants_stats(self, step, progress=None):
        return self.marks.due(step, progress)

    def past_deadline(self, step, progress=None):
        o = self.options
        if o["deadlineFraction"] is not None and progress is not None:
            return progress >= o["deadlineFraction"]
        return o["deadline"] is not None and step + 1 >= o["deadline"]

    def describe(self):
        return {"kind": self.kind, **self.options}


class AdaptiveCriterion(_Correlation):
    """SWE-A: untie everything when more than half of the adjacent pairs are below rho at C consecutive checks."""
    kind = "adaptive"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.streak = 0

    def decide(self, step, groups, stats, progress=None):
        if not _tied(groups):
            return NONE
        if stats and stats["pairs"]:
            values = self.last_values = self.tracker.values(stats)
            below = sum(1 for v in values if v < self.threshold)
            self.streak = self.streak + 1 if below > len(stats["pairs"]) / 2 else 0
            if self.streak >= self.options["patience"]:
                return {"action": "untie", "reason": "correlation"}
        return {"action": "untie", "reason": "deadline"} if self.past_deadline(step, progress) else NONE

    def get_state(self):
        return {"streak": self.streak, "statistic": self.tracker.get_state(), "marks": self.marks.last_mark}

    def set_state(self, state):
        self.streak = _streak(state.get("streak", 0), "streak")
        self.marks.last_mark = _mark(state.get("marks", -1))
        self.tracker.set_state(state.get("statistic"))


class MultiCriterion(_Correlation):
    """SWE-M: split a group between adjacent members whose correlation stays below rho for C checks."""
    kind = "multi"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.streaks = {}

    def decide(self, step, groups, stats, progress=None):
        if self.past_deadline(step, progress) and _tied(groups):
            return {"action": "untie", "reason": "deadline"}
        if not stats:
            return NONE
        nxt, between = {}, []
        values = self.last_values = self.tracker.values(stats)
        for i, p in enumerate(stats["pairs"]):
            key = f'{p["a"]}-{p["b"]}'
            streak = self.streaks.get(key, 0) + 1 if values[i] < self.threshold else 0
            if streak >= self.options["patience"]:
                between.append([p["a"], p["b"]])
            else:
                nxt[key] = streak
        self.streaks = nxt
        return {"action": "split", "between": between} if between else NONE

    def get_state(self):
        return {"streaks": dict(self.streaks), "statistic": self.tracker.get_state(), "marks": self.marks.last_mark}

    def set_state(self, state):
        saved = state.get("streaks", {})
        if not isinstance(saved, dict):
            raise UntieError(f'a saved SWE-M state needs "streaks" as an object, got {saved!r}')
        streaks = {}
        for pair, v in saved.items():
            a, _, b = pair.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise UntieError(f'a saved SWE-M streak is for {pair!r}, not a layer pair "a-b"')
            streaks[pair] = _streak(v, f"streaks.{pair}")
        self.streaks = streaks
        self.marks.last_mark = _mark(state.get("marks", -1))
        self.tracker.set_state(state.get("statistic"))


def parse_criterion(text, total_steps, threshold=0.5, patience=3, every=None, untie_by=0.2, deadline=None, statistic="cosine", budget=False):
    """`untie train --untie`'s values with its defaults: never | step:N | fraction:F | adaptive | multi.

    total_steps: the run's updates (fraction:F, the default check interval K
    and the deadline untie_by are fractions of it). untie_by: adaptive/multi
    untie by this fraction at the latest (0 or None: no deadline); deadline:
    the same in updates, already resolved (overrides untie_by). budget: the
    fractions are of a time budget, and `progress` passed to the controller
    is the fraction of it spent (the same on every rank).
    """
    if untie_by is not None and not 0 <= untie_by <= 1:
        raise UntieError(f"untie_by must be a fraction of the run in [0, 1] (0 = no deadline), got {untie_by}")
    if deadline is None and untie_by:
        deadline = max(1, js_round(untie_by * total_steps))
    opts = dict(threshold=threshold, patience=patience, every=every if every is not None else default_check_every(total_steps),
                deadline=deadline, statistic=statistic or "cosine",
                every_fraction=DEFAULT_CHECK_FRACTION if budget and every is None else None,
                deadline_fraction=untie_by if budget and untie_by else None)
    t = text.strip()
    if t == "never":
        return NeverCriterion(opts["every"], opts["every_fraction"])
    if t == "adaptive":
        return AdaptiveCriterion(**opts)
    if t == "multi":
        return MultiCriterion(**opts)
    if t.startswith("step:") and t[5:].isdigit():
        return FixedCriterion(int(t[5:]))
    if t.startswith("fraction:"):
        try:
            f = float(t[9:])
        except ValueError:
            f = None
        if f is None or not 0 <= f <= 1:
            raise UntieError(f'untie "{text}": fraction:F needs F in [0, 1]')
        return FixedCriterion(js_round(f * total_steps), f if budget else None)
    raise UntieError(f'untie "{text}" is not one of: never, step:N, fraction:F, adaptive, multi')


def criterion_from_description(d):
    """Rebuilds a criterion from its describe() (as untie export --sharing writes it)."""
    kind = d.get("kind")
    if kind == "never":
        return NeverCriterion(d.get("every"))
    if kind == "fixed":
        return FixedCriterion(int(d["untieAt"]), d.get("fraction"))
    if kind in ("adaptive", "multi"):
        cls = AdaptiveCriterion if kind == "adaptive" else MultiCriterion
        return cls(threshold=d["threshold"], patience=d["patience"], every=d["every"], deadline=d.get("deadline"),
                   statistic=d.get("statistic") or "cosine", every_fraction=d.get("everyFraction"), deadline_fraction=d.get("deadlineFraction"))
    raise UntieError(f"unknown criterion kind {kind!r} (expected never, fixed, adaptive or multi)")
