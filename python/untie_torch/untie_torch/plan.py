"""Tying plans, as src/sharing/plan.ts.

A stack has n layer positions; a plan maps them to groups. "A x B" is a unit
of A distinct layers repeated B times (A * B = n): position i belongs to
group i mod A. 1 x n ties every layer (ALBERT), n x 1 none (BERT). A group is
the ordered list of its members; its first member is its representative.
"""
import re

from .errors import UntieError


def parse_share(text, layers):
    """"AxB" -> (A, B) for a stack of `layers` positions."""
    m = re.match(r"^\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*$", text)
    if not m:
        raise UntieError(f'share "{text}" is not of the form AxB (a unit of A layers repeated B times), '
                         f"e.g. 1x{layers} (all tied) or {layers}x1 (none tied)")
    unit, repeats = int(m.group(1)), int(m.group(2))
    if unit < 1 or repeats < 1 or unit * repeats != layers:
        raise UntieError(f"share {unit}x{repeats} does not fit a stack of {layers} layers: A x B must equal {layers}")
    return unit, repeats


def plan_groups(unit, repeats):
    """Group j holds positions j, j+A, j+2A, ..."""
    return [[j + r * unit for r in range(repeats)] for j in range(unit)]


def groups_of(share, layers):
    """Groups from "AxB" (or a list of groups, checked)."""
    if isinstance(share, str):
        return plan_groups(*parse_share(share, layers))
    groups = [list(g) for g in share]
    validate_groups(groups, layers)
    return groups


def validate_groups(groups, n):
    seen = [False] * n
    for g in groups:
        if len(g) == 0:
            raise UntieError("a tying plan has an empty group")
        for i, p in enumerate(g):
            if not isinstance(p, int) or isinstance(p, bool) or p < 0 or p >= n or seen[p]:
                raise UntieError(f"a tying plan does not partition the {n} layers: position {p}")
            if i > 0 and g[i - 1] >= p:
                raise UntieError("a tying plan lists a group out of order")
            seen[p] = True
    if not all(seen):
        raise UntieError(f"a tying plan does not cover all {n} layers")


def untie_all(groups):
    return [[p] for p in sorted(p for g in groups for p in g)]


def split_group(group, cuts):
    """Splits `group` before each member index in `cuts` (1..len-1)."""
    out, start = [], 0
    for c in sorted(set(cuts)):
        if c <= start or c >= len(group):
            continue
        out.append(group[start:c])
        start = c
    out.append(group[start:])
    return out


def describe_groups(groups):
    return " ".join("[" + ",".join(str(p) for p in g) + "]" for g in groups)
