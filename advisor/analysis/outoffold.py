"""What each refit leaves besides its costs, pooled over the refits: the model's early stopping
and raw probabilities on the rows it never learnt from (what the shipped model's rounds and
calibration come from, `advisor.analysis.shipping`), and every probabilistic policy's
calibration gap on those rows (realised minus expected cost of its own decisions, what the
monitor compares production with, `advisor.analysis.calibration_gap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from advisor.core.costs import CostMatrix
from advisor.core.data import Part
from advisor.core.record import Record
from advisor.policies.base import Batch, Policy
from advisor.policies.ml import MLPolicy


@dataclass(frozen=True)
class FoldFit(Record):
    """One ML fit's early stopping: its training rows, its trees and the step they were at."""

    rows: int
    trees: int
    learning_rate: float
    refined_trees: int = 0


@dataclass(frozen=True)
class RefitRows:
    """One refit's extras on its scored rows."""

    fits: Mapping[str, FoldFit]  # ML policy -> its early stopping
    raw: Mapping[str, np.ndarray]  # ML policy -> raw (uncalibrated) probabilities, rows x k
    gaps: Mapping[str, np.ndarray]  # probabilistic policy -> realised minus expected cost
    # probabilistic policy -> (expected cost of the decision made, its code) per row
    decided: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    counts: Mapping[str, np.ndarray] = field(default_factory=dict)  # policy -> rows per decision


def refit_rows(
    policies: Mapping[str, Policy],
    batches: Mapping[str, Batch],
    held: Part,
    each: np.ndarray,
    costs: CostMatrix,
    train_rows: int,
) -> RefitRows:
    """The extras of one refit whose policies decided `held` (`batches`; `each`: the cost of
    every decision on every held row; `train_rows`: the rows its policies learnt from)."""
    fits, raw, gaps, decided, counts = {}, {}, {}, {}, {}
    rows = np.arange(len(held))
    for name, policy in policies.items():
        counts[name] = np.bincount(batches[name].codes, minlength=len(costs.decisions))
        if isinstance(policy, MLPolicy):
            fits[name] = FoldFit(
                train_rows,
                int(policy.n_trees_),
                float(policy.learning_rate_),
                policy.refined_trees_,
            )
            raw[name] = policy._raw_proba(policy.spec.encode(held.frame))
        if policy.probabilistic:
            batch = batches[name]
            proba = batch.proba if batch.proba is not None else policy.predict_proba(held.frame)
            expected = costs.expected_costs(np.asarray(proba, dtype=float), held.frame)
            own = expected[rows, batch.codes]
            gaps[name] = each[rows, batch.codes] - own
            decided[name] = (own, np.asarray(batch.codes))
    return RefitRows(fits, raw, gaps, decided, counts)


@dataclass
class OutOfFold:
    """The early stopping and raw probabilities pooled over the refits, in the order the
    refits scored their rows (the gaps are pooled with the costs, `crossfit`)."""

    fits: dict[str, list[FoldFit]] = field(default_factory=dict)
    raw: dict[str, list[np.ndarray]] = field(default_factory=dict)
    labels: list[np.ndarray] = field(default_factory=list)
    counts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, extras: RefitRows, y: np.ndarray) -> None:
        self.labels.append(np.asarray(y))
        sources = ((self.fits, extras.fits), (self.raw, extras.raw), (self.counts, extras.counts))
        for target, source in sources:
            for name, value in source.items():
                target.setdefault(name, []).append(value)

    def decision_shares(self, decisions: tuple[str, ...]) -> dict[str, dict[str, float]]:
        """Policy -> the share of each decision among its decisions on every scored row of
        every refit, when every refit had that policy."""
        out = {}
        for name, parts in self.counts.items():
            total = np.sum(parts, axis=0)
            if len(parts) == len(self.labels) and total.sum() > 0:
                shares = total / total.sum()
                out[name] = {d: float(v) for d, v in zip(decisions, shares, strict=True)}
        return out

    def pooled_raw(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """ML policy -> (raw probabilities, class codes) of every scored row of every refit
        (a row scored in r repeats appears r times), when every refit had that model."""
        y = np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=int)
        return {
            name: (np.concatenate(parts), y)
            for name, parts in self.raw.items()
            if len(parts) == len(self.labels)
        }
