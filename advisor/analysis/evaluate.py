"""Offline evaluation: realised cost per row of every policy on the test split, with a paired
bootstrap (the same resampled rows for every policy, so differences are paired)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from advisor.analysis.calibration_gap import SEED_OFFSET, Gaps, gaps_of
from advisor.analysis.roles import Roles
from advisor.core.costs import UNDECIDED, CostMatrix
from advisor.core.data import Part
from advisor.core.record import Record, json_field
from advisor.policies.base import Policy
from advisor.stats.bootstrap import BootstrapScheme, Resampler, interval
from advisor.stats.interval import Interval
from advisor.stats.large_sample import LARGE_ROWS, NORMAL_INTERVAL, near_normal
from advisor.stats.probability_quality import AUC_INTERVAL, metric_rows, probability_metrics


@dataclass(frozen=True)
class Confusion(Record):
    """Counts and total realised cost by actual class (rows) and decision (columns)."""

    classes: tuple[str, ...]
    decisions: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    total_cost: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class PolicyScore(Record):
    """One policy on the test split: its summary (what result.json holds) and, live, the
    per-row realised cost, decisions and probabilities the later stages reuse."""

    cost_per_decision: Interval
    total_cost: float
    decision_shares: Mapping[str, float]
    confusion: Confusion
    version: str
    description: Mapping[str, Any]
    metrics: Mapping[str, Interval] | None = json_field(omit_none=True, default=None)
    calibration_gap: Interval | None = json_field(omit_none=True, default=None)
    # the gap per band of the expected cost (`advisor.analysis.calibration_gap`)
    calibration_bands: Mapping[str, Any] | None = json_field(omit_none=True, default=None)
    name: str = json_field(internal=True, default="")
    costs: np.ndarray = json_field(internal=True)
    decisions: np.ndarray = json_field(internal=True)
    proba: np.ndarray | None = json_field(internal=True)


@dataclass(frozen=True)
class Difference(Record):
    """Cost per decision of `a` minus that of `b` (negative: `a` is cheaper), paired."""

    a: str
    b: str
    cost: Interval = json_field(flatten=True)
    share_a_cheaper: float
    excludes_zero: bool


@dataclass(frozen=True)
class RulesCapture(Record):
    """Share of ML's value over the baseline that the control rule list captures."""

    share: Interval = json_field(flatten=True)
    policy: str
    ml_value_per_decision: float


@dataclass(frozen=True)
class Evaluation(Record):
    """Every policy scored once on the test split (result.json key `evaluation`), with the
    paired bootstrap replicates that the later stages reuse, live (so their intervals come
    from the same resampled rows)."""

    n_test: int
    bootstrap: BootstrapScheme
    metric_resamples: int
    auc_interval: str
    policies: Mapping[str, PolicyScore]
    differences: tuple[Difference, ...] = ()
    rules_capture: RulesCapture | None = json_field(omit_none=True, default=None)
    # how the calibration gaps' and the probability metrics' intervals were found, when not
    # from the bootstrap (`advisor.stats.large_sample`)
    mean_interval: str | None = json_field(omit_none=True, default=None)
    split: str = "test"
    replicates: Mapping[str, np.ndarray] = json_field(internal=True)
    resampler: Resampler = json_field(internal=True)

    @property
    def n(self) -> int:
        return self.n_test

    def cost(self, name: str) -> float:
        """The policy's test cost per decision (the point estimate)."""
        return float(self.policies[name].cost_per_decision.estimate)

    def arms(self, roles: Roles) -> tuple[PolicyScore, PolicyScore] | None:
        """The control's and the ML treatment's scores, or None when either is missing."""
        if roles.treatment is None or roles.control not in self.policies:
            return None
        return self.policies[roles.control], self.policies[roles.treatment]

    def series(self, name: str) -> np.ndarray:
        """[estimate, *bootstrap replicates] of the policy's cost per decision."""
        return np.concatenate([[self.cost(name)], self.replicates[name]])

    def to_dict(self) -> dict:
        out = super().to_dict()
        scheme = out["bootstrap"]
        return {
            "split": out.pop("split"),
            "n_test": out.pop("n_test"),
            "resamples": scheme["resamples"],
            "seed": scheme["seed"],
            **out,
        }


def confusion(
    costs: CostMatrix, y: np.ndarray, decisions: np.ndarray, row_costs: np.ndarray
) -> Confusion:
    """Counts and total realised cost by actual class and decision."""
    k, d = costs.n_classes, costs.n_decisions
    flat = y * d + decisions
    counts = np.bincount(flat, minlength=k * d).reshape(k, d)
    totals = np.bincount(flat, weights=row_costs, minlength=k * d).reshape(k, d)
    return Confusion(
        classes=tuple(str(c) for c in costs.classes),
        decisions=tuple(costs.decisions),
        counts=tuple(map(tuple, counts.tolist())),
        total_cost=tuple(map(tuple, totals.round(2).tolist())),
    )


