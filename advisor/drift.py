"""Drift and decay over the test period, and the retraining cadence the maintenance model uses.

When the case has a time column, the time-ordered test split is cut into windows of equal row
count. Per window: each policy's cost per decision (bootstrap interval), ML's advantage over
the control policy, the population stability index (PSI) of every feature against the
training split, and the PSI of ML's predictions. How fast ML's advantage decays sets how often
it must be retrained. Without a time column, drift cannot be assessed and a stated default
cadence is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from advisor.bootstrap import bootstrap_means, interval
from advisor.data import Split
from advisor.evaluate import Evaluation
from advisor.features import FeatureSpec
from advisor.policy import Policy
from advisor.roles import Roles

PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
PSI_BINS = 10
PSI_FLOOR = 1e-4
MIN_WINDOWS, MAX_WINDOWS, MIN_ROWS = 6, 12, 300
WINDOW_RESAMPLES = 500
DEFAULT_RETRAINS_PER_MONTH = 1.0
MIN_RETRAINS, MAX_RETRAINS = 0.25, 4.0
DECAY_TOLERANCE = 0.10
DAYS_PER_MONTH = 365.25 / 12
MISSING = "\x00missing"


def window_count(n: int) -> int:
    """6 to 12 windows of at least MIN_ROWS rows when there are enough rows; fewer otherwise."""
    if n >= MIN_WINDOWS * MIN_ROWS:
        return int(min(MAX_WINDOWS, n // MIN_ROWS))
    return int(max(2, min(MIN_WINDOWS, n // 50))) if n >= 100 else 1


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two count (or share) vectors over the same bins.

    PSI = Σ (a − e) · ln(a / e) over bins, with shares floored at PSI_FLOOR so that an empty
    bin gives a large but finite term.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_flag(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "unknown"
    return "major" if value >= PSI_MAJOR else "moderate" if value >= PSI_MODERATE else "stable"


class Binner:
    """Bins fitted on training values: quantile edges for numbers, categories as bins.

    Missing values get a bin of their own; categories unseen in training share one bin.
    """

    def __init__(self, kind: str, bins: int = PSI_BINS) -> None:
        self.kind = kind
        self.bins = bins

    def fit(self, values: pd.Series) -> Binner:
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            qs = np.quantile(x, np.linspace(0, 1, self.bins + 1)[1:-1]) if len(x) else []
            self.edges_ = np.unique(qs)
            self.size_ = len(self.edges_) + 2
        else:
            levels = values.dropna().astype(str).unique().tolist()
            self.levels_ = {v: i for i, v in enumerate(sorted(levels))}
            self.size_ = len(self.levels_) + 2
        return self

    def counts(self, values: pd.Series) -> np.ndarray:
        """Rows per bin: the value bins, then 'other' (categories only), then missing last."""
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            idx = np.where(np.isnan(x), self.size_ - 1, np.searchsorted(self.edges_, x, "right"))
        else:
            text = values.astype(object).where(values.notna(), MISSING).astype(str)
            other = len(self.levels_)
            idx = text.map(lambda v: self.size_ - 1 if v == MISSING else self.levels_.get(v, other))
            idx = idx.to_numpy(dtype=np.int64)
        return np.bincount(idx, minlength=self.size_)


def feature_binners(spec: FeatureSpec, train: pd.DataFrame) -> dict[str, Binner]:
    """One Binner per feature, fitted on the cleaned training values (the shared feature code)."""
    cleaned = spec.clean(train)
    return {
        e.name: Binner("numeric" if e.kind == "numeric" else "categorical").fit(cleaned[e.name])
        for e in spec.encoders_
    }


def wls_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> dict:
    """Weighted least squares y = a + b·x with weights 1/se².

    Returns a, b, b's standard error, the two-sided p-value of b and the one-sided p-value of
    a decay (b < 0).
    """
    x, y, se = (np.asarray(v, dtype=float) for v in (x, y, se))
    w = 1 / np.maximum(se, 1e-12) ** 2
    xm = np.sum(w * x) / w.sum()
    ym = np.sum(w * y) / w.sum()
    sxx = np.sum(w * (x - xm) ** 2)
    b = float(np.sum(w * (x - xm) * (y - ym)) / sxx) if sxx > 0 else 0.0
    a = float(ym - b * xm)
    dof = len(x) - 2
    resid = y - a - b * x
    # Scale the variance by the residual spread when windows scatter more than their intervals.
    scale = max(1.0, float(np.sum(w * resid**2)) / dof) if dof > 0 else 1.0
    se_b = math.sqrt(scale / sxx) if sxx > 0 else math.inf
    if dof > 0 and 0 < se_b < math.inf:
        p, p_decay = float(2 * stats.t.sf(abs(b) / se_b, dof)), float(stats.t.cdf(b / se_b, dof))
    else:
        p, p_decay = 1.0, 1.0
    return {
        "intercept": a,
        "slope": b,
        "slope_se": se_b,
        "p_value": p,
        "p_decay": p_decay,
        "dof": dof,
    }


def retraining_cadence(
    windows: Sequence[Mapping], drift_after_months: float | None = None, drifted: Sequence = ()
) -> dict:
    """Retrains per month from how ML's advantage over the control changes across windows.

    A weighted least-squares line through each window's advantage (weights from its interval)
    against its mid-time in months since the test period began. When the slope is negative
    and significant (one-sided p < 0.05), retrain by the time the advantage has lost
    DECAY_TOLERANCE of its value at the start of the test period. Otherwise, when major
    feature drift (PSI ≥ 0.25) appears `drift_after_months` after the end of the training
    data, retrain at least that often and never less often than the default. Otherwise the
    stated default (monthly). Always clamped to [0.25, 4] retrains a month.
    """
    adv = [w["ml_advantage"] for w in windows]
    x = np.array([w["mid_months"] for w in windows])
    y = np.array([a["estimate"] for a in adv])
    se = np.array([(a["high"] - a["low"]) / 3.92 if a["low"] is not None else np.nan for a in adv])
    ok = np.isfinite(se) & (se > 0)
    se = np.where(ok, se, se[ok].max() if ok.any() else 1.0)
    fit = wls_slope(x, y, se) if len(windows) >= 3 else None
    out: dict = {"fit": fit, "default": DEFAULT_RETRAINS_PER_MONTH, "tolerance": DECAY_TOLERANCE}
    start = fit["intercept"] if fit else None
    trend = (
        f"ML's advantage over the control changes by {fit['slope']:+,.2f} per decision a month "
        f"(one-sided p = {fit['p_decay']:.2g})"
        if fit
        else "Too few windows to fit a trend in ML's advantage"
    )
    if fit and start > 0 and fit["slope"] < 0 and fit["p_decay"] < 0.05:
        months = DECAY_TOLERANCE * start / -fit["slope"]
        rate = 1 / months
        out.update(method="decay", months_to_tolerance=months)
        reason = (
            f"{trend}, a significant decay from {start:,.2f}: it loses {DECAY_TOLERANCE:.0%} in "
            f"{months:.1f} months, so retrain every {months:.1f} months"
        )
    elif drift_after_months is not None:
        rate = max(DEFAULT_RETRAINS_PER_MONTH, 1 / max(drift_after_months, 1e-9))
        out.update(method="psi", drift_after_months=drift_after_months)
        reason = (
            f"{trend}: no significant decay. But major feature drift (PSI ≥ {PSI_MAJOR}: "
            f"{', '.join(drifted)}) appears within {drift_after_months:.1f} months of the end of "
            "the training data, so retrain at least that often and no less often than the "
            f"default ({DEFAULT_RETRAINS_PER_MONTH:g} a month), and after every major drift alert"
        )
    else:
        rate = DEFAULT_RETRAINS_PER_MONTH
        out.update(method="default")
        reason = (
            f"{trend} and no feature drifts past PSI {PSI_MAJOR}: no evidence either way, so the "
            f"stated default of {DEFAULT_RETRAINS_PER_MONTH:g} retrain a month"
        )
    clamped = min(MAX_RETRAINS, max(MIN_RETRAINS, rate))
    if clamped != rate:
        reason += f" ({rate:.2f} a month, clamped to [{MIN_RETRAINS}, {MAX_RETRAINS}])"
    out["retrains_per_month"] = float(clamped)
    out["reason"] = reason + "."
    return out


def assess_drift(
    test: pd.DataFrame,
    time_column: str,
    costs: Mapping[str, np.ndarray],
    control: str,
    spec: FeatureSpec,
    train: pd.DataFrame,
    train_prediction: np.ndarray | None = None,
    test_prediction: np.ndarray | None = None,
    resamples: int = WINDOW_RESAMPLES,
    seed: int = 0,
    train_end: object = None,
    treatment: str | None = "ml",
) -> dict:
    """Per time window of the test split: costs, ML's advantage, PSI; and the cadence.

    `costs` maps policy name to per-row realised cost in the row order of `test`; ML's
    advantage is the control's cost minus ML's (positive: ML saves). Predictions are ML's
    probability of the last class on the training and test rows. `train_end` (default: the
    latest training time) dates how soon after training drift appears.
    """
    times = pd.to_datetime(test[time_column]).to_numpy()
    order = np.argsort(times, kind="stable")
    chunks = [c for c in np.array_split(order, window_count(len(test))) if len(c)]
    names = list(costs)
    has_adv = control in costs and treatment in costs
    binners = feature_binners(spec, train)
    clean_train, clean_test = spec.clean(train), spec.clean(test)
    expected = {f: b.counts(clean_train[f]) for f, b in binners.items()}
    pred_binner = None
    if train_prediction is not None and test_prediction is not None:
        pred_binner = Binner("numeric").fit(pd.Series(train_prediction))
        pred_expected = pred_binner.counts(pd.Series(train_prediction))
    origin = times[order[0]]
    fitted = pd.Timestamp(train_end if train_end is not None else train[time_column].max())
    windows = []
    for i, idx in enumerate(chunks):
        cols = [np.asarray(costs[n], dtype=float)[idx] for n in names]
        if has_adv:
            cols.append(cols[names.index(control)] - cols[names.index(treatment)])
        matrix = np.column_stack(cols)
        reps = bootstrap_means(matrix, resamples, seed + i)
        est = matrix.mean(axis=0)
        start, end = times[idx].min(), times[idx].max()
        mid = start + (end - start) / 2
        feature_psi = {
            f: psi(expected[f], binners[f].counts(clean_test[f].iloc[idx])) for f in binners
        }
        window = {
            "index": i,
            "start": str(pd.Timestamp(start)),
            "end": str(pd.Timestamp(end)),
            "mid_months": _months(mid - origin),
            "months_since_training": _months(mid - fitted.to_datetime64()),
            "n": len(idx),
            "cost_per_decision": {n: interval(est[j], reps[:, j]) for j, n in enumerate(names)},
            "ml_advantage": interval(est[-1], reps[:, -1]) if has_adv else None,
            "psi": feature_psi,
            "prediction_psi": (
                psi(pred_expected, pred_binner.counts(pd.Series(test_prediction[idx])))
                if pred_binner is not None
                else None
            ),
            "flags": {
                level: sorted(f for f, v in feature_psi.items() if psi_flag(v) == level)
                for level in ("moderate", "major")
            },
        }
        window["prediction_flag"] = psi_flag(window["prediction_psi"])
        windows.append(window)
    major = [w for w in windows if w["flags"]["major"]]
    cadence = None
    if has_adv:
        first = major[0] if major else None
        cadence = retraining_cadence(
            windows,
            first["months_since_training"] if first else None,
            first["flags"]["major"] if first else (),
        )
    if cadence is None:
        cadence = {
            "retrains_per_month": DEFAULT_RETRAINS_PER_MONTH,
            "method": "default",
            "reason": "No ML advantage to track; using the stated default of monthly retraining.",
        }
    worst = {f: max(w["psi"][f] for w in windows) for f in binners}
    return {
        "assessable": True,
        "time_column": time_column,
        "training_end": str(fitted),
        "control": control,
        "treatment": treatment,
        "windows": windows,
        "retrains_per_month": cadence["retrains_per_month"],
        "cadence_method": cadence["method"],
        "cadence_reason": cadence["reason"],
        "cadence": cadence,
        "max_psi": dict(sorted(worst.items(), key=lambda kv: -kv[1])),
        "thresholds": {"moderate": PSI_MODERATE, "major": PSI_MAJOR},
        "bins": PSI_BINS,
        "resamples": resamples,
    }


def _months(delta) -> float:
    return float(delta / np.timedelta64(1, "D")) / DAYS_PER_MONTH


def not_assessable(reason: str) -> dict:
    """The drift entry when the data has no time to order windows by."""
    return {
        "assessable": False,
        "reason": reason,
        "windows": [],
        "retrains_per_month": DEFAULT_RETRAINS_PER_MONTH,
        "cadence_method": "default",
        "cadence_reason": (
            f"Drift cannot be assessed from this data; using the stated default of "
            f"{DEFAULT_RETRAINS_PER_MONTH:g} retrain a month (monthly)."
        ),
    }


@dataclass(frozen=True)
class Drift:
    """Drift and decay over the test period, and the retraining cadence (key `drift`)."""

    assessable: bool
    retrains_per_month: float
    details: Mapping

    def to_dict(self) -> dict:
        return dict(self.details)


def track_drift(
    split: Split,
    evaluation: Evaluation,
    roles: Roles,
    ml: Policy | None,
    spec: FeatureSpec,
    seed: int,
) -> Drift:
    """Windows over the time-ordered test period and the retraining cadence they imply."""
    time_column = split.ordered_by
    if not time_column:
        details = not_assessable(
            "The case has no time column, so the test rows cannot be ordered into time windows."
        )
        return Drift(False, details["retrains_per_month"], details)
    train, test = split.train, split.test
    train_pred = test_pred = None
    if ml is not None and ml.probabilistic:
        train_pred = ml.predict_proba(train.frame)[:, -1]
        test_pred = evaluation.policies[ml.name].proba[:, -1]
    details = assess_drift(
        test.frame,
        time_column,
        {name: score.costs for name, score in evaluation.policies.items()},
        roles.control,
        spec,
        train.frame,
        train_pred,
        test_pred,
        seed=seed,
        treatment=roles.treatment,
    )
    return Drift(True, details["retrains_per_month"], details)
