"""Found rules as readable conditions, and learned lists made easier to read.

A numeric threshold is written as the roundest number that splits the training rows the same
way (`tenure < 12`, not `tenure < 11.73`); two bounds in one direction on one column become
the tighter one. `Tidier` then drops conditions and rounds thresholds further where that
costs nothing measurable on the training rows, and groups the rules by decision where moving
a rule cannot change any decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from advisor.policies.rules.binning import BinnedFeature
from advisor.policies.rules.conditions import Condition, Rule
from advisor.policies.rules.search import Candidate


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


class Tidier:
    """Makes a learned list easier to read without changing what it does on the training rows
    by anything measurable: drops conditions and rounds thresholds while the training cost
    rises by at most `slack` in total, then groups rules by decision where that is exact.

    The cost of a list is that of its rules' decisions plus the cheapest default for the rows
    no rule matches, on `frame` with `each` (rows x decisions) the cost of every decision.
    """

    def __init__(self, frame: pd.DataFrame, each: np.ndarray, decisions: Sequence[str]) -> None:
        self.frame = frame
        self.each = each
        self.decisions = list(decisions)
        self.cache: dict = {}
        self.masks: dict[Condition, np.ndarray] = {}

    def _mask(self, c: Condition) -> np.ndarray:
        if c not in self.masks:
            self.masks[c] = c.mask(self.frame, self.cache)
        return self.masks[c]

    def index(self, rules: Sequence[Rule]) -> np.ndarray:
        """The rule (first match; len(rules) for none) deciding each row."""
        out = np.full(len(self.frame), len(rules), dtype=np.int64)
        open_rows = np.ones(len(self.frame), dtype=bool)
        for r, rule in enumerate(rules):
            hit = open_rows.copy()
            for c in rule.conditions:
                hit &= self._mask(c)
            out[hit] = r
            open_rows &= ~hit
        return out

    def cost(self, rules: Sequence[Rule]) -> tuple[float, int]:
        """Training cost of the list with its cheapest default, and that default's code."""
        index = self.index(rules)
        codes = np.array([self.decisions.index(r.decision) for r in rules], dtype=np.int64)
        hit = index < len(rules)
        rows = np.flatnonzero(hit)
        matched = float(self.each[rows, codes[index[rows]]].sum())
        rest = self.each[~hit].sum(axis=0)
        return matched + float(rest.min()), int(np.argmin(rest))

    def tidy(self, rules: Sequence[Rule], slack_share: float) -> tuple[list[Rule], str]:
        """The tidied rules and their default; `slack_share` of what the list saves over the
        constant decision may be spent."""
        rules = list(rules)
        start, _ = self.cost(rules)
        constant = float(self.each.sum(axis=0).min())
        budget = start + slack_share * max(constant - start, 0.0)
        rules = self._drop_conditions(rules, budget)
        rules = self._round(rules, budget)
        rules = group_by_decision(rules)
        _, default = self.cost(rules)
        return rules, self.decisions[default]

    def _drop_conditions(self, rules: list[Rule], budget: float) -> list[Rule]:
        for r in range(len(rules) - 1, -1, -1):
            i = 0
            while i < len(rules[r].conditions):
                conds = rules[r].conditions
                if len(conds) == 1:
                    trial = rules[:r] + rules[r + 1 :]
                else:
                    kept = conds[:i] + conds[i + 1 :]
                    trial = [*rules[:r], Rule(kept, rules[r].decision), *rules[r + 1 :]]
                if self.cost(trial)[0] > budget:
                    i += 1
                    continue
                rules = trial
                if len(conds) == 1:
                    break
        return rules

    def _round(self, rules: list[Rule], budget: float) -> list[Rule]:
        """Each threshold: the bound of another rule on its column, else a rounder number."""
        for r in range(len(rules)):
            for i, c in enumerate(rules[r].conditions):
                if c.op not in ("<", ">=") or not c.numeric:
                    continue
                shared = sorted(
                    {
                        o.value
                        for rule in rules
                        for o in rule.conditions
                        if o.column == c.column and o.op in ("<", ">=") and o.value != c.value
                    },
                    key=lambda v: abs(v - c.value),
                )
                for t in [*shared, *rounder(c.value)]:
                    conds = list(rules[r].conditions)
                    conds[i] = Condition(c.column, c.op, t)
                    trial = [*rules[:r], Rule(tuple(conds), rules[r].decision), *rules[r + 1 :]]
                    if self.cost(trial)[0] <= budget:
                        rules = trial
                        break
        return rules


def rounder(value: float) -> list[float]:
    """Rounder forms of `value`: one significant digit (the nearer side first), then two..."""
    if value == 0 or not math.isfinite(value):
        return []
    magnitude = math.floor(math.log10(abs(value)))
    out: list[float] = []
    for digits in range(1, 7):
        places = digits - 1 - magnitude
        step = 10.0**-places
        low = float(round(math.floor(value / step) * step, max(places, 0)))
        if low == value:
            break
        high = float(round(low + step, max(places, 0)))
        near = sorted((low, high), key=lambda t: abs(t - value))
        out += [t for t in near if t not in out and t != 0]
    return out


def disjoint(a: Rule, b: Rule) -> bool:
    """Whether no row can match both rules (a pair of conditions on one column excludes it)."""
    return any(_exclusive(x, y) for x in a.conditions for y in b.conditions if x.column == y.column)


def _exclusive(x: Condition, y: Condition) -> bool:
    ops = {x.op, y.op}
    if "is missing" in ops:
        return ops != {"is missing"}
    if "is not missing" in ops or x.numeric != y.numeric:
        return False
    if x.numeric:
        if x.op == "<" and y.op == ">=":
            return y.value >= x.value
        if x.op == ">=" and y.op == "<":
            return x.value >= y.value
        return False
    listed = [_text_set(c) for c in (x, y)]
    if listed[0] is not None and listed[1] is not None:
        return not (listed[0] & listed[1])
    inside, other = (listed[0], y) if listed[0] is not None else (listed[1], x)
    if inside is None or other.op not in ("!=", "not in"):
        return False
    excluded = {other.value} if other.op == "!=" else set(other.value)
    return inside <= excluded


def _text_set(c: Condition) -> set | None:
    """The values a text condition allows, when it lists them (== and in); else None."""
    if c.op == "==":
        return {c.value}
    if c.op == "in":
        return set(c.value)
    return None


def group_by_decision(rules: list[Rule]) -> list[Rule]:
    """Rules with one decision next to each other, in order of first appearance, moving a
    rule only past rules with its decision or that no row can match together with it."""
    rank = {}
    for rule in rules:
        rank.setdefault(rule.decision, len(rank))
    rules = list(rules)
    moved = True
    while moved:
        moved = False
        for i in range(len(rules) - 1):
            a, b = rules[i], rules[i + 1]
            if rank[b.decision] < rank[a.decision] and (a.decision == b.decision or disjoint(a, b)):
                rules[i], rules[i + 1] = b, a
                moved = True
    return rules
