"""How many rules to keep: the cost of every prefix of a rule list on held-out rows, and the
choice among the candidate lists and their prefixes.

Held-out rows are a validation split or, in cross-validation, each row once in its fold. A
candidate (one source of lists: the beam search or a kind of tree) is scored from `Heldout`
pieces, one per fold: which rule of the list learned without those rows decides each of
them, and the default after each prefix. The lowest total cost wins; a list with rules must
beat the zero-rule list (the constant default decision) by more than noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Heldout:
    """Held-out rows scored by one rule list: the rule deciding each row (len = none)."""

    rows: np.ndarray
    index: np.ndarray
    codes: np.ndarray
    defaults: Sequence[int]

    def decisions(self, length: int) -> np.ndarray:
        """The decision of each row under the first `length` rules and that prefix's default."""
        length = min(length, len(self.codes))
        out = np.full(len(self.index), self.defaults[length], dtype=np.int64)
        hit = self.index < length
        out[hit] = self.codes[self.index[hit]]
        return out

    def row_costs(self, each: np.ndarray, length: int) -> np.ndarray:
        return each[self.rows, self.decisions(length)]


def prefix_costs(pieces: Sequence[Heldout], each: np.ndarray, max_rules: int) -> list[float]:
    """Total held-out cost of every prefix (0..max_rules rules); past a list's end, the list."""
    return [float(sum(p.row_costs(each, n).sum() for p in pieces)) for n in range(max_rules + 1)]


def _row_costs(pieces: Sequence[Heldout], each: np.ndarray, length: int) -> np.ndarray:
    return np.concatenate([p.row_costs(each, length) for p in pieces])


def choose_prefix(
    candidates: Mapping[str, Sequence[Heldout]],
    each: np.ndarray,
    max_rules: int,
    se_rule: float = 0.0,
    noise_se: float = 1.0,
) -> tuple[str, int, list[float]]:
    """The source and prefix length to keep, and that source's held-out prefix costs.

    The lowest held-out cost wins (ties: fewer rules). With `se_rule` > 0, the fewest rules
    whose cost is within `se_rule` paired standard errors of the lowest (CART's one-standard-
    error rule). A list with rules is kept only when it saves more than `noise_se` paired
    standard errors of the per-row cost difference against the zero-rule list.
    """
    totals = {s: prefix_costs(p, each, max_rules) for s, p in candidates.items()}
    flat = [(c, n, i, s) for i, (s, cs) in enumerate(totals.items()) for n, c in enumerate(cs)]
    best_cost, best_n, _, best_source = min(flat)
    pieces = candidates[best_source]
    best_rows = _row_costs(pieces, each, best_n)
    rows = max(len(best_rows), 1)

    def paired_se(source: str, n: int) -> float:
        diff = _row_costs(candidates[source], each, n) - best_rows
        return float(diff.std()) / math.sqrt(rows)

    if se_rule > 0 and best_n > 0:
        eligible = [
            (n, c, i, s)
            for c, n, i, s in flat
            if n < best_n and (c - best_cost) / rows <= se_rule * paired_se(s, n) + 1e-12
        ]
        if eligible:
            best_n, best_cost, _, best_source = min(eligible)
            best_rows = _row_costs(candidates[best_source], each, best_n)
    if best_n > 0 and noise_se > 0:
        saving = _row_costs(candidates[best_source], each, 0) - best_rows
        if saving.mean() <= noise_se * float(saving.std()) / math.sqrt(rows):
            best_n = 0
    return best_source, best_n, totals[best_source]


def stratified_folds(y: np.ndarray, folds: int, random_state: int | None) -> np.ndarray:
    """The fold (0..folds-1) of each row: each class spread evenly over the folds, seeded."""
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]
    out = np.empty(len(y), dtype=np.int64)
    out[order] = np.arange(len(y)) % folds
    return out
