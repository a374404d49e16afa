"""Drift and decay over the test period, and the retraining cadence the maintenance model uses.

The cadence is a choice that enters each option's net value, so it is estimated on the
validation split's windows (the period right after training), never on the test rows that
score the options; the test windows are shown as they are.

When the case has a time column, the time-ordered test split is cut into windows of equal row
count (or one window per distinct time, when a coarse column such as a month has fewer). Per window: each policy's cost per decision (bootstrap interval), ML's advantage over
the control policy, the population stability index (PSI) of every feature against the
training split, and the PSI of ML's predictions. How fast ML's advantage decays sets how often
it must be retrained. Without a time column, drift cannot be assessed and a stated default
cadence is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from advisor.analysis.evaluate import Evaluation
from advisor.analysis.roles import Roles
from advisor.core.data import Split
from advisor.core.features import FeatureSpec
from advisor.core.record import Record, json_field
from advisor.core.timecolumn import months_between, time_text
from advisor.policies.base import Policy
from advisor.stats.bootstrap import BootstrapScheme, Resampler, interval, resampler_for
from advisor.stats.interval import Interval
from advisor.stats.psi import (
    NOISE_QUANTILE,
    PSI_BINS,
    PSI_LEVELS,
    PSI_MAJOR,
    PSI_MODERATE,
    QUANTILE_ROWS,
    Binner,
    NoiseLevels,
    Reference,
    psi,
    psi_flag,
    training_reference,
)

MIN_WINDOWS, MAX_WINDOWS, MIN_ROWS = 6, 12, 300
MIN_WINDOW_ROWS = 200  # below this a window's PSI and cost say too little to act on
WINDOW_RESAMPLES = 500
DEFAULT_RETRAINS_PER_MONTH = 1.0
MIN_RETRAINS, MAX_RETRAINS = 0.25, 4.0
DECAY_TOLERANCE = 0.10


@dataclass(frozen=True)
class TrendFit(Record):
    """A weighted least-squares line y = intercept + slope·x and the p-values of its slope."""

    intercept: float
    slope: float
    slope_se: float
    p_value: float
    p_decay: float
    dof: int


@dataclass(frozen=True)
class Cadence(Record):
    """How often to retrain ML, and why (key `drift.cadence`; the maintenance stage reads it)."""

    retrains_per_month: float
    method: str
    reason: str
    fit: TrendFit | None = json_field(omit_none=True, default=None)
    default: float | None = json_field(omit_none=True, default=None)
    tolerance: float | None = json_field(omit_none=True, default=None)
    months_to_tolerance: float | None = json_field(omit_none=True, default=None)
    drift_after_months: float | None = json_field(omit_none=True, default=None)
    split: str | None = json_field(omit_none=True, default=None)  # whose windows: "validation"


@dataclass(frozen=True)
class DriftWindow(Record):
    """One time window of the test period: costs, ML's advantage and PSI against training."""

    index: int
    start: str
    end: str
    mid_months: float | None
    months_since_training: float | None
    since_training: float | None
    n: int
    cost_per_decision: Mapping[str, Interval]
    ml_advantage: Interval | None
    psi: Mapping[str, float]
    noise_psi: Mapping[str, float]
    prediction_psi: float | None
    prediction_flag: str
    flags: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class PsiThresholds(Record):
    moderate: float
    major: float
    noise_quantile: float
    rule: str


@dataclass(frozen=True)
class DriftPeriod(Record):
    """How the test period was cut and measured, when it has a time column."""

    time_column: str
    time_unit: str | None
    since_training_unit: str
    training_end: str
    control: str
    treatment: str | None
    max_psi: Mapping[str, float]
    flagged_pairs: int
    thresholds: PsiThresholds
    bins: int
    quantile_rows: int | None
    category_bins: int
    min_window_rows: int
    bootstrap: BootstrapScheme
    resamples: int


@dataclass(frozen=True)
class Drift(Record):
    """Drift and decay over the test period, and the retraining cadence (key `drift`)."""

    assessable: bool
    reason: str | None = json_field(omit_none=True)
    period: DriftPeriod | None = json_field(flatten=True)
    windows: tuple[DriftWindow, ...]
    cadence: Cadence

    @property
    def retrains_per_month(self) -> float:
        return self.cadence.retrains_per_month


