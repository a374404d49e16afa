"""Readable learned lists: rounder thresholds, shared bounds, exact regrouping by decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.policies.rules import Condition, Rule, RuleList
from advisor.policies.rules.readable import Tidier, disjoint, group_by_decision, rounder


def test_rounder_offers_rounder_numbers_nearest_first():
    assert rounder(0.38001)[:4] == [0.4, 0.3, 0.38, 0.39]
    assert rounder(94.71)[:2] == [90, 100]
    assert rounder(12.0) == [10, 20]
    assert rounder(-0.082217)[:2] == [-0.08, -0.09]
    assert rounder(100.0) == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Condition("x", "<", 5.0), Condition("x", ">=", 5.0), True),
        (Condition("x", "<", 5.0), Condition("x", ">=", 4.0), False),
        (Condition("x", "is missing"), Condition("x", ">=", 4.0), True),
        (Condition("x", "is missing"), Condition("x", "is not missing"), True),
        (Condition("x", "is not missing"), Condition("x", ">=", 4.0), False),
        (Condition("c", "==", "a"), Condition("c", "==", "b"), True),
        (Condition("c", "==", "a"), Condition("c", "!=", "a"), True),
        (Condition("c", "in", ("a", "b")), Condition("c", "not in", ("a", "b", "d")), True),
        (Condition("c", "in", ("a", "b")), Condition("c", "in", ("b", "d")), False),
        (Condition("c", "!=", "a"), Condition("c", "!=", "b"), False),
        (Condition("c", "==", "a"), Condition("d", "==", "b"), False),
    ],
)
def test_disjoint_rules(a, b, expected):
    assert disjoint(Rule((a,), "p"), Rule((b,), "q")) is expected
    assert disjoint(Rule((b,), "q"), Rule((a,), "p")) is expected


def random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, n).astype(float)
    x[rng.random(n) < 0.1] = np.nan
    c = rng.choice(["a", "b", "d", None], n)
    return pd.DataFrame({"x": x, "c": c})


def random_rule(rng: np.random.Generator) -> Rule:
    pool = [
        Condition("x", "<", float(rng.integers(1, 9))),
        Condition("x", ">=", float(rng.integers(1, 9))),
        Condition("x", "is missing"),
        Condition("c", "==", str(rng.choice(["a", "b", "d"]))),
        Condition("c", "!=", str(rng.choice(["a", "b", "d"]))),
        Condition("c", "in", ("a", "d")),
        Condition("c", "is missing"),
    ]
    picked = rng.choice(len(pool), int(rng.integers(1, 3)), replace=False)
    return Rule(tuple(pool[i] for i in picked), str(rng.choice(["p", "q", "r"])))


@pytest.mark.parametrize("seed", range(40))
def test_grouping_by_decision_changes_no_decision(seed):
    rng = np.random.default_rng(seed)
    frame = random_frame(400, seed)
    rules = [random_rule(rng) for _ in range(6)]
    grouped = group_by_decision(rules)
    assert sorted(grouped) == sorted(rules)
    before = RuleList(tuple(rules), "z").decide(frame)
    after = RuleList(tuple(grouped), "z").decide(frame)
    assert (before == after).all()


def test_tidier_spends_at_most_its_slack():
    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame({"x": rng.uniform(0, 100, n), "z": rng.uniform(0, 1, n)})
    bad = rng.random(n) < np.where(frame.x.to_numpy() < 41.3, 0.7, 0.1)
    each = np.column_stack([np.where(bad, 5.0, 0.0), np.where(bad, 0.0, 1.0)])
    decisions = ["no", "yes"]
    rules = [Rule((Condition("x", "<", 41.37), Condition("z", ">=", 0.001)), "yes")]
    tidier = Tidier(frame, each, decisions)
    start, _ = tidier.cost(rules)
    constant = each.sum(axis=0).min()
    tidied, default = tidier.tidy(rules, 0.01)
    assert default == "no"
    [rule] = tidied
    [kept] = rule.conditions
    assert (kept.column, kept.op) == ("x", "<")
    assert kept.value in rounder(41.37)[:4]  # 40, 42 or 41
    assert tidier.cost(tidied)[0] <= start + 0.01 * (constant - start)
    exact, _ = tidier.tidy(rules, 0.0)
    assert tidier.cost(exact)[0] <= start