def evaluate(
    policies: Mapping[str, Policy],
    test: Part,
    costs: CostMatrix,
    roles: Roles,
    resampler: Resampler,
) -> Evaluation:
    """Realised cost per row of every policy on the test split, with paired bootstrap intervals.

    This is the one place the test split is scored; every choice was made before, on validation.
    """
    names = list(policies)
    each = costs.cost_of_each_decision(test.y, test.frame)
    rows = np.arange(len(test))
    batches = {name: policy.decide_batch(test.frame) for name, policy in policies.items()}
    codes = {name: batch.codes for name, batch in batches.items()}
    probas = {
        name: batches[name].proba
        if batches[name].proba is not None
        else p.predict_proba(test.frame)
        for name, p in policies.items()
        if p.probabilistic
    }
    undecided = [name for name, c in codes.items() if (c == UNDECIDED).any()]
    if undecided:  # cost columns are checked at load, so this is a bug, not bad input
        raise ValueError(f"policy {undecided[0]!r} left test rows undecided")
    per_row = {name: each[rows, codes[name]] for name in names}
    reps = resampler.means(np.column_stack([per_row[n] for n in names]))
    replicates = {n: reps[:, i] for i, n in enumerate(names)}
    gaps, bands, metrics, method = _described(test, per_row, codes, probas, costs, resampler)
    scores = {}
    for name, policy in policies.items():
        shares = np.bincount(codes[name], minlength=costs.n_decisions) / len(test)
        scores[name] = PolicyScore(
            cost_per_decision=interval(per_row[name].mean(), replicates[name]),
            total_cost=float(per_row[name].sum()),
            decision_shares={d: float(s) for d, s in zip(costs.decisions, shares, strict=True)},
            confusion=confusion(costs, test.y, codes[name], per_row[name]),
            version=policy.version,
            description=policy.describe(),
            metrics=metrics.get(name),
            calibration_gap=gaps.get(name),
            calibration_bands=bands.get(name),
            name=name,
            costs=per_row[name],
            decisions=codes[name],
            proba=probas.get(name),
        )
    differences = tuple(
        difference(a, b, scores, replicates) for i, a in enumerate(names) for b in names[i + 1 :]
    )
    return Evaluation(
        n_test=len(test),
        bootstrap=resampler.scheme,
        metric_resamples=resampler.resamples,
        auc_interval=AUC_INTERVAL,
        policies=scores,
        differences=differences,
        rules_capture=rules_capture(scores, replicates, roles),
        mean_interval=method,
        replicates=replicates,
        resampler=resampler,
    )


def _described(
    test: Part,
    realised: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
    probas: Mapping[str, np.ndarray],
    costs: CostMatrix,
    resampler: Resampler,
) -> tuple[dict, dict, dict, str | None]:
    """The calibration gaps and bands, and the probability metrics, of every policy with
    probabilities: the gaps and the metrics' per-row scores resampled in one pass (the metrics
    are means of rows too), or on a large split whose means are all near normal, the normal
    interval of each (`uses_normal_interval`, and its description is returned last); the AUC's
    interval from DeLong's variance."""
    gaps = gaps_of(realised, codes, probas, costs, test.frame)
    if not gaps.names:
        return {}, {}, {}, None
    scored = {name: probas[name] for name in gaps.names}
    scores = metric_rows(test.y, scored)
    if uses_normal_interval(resampler, gaps, scores):
        found, bands = gaps.normal(resampler)
        metrics = probability_metrics(test.y, scored, None, resampler.blocks, scores)
        return found, bands, metrics, NORMAL_INTERVAL
    plain = np.column_stack([gaps.plain, scores])
    reps, band_reps = resampler.means_and_banded(plain, gaps.banded, SEED_OFFSET)
    found, bands = gaps.summarise(reps[:, : len(gaps.names)], band_reps)
    metrics = probability_metrics(
        test.y, scored, reps[:, len(gaps.names) :], resampler.blocks, scores
    )
    return found, bands, metrics, None


def uses_normal_interval(resampler: Resampler, gaps: Gaps, scores: np.ndarray) -> bool:
    """Whether the calibration gaps and the probability metrics take the normal interval of
    a mean (`advisor.stats.large_sample`): rows resampled one at a time, at least LARGE_ROWS
    of them, and every overall gap and per-row metric near normal (the bands are judged one
    by one, `Gaps.normal`)."""
    return (
        resampler.blocks is None
        and len(scores) >= LARGE_ROWS
        and near_normal(scores)
        and gaps.near_normal()
    )


def difference(a: str, b: str, per_policy: Mapping, replicates: Mapping) -> Difference:
    """Mean cost of `a` minus mean cost of `b` per decision (negative: `a` is cheaper)."""
    est = per_policy[a].costs.mean() - per_policy[b].costs.mean()
    reps = replicates[a] - replicates[b]
    cost = interval(est, reps)
    return Difference(a, b, cost, float((reps < 0).mean()), cost.excludes_zero())


def rules_capture(scores: Mapping, replicates: Mapping, roles: Roles) -> RulesCapture | None:
    """Share of ML's value over the baseline that the control rule list captures, with a
    bootstrap interval; None when the run has no ML treatment."""
    base, ml, rules = roles.baseline, roles.treatment, roles.control
    if ml is None or not {base, ml, rules} <= set(scores):
        return None
    b, m, r = (scores[n].costs.mean() for n in (base, ml, rules))
    ml_value = b - m
    est = (b - r) / ml_value if ml_value > 0 else float("nan")
    rep_ml = replicates[base] - replicates[ml]
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(rep_ml > 0, (replicates[base] - replicates[rules]) / rep_ml, np.nan)
    share = interval(est, reps) if np.isfinite(est) else Interval.unknown()
    return RulesCapture(share, rules, float(ml_value))


def comparison_frame(evaluation: Evaluation, currency: str = "") -> pd.DataFrame:
    """One row per policy: cost per decision with its interval (the notebook's `comparison`)."""
    rows = []
    for name, entry in evaluation.policies.items():
        c = entry.cost_per_decision
        row = {"policy": name, "cost_per_decision": c.estimate, "low": c.low, "high": c.high}
        m = entry.metrics or {}
        for key in ("roc_auc", "accuracy"):
            if key in m:
                row[key] = m[key].estimate
        row["version"] = entry.version
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("policy")
    frame.attrs["currency"] = currency
    return frame