def window_count(n: int) -> int:
    """6 to 12 windows of at least MIN_ROWS rows when there are enough rows; otherwise as many
    windows of at least MIN_WINDOW_ROWS as fit (1 when not even two fit: no windows to compare)."""
    if n >= MIN_WINDOWS * MIN_ROWS:
        return int(min(MAX_WINDOWS, n // MIN_ROWS))
    return int(max(1, min(MIN_WINDOWS, n // MIN_WINDOW_ROWS)))


def time_windows(times: np.ndarray, order: np.ndarray, count: int) -> list[np.ndarray]:
    """Row indices of each window, earliest first: `count` windows of equal row count, or one
    window per distinct time when there are no more distinct times than that (a month column)."""
    ordered = times[order]
    _, first = np.unique(ordered, return_index=True)
    if len(first) <= count:
        return np.split(order, first[1:])
    return [c for c in np.array_split(order, count) if len(c)]


def wls_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> TrendFit:
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
    return TrendFit(a, b, se_b, p, p_decay, dof)


def retraining_cadence(
    mid_months: Sequence[float],
    advantages: Sequence[Interval],
    drift_after_months: float | None = None,
    drifted: Sequence = (),
) -> Cadence:
    """Retrains per month from how ML's advantage over the control changes across windows.

    A weighted least-squares line through each window's advantage (`advantages`, one per
    window at `mid_months`) (weights from its interval)
    against its mid-time in months since the test period began. When the slope is negative
    and significant (one-sided p < 0.05), retrain by the time the advantage has lost
    DECAY_TOLERANCE of its value at the start of the test period. Otherwise, when major
    feature drift (PSI ≥ 0.25) appears `drift_after_months` after the end of the training
    data, retrain at least that often and never less often than the default. Otherwise the
    stated default (monthly). Always clamped to [0.25, 4] retrains a month.
    """
    adv = list(advantages)
    x = np.array(mid_months, dtype=float)
    y = np.array([a.estimate for a in adv])
    se = np.array([(a.high - a.low) / 3.92 if a.low is not None else np.nan for a in adv])
    ok = np.isfinite(se) & (se > 0)
    se = np.where(ok, se, se[ok].max() if ok.any() else 1.0)
    fit = wls_slope(x, y, se) if len(adv) >= 3 else None
    found: dict = {"default": DEFAULT_RETRAINS_PER_MONTH, "tolerance": DECAY_TOLERANCE}
    start = fit.intercept if fit else None
    trend = (
        f"ML's advantage over the control changes by {fit.slope:+,.2f} per decision a month "
        f"(one-sided p = {fit.p_decay:.2g})"
        if fit
        else "Too few windows to fit a trend in ML's advantage"
    )
    if fit and start > 0 and fit.slope < 0 and fit.p_decay < 0.05:
        months = DECAY_TOLERANCE * start / -fit.slope
        rate = 1 / months
        found.update(method="decay", months_to_tolerance=months)
        reason = (
            f"{trend}, a significant decay from {start:,.2f}: it loses {DECAY_TOLERANCE:.0%} in "
            f"{months:.1f} months, so retrain every {months:.1f} months"
        )
    elif drift_after_months is not None:
        rate = max(DEFAULT_RETRAINS_PER_MONTH, 1 / max(drift_after_months, 1e-9))
        found.update(method="psi", drift_after_months=drift_after_months)
        reason = (
            f"{trend}: no significant decay. But major feature drift (PSI ≥ {PSI_MAJOR}: "
            f"{', '.join(drifted)}) appears within {drift_after_months:.1f} months of the end of "
            "the training data, so retrain at least that often and no less often than the "
            f"default ({DEFAULT_RETRAINS_PER_MONTH:g} a month), and after every major drift alert"
        )
    else:
        rate = DEFAULT_RETRAINS_PER_MONTH
        found.update(method="default")
        reason = (
            f"{trend} and no feature drifts past PSI {PSI_MAJOR}: no evidence either way, so the "
            f"stated default of {DEFAULT_RETRAINS_PER_MONTH:g} retrain a month"
        )
    clamped = min(MAX_RETRAINS, max(MIN_RETRAINS, rate))
    if clamped != rate:
        reason += f" ({rate:.2f} a month, clamped to [{MIN_RETRAINS}, {MAX_RETRAINS}])"
    return Cadence(float(clamped), reason=reason + ".", fit=fit, **found)


def assess_drift(
    test: pd.DataFrame,
    time_column: str,
    costs: Mapping[str, np.ndarray],
    control: str,
    spec: FeatureSpec,
    train: pd.DataFrame,
    train_prediction: np.ndarray | None = None,
    test_prediction: np.ndarray | None = None,
    resampler: Resampler | None = None,
    seed: int = 0,
    train_end: object = None,
    treatment: str | None = "ml",
    time_unit: str | None = None,
    reference: Reference | None = None,
) -> Drift:
    """Per time window of the test split: costs, ML's advantage, PSI; and the cadence.

    `costs` maps policy name to per-row realised cost in the row order of `test`; ML's
    advantage is the control's cost minus ML's (positive: ML saves). Predictions are ML's
    probability of the last class on the training and test rows. `resampler` (default: rows,
    WINDOW_RESAMPLES) gives each window's intervals; with time blocks, a window's blocks are
    resampled. `train_end` (default: the latest training time) dates how soon after training
    drift appears. A feature is flagged in a window only when its PSI exceeds both the
    conventional level and what sampling noise reaches at that window's size. `time_unit` is
    None for timestamps, else the unit of a numeric time column (see `advisor.core.timecolumn`).
    `reference` is the training reference when already fitted (else it is fitted here).
    """
    resampler = resampler or Resampler(WINDOW_RESAMPLES, seed)
    if time_unit is None:
        times = pd.to_datetime(test[time_column]).to_numpy()
        last = train_end if train_end is not None else train[time_column].max()
        fitted = pd.Timestamp(last).to_datetime64()
    else:
        times = pd.to_numeric(test[time_column]).to_numpy(dtype=float)
        fitted = float(train_end if train_end is not None else train[time_column].max())
    order = np.argsort(times, kind="stable")
    chunks = time_windows(times, order, window_count(len(test)))
    names = list(costs)
    has_adv = control in costs and treatment in costs
    reference = reference or training_reference(spec, train)
    binners, expected = dict(reference.binners), dict(reference.counts)
    clean_test = spec.clean(test)
    if train_prediction is not None and test_prediction is not None:
        binners["prediction"] = Binner("numeric").fit(pd.Series(train_prediction))
        expected["prediction"] = binners["prediction"].counts(pd.Series(train_prediction))
    noise = NoiseLevels(expected, seed)
    origin = times[order[0]]
    windows = []
    for i, idx in enumerate(chunks):
        cols = [np.asarray(costs[n], dtype=float)[idx] for n in names]
        if has_adv:
            cols.append(cols[names.index(control)] - cols[names.index(treatment)])
        matrix = np.column_stack(cols)
        reps = resampler.subset(idx, seed_offset=i).means(matrix)
        counts = {
            f: binners[f].counts(
                pd.Series(test_prediction[idx]) if f == "prediction" else clean_test[f].iloc[idx]
            )
            for f in binners
        }
        span = WindowSpan(i, times[idx].min(), times[idx].max(), len(idx))
        windows.append(
            drift_window(
                span, names, matrix.mean(axis=0), reps, has_adv, counts, expected, noise,
                (origin, fitted, time_unit),
            )
        )  # fmt: skip
    return drift_record(
        windows,
        has_adv,
        time_column=time_column,
        time_unit=time_unit,
        fitted=fitted,
        control=control,
        treatment=treatment,
        features=[f for f in binners if f != "prediction"],
        train_rows=len(train),
        bootstrap=resampler.scheme,
        resamples=resampler.resamples,
    )


@dataclass(frozen=True)
class WindowSpan:
    """Where a window lies: its place, its first and last time, and its rows."""

    index: int
    start: object
    end: object
    n: int


def drift_window(
    span: WindowSpan,
    names: Sequence[str],
    est: np.ndarray,
    reps: np.ndarray,
    has_adv: bool,
    counts: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    noise: NoiseLevels,
    clock: tuple,
) -> DriftWindow:
    """One window's record from its cost means and replicates (one column per policy, then
    ML's advantage) and its rows per PSI bin; `clock` is (first test time, training end,
    time unit). Shared by the in-memory drift and the one from partition sums."""
    origin, fitted, time_unit = clock
    mid = span.start + (span.end - span.start) / 2
    values = {f: psi(expected[f], c) for f, c in counts.items()}
    levels = {f: noise.at(f, span.n) for f in counts}
    flags = {f: psi_flag(values[f], levels[f]) for f in counts}
    return DriftWindow(
        index=span.index,
        start=time_text(span.start),
        end=time_text(span.end),
        mid_months=months_between(mid - origin, time_unit),
        months_since_training=months_between(mid - fitted, time_unit),
        since_training=(
            months_between(mid - fitted, None) if time_unit is None else float(mid - fitted)
        ),
        n=span.n,
        cost_per_decision={n: interval(est[j], reps[:, j]) for j, n in enumerate(names)},
        ml_advantage=interval(est[-1], reps[:, -1]) if has_adv else None,
        psi={f: v for f, v in values.items() if f != "prediction"},
        noise_psi={f: v for f, v in levels.items() if f != "prediction"},
        prediction_psi=values.get("prediction"),
        prediction_flag=flags.get("prediction", "unknown"),
        flags={
            level: tuple(sorted(f for f, v in flags.items() if v == level and f != "prediction"))
            for level in ("moderate", "major")
        },
    )


def drift_record(
    windows: Sequence[DriftWindow],
    has_adv: bool,
    *,
    time_column: str,
    time_unit: str | None,
    fitted: object,
    control: str,
    treatment: str | None,
    features: Sequence[str],
    train_rows: int,
    bootstrap: BootstrapScheme,
    resamples: int,
) -> Drift:
    """The drift entry from its windows: the cadence from ML's advantage, and how measured."""
    major = [w for w in windows if w.flags["major"]]
    if has_adv and windows[0].mid_months is None:
        cadence = Cadence(
            DEFAULT_RETRAINS_PER_MONTH,
            "default",
            f"The time column counts periods of unknown length, so ML's decay cannot be "
            "turned into retrains a month (set time_unit to day, week, month, quarter or "
            f"year); using the stated default of {DEFAULT_RETRAINS_PER_MONTH:g} retrain a month.",
        )
    elif has_adv:
        first = major[0] if major else None
        cadence = retraining_cadence(
            [w.mid_months for w in windows],
            [w.ml_advantage for w in windows],
            first.months_since_training if first else None,
            first.flags["major"] if first else (),
        )
    else:
        cadence = Cadence(
            DEFAULT_RETRAINS_PER_MONTH,
            "default",
            "No ML advantage to track; using the stated default of monthly retraining.",
        )
    worst = {f: max(w.psi[f] for w in windows) for f in features}
    flagged = sum(len(w.flags["moderate"]) + len(w.flags["major"]) for w in windows)
    period = DriftPeriod(
        time_column=time_column,
        time_unit=time_unit,
        since_training_unit="months" if time_unit is None else f"{time_unit}s",
        training_end=time_text(fitted),
        control=control,
        treatment=treatment,
        max_psi=dict(sorted(worst.items(), key=lambda kv: -kv[1])),
        flagged_pairs=flagged,
        thresholds=PsiThresholds(
            moderate=PSI_MODERATE,
            major=PSI_MAJOR,
            noise_quantile=NOISE_QUANTILE,
            rule=(
                "a feature is flagged in a window when its PSI reaches the level and exceeds "
                f"the {NOISE_QUANTILE:.1%} point of the PSI that windows of the same size drawn "
                "from the training data reach by chance"
            ),
        ),
        bins=PSI_BINS,
        quantile_rows=QUANTILE_ROWS if train_rows > QUANTILE_ROWS else None,
        category_bins=PSI_LEVELS,
        min_window_rows=MIN_WINDOW_ROWS,
        bootstrap=bootstrap,
        resamples=resamples,
    )
    return Drift(True, None, period, tuple(windows), cadence)


def not_assessable(reason: str) -> Drift:
    """The drift entry when the data has no time to order windows by."""
    cadence = Cadence(
        DEFAULT_RETRAINS_PER_MONTH,
        "default",
        f"Drift cannot be assessed from this data; using the stated default of "
        f"{DEFAULT_RETRAINS_PER_MONTH:g} retrain a month (monthly).",
    )
    return Drift(False, reason, None, (), cadence)


def track_drift(
    split: Split,
    evaluation: Evaluation,
    roles: Roles,
    ml: Policy | None,
    spec: FeatureSpec,
    seed: int,
    reference: Reference | None = None,
    valid_costs: Mapping[str, np.ndarray] | None = None,
) -> Drift:
    """Windows over the time-ordered test period, and the retraining cadence from the same
    windows over the validation period (`valid_costs`: each policy's per-row validation cost),
    so that no choice reads the rows that score the options."""
    time_column = split.ordered_by
    if not time_column:
        return not_assessable(
            "The case has no time column, so the test rows cannot be ordered into time windows."
        )
    train, test = split.train, split.test
    train_pred = test_pred = None
    if ml is not None and ml.probabilistic:
        train_pred = ml.predict_proba(train.frame)[:, -1]
        test_pred = evaluation.policies[ml.name].proba[:, -1]
    drift = assess_drift(
        test.frame,
        time_column,
        {name: score.costs for name, score in evaluation.policies.items()},
        roles.control,
        spec,
        train.frame,
        train_pred,
        test_pred,
        resampler=replace(evaluation.resampler, resamples=WINDOW_RESAMPLES),
        seed=seed,
        treatment=roles.treatment,
        time_unit=split.time_unit,
        reference=reference,
    )
    if valid_costs is None:
        return drift
    valid_pred = None if train_pred is None else ml.predict_proba(split.valid.frame)[:, -1]
    chosen = assess_drift(
        split.valid.frame,
        time_column,
        valid_costs,
        roles.control,
        spec,
        train.frame,
        train_pred,
        valid_pred,
        resampler=resampler_for(split.times(split.valid), WINDOW_RESAMPLES, seed),
        seed=seed,
        treatment=roles.treatment,
        time_unit=split.time_unit,
        reference=reference,
    )
    reason = f"On the validation period's windows: {chosen.cadence.reason}"
    return replace(drift, cadence=replace(chosen.cadence, split="validation", reason=reason))
