"""Probability metrics: the weighted AUC of a resample equals scikit-learn's AUC of the
resampled rows, and the intervals come from one shared pass."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from advisor.stats.bootstrap import Resampler
from advisor.stats.probability_quality import WeightedAUC, auc_ovr, probability_metrics


def _data(k: int, n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba = np.round(proba, 2)  # ties in the scores, as trees and rules give
    return y, proba / proba.sum(axis=1, keepdims=True)


def assert_scikit_learns(got, draws, y, proba, k: int) -> None:
    """Each weighted AUC equals scikit-learn's on the rows its resample drew."""
    for value, rows in zip(got, draws, strict=True):
        if k == 2:
            expected = roc_auc_score(y[rows], proba[rows, 1])
        else:
            expected = roc_auc_score(y[rows], proba[rows], multi_class="ovr")
        assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_weighted_auc_is_the_auc_of_the_resampled_rows(k):
    y, proba = _data(k)
    rng = np.random.default_rng(1)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(5)]
    weights = np.vstack([np.bincount(d, minlength=len(y)) for d in draws]).astype(float)
    got = WeightedAUC(y, proba)(weights)
    assert_scikit_learns(got, draws, y, proba, k)
    assert WeightedAUC(y, proba)(np.ones((1, len(y))))[0] == pytest.approx(auc_ovr(y, proba))


def test_probability_metrics_match_scikit_learn_and_cover_it():
    y, proba = _data(2, n=5000, seed=3)
    out = probability_metrics(y, {"a": proba, "b": proba[:, ::-1]}, Resampler(400, 2))
    a = out["a"]
    assert a["log_loss"].estimate == pytest.approx(log_loss(y, proba))
    assert a["roc_auc"].estimate == pytest.approx(roc_auc_score(y, proba[:, 1]))
    for metric in ("accuracy", "brier", "log_loss", "roc_auc"):
        assert a[metric].low < a[metric].estimate < a[metric].high
    # The AUC's interval is about what normal theory gives for an AUC of this size (Hanley-McNeil).
    auc, n1, n0 = a["roc_auc"].estimate, (y == 1).sum(), (y == 0).sum()
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt(
        (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    )
    assert a["roc_auc"].high - a["roc_auc"].low == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert out["b"]["roc_auc"].estimate == pytest.approx(1 - a["roc_auc"].estimate)


@pytest.mark.parametrize("k", [2, 3])
def test_weighted_auc_of_few_distinct_scores_is_the_auc_of_the_resampled_rows(k, monkeypatch):
    """Scores of a handful of values (a rule list's, a constant) take the per-level path: the
    same AUC as scikit-learn's on the resampled rows, and as the sorted path's."""
    y, proba = _data(k, seed=4)
    proba = np.round(proba, 1)  # at most 11 values a class
    proba = proba / proba.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(2)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(5)]
    weights = np.vstack([np.bincount(d, minlength=len(y)) for d in draws]).astype(float)
    few = WeightedAUC(y, proba)
    assert all(not isinstance(part, tuple) for part in few.parts)
    got = few(weights)
    assert_scikit_learns(got, draws, y, proba, k)
    monkeypatch.setattr(WeightedAUC, "FEW_LEVELS", 0)
    sorted_path = WeightedAUC(y, proba)
    assert all(isinstance(part, tuple) for part in sorted_path.parts)
    np.testing.assert_allclose(sorted_path(weights), got, rtol=0, atol=1e-12)


def test_weighted_auc_of_a_constant_is_a_half():
    y = np.array([0, 1] * 50)
    proba = np.full((100, 2), 0.5)
    assert WeightedAUC(y, proba)(np.ones((2, 100))) == pytest.approx([0.5, 0.5])
