"""The estimated cost before the outcomes arrive: for an ML bundle, the expected cost of the
decisions logged, from the bundle's calibrated probabilities and the cost matrix (the cost
analogue of NannyML's confidence-based performance estimation).

Per row, the decision made has an expected cost Σ_k p_k c_k over the classes k (example-dependent
costs read their columns from the log) and a variance Σ_k p_k c_k² − (Σ_k p_k c_k)². Their mean
is the estimate, with a bootstrap interval over the rows; the 90 % prediction interval for the
cost the same rows will realise adds the outcomes' own noise (Σ variance / n²) to the
estimate's. The run's calibration gap (realised minus expected cost of its own decisions, on its
test split or out of fold) corrects the estimate per band of the expected cost, weighed by the
window's own mix of bands (a model whose error grows with the risk is off by more where the mix
moves to higher risks), and its error widens both intervals: validated on car-loans and
covariate shifts by `benchmarks/monitor_estimate.py`. The estimate trusts the probabilities: it
is reliable only while the inputs stay where the model was trained (no logged feature drifted to
the major level in the window), and it cannot see a change in outcomes for the same inputs
(concept drift).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from advisor.core.costs import CostMatrix
from advisor.core.expected_bands import band_of
from advisor.monitor import family
from advisor.monitor.measures import decision_codes, resampler
from advisor.stats.bootstrap import interval

PREDICTION_LEVEL = 0.90
Z95 = float(stats.norm.ppf(0.975))  # a 95 % interval's half width in standard errors
RELIABLE_RULE = (
    "reliable while no logged feature drifted to the major PSI level (0.25 and beyond sampling "
    "noise) in the window: beyond it the inputs leave the support the model was trained on"
)
BY_BANDS = "the calibration gap per band of the expected cost, weighed by the window's mix"
BY_GAP = (
    "the single calibration gap (the bundle has no bands, made before they were measured): it "
    "misses where the window's mix of risks moves from the run's"
)
BY_NONE = "nothing: the bundle has no calibration gap"
CONCEPT_DRIFT = (
    "It cannot see a change in outcomes for the same inputs (concept drift): only the realised "
    "cost can."
)


def row_costs(
    proba: np.ndarray, rows: pd.DataFrame, costs: CostMatrix, codes: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Each row's expected cost of its logged decision (`codes`, read off `rows` when not
    given) and that cost's variance."""
    if codes is None:
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
    bands: Mapping | None = None,
) -> dict:
    """The estimate per decision with its 95 % interval, the 90 % prediction interval for the
    realised cost of these rows, and whether its lower bound at the family's per-window level
    lies above the offline bar. Corrected by the run's calibration gap per band of the expected
    cost (`bands`, the bundle's `expected.calibration_bands`) weighed by this window's own mix,
    or by the single gap (`gap`, `{estimate, low, high}`) when the bundle has no bands; every
    interval carries the correction's error too: the probabilities' calibration error is not
    sampling noise."""
    codes = decision_codes(rows["decision"], costs.decisions)
    mean, variance = row_costs(proba, rows, costs, codes)
    decided = (codes, costs.decisions)
    return estimated_from_row_costs(
        mean, variance, rows["unit"], offline, seed, gap, bands, decided
    )


def estimated_from_row_costs(
    mean: np.ndarray,
    variance: np.ndarray,
    units: pd.Series,
    offline: Mapping | None,
    seed: int,
    gap: Mapping | None = None,
    bands: Mapping | None = None,
    decided: tuple[np.ndarray, Sequence[str]] | None = None,
) -> dict:
    """`estimated_cost` from each row's expected cost and its variance (`row_costs`), as the
    log's scan keeps them; `decided`: each row's decision code and the decisions' names, which
    the bands need."""
    keep = np.isfinite(mean)
    mean, variance = mean[keep], variance[keep]
    if len(mean) < 2:
        return {"n": len(mean), "estimate": None}
    codes = decided[0][keep] if decided is not None else None
    names = decided[1] if decided is not None else ()
    shift, shift_se, how = correction(mean, codes, names, gap, bands)
    reps = resampler(units[keep], seed).means(mean + shift)[:, 0]
    spread = float(np.hypot(np.std(reps, ddof=1), shift_se))
    noise = float(np.sqrt(variance.sum())) / len(mean)
    z = stats.norm.ppf(0.5 + PREDICTION_LEVEL / 2)
    uncorrected = float(mean.mean())
    estimate = float((mean + shift).mean())
    level = family.window_level("estimated_cost")
    lower = float(estimate - stats.norm.isf(level) * spread)
    # The offline share: the cost tests carry their references' errors in their own share.
    bar = family.offline_bar(offline, family.BUDGET["offline"]) if offline else None
    half = z * float(np.hypot(spread, noise))
    ci = interval(estimate, reps).to_dict()
    if shift_se > 0:  # the correction's error is not in the replicates: a normal interval
        wide = stats.norm.isf(0.025) * spread
        ci.update(low=estimate - wide, high=estimate + wide)
    return {
        **ci,
        "n": len(mean),
        "uncorrected": uncorrected,
        "calibration_gap": dict(gap) if gap else None,
        "correction": {"by": how, "estimate": estimate - uncorrected, "se": shift_se},
        "prediction": {
            "low": float(estimate - half),
            "high": float(estimate + half),
            "level": PREDICTION_LEVEL,
        },
        "lower_bound": {"value": lower, "level": level},
        "bar": bar,
        "above": bool(bar is not None and lower > bar),
    }


def correction(
    mean: np.ndarray,
    codes: np.ndarray | None,
    decisions: Sequence[str],
    gap: Mapping | None,
    bands: Mapping | None,
) -> tuple[np.ndarray | float, float, str]:
    """Each row's correction and the window's correction's standard error, and which it was:
    the gap of the row's band (the bands' SEs combined by the window's band weights; a row
    whose decision has no band takes the single gap), else the single gap, else none."""
    single, single_se = gap_of(gap)
    listed = list((bands or {}).get("bands") or [])
    if not listed or codes is None:
        return single, single_se, BY_GAP if gap else BY_NONE
    gaps = np.array([gap_of(b)[0] for b in listed])
    ses = np.array([gap_of(b)[1] for b in listed])
    shift = np.full(len(mean), single)
    counts = np.zeros(len(listed))
    for d, name in enumerate(decisions):  # a decision at a time: the whole log's rows are many
        rows = np.flatnonzero(codes == d)
        band = band_of(listed, name, mean[rows])
        found = band >= 0
        shift[rows[found]] = gaps[band[found]]
        counts += np.bincount(band[found], minlength=len(listed))
    weights = counts / len(mean)
    rest = 1 - weights.sum()
    se = float(np.sqrt((weights**2 * ses**2).sum() + (rest * single_se) ** 2))
    return shift, se, BY_BANDS


def gap_of(gap: Mapping | None) -> tuple[float, float]:
    """A calibration gap's estimate and standard error (read off its 95 % interval); none
    without one."""
    if not gap or gap.get("estimate") is None or gap.get("low") is None or gap.get("high") is None:
        return 0.0, 0.0
    se = (float(gap["high"]) - float(gap["low"])) / (2 * Z95)
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
