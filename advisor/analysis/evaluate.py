"""Offline evaluation: realised cost per row of every policy on the test split, with a paired
bootstrap (the same resampled rows for every policy, so differences are paired)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.analysis.roles import Roles
from advisor.core.costs import UNDECIDED, CostMatrix
from advisor.core.data import Part
from advisor.policies.base import Policy
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.probability_quality import AUC_RESAMPLES, METRIC_RESAMPLES, probability_metrics


@dataclass(frozen=True)
class PolicyScore:
    """One policy on the test split: per-row realised cost, decisions, probabilities, summary."""

    name: str
    version: str
    costs: np.ndarray
    decisions: np.ndarray
    proba: np.ndarray | None
    cost_per_decision: dict
    decision_shares: dict
    confusion: dict
    description: dict
    metrics: dict | None = None

    def to_dict(self) -> dict:
        out = {
            "cost_per_decision": self.cost_per_decision,
            "total_cost": float(self.costs.sum()),
            "decision_shares": self.decision_shares,
            "confusion": self.confusion,
            "version": self.version,
            "description": self.description,
        }
        if self.metrics is not None:
            out["metrics"] = self.metrics
        return out


@dataclass(frozen=True)
class Evaluation:
    """Every policy scored once on the test split, with paired bootstrap replicates that the
    later stages reuse (so their intervals come from the same resampled rows)."""

    policies: Mapping[str, PolicyScore]
    replicates: Mapping[str, np.ndarray]
    resampler: Resampler
    differences: tuple[dict, ...] = ()
    rules_capture: dict | None = None

    @property
    def n(self) -> int:
        return len(next(iter(self.policies.values())).costs) if self.policies else 0

    def cost(self, name: str) -> float:
        """The policy's test cost per decision (the point estimate)."""
        return float(self.policies[name].cost_per_decision["estimate"])

    def arms(self, roles: Roles) -> tuple[PolicyScore, PolicyScore] | None:
        """The control's and the ML treatment's scores, or None when either is missing."""
        if roles.treatment is None or roles.control not in self.policies:
            return None
        return self.policies[roles.control], self.policies[roles.treatment]

    def series(self, name: str) -> np.ndarray:
        """[estimate, *bootstrap replicates] of the policy's cost per decision."""
        return np.concatenate([[self.cost(name)], self.replicates[name]])

    def to_dict(self) -> dict:
        out: dict = {
            "split": "test",
            "n_test": self.n,
            "resamples": self.resampler.resamples,
            "seed": self.resampler.seed,
            "bootstrap": self.resampler.to_dict(),
            "metric_resamples": min(self.resampler.resamples, METRIC_RESAMPLES),
            "auc_resamples": min(self.resampler.resamples, METRIC_RESAMPLES, AUC_RESAMPLES),
            "policies": {name: score.to_dict() for name, score in self.policies.items()},
            "differences": list(self.differences),
        }
        if self.rules_capture is not None:
            out["rules_capture"] = self.rules_capture
        return out


def confusion(
    costs: CostMatrix, y: np.ndarray, decisions: np.ndarray, row_costs: np.ndarray
) -> dict:
    """Counts and total realised cost by actual class and decision."""
    k, d = costs.n_classes, costs.n_decisions
    flat = y * d + decisions
    counts = np.bincount(flat, minlength=k * d).reshape(k, d)
    totals = np.bincount(flat, weights=row_costs, minlength=k * d).reshape(k, d)
    return {
        "classes": [str(c) for c in costs.classes],
        "decisions": list(costs.decisions),
        "counts": counts.tolist(),
        "total_cost": totals.round(2).tolist(),
    }


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
    metrics = probability_metrics(test.y, probas, resampler)
    undecided = [name for name, c in codes.items() if (c == UNDECIDED).any()]
    if undecided:  # cost columns are checked at load, so this is a bug, not bad input
        raise ValueError(f"policy {undecided[0]!r} left test rows undecided")
    per_row = {name: each[rows, codes[name]] for name in names}
    reps = resampler.means(np.column_stack([per_row[n] for n in names]))
    replicates = {n: reps[:, i] for i, n in enumerate(names)}
    scores = {}
    for name, policy in policies.items():
        shares = np.bincount(codes[name], minlength=costs.n_decisions) / len(test)
        scores[name] = PolicyScore(
            name=name,
            version=policy.version,
            costs=per_row[name],
            decisions=codes[name],
            proba=probas.get(name),
            cost_per_decision=interval(per_row[name].mean(), replicates[name]),
            decision_shares={d: float(s) for d, s in zip(costs.decisions, shares, strict=True)},
            confusion=confusion(costs, test.y, codes[name], per_row[name]),
            description=policy.describe(),
            metrics=metrics.get(name),
        )
    differences = tuple(
        difference(a, b, scores, replicates) for i, a in enumerate(names) for b in names[i + 1 :]
    )
    return Evaluation(
        policies=scores,
        replicates=replicates,
        resampler=resampler,
        differences=differences,
        rules_capture=rules_capture(scores, replicates, roles),
    )


def difference(a: str, b: str, per_policy: Mapping, replicates: Mapping) -> dict:
    """Mean cost of `a` minus mean cost of `b` per decision (negative: `a` is cheaper)."""
    est = per_policy[a].costs.mean() - per_policy[b].costs.mean()
    reps = replicates[a] - replicates[b]
    out = {"a": a, "b": b, **interval(est, reps)}
    out["share_a_cheaper"] = float((reps < 0).mean())
    out["excludes_zero"] = bool(out["low"] is not None and (out["low"] > 0 or out["high"] < 0))
    return out


def rules_capture(scores: Mapping, replicates: Mapping, roles: Roles) -> dict | None:
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
    out = interval(est, reps) if np.isfinite(est) else {"estimate": None, "low": None, "high": None}
    out["policy"] = rules
    out["ml_value_per_decision"] = float(ml_value)
    return out


def comparison_frame(summary: Mapping, currency: str = "") -> pd.DataFrame:
    """One row per policy: cost per decision with its interval (the notebook's `comparison`)."""
    rows = []
    for name, entry in summary["policies"].items():
        c = entry["cost_per_decision"]
        row = {
            "policy": name,
            "cost_per_decision": c["estimate"],
            "low": c["low"],
            "high": c["high"],
        }
        m = entry.get("metrics", {})
        for key in ("roc_auc", "accuracy"):
            if key in m:
                row[key] = m[key]["estimate"]
        row["version"] = entry["version"]
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("policy")
    frame.attrs["currency"] = currency
    return frame
