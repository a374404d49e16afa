"""Does fitting on a sample cost anything? The ML policy and the learned rule list refitted on
1/4 and 1/2 of the training sample, their validation cost at the three sizes with paired
bootstrap intervals, and what the training rows left out would likely buy.

The extrapolation fits cost(n) = a + b / sqrt(n) (the usual shape of a learning curve's
tail) through the three points, for the estimate and for every bootstrap replicate, and reads
it at all the training rows the data holds. Its interval covers the validation rows'
sampling; the shape itself is an assumption, which the report says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.core.case import Case
from advisor.core.data import Part, Split
from advisor.core.features import FeatureSpec
from advisor.core.record import Record
from advisor.policies.base import Policy
from advisor.policies.ml import MLPolicy
from advisor.policies.rules.policy import LearnedRulesPolicy
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import Interval

FRACTIONS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class CurvePoint(Record):
    """Validation cost per decision of each policy fitted on `rows` training rows."""

    rows: int
    ml: Interval
    rules: Interval


@dataclass(frozen=True)
class LearningCurve(Record):
    """The three sizes, whether ML still improves at the full sample, and the extrapolation."""

    points: tuple[CurvePoint, ...]
    ml_gain_last_doubling: Interval  # cost at the full sample minus at half of it
    ml_improving: bool
    all_training_rows: int
    ml_at_all_rows: Interval  # the extrapolated validation cost on every training row
    ml_gain_all_rows: Interval  # extrapolated cost minus the cost at the full sample
    verdict: str


def stratified_head(part: Part, fraction: float, seed: int) -> Part:
    """A seeded subset of `fraction` of the rows, the same share of every class."""
    if fraction >= 1:
        return part
    rng = np.random.default_rng(seed)
    rows = [
        np.sort(rng.permutation(idx)[: max(1, round(len(idx) * fraction))])
        for idx in (np.flatnonzero(part.y == k) for k in np.unique(part.y))
    ]
    keep = np.sort(np.concatenate(rows))
    return Part(part.frame.iloc[keep].reset_index(drop=True), part.y[keep])


def _refit(case: Case, spec: FeatureSpec, train: Part, valid: Part) -> tuple[Policy, Policy]:
    from advisor.analysis.pipeline import rule_learner

    ml = MLPolicy(case.costs, spec, seed=case.seed).fit(train, valid)
    rules = LearnedRulesPolicy(
        case.costs, spec, rule_learner(case), list_name=f"{case.name}-rules"
    ).fit(train, valid)
    return ml, rules


def extrapolate(rows: np.ndarray, costs: np.ndarray, at: float) -> np.ndarray:
    """cost(n) = a + b / sqrt(n) fitted by least squares to each column of `costs` (sizes x
    series), read at `at` rows."""
    design = np.column_stack([np.ones(len(rows)), 1 / np.sqrt(rows)])
    coef, *_ = np.linalg.lstsq(design, costs, rcond=None)
    return coef[0] + coef[1] / np.sqrt(at)


def learning_curve(
    case: Case,
    split: Split,
    spec: FeatureSpec,
    fitted: dict[str, Policy],
    resampler: Resampler,
    all_training_rows: int,
) -> LearningCurve | None:
    """The curve for the fitted ML policy and learned rule list (None when either is absent)."""
    ml = next((p for p in fitted.values() if isinstance(p, MLPolicy)), None)
    rules = next((p for p in fitted.values() if isinstance(p, LearnedRulesPolicy)), None)
    if ml is None or rules is None:
        return None
    valid = split.valid
    each = case.costs.cost_of_each_decision(valid.y, valid.frame)
    rows = np.arange(len(valid))
    sizes, series = [], []
    for fraction in FRACTIONS:
        train = stratified_head(split.train, fraction, case.seed)
        pair = (ml, rules) if fraction >= 1 else _refit(case, spec, train, valid)
        sizes.append(len(train))
        series += [each[rows, p.decide_batch(valid.frame).codes] for p in pair]
    values = np.column_stack(series)
    reps = resampler.means(values)  # paired: the same resampled rows at every size
    est = values.mean(axis=0)
    points = tuple(
        CurvePoint(
            n,
            interval(est[2 * i], reps[:, 2 * i]),
            interval(est[2 * i + 1], reps[:, 2 * i + 1]),
        )
        for i, n in enumerate(sizes)
    )
    gain = interval(est[4] - est[2], reps[:, 4] - reps[:, 2])
    improving = bool(gain.known and gain.high < 0)
    n = np.asarray(sizes, dtype=float)
    at = float(max(all_training_rows, sizes[-1]))
    ml_cols = [0, 2, 4]
    far = extrapolate(n, est[ml_cols][:, None], at)[0]
    far_reps = extrapolate(n, reps[:, ml_cols].T, at)
    at_all = interval(far, far_reps)
    more = interval(far - est[4], far_reps - reps[:, 4])
    return LearningCurve(
        points=points,
        ml_gain_last_doubling=gain,
        ml_improving=improving,
        all_training_rows=int(at),
        ml_at_all_rows=at_all,
        ml_gain_all_rows=more,
        verdict=_verdict(improving, gain, more, sizes[-1], int(at), case.currency),
    )


def _verdict(
    improving: bool, gain: Interval, more: Interval, fitted: int, available: int, currency: str
) -> str:
    from advisor.core.money import money

    def span(i: Interval) -> str:
        return (
            f"{money(i.estimate, currency)} ({money(i.low, currency)} to {money(i.high, currency)})"
        )

    if not improving:
        flat = (
            f"ML no longer improves measurably at {fitted:,} training rows: doubling from half "
            f"the sample changed its validation cost per decision by {span(gain)}, an interval "
            "that includes zero."
        )
        if available <= fitted:
            return flat
        # a flat last doubling is no proof that many more rows buy nothing: say what they might
        could = more.known and more.low < 0
        return (
            f"{flat} Extrapolated to all {available:,} training rows (a + b/sqrt(n); the "
            f"interval covers validation sampling, not the curve's shape) it would change by "
            f"{span(more)}"
            + (
                f": a larger --fit-rows, or --fit-engine lightgbm-dask, could still save up to "
                f"{money(-more.low, currency)} a decision."
                if could
                else ", so fitting on a sample costs little."
            )
        )
    if available <= fitted:
        return f"ML was still improving at {fitted:,} rows, and that is every training row."
    return (
        f"ML is still improving at {fitted:,} training rows (the last doubling changed its "
        f"validation cost per decision by {span(gain)}). Fitting on all {available:,} training "
        f"rows would likely change it by {span(more)} (a + b/sqrt(n) extrapolated; the interval "
        "covers validation sampling, not the curve's shape); a larger --fit-rows, on workers "
        "with the memory for it, would buy that."
    )
