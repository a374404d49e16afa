"""One feature definition, two callers: frame and record paths agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame

from advisor.core.case import case_from_arguments
from advisor.core.data import load_dataset, split_dataset
from advisor.core.features import FeatureSpec
from advisor.policies.base import BaselinePolicy
from advisor.policies.ml import MLPolicy, learning_rate_for


def _fitted(frame):
    case = case_from_arguments(frame, target="outcome", costs={"fp": 10, "fn": 100, "tp": 30})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    return case, split, spec


def _awkward_rows(test: pd.DataFrame) -> pd.DataFrame:
    rows = test.head(200).copy()
    rows.loc[rows.index[:10], "plan"] = "never-seen-plan"
    rows.loc[rows.index[10:20], "plan"] = None
    rows.loc[rows.index[20:30], "age"] = np.nan
    rows.loc[rows.index[30:35], "region"] = np.nan
    return rows


def test_encode_and_encode_record_agree_on_missing_and_unseen_values():
    _, split, spec = _fitted(synthetic_frame(800))
    rows = _awkward_rows(split.test.frame)
    matrix = spec.encode(rows)
    per_record = np.vstack([spec.encode_record(r) for r in rows.to_dict("records")])
    np.testing.assert_array_equal(np.isnan(matrix), np.isnan(per_record))
    np.testing.assert_array_equal(np.nan_to_num(matrix, nan=-1), np.nan_to_num(per_record, nan=-1))
    plan = spec.names_.index("plan")
    assert (matrix[:10, plan] == spec.encoders_[plan].other_code).all()
    assert np.isnan(matrix[10:20, plan]).all()


def test_decide_and_decide_one_give_identical_decisions():
    case, split, spec = _fitted(synthetic_frame(800))
    rows = _awkward_rows(split.test.frame)
    for policy in (
        BaselinePolicy(case.costs, spec).fit(split.train, split.valid),
        MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid),
    ):
        batch = policy.decide(rows)
        single = [policy.decide_one(r) for r in rows.to_dict("records")]
        assert [d.decision for d in single] == list(batch)
        assert {d.version for d in single} == {batch.attrs["version"]} == {policy.version}


def test_ml_policy_is_reproducible_and_versioned_by_content():
    case, split, spec = _fitted(synthetic_frame(800))
    fit = lambda seed: MLPolicy(case.costs, spec, seed=seed).fit(split.train, split.valid)  # noqa: E731
    a, b, c = fit(0), fit(0), fit(1)
    assert a.version == b.version
    np.testing.assert_array_equal(
        a.predict_proba(split.test.frame), b.predict_proba(split.test.frame)
    )
    assert c.version != a.version


def test_the_step_size_grows_with_the_training_rows_and_small_data_keeps_the_small_step():
    sizes = [1_000, 200_000, 200_001, 500_000, 600_000, 2_000_000, 6_000_000]
    steps = [learning_rate_for(n) for n in sizes]
    assert steps == sorted(steps)
    assert steps[:2] == [0.05, 0.05] and steps[-1] == 0.2
    case, split, spec = _fitted(synthetic_frame(800))
    assert MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid).learning_rate_ == 0.05


def test_a_missing_example_dependent_cost_gets_no_decision():
    from advisor.core.costs import CostMatrix
    from advisor.core.errors import InputError

    frame = synthetic_frame(800)
    costs = CostMatrix.from_mapping(
        {"no": {"skip": 0, "call": 10}, "yes": {"skip": "0.05 * amount", "call": 30}},
        ["skip", "call"],
    )
    case = case_from_arguments(
        frame,
        target="outcome",
        costs={"matrix": costs.to_dict()["matrix"], "decisions": ["skip", "call"]},
    )
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    ml = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    rows = split.test.frame.head(50).copy()
    rows["amount"] = rows["amount"].astype(object)
    rows.loc[rows.index[:3], "amount"] = np.nan
    rows.loc[rows.index[3], "amount"] = "unknown"
    decided = ml.decide(rows)
    assert decided.iloc[:4].isna().all() and decided.iloc[4:].notna().all()
    assert decided.attrs["undecided"] == 4
    assert (ml.decide_codes(rows)[:4] == -1).all()
    complete = ml.decide(split.test.frame.head(50))
    assert (decided.iloc[4:] == complete.iloc[4:]).all()
    for record in rows.head(4).to_dict("records"):
        with pytest.raises(InputError, match="record: cost column 'amount' must be a number"):
            ml.decide_one(record)
