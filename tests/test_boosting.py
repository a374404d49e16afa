"""Boosting in two phases (large step, then continued at the small step) and the lean path
to it: Parquet read a column at a time, the column-major model matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame

from advisor.core.case import case_from_arguments
from advisor.core.data import load_dataset, split_dataset
from advisor.core.features import FeatureSpec
from advisor.core.reading import read_frame
from advisor.policies.boosting import boost, patience_for
from advisor.policies.ml import MLPolicy, log_loss


def _sets(n: int = 6000, seed: int = 0):
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    z = 1.2 * X[:, 0] * X[:, 1] - 0.8 * np.sin(2 * X[:, 2]) + 0.5 * (X[:, 3] > 0) - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    a, b = n // 2, 3 * n // 4
    params = {
        "objective": "binary",
        "learning_rate": 0.5,
        "num_leaves": 15,
        "seed": 0,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    train = lgb.Dataset(X[:a], y[:a], params=params).construct()
    valid = lgb.Dataset(X[a:b], y[a:b], reference=train, params=params).construct()
    return params, train, valid, (X[a:b], y[a:b])


def _loss(booster, X, y, trees=None):
    p = np.clip(booster.predict(X, num_iteration=trees), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_the_small_step_continues_from_the_large_steps_best_round_and_never_loses():
    params, train, valid, (Xv, yv) = _sets()
    first_only = boost(dict(params), train, valid, 500, 100, refine_rate=None)
    params2, train2, valid2, _ = _sets()
    refined = boost(dict(params2), train2, valid2, 500, 100)
    # The first phase is the same boosting either way; the second starts at its best round.
    assert refined.first_phase_trees == first_only.trees
    assert refined.trees > refined.first_phase_trees
    assert refined.booster.current_iteration() == refined.trees
    # The loss the loop tracked (after rolling back the overshoot) is the model's own.
    assert np.isclose(refined.valid_log_loss, _loss(refined.booster, Xv, yv), rtol=1e-9)
    assert refined.valid_log_loss < _loss(first_only.booster, Xv, yv, first_only.trees)
    prefix = _loss(refined.booster, Xv, yv, refined.first_phase_trees)
    assert np.isclose(prefix, _loss(first_only.booster, Xv, yv, first_only.trees), rtol=1e-9)


def test_patience_covers_the_same_distance_at_every_step():
    assert patience_for(0.05, 100) == 100
    assert patience_for(0.15, 100) == 33
    assert patience_for(0.5, 100) == 10  # never fewer than 10 rounds


def test_small_data_and_a_given_step_boost_in_one_phase():
    case = case_from_arguments(synthetic_frame(900), target="outcome", costs={"fp": 1, "fn": 5})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    chosen = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    given = MLPolicy(case.costs, spec, seed=0, learning_rate=0.3).fit(split.train, split.valid)
    assert chosen.learning_rate_ == 0.05 and chosen.refined_trees_ == 0
    assert given.learning_rate_ == 0.3 and given.refined_trees_ == 0
    proba = chosen.predict_proba(split.test.frame)
    assert log_loss(split.test.y, proba) < 0.69


def test_the_column_major_matrix_holds_the_same_values():
    case = case_from_arguments(synthetic_frame(300), target="outcome", costs={"fp": 1, "fn": 5})
    data = load_dataset(case)
    spec = FeatureSpec(data.schema).fit(data.frame)
    rows, cols = spec.encode(data.frame), spec.encode(data.frame, order="F")
    assert rows.flags.c_contiguous and cols.flags.f_contiguous
    np.testing.assert_array_equal(rows, cols)


@pytest.mark.parametrize("group_bytes", [1, 2**30])
def test_parquet_read_a_few_columns_at_a_time_equals_pandas_whole_read(
    tmp_path, monkeypatch, group_bytes
):
    """One column per read (as at 10M rows) or all in one read: pandas' own frame."""
    monkeypatch.setattr("advisor.core.reading.GROUP_BYTES", group_bytes)
    frame = pd.DataFrame(
        {
            "amount": [1.5, None, 3.0],
            "plan": ["basic", None, "plus"],
            "tier": pd.Categorical(["a", "b", None]),
            "at": pd.to_datetime(["2024-01-01", None, "2024-03-01"]).tz_localize("UTC"),
            "count": pd.array([1, None, 2], dtype="Int64"),
            "flag": [True, False, None],
        },
        index=["r1", "r2", "r3"],
    )
    for name, data, index in [("kept", frame, True), ("plain", frame, False)]:
        path = tmp_path / f"{name}.parquet"
        data.to_parquet(path, index=index)
        pd.testing.assert_frame_equal(read_frame(path), pd.read_parquet(path), check_exact=True)


def test_the_model_fitted_from_the_encoded_columns_is_the_one_the_matrix_gives(monkeypatch):
    """LightGBM bins the Arrow columns (a float column is the frame's own) as it bins the
    rows x features matrix: the same trees; and predicting a frame a chunk of rows at a time
    gives the probabilities of the whole matrix, bit for bit."""
    import advisor.policies.ml as ml

    frame = synthetic_frame(3000, seed=4)
    case = case_from_arguments(frame, target="outcome", costs={"fp": 1, "fn": 5})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    assert spec.categorical_indices_ and len(spec.categorical_indices_) < len(spec.encoders_)
    columns = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    monkeypatch.setattr(MLPolicy, "_columns", lambda self, f: self.spec.encode(f, order="F"))
    matrix = MLPolicy(case.costs, spec, seed=0).fit(split.train, split.valid)
    assert columns.model_text() == matrix.model_text()
    whole = matrix._proba_matrix(spec.encode(split.test.frame))
    monkeypatch.setattr(ml, "PREDICT_ROWS", 97)
    np.testing.assert_array_equal(columns.predict_proba(split.test.frame), whole)
