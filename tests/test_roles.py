"""Roles: which rule list stands for ship-rules is decided on validation, never on test."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from conftest import synthetic_frame

import advisor
from advisor.costs import CostMatrix
from advisor.data import Part
from advisor.roles import assign_roles

COSTS = CostMatrix.from_mapping(
    {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
)


class Constant:
    """A stand-in policy that always takes one decision."""

    def __init__(self, name: str, code: int) -> None:
        self.name, self.code = name, code

    def decide_codes(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), self.code)


def part(yes_share: float, n: int = 100) -> Part:
    y = (np.arange(n) < yes_share * n).astype(np.int64)
    return Part(pd.DataFrame({"x": np.zeros(n)}), y)


def test_control_is_the_rule_list_cheaper_on_validation():
    policies = {
        "baseline": Constant("baseline", 0),
        "rules": Constant("rules", 0),
        "expert-rules": Constant("expert-rules", 1),
        "ml": Constant("ml", 1),
    }
    # Few positives: skipping (rules) is cheaper than calling (expert-rules), and vice versa.
    assert assign_roles(policies, part(0.05), COSTS).control == "rules"
    roles = assign_roles(policies, part(0.5), COSTS)
    assert roles.control == "expert-rules" and roles.treatment == "ml"
    assert roles.validation_cost["expert-rules"] == 0.5 * 10 + 0.5 * 30
    no_lists = {k: v for k, v in policies.items() if "rules" not in k}
    assert assign_roles(no_lists, part(0.5), COSTS).control == "baseline"


def _analyse(tmp_path, frame: pd.DataFrame) -> advisor.Result:
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "never-call.yaml").write_text("name: never-call\ndefault: skip\nrules: []\n")
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            """
            data: d.csv
            target: outcome
            time: when
            rules: never-call.yaml
            costs:
              decisions: [skip, call]
              matrix:
                "no":  {skip: 0, call: 10}
                "yes": {skip: 100, call: 30}
            options: {bootstrap_resamples: 200}
            """
        )
    )
    return advisor.advise(tmp_path / "c.yaml")


def test_changing_only_the_test_rows_cannot_change_the_control(tmp_path):
    frame = synthetic_frame(1500, seed=4, with_time=True)
    before = _analyse(tmp_path, frame)
    # The last 20 % by time are the test split. Make every test outcome "no": calling nobody
    # (the expert rule file) becomes the cheapest rule list on test.
    tampered = frame.copy()
    tampered.loc[tampered.index[-300:], "outcome"] = "no"
    after = _analyse(tmp_path, tampered)
    test_cost = {
        n: p["cost_per_decision"]["estimate"]
        for n, p in after.data["evaluation"]["policies"].items()
    }
    assert test_cost["expert-rules"] < test_cost["rules"]  # a test-split choice would flip
    assert before.data["roles"] == after.data["roles"]
    assert after.data["roles"]["control"] == "rules"
    assert after.data["recommendation"]["rules_policy"] == "rules"
