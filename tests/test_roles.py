"""Roles: which rule list stands for ship-rules is decided on validation, never on test."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from conftest import synthetic_frame

import advisor
from advisor.analysis.roles import assign_roles, decide_validation
from advisor.core.costs import CostMatrix
from advisor.core.data import Part
from advisor.policies.base import Batch
from advisor.stats.bootstrap import Resampler

COSTS = CostMatrix.from_mapping(
    {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
)


class StandIn:
    """What the roles ask of a policy: its validation rows' decisions."""

    def decide_validation(self, frame: pd.DataFrame) -> Batch:
        return self.decide_batch(frame)


class Constant(StandIn):
    """A stand-in policy that always takes one decision."""

    def __init__(self, code: int) -> None:
        self.code = code

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return Batch(np.full(len(frame), self.code))


class CallWhere(StandIn):
    """A stand-in rule list: call where column `x` is 1, else skip."""

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return Batch((frame["x"].to_numpy() == 1).astype(int))


def part(yes: np.ndarray, x: np.ndarray | None = None) -> Part:
    x = yes if x is None else x
    return Part(pd.DataFrame({"x": x.astype(int)}), yes.astype(np.int64))


def roles_of(policies, valid: Part):
    return assign_roles(decide_validation(policies, valid), valid, COSTS, Resampler(2000, 0))


def test_control_is_the_cheapest_rule_list_that_clearly_beats_the_constant():
    yes = (np.arange(400) % 10 == 0).astype(int)  # 10 % positives: skipping is the constant
    policies = {
        "baseline": Constant(0),
        "rules": CallWhere(),  # calls exactly the positives: 3 a row cheaper than skipping
        "expert-rules": Constant(1),  # calls everyone: dearer than the constant
        "ml": Constant(1),
    }
    roles = roles_of(policies, part(yes))
    assert roles.control == "rules" and roles.treatment == "ml"
    assert roles.validation_cost["expert-rules"] == 0.9 * 10 + 0.1 * 30
    # A list that calls all positives and, wrongly, enough others to cost more: the constant.
    wrong = np.where(np.arange(400) % 10 < 9, 1, 0)
    assert roles_of(policies, part(yes, wrong)).control == "baseline"
    no_lists = {k: v for k, v in policies.items() if "rules" not in k}
    assert roles_of(no_lists, part(yes)).control == "baseline"


def test_a_rule_list_no_better_than_noise_leaves_the_constant_in_charge():
    rng = np.random.default_rng(0)
    yes = (rng.random(2000) < 0.1).astype(int)
    # The list calls 40 random rows: it saves 70 on the positives among them and loses 10 on
    # the others, so on average it is worse: however the sample falls, it is not clearly better.
    calls = np.zeros(2000, dtype=int)
    calls[rng.choice(2000, 40, replace=False)] = 1
    policies = {"baseline": Constant(0), "rules": CallWhere(), "ml": Constant(1)}
    roles = roles_of(policies, part(yes, calls))
    assert roles.control == "baseline" and "more than noise" in roles.reason
    # The same list with the same rows, but calling the positives: clearly better.
    assert roles_of(policies, part(yes, yes)).control == "rules"


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
                "no":  {skip: 0, call: 40}
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


def test_rule_lists_no_better_than_the_constant_ship_the_constant(tmp_path):
    rng = np.random.default_rng(5)
    n = 1500
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "plan": rng.choice(["basic", "plus", "premium"], n),
            "outcome": rng.choice(["no", "yes"], n, p=[0.8, 0.2]),  # no signal at all
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "hunch.yaml").write_text(
        'name: hunch\ndefault: skip\nrules:\n  - when: plan == "basic" and age < 40\n'
        "    decide: call\n"
    )
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            """
            data: d.csv
            target: outcome
            rules: hunch.yaml
            costs:
              decisions: [skip, call]
              matrix:
                "no":  {skip: 0, call: 10}
                "yes": {skip: 20, call: 12}
            decision: {volume: 200 per day}
            options: {bootstrap_resamples: 500}
            """
        )
    )
    result = advisor.advise(tmp_path / "c.yaml")
    data = result.data
    cost = data["roles"]["validation_cost_per_decision"]
    assert cost["expert-rules"] > cost["baseline"]  # the hunch loses money on validation
    assert data["roles"]["control"] == "baseline"
    rec = data["recommendation"]
    assert (
        rec["rules_policy"] == "baseline" and rec["options"]["ship-rules"]["policy"] == "baseline"
    )
    assert data["maintenance"]["ship-rules"]["annual_cost"] == 0.0
    assert rec["option"] == "ship-rules"
    assert rec["headline"].endswith(
        "Keep it simple: always skip; neither a rule list nor a model pays for its upkeep here."
    )


