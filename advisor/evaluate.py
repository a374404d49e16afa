"""Offline evaluation: realised cost per row of every policy on the test split, with a paired
bootstrap (the same resampled rows for every policy, so differences are paired)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from advisor.costs import CostMatrix
from advisor.data import Part
from advisor.policy import Policy

CHUNK = 250
CHUNK_CELLS = 10_000_000  # resamples x rows held at once: about 80 MB of weights


def interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> dict:
    """`{estimate, low, high}` from bootstrap replicates (percentile interval)."""
    tail = (1 - level) / 2 * 100
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return {"estimate": float(estimate), "low": None, "high": None}
    low, high = np.percentile(finite, [tail, 100 - tail])
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def bootstrap_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of resampling weights (how often each row is drawn), shape (chunk, n).

    Resampling n rows with replacement is the same as multinomial counts over the rows, so
    every mean over a resample is one matrix product with these weights.
    """
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(CHUNK, max(1, CHUNK_CELLS // n), resamples - done)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the column means of `values` (rows x series): (resamples, series)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    n = len(values)
    return np.vstack([w @ values / n for w in bootstrap_weights(n, resamples, seed)])


@dataclass
class PolicyEvaluation:
    name: str
    costs: np.ndarray
    decisions: np.ndarray
    proba: np.ndarray | None = None


@dataclass
class Evaluation:
    """Per-row costs and the bootstrap replicates every later stage reuses."""

    policies: dict[str, PolicyEvaluation]
    replicates: dict[str, np.ndarray]
    resamples: int
    seed: int
    summary: dict = field(default_factory=dict)


def _auc_ovr(y: np.ndarray, proba: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    present = np.unique(y)
    if len(present) < 2:
        return None
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    p = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
    return float(roc_auc_score(y, p, multi_class="ovr", labels=present))


def probability_metrics(y: np.ndarray, proba: np.ndarray, resamples: int, seed: int) -> dict:
    """Accuracy, ROC AUC (one-vs-rest), Brier score and log loss, each with a bootstrap interval."""
    n, k = proba.shape
    onehot = np.eye(k)[y]
    per_row = np.column_stack(
        [
            (proba.argmax(axis=1) == y).astype(float),
            ((proba - onehot) ** 2).sum(axis=1),
            -np.log(np.clip(proba[np.arange(n), y], 1e-12, 1.0)),
        ]
    )
    reps = bootstrap_means(per_row, resamples, seed)
    est = per_row.mean(axis=0)
    out = {
        "accuracy": interval(est[0], reps[:, 0]),
        "brier": interval(est[1], reps[:, 1]),
        "log_loss": interval(est[2], reps[:, 2]),
    }
    auc = _auc_ovr(y, proba)
    if auc is not None:
        rng = np.random.default_rng(seed + 1)
        auc_reps = []
        for _ in range(min(resamples, 200)):
            idx = rng.integers(0, n, n)
            auc_reps.append(_auc_ovr(y[idx], proba[idx]) or np.nan)
        out["roc_auc"] = interval(auc, np.asarray(auc_reps, dtype=float))
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
    resamples: int = 2000,
    seed: int = 0,
) -> Evaluation:
    """Realised cost per row of every policy on the test split, with paired bootstrap intervals."""
    names = list(policies)
    per_policy: dict[str, PolicyEvaluation] = {}
    each = costs.cost_of_each_decision(test.y, test.frame)
    rows = np.arange(len(test))
    for name, policy in policies.items():
        codes = policy.decide_codes(test.frame)
        proba = policy.predict_proba(test.frame) if policy.probabilistic else None
        per_policy[name] = PolicyEvaluation(name, each[rows, codes], codes, proba)
    matrix = np.column_stack([per_policy[n].costs for n in names])
    reps = bootstrap_means(matrix, resamples, seed)
    replicates = {n: reps[:, i] for i, n in enumerate(names)}

    summary: dict = {"n_test": len(test), "resamples": resamples, "seed": seed, "policies": {}}
    for name in names:
        pe = per_policy[name]
        entry = {
            "cost_per_decision": interval(pe.costs.mean(), replicates[name]),
            "total_cost": float(pe.costs.sum()),
            "decision_shares": {
                d: float(s)
                for d, s in zip(
                    costs.decisions,
                    np.bincount(pe.decisions, minlength=costs.n_decisions) / len(test),
                    strict=True,
                )
            },
            "confusion": confusion(costs, test.y, pe.decisions, pe.costs),
            "version": policies[name].version,
            "description": policies[name].describe(),
        }
        if pe.proba is not None:
            entry["metrics"] = probability_metrics(test.y, pe.proba, resamples, seed)
        summary["policies"][name] = entry
    summary["differences"] = [
        difference(a, b, per_policy, replicates)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    capture = rules_capture(per_policy, replicates)
    if capture is not None:
        summary["rules_capture"] = capture
    return Evaluation(per_policy, replicates, resamples, seed, summary)


def difference(a: str, b: str, per_policy: Mapping, replicates: Mapping) -> dict:
    """Mean cost of `a` minus mean cost of `b` per decision (negative: `a` is cheaper)."""
    est = per_policy[a].costs.mean() - per_policy[b].costs.mean()
    reps = replicates[a] - replicates[b]
    out = {"a": a, "b": b, **interval(est, reps)}
    out["share_a_cheaper"] = float((reps < 0).mean())
    out["excludes_zero"] = bool(out["low"] is not None and (out["low"] > 0 or out["high"] < 0))
    return out


def rules_capture(per_policy: Mapping, replicates: Mapping, rules: str = "rules") -> dict | None:
    """Share of ML's value over the baseline that the rules capture, with a bootstrap interval."""
    if not {"baseline", "ml", rules} <= set(per_policy):
        return None
    base, ml, rl = (per_policy[n].costs.mean() for n in ("baseline", "ml", rules))
    ml_value = base - ml
    est = (base - rl) / ml_value if ml_value > 0 else float("nan")
    rep_ml = replicates["baseline"] - replicates["ml"]
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(rep_ml > 0, (replicates["baseline"] - replicates[rules]) / rep_ml, np.nan)
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
