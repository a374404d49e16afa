"""Explaining the ML policy for the report: SHAP importance and dependence, calibration, and
cost against the decision threshold. Computes numbers only; the report draws them.

`explain_model` returns a `ModelReport` (result.json key `model`):

- `shap`: mean |SHAP| per feature (top `TOP_FEATURES`) and dependence points for the top three
  features, from LightGBM's own TreeSHAP (`pred_contrib`) on the booster, over a seeded
  sample of at most `SHAP_ROWS` test rows. Values are on the model's raw score scale
  (log-odds for two classes), before calibration. For more than two classes the explained class is the one whose row of
  the cost matrix spans the widest range (the class whose mistakes cost most; the last on ties).
- `calibration`: reliability bins on the test split (mean predicted probability against the
  observed frequency, with counts), for P(last class) with two classes and for the top-class
  confidence otherwise.
- `threshold` (two classes and two decisions only): test cost per decision when the decision
  that suits the last class is taken whenever P(last class) >= t, over a grid of t, with the
  cheapest threshold on the validation split, the ML policy's effective threshold and every
  policy's cost as a reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from advisor.core.data import Part
from advisor.core.record import Record, json_field

if TYPE_CHECKING:
    from advisor.analysis.evaluate import Evaluation
    from advisor.policies.base import Batch
    from advisor.policies.ml import MLPolicy

SHAP_ROWS = 2000
DEPENDENCE_POINTS = 300
DEPENDENCE_FEATURES = 3
TOP_FEATURES = 10
CALIBRATION_BINS = 10
THRESHOLD_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


@dataclass(frozen=True)
class FeatureImportance(Record):
    feature: str
    mean_abs_shap: float


@dataclass(frozen=True)
class Dependence(Record):
    """A feature's values against their SHAP values on a sample of test rows."""

    feature: str
    kind: str
    values: tuple[Any, ...]
    shap: tuple[float, ...]


@dataclass(frozen=True)
class ShapSummary(Record):
    """Mean |SHAP| of the top features and dependence points of the top three."""

    explained_class: str
    class_reason: str
    scale: str
    rows: int
    seed: int
    base_value: float
    n_features: int
    other_features_mean_abs_shap: float
    importance: tuple[FeatureImportance, ...]
    dependence: tuple[Dependence, ...]


@dataclass(frozen=True)
class CalibrationBin(Record):
    low: float
    high: float
    mean_predicted: float
    observed: float
    count: int


@dataclass(frozen=True)
class Calibration(Record):
    """Reliability bins on the test split and the expected calibration error."""

    target: str
    bins: tuple[CalibrationBin, ...]
    expected_calibration_error: float
    method: str = "none"


@dataclass(frozen=True)
class BestThreshold(Record):
    threshold: float
    cost_per_decision: float
    validation_cost_per_decision: float
    chosen_on: str


@dataclass(frozen=True)
class EffectiveThreshold(Record):
    """The median P(last class) above which the ML policy acts, and its range over rows."""

    estimate: float | None
    low: float | None
    high: float | None
    varies: bool


@dataclass(frozen=True)
class ThresholdCurve(Record):
    """Test cost per decision of acting when P(class) >= t, for t on a grid."""

    class_: str = json_field(key="class")
    decision: str
    otherwise: str
    grid: tuple[float, ...]
    cost_per_decision: tuple[float, ...]
    best: BestThreshold
    ml_threshold: EffectiveThreshold
    policies: Mapping[str, float]


def explained_class(costs) -> tuple[int, str]:
    """The class whose SHAP values the report shows, and why.

    Binary: the last class (what P(class) in the report refers to). Multiclass: the class whose
    cost row spans the widest range across decisions (mean over rows for example-dependent
    costs), the last such class on ties.
    """
    k = costs.n_classes
    if k == 2:
        return 1, "the second class; the model's score is its log-odds"
    tensor = costs.tensor(None, 1) if not costs.example_dependent else None
    if tensor is None:
        return k - 1, "the last class (costs depend on each row, so no class stands out)"
    spread = tensor[0].max(axis=1) - tensor[0].min(axis=1)
    best = int(np.flatnonzero(spread == spread.max())[-1])
    return best, "the class whose mistakes cost most (widest range in its row of the cost matrix)"


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _plain_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value if isinstance(value, int | bool) else str(value)


