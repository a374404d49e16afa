"""Probability metrics: accuracy, Brier score and log loss are scikit-learn's with bootstrap
intervals from the replicates they are given; the AUC's interval is DeLong's, checked against
its pairwise definition, against the bootstrap, and by its coverage over many seeds (with and
without time blocks)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from advisor.stats.bootstrap import Resampler
from advisor.stats.probability_quality import (
    auc_influence,
    auc_interval,
    metric_rows,
    probability_metrics,
)


def _data(k: int, n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba = np.round(proba, 2)  # ties in the scores, as trees and rules give
    return y, proba / proba.sum(axis=1, keepdims=True)


def _pairwise_influence(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """DeLong's placement values by their definition (every positive against every negative,
    ties half), centred and scaled: the reference `auc_influence` must equal."""
    pos, neg = score[y == 1], score[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = psi.mean()
    out = np.empty(len(y))
    out[y == 1] = (psi.mean(axis=1) - auc) / len(pos)
    out[y == 0] = (psi.mean(axis=0) - auc) / len(neg)
    return out


def test_influence_is_delongs_placements_by_their_definition():
    y, proba = _data(2, n=600, seed=1)
    np.testing.assert_allclose(
        auc_influence(y, proba), _pairwise_influence(y, proba[:, 1]), rtol=0, atol=1e-14
    )


def test_multiclass_influence_averages_the_one_vs_rest_influences():
    y, proba = _data(3, n=600, seed=2)
    each = [_pairwise_influence((y == c).astype(int), proba[:, c]) for c in range(3)]
    np.testing.assert_allclose(auc_influence(y, proba), np.mean(each, axis=0), atol=1e-14)


@pytest.mark.parametrize("k", [2, 3])
def test_auc_interval_matches_the_bootstrap_spread(k):
    """The interval's width is what resampling the rows and recomputing scikit-learn's AUC
    gives (an independent reference), within the bootstrap's own noise."""
    y, proba = _data(k, n=2000, seed=3)
    got = auc_interval(y, proba)
    rng = np.random.default_rng(4)
    reps = []
    for _ in range(600):
        rows = rng.integers(0, len(y), len(y))
        if k == 2:
            reps.append(roc_auc_score(y[rows], proba[rows, 1]))
        else:
            reps.append(roc_auc_score(y[rows], proba[rows], multi_class="ovr"))
    low, high = np.percentile(reps, [2.5, 97.5])
    assert got.estimate == pytest.approx(np.mean(reps), abs=0.003)
    assert got.high - got.low == pytest.approx(high - low, rel=0.12)
    assert got.low == pytest.approx(low, abs=0.004) and got.high == pytest.approx(high, abs=0.004)


def test_auc_interval_width_is_hanley_and_mcneils_for_binormal_scores():
    """For an AUC of this size, Hanley and McNeil's closed-form standard error gives about
    the same width (their formula assumes exponential scores, so only roughly)."""
    y, proba = _data(2, n=5000, seed=3)
    got = auc_interval(y, proba)
    auc, n1, n0 = got.estimate, (y == 1).sum(), (y == 0).sum()
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt(
        (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    )
    assert got.high - got.low == pytest.approx(2 * 1.96 * se, rel=0.2)


def _binormal(rng, n: int, shift: float, blocks: int | None = None, spread: float = 0.0):
    """Scores N(shift, 1) for positives, N(0, 1) for negatives; with `blocks`, each block's
    positives share one N(0, spread) addition to the shift (how well the scores separate
    the classes varies from day to day)."""
    y = (rng.random(n) < 0.3).astype(int)
    score = rng.normal(size=n) + shift * y
    block = None
    if blocks is not None:
        block = np.sort(rng.integers(0, blocks, n))
        score = score + rng.normal(0, spread, blocks)[block] * y
    p = 1 / (1 + np.exp(-score))
    return y, np.column_stack([1 - p, p]), block


def test_auc_interval_covers_the_true_auc_95_percent_of_the_time():
    """Pooled over 1,000 seeds of 300 rows, the interval holds the population AUC
    (Phi(shift / sqrt 2) for binormal scores) about 95 % of the time."""
    shift = 1.0
    truth = NormalDist().cdf(shift / np.sqrt(2))
    covered = []
    for seed in range(1000):
        y, proba, _ = _binormal(np.random.default_rng(seed), 300, shift)
        got = auc_interval(y, proba)
        covered.append(got.low <= truth <= got.high)
    assert 0.935 <= np.mean(covered) <= 0.965


def test_auc_interval_by_blocks_covers_where_rows_alone_do_not():
    """Rows of a block share an offset: intervals that treat rows as independent are too
    narrow; summing the influences per block (as the bootstrap resamples blocks) restores
    the coverage. Pooled over 400 seeds of 60 blocks."""
    rng = np.random.default_rng(99)
    y, proba, block = _binormal(rng, 400_000, 1.0, blocks=20_000, spread=1.0)
    truth = roc_auc_score(y, proba[:, 1])  # nearly the population AUC: 20,000 blocks
    by_rows, by_blocks = [], []
    for seed in range(400):
        y, proba, block = _binormal(np.random.default_rng(seed), 1200, 1.0, blocks=60, spread=1.0)
        rows, blocks = auc_interval(y, proba), auc_interval(y, proba, block)
        by_rows.append(rows.low <= truth <= rows.high)
        by_blocks.append(blocks.low <= truth <= blocks.high)
    assert np.mean(by_rows) < 0.85
    assert 0.92 <= np.mean(by_blocks) <= 0.975


def test_auc_interval_of_one_class_or_a_constant():
    assert auc_interval(np.zeros(50, dtype=int), np.full((50, 2), 0.5)) is None
    got = auc_interval(np.array([0, 1] * 50), np.full((100, 2), 0.5))
    assert (got.estimate, got.low, got.high) == (0.5, 0.5, 0.5)
    separated = auc_interval(np.array([0, 1] * 50), np.array([[0.9, 0.1], [0.1, 0.9]] * 50))
    assert (separated.estimate, separated.low, separated.high) == (1.0, 1.0, 1.0)


def test_probability_metrics_match_scikit_learn_with_intervals_from_the_replicates():
    y, proba = _data(2, n=5000, seed=3)
    probas = {"a": proba, "b": proba[:, ::-1]}
    replicates = Resampler(400, 2).means(metric_rows(y, probas))
    out = probability_metrics(y, probas, replicates)
    a = out["a"]
    assert a["accuracy"].estimate == pytest.approx(accuracy_score(y, proba.argmax(axis=1)))
    assert a["brier"].estimate == pytest.approx(2 * brier_score_loss(y, proba[:, 1]))
    assert a["log_loss"].estimate == pytest.approx(log_loss(y, proba))
    assert a["roc_auc"].estimate == pytest.approx(roc_auc_score(y, proba[:, 1]))
    for metric in ("accuracy", "brier", "log_loss", "roc_auc"):
        assert a[metric].low < a[metric].estimate < a[metric].high
    # the log loss's interval is the percentile interval of its column of replicates
    assert a["log_loss"].low == pytest.approx(np.percentile(replicates[:, 2], 2.5))
    assert out["b"]["roc_auc"].estimate == pytest.approx(1 - a["roc_auc"].estimate)
    assert out["b"]["log_loss"].high == pytest.approx(np.percentile(replicates[:, 5], 97.5))
