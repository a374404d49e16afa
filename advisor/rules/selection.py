"""How many rules to keep: the cost of every prefix of a rule list, and the choice among them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _prefix_decisions(
    index: np.ndarray, rule_codes: np.ndarray, defaults: Sequence[int], length: int
) -> np.ndarray:
    """The decision of each row under the first `length` rules and that prefix's default."""
    codes = np.full(len(index), defaults[length], dtype=np.int64)
    hit = index < length
    codes[hit] = rule_codes[index[hit]]
    return codes


def _prefix_rows(option: dict, length: int, each: np.ndarray) -> np.ndarray:
    index = option["valid_index"]
    codes = _prefix_decisions(index, option["codes"], option["defaults"], length)
    return each[np.arange(len(index)), codes]


def choose_prefix(
    options: list[dict], each_valid: np.ndarray | None, se_rule: float
) -> tuple[dict, int]:
    """The rule list and prefix length to keep.

    Without held-out rows: the lowest training cost. With them: the one-standard-error rule
    on held-out cost (as in CART pruning): among all lists and prefixes whose held-out cost is
    within `se_rule` paired standard errors of the lowest, the one with the fewest conditions.
    """
    key = "train_costs" if each_valid is None else "valid_costs"
    flat = [(o[key][n], i, n) for i, o in enumerate(options) for n in range(len(o[key]))]
    best_cost, bi, bn = min(flat)
    if each_valid is None or se_rule <= 0:
        return options[bi], bn
    best_rows = _prefix_rows(options[bi], bn, each_valid)
    rows = max(len(best_rows), 1)
    eligible = []
    for total, i, n in flat:
        diff = _prefix_rows(options[i], n, each_valid) - best_rows
        se = float(diff.std()) / math.sqrt(rows)
        if (total - best_cost) / rows <= se_rule * se + 1e-12:
            size = sum(len(r.conditions) for r in options[i]["rules"][:n])
            eligible.append((size, total, i, n))
    _, _, i, n = min(eligible)
    return options[i], n


def prefix_costs(
    index: np.ndarray, rule_codes: np.ndarray, defaults: Sequence[int], each: np.ndarray
) -> list[float]:
    """Total cost of every prefix of a rule list (0..all rules), each with its own default.

    `index` is the rule deciding each row under the full list; `each` is (rows x decisions).
    """
    rows = np.arange(len(index))
    out = []
    for length in range(len(rule_codes) + 1):
        codes = _prefix_decisions(index, rule_codes, defaults, length)
        out.append(float(each[rows, codes].sum()))
    return out