def tree_shap(policy, X: np.ndarray, cls: int) -> tuple[np.ndarray, float]:
    """SHAP values (rows x features) of class `cls` on the raw score, and the base value.

    LightGBM's own TreeSHAP (`pred_contrib`): the exact path-dependent algorithm that
    `shap.TreeExplainer` runs on a tree model, without importing shap. For two classes the
    booster has one score (the second class's log-odds), so `cls` is ignored.
    """
    contrib = policy.booster_.predict(X, num_iteration=policy.n_trees_, pred_contrib=True)
    width = X.shape[1] + 1
    if contrib.shape[1] > width:  # multiclass: one block of features + base per class
        contrib = contrib[:, cls * width : (cls + 1) * width]
    return contrib[:, :-1], float(contrib[0, -1])


def shap_summary(policy, spec, frame: pd.DataFrame, seed: int) -> ShapSummary:
    """Global SHAP importance and dependence points for the top features of the ML policy."""
    rows = _sample(len(frame), SHAP_ROWS, seed)
    sample = frame.iloc[rows]
    X = spec.encode(sample)
    cls, why = explained_class(policy.costs)
    values, base_value = tree_shap(policy, X, cls)
    names = spec.names_
    mean_abs = np.abs(values).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    importance = tuple(
        FeatureImportance(names[j], float(mean_abs[j])) for j in order[:TOP_FEATURES]
    )
    cleaned = spec.clean(sample)
    kinds = {e.name: e.kind for e in spec.encoders_}
    points = _sample(len(rows), DEPENDENCE_POINTS, seed + 1)
    dependence = []
    for j in order[:DEPENDENCE_FEATURES]:
        name = names[j]
        col = cleaned[name].iloc[points]
        dependence.append(
            Dependence(
                feature=name,
                kind=kinds[name],
                values=tuple(_plain_value(v) for v in col.tolist()),
                shap=tuple(round(float(v), 6) for v in values[points, j]),
            )
        )
    return ShapSummary(
        explained_class=str(policy.costs.classes[cls]),
        class_reason=why,
        scale="log-odds" if policy.costs.n_classes == 2 else "raw score (softmax input)",
        rows=len(rows),
        seed=seed,
        base_value=base_value,
        n_features=len(names),
        other_features_mean_abs_shap=float(mean_abs[order[TOP_FEATURES:]].sum()),
        importance=importance,
        dependence=tuple(dependence),
    )


def calibration_curve(
    proba: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS, method: str = "none"
) -> Calibration:
    """Reliability bins: mean predicted probability against observed frequency, with counts."""
    if proba.shape[1] == 2:
        p, hit, target = proba[:, 1], (y == 1), "last"
    else:
        p, hit, target = proba.max(axis=1), (proba.argmax(axis=1) == y), "top"
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                CalibrationBin(
                    low=round(float(edges[b]), 6),
                    high=round(float(edges[b + 1]), 6),
                    mean_predicted=float(p[mask].mean()),
                    observed=float(hit[mask].mean()),
                    count=int(mask.sum()),
                )
            )
    weights = np.array([b.count for b in out], dtype=float)
    gaps = np.array([abs(b.mean_predicted - b.observed) for b in out])
    return Calibration(
        target=target,
        bins=tuple(out),
        expected_calibration_error=float((weights * gaps).sum() / max(weights.sum(), 1.0)),
        method=method,
    )


