"""How good a policy's probabilities are on the test split: accuracy, Brier score, log loss and
ROC AUC (one-vs-rest), each with a bootstrap interval.

Every policy's per-row scores are resampled in one pass over the resampling weights. The AUC
of a resample is the AUC of the rows weighted by how often each was drawn (ties count half),
which needs one sort of the scores, not one per resample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from advisor.stats.bootstrap import Resampler, interval

METRIC_RESAMPLES = 500  # resamples for these descriptive intervals (the costs use them all)
AUC_RESAMPLES = 200  # of which the AUC's interval uses the first


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


class WeightedAUC:
    """The one-vs-rest AUC of weighted rows, for many weight vectors at once.

    A positive row's share of the AUC is the weight of the negatives scored below it, plus
    half of those tied with it. Where each positive falls among the sorted negative scores is
    found once; a weight vector then needs one cumulative sum over the negatives and two
    lookups per positive. Scores of at most FEW_LEVELS distinct values (a rule list's class
    frequencies, a constant) need less: the weight of the positives and of the negatives at
    each value, one sparse product for all the weight vectors.
    """

    FEW_LEVELS = 256

    def __init__(self, y: np.ndarray, proba: np.ndarray) -> None:
        from scipy.sparse import csr_matrix

        present = np.unique(y)
        scores = proba if proba.shape[1] == 2 else _renormalised(proba, present)
        columns = [1] if proba.shape[1] == 2 else list(range(len(present)))
        labels = [1] if proba.shape[1] == 2 else list(present)
        self.parts = []
        for column, label in zip(columns, labels, strict=True):
            score = scores[:, column]
            levels, level = np.unique(score, return_inverse=True)
            if len(levels) <= self.FEW_LEVELS:
                # rows x (negatives at each level, then positives at each level)
                cell = level.ravel() + len(levels) * (y == label)
                ones = np.ones(len(y))
                shape = (len(y), 2 * len(levels))
                self.parts.append(csr_matrix((ones, (np.arange(len(y)), cell)), shape=shape))
                continue
            positive = np.flatnonzero(y == label)
            negative = np.flatnonzero(y != label)
            order = negative[np.argsort(score[negative], kind="stable")]
            ranked = score[order]
            below = np.searchsorted(ranked, score[positive], side="left")
            upto = np.searchsorted(ranked, score[positive], side="right")
            self.parts.append((positive, order, below, upto))

    @staticmethod
    def _by_level(weights: np.ndarray, cells) -> np.ndarray:
        """AUC for each row of `weights` from the weight at each (class, level) cell."""
        sums = (cells.T @ weights.T).T
        k = sums.shape[1] // 2
        neg, pos = sums[:, :k], sums[:, k:]
        twice_below = 2 * np.cumsum(neg, axis=1) - neg  # the negatives below twice, ties once
        with np.errstate(divide="ignore", invalid="ignore"):
            return 0.5 * (pos * twice_below).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """AUC for each row of `weights` (resamples x rows)."""
        out = np.zeros(len(weights))
        for part in self.parts:
            if not isinstance(part, tuple):
                out += self._by_level(weights, part)
                continue
            positive, order, below, upto = part
            neg = weights[:, order]
            cum = np.zeros((len(weights), len(order) + 1))
            np.cumsum(neg, axis=1, out=cum[:, 1:])
            twice_below = cum[:, below] + cum[:, upto]  # the negatives below twice, ties once
            pos = weights[:, positive]
            with np.errstate(divide="ignore", invalid="ignore"):
                share = 0.5 * np.einsum("ij,ij->i", pos, twice_below)
                out += share / (pos.sum(axis=1) * cum[:, -1])
        return out / len(self.parts)


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


def probability_metrics(
    y: np.ndarray, probas: Mapping[str, np.ndarray], resampler: Resampler
) -> dict[str, dict]:
    """Accuracy, Brier score, log loss and ROC AUC of each policy's probabilities, with paired
    bootstrap intervals from one pass over the resampling weights (at most METRIC_RESAMPLES:
    these figures describe the model; no choice rests on them)."""
    names = list(probas)
    if not names:
        return {}
    per_row = np.column_stack([per_row_scores(y, probas[n]) for n in names])
    aucs = {n: auc_ovr(y, probas[n]) for n in names}
    weighted = {n: WeightedAUC(y, probas[n]) for n in names if aucs[n] is not None}
    means, auc_reps = [], {n: [] for n in weighted}
    done = 0
    fewer = replace(resampler, resamples=min(resampler.resamples, METRIC_RESAMPLES))
    for w in fewer.weights(len(y), seed_offset=1):
        means.append(w @ per_row / w.sum(axis=1, keepdims=True))
        take = min(len(w), AUC_RESAMPLES - done)
        for name, auc in weighted.items():
            if take > 0:
                auc_reps[name].append(auc(w[:take]))
        done += len(w)
    reps = np.vstack(means)
    est = per_row.mean(axis=0)
    out = {}
    for i, name in enumerate(names):
        cols = slice(3 * i, 3 * i + 3)
        e, r = est[cols], reps[:, cols]
        out[name] = {
            "accuracy": interval(e[0], r[:, 0]),
            "brier": interval(e[1], r[:, 1]),
            "log_loss": interval(e[2], r[:, 2]),
        }
        if name in weighted:
            out[name]["roc_auc"] = interval(aucs[name], np.concatenate(auc_reps[name]))
    return out
