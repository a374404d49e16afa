"""The estimated cost before outcomes (`advisor.monitor.estimate`): the estimate and its
outcome noise against the closed form on a hand-made window, the coverage of its prediction
interval when the probabilities are right (outcomes drawn from them, 200 windows), and the
reliability rule. Its validation on real models is `benchmarks/monitor_estimate.py`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.core.costs import CostMatrix
from advisor.monitor.estimate import estimated_cost, judged

COSTS = CostMatrix.from_mapping(
    {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
)


def window(decisions: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"decision": decisions, "unit": [str(i) for i in range(len(decisions))]})


def test_the_estimate_is_the_mean_expected_cost_of_the_decisions_made():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.7, 0.3]])
    rows = window(["skip", "call", "call", "skip"])
    got = estimated_cost(proba, rows, COSTS, {"estimate": 5, "low": 4, "high": 6}, 0)
    chosen = np.array([[0, 100], [10, 30], [10, 30], [0, 100]], dtype=float)
    mean = (proba * chosen).sum(1)
    variance = (proba * chosen**2).sum(1) - mean**2
    assert got["estimate"] == pytest.approx(mean.mean())
    assert got["low"] <= got["estimate"] <= got["high"]
    noise = np.sqrt(variance.sum()) / 4
    assert got["prediction"]["high"] - got["estimate"] >= 1.64 * noise  # outcome noise at least
    assert got["above"] is True  # the estimate is far above an offline cost of 5


def test_the_prediction_interval_covers_when_the_probabilities_are_right():
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        p = rng.beta(1, 4, 1000)
        proba = np.column_stack([1 - p, p])
        decisions = np.where(p > 0.125, "call", "skip")
        rows = window(list(decisions))
        e = estimated_cost(proba, rows, COSTS, None, int(rng.integers(1 << 30)))
        y = (rng.random(1000) < p).astype(int)
        codes = (decisions == "call").astype(int)
        truth = COSTS.realised(y, codes).mean()
        hits.append(e["prediction"]["low"] <= truth <= e["prediction"]["high"])
    assert np.mean(hits) >= 0.86


def test_an_estimate_is_unreliable_where_a_model_feature_drifted_to_major():
    figure = {"estimate": 1.0}
    drift = {"Income": {"flag": "major"}, "Age": {"flag": "moderate"}}
    assert judged(figure, drift, {"Income"})["reliable"] is False
    assert "Income" in judged(figure, drift, {"Income"})["unreliable_because"]
    assert judged(figure, drift, {"Age"})["reliable"] is True