def effective_threshold(costs, frame: pd.DataFrame, act: int) -> EffectiveThreshold:
    """The P(last class) above which the minimum-expected-cost rule takes decision `act`.

    With row-dependent costs each row has its own threshold: the median and range are given.
    """
    rest = 1 - act
    t = np.broadcast_to(costs.tensor(frame, len(frame)), (len(frame), 2, 2))
    extra = t[:, 0, act] - t[:, 0, rest]  # what acting costs when the class is the first
    saved = t[:, 1, rest] - t[:, 1, act]  # what acting saves when the class is the last
    with np.errstate(divide="ignore", invalid="ignore"):
        row = np.where(extra <= 0, 0.0, np.where(saved <= 0, 1.0, extra / (extra + saved)))
    row = np.clip(row[np.isfinite(row)], 0.0, 1.0)
    if row.size == 0:
        return EffectiveThreshold(None, None, None, False)
    low, high = float(row.min()), float(row.max())
    return EffectiveThreshold(float(np.median(row)), low, high, bool(high - low > 1e-9))


def _threshold_costs(p: np.ndarray, each: np.ndarray, act: int) -> np.ndarray:
    """Cost per decision of taking `act` whenever p >= t, for every t on the grid: the cost of
    never acting plus what acting changes on the rows at or above t (sums over the rows in
    order of p, so no grid x rows matrix: that was 1.6 GB at 2M test rows)."""
    order = np.argsort(p, kind="stable")
    change = (each[:, act] - each[:, 1 - act])[order]
    above = np.concatenate([np.cumsum(change[::-1])[::-1], [0.0]])  # sum from each row on
    first = np.searchsorted(p[order], THRESHOLD_GRID, side="left")
    return (each[:, 1 - act].sum() + above[first]) / len(p)


def threshold_curve(
    costs, test: Part, evaluation, valid: Part, valid_proba: np.ndarray
) -> ThresholdCurve | None:
    """Test cost per decision of acting when P(last class) >= t, for t on a grid (binary only).

    The cheapest threshold is chosen on the validation split and reported with its test cost,
    so the chart does not flatter a threshold picked on the rows it is shown on.
    """
    ml = evaluation.policies.get("ml")
    if costs.n_classes != 2 or costs.n_decisions != 2 or ml is None or ml.proba is None:
        return None
    each_valid = costs.cost_of_each_decision(valid.y, valid.frame)
    positives = valid.y == 1
    act = int(np.argmin(each_valid[positives].mean(axis=0))) if positives.any() else 1
    valid_cost = _threshold_costs(valid_proba[:, 1], each_valid, act)
    each = costs.cost_of_each_decision(test.y, test.frame)  # (rows, decisions)
    cost = _threshold_costs(ml.proba[:, 1], each, act)
    best = int(np.argmin(valid_cost))
    return ThresholdCurve(
        class_=str(costs.classes[1]),
        decision=costs.decisions[act],
        otherwise=costs.decisions[1 - act],
        grid=tuple(float(g) for g in THRESHOLD_GRID),
        cost_per_decision=tuple(round(float(c), 6) for c in cost),
        best=BestThreshold(
            threshold=float(THRESHOLD_GRID[best]),
            cost_per_decision=float(cost[best]),
            validation_cost_per_decision=float(valid_cost[best]),
            chosen_on="validation",
        ),
        ml_threshold=effective_threshold(costs, test.frame, act),
        policies={name: float(pe.costs.mean()) for name, pe in evaluation.policies.items()},
    )


@dataclass(frozen=True)
class ModelReport(Record):
    """What the report shows about the ML policy: SHAP, calibration and the threshold curve
    (result.json key `model`)."""

    policy: str
    trees: int
    shap: ShapSummary
    calibration: Calibration
    threshold: ThresholdCurve | None


def explain_model(
    ml: MLPolicy | None,
    evaluation: Evaluation,
    test: Part,
    valid: Part,
    valid_batch: Batch | None,
    spec,
    costs,
    seed: int,
) -> ModelReport | None:
    """The ML policy explained on the test split; None when the run has no ML policy."""
    score = evaluation.policies.get(ml.name) if ml is not None else None
    if score is None or score.proba is None:
        return None
    calibration = calibration_curve(
        score.proba, test.y, method=ml.calibration_.get("method", "none")
    )
    return ModelReport(
        policy=ml.name,
        trees=int(ml.n_trees_),
        shap=shap_summary(ml, spec, test.frame, seed),
        calibration=calibration,
        threshold=threshold_curve(costs, test, evaluation, valid, valid_batch.proba),
    )
