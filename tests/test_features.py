"""One feature definition, two callers: frame and record paths agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import synthetic_frame

from advisor.case import case_from_arguments
from advisor.data import load_dataset, split_dataset
from advisor.features import FeatureSpec
from advisor.ml import MLPolicy
from advisor.policy import BaselinePolicy


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