def test_changing_only_the_test_rows_cannot_change_the_retraining_cadence(tmp_path):
    frame = synthetic_frame(1500, seed=6, with_time=True)
    before = _analyse(tmp_path, frame)
    # Over the test period (the last 20 % by time) the outcomes turn against the features, so
    # every test window's cost, and ML's advantage in it, moves.
    tampered = frame.copy()
    late = tampered.index[-300:]
    tampered.loc[late, "outcome"] = np.where(tampered.loc[late, "outcome"] == "yes", "no", "yes")
    after = _analyse(tmp_path, tampered)
    edge = [
        [w["ml_advantage"]["estimate"] for w in r.data["drift"]["windows"]] for r in (before, after)
    ]
    assert all(a != b for a, b in zip(*edge, strict=True))
    assert before.data["drift"]["cadence"] == after.data["drift"]["cadence"]
    assert after.data["drift"]["cadence"]["split"] == "validation"
    assert before.data["maintenance"] == after.data["maintenance"]
    assert before.data["roles"] == after.data["roles"]


def test_a_fitted_model_decides_the_validation_rows_from_the_probabilities_it_kept():
    """The model keeps its calibrated probabilities of the validation rows from fitting; the
    roles' decisions read them, and they are exactly what predicting those rows again gives."""
    from advisor.core.case import case_from_arguments
    from advisor.core.data import load_dataset, split_dataset
    from advisor.core.features import FeatureSpec
    from advisor.policies.ml import MLPolicy

    case = case_from_arguments(synthetic_frame(2000), target="outcome", costs={"fp": 1, "fn": 5})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    model = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    again = model.decide_batch(split.valid.frame)
    model.predict_proba = None  # a second prediction would fail here
    kept = decide_validation({"ml": model}, split.valid)["ml"]
    np.testing.assert_array_equal(kept.proba, again.proba)
    np.testing.assert_array_equal(kept.codes, again.codes)
    np.testing.assert_array_equal(kept.expected_costs, again.expected_costs)
    shipped = MLPolicy(case.costs, spec, seed=0).fit_rounds(
        split.train, model.n_trees_, model.calibrator_, model.calibration_
    )
    assert shipped.validation_proba_ is None  # fitted without validation rows: predicts them


def test_kept_validation_probabilities_serve_only_the_frame_fitted_with():
    """Other rows of the same length, a copy of the frame, or the policy after pickling (as
    shipped to a worker) are predicted afresh, never answered from the kept probabilities."""
    import pickle

    from advisor.core.case import case_from_arguments
    from advisor.core.data import Part, load_dataset, split_dataset
    from advisor.core.features import FeatureSpec
    from advisor.policies.ml import MLPolicy

    case = case_from_arguments(synthetic_frame(2000), target="outcome", costs={"fp": 1, "fn": 5})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    model = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    test_rows = split.test.frame.iloc[: len(split.valid)].reset_index(drop=True)
    other = Part(frame=test_rows, y=split.test.y[: len(split.valid)])
    assert len(other) == len(split.valid)
    predicted = []
    raw_frame = model._raw_frame
    model._raw_frame = lambda frame: predicted.append(len(frame)) or raw_frame(frame)
    np.testing.assert_array_equal(
        decide_validation({"ml": model}, other)["ml"].proba, model.predict_proba(other.frame)
    )
    decide_validation({"ml": model}, Part(frame=split.valid.frame.copy(), y=split.valid.y))
    assert len(predicted) == 3  # other rows twice (decided, then checked), the copy once
    decide_validation({"ml": model}, split.valid)
    assert len(predicted) == 3  # the very frame fitted with: answered from what was kept
    del model._raw_frame
    copied = pickle.loads(pickle.dumps(model))
    assert copied.validation_proba_ is None
    np.testing.assert_array_equal(
        decide_validation({"ml": copied}, split.valid)["ml"].proba,
        model.validation_proba_,
    )
