"""Found rules as readable conditions: round thresholds and merged bounds on one column.

A numeric threshold is written as the roundest number that splits the training rows the same
way (`tenure < 12`, not `tenure < 11.73`); two bounds in one direction on one column become
the tighter one.
"""

from __future__ import annotations

import math

from advisor.rules.binning import BinnedFeature
from advisor.rules.conditions import Condition
from advisor.rules.search import Candidate


def nice_threshold(low: float, high: float) -> float:
    """The roundest number t with low < t <= high (so `x < t` splits as `x <= low`)."""
    if not math.isfinite(high) or high <= low:
        return float(high)
    for digits in range(-15, 18):
        if digits < 0:
            step = 10 ** (-digits)
            t = float((math.floor(low / step) + 1) * step)
        else:
            step = 10.0**-digits
            t = float(f"{(math.floor(low / step) + 1) * step:.{digits}f}")
        if low < t <= high:
            return t
    return float(high)


def condition(f: BinnedFeature, cand: Candidate) -> Condition:
    """A candidate (a set of bins) as the condition a rule file states."""
    if f.kind == "numeric":
        if cand.op in ("is missing", "is not missing"):
            return Condition(f.name, cand.op)
        edge = float(f.edges[cand.arg[0]])
        values = f.values
        above = values[values > edge]
        t = nice_threshold(edge, float(above.min())) if len(above) else edge
        return Condition(f.name, "<" if cand.op == "<=" else ">=", t)
    if cand.op in ("is missing", "is not missing"):
        return Condition(f.name, cand.op)
    if cand.op in ("==", "!="):
        return Condition(f.name, cand.op, f.levels[cand.arg[0]])
    return Condition(f.name, cand.op, tuple(f.levels[k] for k in cand.arg))


def merge_bounds(conditions: list[Condition]) -> tuple[Condition, ...]:
    """Merge same-direction thresholds on one column (keep the tighter one)."""
    out: list[Condition] = []
    for c in conditions:
        twin = next(
            (
                i
                for i, o in enumerate(out)
                if o.column == c.column and o.op == c.op and c.op in ("<", ">=")
            ),
            None,
        )
        if twin is None:
            out.append(c)
        else:
            keep = min if c.op == "<" else max
            out[twin] = Condition(c.column, c.op, keep(out[twin].value, c.value))
    return tuple(out)
