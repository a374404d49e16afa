"""How good a policy's probabilities are on the test split: accuracy, Brier score, log loss and
ROC AUC (one-vs-rest), each with an interval.

Accuracy, Brier score and log loss are means of per-row scores (`metric_rows`): their
intervals come from bootstrap replicates of those means, which the evaluation draws in the same
pass as the calibration gaps' (one pass over the resampling counts serves both), or on a large
test split whose means are near normal from the normal interval (`large_sample`). The AUC is
not a mean of rows; its interval is DeLong's, from each row's influence on it, which needs one
sort of the scores and no resampling at all.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from advisor.stats.bootstrap import interval
from advisor.stats.interval import Interval
from advisor.stats.large_sample import mean_intervals

METRICS = ("accuracy", "brier", "log_loss")  # the columns of `per_row_scores`, in order
AUC_INTERVAL = "DeLong's variance, normal on the logit scale"  # how the AUC's is found


def auc_ovr(y: np.ndarray, proba: np.ndarray) -> float | None:
    """ROC AUC, one-vs-rest averaged over the classes present (scikit-learn's definition)."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(y)
    if len(present) < 2:
        return None
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, _renormalised(proba, present), multi_class="ovr", labels=present))


def _renormalised(proba: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The probabilities of the classes present, summing to one (scikit-learn requires it)."""
    if len(present) == proba.shape[1]:
        return proba
    p = proba[:, present]
    return p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)


def auc_influence(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each row's share of the one-vs-rest AUC's error: the AUC minus its population value is,
    to first order, the sum of these (DeLong's placement values, centred and scaled).

    For one class, a positive row's placement is the share of negatives scored below it (ties
    count half), a negative row's the share of positives scored above it; each class's AUC is
    the mean placement of its positives (or negatives), so a row's influence is its placement
    minus that AUC, over the number of rows of its side. Ranks give all placements in one sort
    (Sun and Xu's fast DeLong). The average over classes averages the influences."""
    from scipy.stats import rankdata

    present = np.unique(y)
    if len(present) < 2:
        return np.zeros(len(y))
    binary = proba.shape[1] == 2
    scores = proba if binary else _renormalised(proba, present)
    columns = [(1, 1)] if binary else list(enumerate(present))
    out = np.zeros(len(y))
    for column, label in columns:
        score = scores[:, column]
        positive = y == label
        m, n = int(positive.sum()), int((~positive).sum())
        overall = rankdata(score)
        within = np.empty(len(y))
        within[positive] = rankdata(score[positive])
        within[~positive] = rankdata(score[~positive])
        below = overall - within  # rows of the other side scored below (ties half)
        auc = below[positive].sum() / (m * n)
        out[positive] += (below[positive] / n - auc) / m
        out[~positive] += ((1 - below[~positive] / m) - auc) / n
    return out / len(columns)


def auc_interval(
    y: np.ndarray, proba: np.ndarray, blocks: np.ndarray | None = None, level: float = 0.95
) -> Interval | None:
    """The one-vs-rest ROC AUC with DeLong's normal interval, on the logit scale so that it
    stays within 0 and 1; None when the rows hold one class.

    The variance is the sum of squared influences (`auc_influence`), times n / (n - 1). With
    `blocks` (rows of a time block are not independent) the influences are summed per block
    first: the cluster-robust form of the same variance, as the bootstrap resamples blocks."""
    from statistics import NormalDist

    estimate = auc_ovr(y, proba)
    if estimate is None:
        return None
    influence = auc_influence(y, proba)
    if blocks is not None:
        influence = np.bincount(np.asarray(blocks, dtype=np.int64), weights=influence)
    units = len(influence)
    variance = units / max(units - 1, 1) * float(np.sum(influence**2))
    if not 0 < estimate < 1 or variance <= 0:
        return Interval(estimate, estimate, estimate)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    logit = np.log(estimate / (1 - estimate))
    half = z * np.sqrt(variance) / (estimate * (1 - estimate))  # the delta method
    low, high = 1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half)))
    return Interval(estimate, float(low), float(high))


def per_row_scores(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Rows x (hit, Brier, log loss): the means of these columns are the three metrics."""
    n, k = proba.shape
    return np.column_stack(
        [
            (proba.argmax(axis=1) == y).astype(float),
            ((proba - np.eye(k)[y]) ** 2).sum(axis=1),
            -np.log(np.clip(proba[np.arange(n), y], 1e-12, 1.0)),
        ]
    )


def metric_rows(y: np.ndarray, probas: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows x (3 per policy, in the order of `probas`): the per-row scores whose means are each
    policy's accuracy, Brier score and log loss."""
    return np.column_stack([per_row_scores(y, probas[name]) for name in probas])


def probability_metrics(
    y: np.ndarray,
    probas: Mapping[str, np.ndarray],
    replicates: np.ndarray | None,
    blocks: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> dict[str, dict]:
    """Accuracy, Brier score, log loss and ROC AUC of each policy's probabilities with their
    intervals: the first three from `replicates`, bootstrap replicates of `metric_rows`' column
    means (resamples x columns), or with None the normal interval of each mean
    (`mean_intervals`); the AUC's from DeLong's variance (`auc_interval`, by `blocks` when the
    rows were resampled in blocks). `rows` is `metric_rows(y, probas)` when the caller has it."""
    names = list(probas)
    if not names:
        return {}
    rows = metric_rows(y, probas) if rows is None else rows
    if replicates is None:
        found = mean_intervals(rows)
    else:
        found = [interval(m, replicates[:, c]) for c, m in enumerate(rows.mean(axis=0))]
    out = {}
    for i, name in enumerate(names):
        columns = range(len(METRICS) * i, len(METRICS) * (i + 1))
        out[name] = {metric: found[c] for metric, c in zip(METRICS, columns, strict=True)}
        auc = auc_interval(y, probas[name], blocks)
        if auc is not None:
            out[name]["roc_auc"] = auc
    return out
