"""The estimated cost before the outcomes arrive: for an ML bundle, the expected cost of the
decisions logged, from the bundle's calibrated probabilities and the cost matrix (the cost
analogue of NannyML's confidence-based performance estimation).

Per row, the decision made has an expected cost Σ_k p_k c_k over the classes k (example-dependent
costs read their columns from the log) and a variance Σ_k p_k c_k² − (Σ_k p_k c_k)². Their mean
is the estimate, with a bootstrap interval over the rows; the 90 % prediction interval for the
cost the same rows will realise adds the outcomes' own noise (Σ variance / n²) to the
estimate's. The run's calibration gap (realised minus expected cost on its test split) corrects
the estimate, and its error widens both intervals: validated on car-loans and covariate shifts
by `benchmarks/monitor_estimate.py`. The estimate trusts the probabilities: it is reliable only while the inputs stay
where the model was trained (no logged feature drifted to the major level in the window), and it cannot see a change in outcomes for the same inputs (concept drift).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from advisor.core.costs import CostMatrix
from advisor.monitor import family
from advisor.monitor.measures import decision_codes, resampler
from advisor.stats.bootstrap import interval

PREDICTION_LEVEL = 0.90
RELIABLE_RULE = (
    "reliable while no logged feature drifted to the major PSI level (0.25 and beyond sampling "
    "noise) in the window: beyond it the inputs leave the support the model was trained on"
)
CONCEPT_DRIFT = (
    "It cannot see a change in outcomes for the same inputs (concept drift): only the realised "
    "cost can."
)


def row_costs(proba: np.ndarray, rows: pd.DataFrame, costs: CostMatrix) -> tuple[np.ndarray, ...]:
    """Each row's expected cost of its logged decision and that cost's variance."""
    codes = decision_codes(rows["decision"], costs.decisions)
    n = len(rows)
    tensor = np.broadcast_to(costs.tensor(rows, n), (n, costs.n_classes, costs.n_decisions))
    chosen = tensor[np.arange(n), :, np.maximum(codes, 0)]  # (n, classes)
    mean = (proba * chosen).sum(axis=1)
    variance = np.maximum((proba * chosen**2).sum(axis=1) - mean**2, 0.0)
    return mean, variance


def estimated_cost(
    proba: np.ndarray,
    rows: pd.DataFrame,
    costs: CostMatrix,
    offline: Mapping | None,
    seed: int,
    gap: Mapping | None = None,
) -> dict:
    """The estimate per decision with its 95 % interval, the 90 % prediction interval for the
    realised cost of these rows, and whether its lower bound at the family's per-window level
    lies above the offline bar. With the run's calibration gap (realised minus expected cost on
    the test split, `{estimate, low, high}`), the estimate is corrected by it and every interval
    carries its error too: the probabilities' calibration error is not sampling noise."""
    mean, variance = row_costs(proba, rows, costs)
    return estimated_from_row_costs(mean, variance, rows["unit"], offline, seed, gap)


def estimated_from_row_costs(
    mean: np.ndarray,
    variance: np.ndarray,
    units: pd.Series,
    offline: Mapping | None,
    seed: int,
    gap: Mapping | None = None,
) -> dict:
    """`estimated_cost` from each row's expected cost and its variance (`row_costs`), as the
    log's scan keeps them."""
    keep = np.isfinite(mean)
    mean, variance = mean[keep], variance[keep]
    if len(mean) < 2:
        return {"n": len(mean), "estimate": None}
    reps = resampler(units[keep], seed).means(mean)[:, 0]
    shift, shift_se = correction(gap)
    reps = reps + shift
    spread = float(np.hypot(np.std(reps, ddof=1), shift_se))
    noise = float(np.sqrt(variance.sum())) / len(mean)
    z = stats.norm.ppf(0.5 + PREDICTION_LEVEL / 2)
    uncorrected = float(mean.mean())
    estimate = uncorrected + shift
    level = family.window_level("estimated_cost")
    lower = float(estimate - stats.norm.isf(level) * spread)
    # The offline share: the cost tests carry their references' errors in their own share.
    bar = family.offline_bar(offline, family.BUDGET["offline"]) if offline else None
    half = z * float(np.hypot(spread, noise))
    ci = interval(estimate, reps).to_dict()
    if shift_se > 0:  # the gap's error is not in the replicates: a normal interval carries it
        wide = stats.norm.isf(0.025) * spread
        ci.update(low=estimate - wide, high=estimate + wide)
    return {
        **ci,
        "n": len(mean),
        "uncorrected": uncorrected,
        "calibration_gap": dict(gap) if gap else None,
        "prediction": {
            "low": float(estimate - half),
            "high": float(estimate + half),
            "level": PREDICTION_LEVEL,
        },
        "lower_bound": {"value": lower, "level": level},
        "bar": bar,
        "above": bool(bar is not None and lower > bar),
    }


def correction(gap: Mapping | None) -> tuple[float, float]:
    """The calibration gap's estimate and standard error (read off its 95 % interval); no
    correction without one."""
    if not gap or gap.get("estimate") is None or gap.get("low") is None or gap.get("high") is None:
        return 0.0, 0.0
    se = (float(gap["high"]) - float(gap["low"])) / (2 * stats.norm.ppf(0.975))
    return float(gap["estimate"]), se


def judged(figure: dict, drift: Mapping, features: set[str]) -> dict:
    """The estimate marked reliable or not, with the reason, by the window's drift on
    `features`."""
    drifted = sorted(name for name, d in drift.items() if name in features and d["flag"] == "major")
    reason = (
        None
        if not drifted
        else f"{', '.join(drifted)} drifted to the major level: the inputs left the training "
        "support, where the probabilities were calibrated"
    )
    return {**figure, "reliable": not drifted, "unreliable_because": reason}
