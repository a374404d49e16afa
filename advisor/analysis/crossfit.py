"""Evaluation that refits: repeated cross-fitting without a time column, rolling-origin
backtests with one, so the advice does not hinge on one split.

Every refit runs the whole fitting procedure on the rows it may learn from (its own inner
validation split, its own choice of the rule list that stands for the rules) and scores the
rows it held out. The cost figures the recommendation reads pool those out-of-fold decisions:

- *cross-fitting* (no time column): FOLDS folds x `repeats` repeats; every row is scored once
  per repeat. A bootstrap replicate resamples the rows and draws one repeat at random, so the
  replicates carry both the row-to-row and the refit-to-refit variation;
- *rolling-origin backtest* (a time column): the earliest START of the rows (by time) are the
  first training window; the rest is cut into `cuts` consecutive periods, each scored by a refit
  on everything before it. The replicates resample blocks of time across the periods, so each
  replicate mixes the refits of the periods it draws.

The number of refits adapts to the size: up to CROSSFIT_MAX_ROWS rows (BACKTEST_MAX_ROWS with a
time column) the case's `refits` option (default 10; 1 asks for a single split); above, a single
60/20/20 split, whose test split then holds at least a fifth of that many rows, so the
split-to-split spread of a cost per decision is small, and the refits would multiply a
run's fitting time (the scale benchmark's 100,000 and 1,000,000-row targets keep one split).

With a time column each bundle's expected cost is the latest period's (`LatestPeriod`), the
figure that best predicts the next period; its calibration gap and the A/B plan's arms still
pool every period (docs/monitoring.md, "The offline reference for time-ordered data").

Policies given ready-made (evaluated as they are, never refitted) pass through `given`.
The control's and the ML treatment's out-of-fold decisions, per-row costs and the model's
expected cost of each one's decision are kept (`Refits.arms`) for the A/B plan, which sizes the
test from them instead of the test split (`advisor.analysis.arms`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from advisor.analysis.arms import WIDTH as ARM_WIDTH
from advisor.analysis.arms import Arms, arm_block, arms_from_blocks
from advisor.analysis.calibration_gap import SEED_OFFSET, BandMeans, calibration_bands
from advisor.analysis.economics import Inputs
from advisor.analysis.outoffold import FoldFit, OutOfFold, RefitRows, refit_rows
from advisor.analysis.recommend import (
    Recommendation,
    best_shares,
    choose,
    settle_all,
    top_two,
)
from advisor.analysis.roles import Roles, assign_roles, decide_validation
from advisor.analysis.shipping import Shipped
from advisor.core.case import Case
from advisor.core.data import Dataset, Part, Split
from advisor.core.features import FeatureSpec
from advisor.core.record import Record, json_field
from advisor.core.timecolumn import time_text
from advisor.policies.base import Policy
from advisor.stats.bootstrap import Resampler, interval, resampler_for
from advisor.stats.interval import Interval

FOLDS = 5
MAX_CUTS = 4  # backtest periods at most
START = 0.5  # share of the rows (earliest first) in the first backtest training window
INNER_VALID = 0.25  # share of a refit's learning rows held out as its validation split
CROSSFIT_MAX_ROWS = 50_000
BACKTEST_MAX_ROWS = 250_000
REFIT_RESAMPLES = 400  # resamples behind one refit's own option (its tie rule)
ROLES = ("baseline", "control", "treatment")
GAP = "calibration gap: "  # the pooled columns of the policies' calibration gaps
REFERENCE_RULE = (
    "time-ordered data: the expected cost is the latest backtest period's, because the cost "
    "level moves with time and the latest period predicts the next one with the least bias; the "
    "calibration gap pools every period, because realised minus expected cost moves less and "
    "the pooled gap predicts the next period's best (benchmarks/cost_reference.py)"
)

Fitter = Callable[[Split, FeatureSpec], dict[str, Policy]]


@dataclass(frozen=True)
class RefitPlan(Record):
    """How many refits a run makes and why (result.json `refits.plan`)."""

    method: str  # "cross-fitting", "rolling-origin backtest" or "single split"
    folds: int | None
    repeats: int | None
    cuts: int | None
    refits: int
    reason: str


def plan_refits(n: int, has_time: bool, wanted: int) -> RefitPlan:
    """The refits for n labelled rows: cross-fitting or backtests up to the size limits, with
    `wanted` (the case's `refits` option) the most refits a run makes; else a single split."""
    limit = BACKTEST_MAX_ROWS if has_time else CROSSFIT_MAX_ROWS
    if wanted <= 1:
        return RefitPlan("single split", None, None, None, 0, "the case asks for refits: 1")
    if n > limit:
        return RefitPlan(
            "single split",
            None,
            None,
            None,
            0,
            f"{n:,} rows is more than {limit:,}: the test split alone is large enough that "
            "its cost figures move little from split to split",
        )
    if has_time:
        cuts = min(MAX_CUTS, wanted)
        return RefitPlan(
            "rolling-origin backtest",
            None,
            None,
            cuts,
            cuts,
            f"a time column: {cuts} later periods, each scored by a refit on every row before it",
        )
    folds = min(FOLDS, wanted)
    repeats = max(1, wanted // folds)
    return RefitPlan(
        "cross-fitting",
        folds,
        repeats,
        None,
        folds * repeats,
        f"no time column: {folds} folds x {repeats} repeats, each fold's policies fitted and "
        "chosen on the other rows",
    )


@dataclass(frozen=True)
class Period(Record):
    """One refit: the rows it scored, the control it chose, each policy's cost per decision
    there, and the option the whole procedure gives on it."""

    label: str
    rows: int
    trained_on: int
    control: str
    cost_per_decision: Mapping[str, float]
    option: str | None = None


@dataclass(frozen=True)
class LatestPeriod(Record):
    """The latest backtest period's cost per decision of each policy, with its interval (a
    block bootstrap within the period): for time-ordered data, the bundle's expected cost and
    so the monitor's offline reference (result.json `refits.latest_period`)."""

    label: str
    rows: int
    cost_per_decision: Mapping[str, Interval]
    rule: str = REFERENCE_RULE


@dataclass(frozen=True)
class Refits(Record):
    """The refit-aware evaluation (result.json key `refits`): the plan, the pooled out-of-fold
    cost per decision of each role with its interval, and every refit's own figures."""

    plan: RefitPlan
    rows_scored: int
    cost_per_decision: Mapping[str, Interval]
    policies: Mapping[str, Interval]  # each policy's pooled out-of-fold cost per decision
    periods: tuple[Period, ...]
    stability: float | None = None
    includes: str = ""
    # each probabilistic policy's pooled out-of-fold calibration gap (`calibration_gap`)
    calibration_gaps: Mapping[str, Interval] = json_field(omit_none=True, default=None)
    # and per band of the expected cost (`calibration_bands`), out of fold too
    calibration_bands: Mapping[str, Any] = json_field(omit_none=True, default=None)
    # each policy's share of each decision over the pooled out-of-fold rows (what it ships with)
    decision_shares: Mapping[str, Mapping[str, float]] = json_field(omit_none=True, default=None)
    series: Mapping[str, np.ndarray] = json_field(internal=True)
    held: tuple = json_field(internal=True, default=())
    arms: Arms | None = json_field(internal=True)  # the A/B plan's out-of-fold rows
    # ML policy -> every refit's early stopping, and the out-of-fold raw probabilities with
    # their class codes: what the shipped model's rounds and calibration come from
    fits: Mapping[str, tuple[FoldFit, ...]] = json_field(internal=True, default=None)
    raw: Mapping[str, tuple[np.ndarray, np.ndarray]] = json_field(internal=True, default=None)
    shipped: Shipped | None = json_field(omit_none=True, default=None)  # what the bundles hold
    # backtests: every period's figures per column (roles, policies, GAP + policy), in order
    by_period: tuple[Mapping[str, Interval], ...] = json_field(internal=True, default=())
    latest_period: LatestPeriod | None = json_field(omit_none=True, default=None)

    @property
    def active(self) -> bool:
        return self.plan.refits > 0


def _inner(part: Part, times: pd.Series | None, seed: int) -> tuple[Part, Part]:
    """A refit's own training and validation rows: the latest INNER_VALID by time, else a
    stratified draw."""
    n = len(part)
    if times is not None:
        order = np.argsort(times.to_numpy(), kind="stable")
        cut = round(n * (1 - INNER_VALID))
        a, b = np.sort(order[:cut]), np.sort(order[cut:])
    else:
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        try:
            a, b = train_test_split(idx, test_size=INNER_VALID, stratify=part.y, random_state=seed)
        except ValueError:  # a class too rare to stratify
            a, b = train_test_split(idx, test_size=INNER_VALID, random_state=seed)
        a, b = np.sort(a), np.sort(b)
    return _rows(part, a), _rows(part, b)


def _rows(part: Part, rows: np.ndarray) -> Part:
    return Part(frame=part.frame.iloc[rows].reset_index(drop=True), y=part.y[rows])


def _refit(
    case: Case,
    data: Dataset,
    fit: Fitter,
    given: Mapping[str, Policy],
    learn: np.ndarray,
    score: np.ndarray,
    seed: int,
) -> tuple[Roles, dict[str, np.ndarray], np.ndarray | None, RefitRows]:
    """Fit and choose on the `learn` rows, then the realised cost of every policy on each of
    the `score` rows, the A/B plan's arms there (`arm_block`), and the model's early stopping,
    raw probabilities and the calibration gaps there (`refit_rows`)."""
    whole = Part(frame=data.frame, y=data.y)
    learning, held = _rows(whole, learn), _rows(whole, score)
    time = data.schema.time
    train, valid = _inner(learning, learning.frame[time] if time else None, seed)
    spec = FeatureSpec(data.schema).fit(train.frame)
    split = Split(
        train=train, valid=valid, test=valid, ordered_by=time, time_unit=data.schema.time_unit
    )
    policies = {**fit(split, spec), **given}
    decided = decide_validation(policies, valid)
    valid_times = valid.frame[time] if time else None
    resampler = resampler_for(valid_times, case.option("bootstrap_resamples"), seed)
    roles = assign_roles(decided, valid, case.costs, resampler)
    each = case.costs.cost_of_each_decision(held.y, held.frame)
    rows = np.arange(len(held))
    batches = {n: p.decide_batch(held.frame) for n, p in policies.items()}
    costs = {n: each[rows, b.codes] for n, b in batches.items()}
    extras = refit_rows(policies, batches, held, each, case.costs, len(train))
    costs.update({GAP + n: gap for n, gap in extras.gaps.items()})
    return roles, costs, arm_block(roles, batches, each), extras


def _by_role(roles: Roles, costs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows x (baseline, control, treatment, every policy by name) realised costs (then the
    policies' calibration gaps, named GAP + policy)."""
    treatment = roles.treatment or roles.baseline
    columns = [costs[roles.baseline], costs[roles.control], costs[treatment]]
    return np.column_stack([*columns, *costs.values()])


def cross_fit(
    case: Case, data: Dataset, fit: Fitter, given: Mapping[str, Policy] | None = None
) -> Refits:
    """Refit the whole procedure per fold (or backtest period) and pool the out-of-fold costs."""
    time = data.schema.time
    plan = plan_refits(len(data.y), time is not None, int(case.option("refits")))
    given = dict(given or {})
    if plan.refits == 0:
        return Refits(plan, 0, {}, {}, (), includes="", series={}, held=())
    if time is None:
        return _cross_fitting(case, data, fit, given, plan)
    return _backtest(case, data, fit, given, plan)


def _cross_fitting(case: Case, data: Dataset, fit: Fitter, given: dict, plan: RefitPlan) -> Refits:
    from sklearn.model_selection import StratifiedKFold

    n = len(data.y)
    pooled: np.ndarray | None = None
    arms: np.ndarray | None = np.full((plan.repeats, n, ARM_WIDTH), np.nan)
    periods, held, names, oof = [], [], [], OutOfFold()
    decided: dict[str, np.ndarray] = {}  # policy -> repeats x rows x (expected, code, gap)
    for r in range(plan.repeats):
        folds = StratifiedKFold(plan.folds, shuffle=True, random_state=case.seed + 1000 * r)
        for f, (learn, score) in enumerate(folds.split(np.zeros(n), data.y)):
            roles, costs, arm, extras = _refit(
                case, data, fit, given, learn, score, case.seed + 100 * r + f
            )
            oof.add(extras, data.y[score])
            for name, block in _decided(extras).items():
                decided.setdefault(name, np.full((plan.repeats, n, 3), np.nan))[r, score] = block
            if arm is None:
                arms = None  # a refit without an ML treatment: no out-of-fold A/B rows
            elif arms is not None:
                arms[r, score] = arm
            block = _by_role(roles, costs)
            if pooled is None:
                pooled, names = np.zeros((plan.repeats, n, block.shape[1])), list(costs)
            pooled[r, score] = block
            held.append(block[:, : len(ROLES)])
            periods.append(_period(f"repeat {r + 1}, fold {f + 1}", len(learn), roles, costs))
    resampler = Resampler(case.option("bootstrap_resamples"), case.seed)
    replicates = refit_replicates(pooled, resampler)
    estimate = pooled.mean(axis=(0, 1))
    includes = (
        f"resamples of the rows and, per resample, one of {plan.repeats} cross-fitting repeats "
        f"({plan.refits} refits, each fitting the policies and choosing the rules' list anew)"
    )
    refits = _pooled(plan, n, estimate, replicates, periods, held, includes, names, oof)
    stacked = {k: v.reshape(plan.repeats * n, 3) for k, v in decided.items()}
    bands = _bands(stacked, case, RepeatResampler(resampler, plan.repeats).banded_means)
    refits = replace(refits, calibration_bands=bands)
    refits = replace(refits, decision_shares=oof.decision_shares(case.costs.decisions) or None)
    if arms is None:
        return refits
    stacked = arms.reshape(plan.repeats * n, ARM_WIDTH)  # repeat after repeat
    oof = arms_from_blocks(
        stacked, f"out-of-fold ({plan.method})", RepeatResampler(resampler, plan.repeats)
    )
    return replace(refits, arms=oof)


def refit_replicates(pooled: np.ndarray, resampler: Resampler) -> np.ndarray:
    """Replicates of the mean cost per decision over rows and refits: `pooled` is repeats x
    rows x series (each repeat scores every row once); a replicate resamples the rows (the same
    rows in every repeat and series, so differences stay paired) and takes one repeat drawn at
    random, so its spread holds the refit-to-refit variation as well as the rows'."""
    return _one_repeat_each(np.stack([resampler.means(block) for block in pooled]), resampler)


def _one_repeat_each(reps: np.ndarray, resampler: Resampler) -> np.ndarray:
    """Per replicate, one repeat's (reps: repeats x resamples x series), drawn at random."""
    # a stream of its own: the resampling weights draw from the plain seed
    pick = np.random.default_rng([resampler.seed, 1]).integers(0, len(reps), reps.shape[1])
    return reps[pick, np.arange(reps.shape[1])]


@dataclass(frozen=True)
class RepeatResampler:
    """`refit_replicates` for rows stacked repeat after repeat (each repeat scoring every row
    once): what the A/B plan's effect interval resamples when the run cross-fitted."""

    base: Resampler
    repeats: int

    def means(self, values: np.ndarray, seed_offset: int = 0) -> np.ndarray:
        """Replicates of the column means of `values` (repeats x rows stacked)."""
        values = np.asarray(values, dtype=float)
        pooled = values.reshape(self.repeats, len(values) // self.repeats, -1)
        return refit_replicates(pooled, replace(self.base, seed=self.base.seed + seed_offset))

    def banded_means(
        self, values: np.ndarray, bands: np.ndarray, n_bands: int, seed_offset: int = 0
    ) -> np.ndarray:
        """`means` of each band's values apart (`Resampler.banded_means`), repeats stacked."""
        resampler = replace(self.base, seed=self.base.seed + seed_offset)
        values = np.asarray(values, dtype=float).reshape(
            self.repeats, len(bands) // self.repeats, -1
        )
        bands = np.asarray(bands).reshape(self.repeats, -1)
        reps = [resampler.banded_means(v, b, n_bands) for v, b in zip(values, bands, strict=True)]
        return _one_repeat_each(np.stack(reps), resampler)


def backtest(
    case: Case, data: Dataset, fit: Fitter, given: Mapping[str, Policy], plan: RefitPlan
) -> Refits:
    """Rolling-origin backtests with `plan.cuts` periods (`cross_fit` plans them for a run;
    `benchmarks/cost_reference.py` asks for more)."""
    return _backtest(case, data, fit, dict(given), plan)


def _backtest(case: Case, data: Dataset, fit: Fitter, given: dict, plan: RefitPlan) -> Refits:
    times = data.frame[data.schema.time]
    order = np.argsort(times.to_numpy(), kind="stable")
    n = len(order)
    edges = np.linspace(round(n * START), n, plan.cuts + 1).round().astype(int)
    sorted_times = times.to_numpy()[order]
    bounds = [sorted_times[e] for e in edges[:-1]] + [None]
    value = times.to_numpy()
    parts, periods, held, arm_parts, oof = [], [], [], [], OutOfFold()
    decided: list[dict[str, np.ndarray]] = []
    for c in range(plan.cuts):
        learn = np.flatnonzero(value < bounds[c])
        upper = bounds[c + 1]
        score = np.flatnonzero(
            (value >= bounds[c]) & ((value < upper) if upper is not None else True)
        )
        if len(score) == 0 or len(np.unique(data.y[learn])) < 2:
            continue
        roles, costs, arm, extras = _refit(case, data, fit, given, learn, score, case.seed + c)
        oof.add(extras, data.y[score])
        decided.append(_decided(extras))
        block = _by_role(roles, costs)
        parts.append((score, block))
        arm_parts.append(arm)
        held.append(block[:, : len(ROLES)])
        names = list(costs)
        first, last = time_text(value[score].min()), time_text(value[score].max())
        periods.append(_period(f"{first} to {last}", len(learn), roles, costs))
    rows = np.concatenate([s for s, _ in parts])
    pooled = np.concatenate([b for _, b in parts])
    resampler = resampler_for(
        times.iloc[rows].reset_index(drop=True), case.option("bootstrap_resamples"), case.seed
    )
    replicates = resampler.means(pooled)
    includes = (
        f"resamples of {resampler.scheme.method} over {len(periods)} backtest periods, each "
        "scored by its own refit (fitted and chosen on every earlier row)"
    )
    refits = _pooled(
        plan, len(rows), pooled.mean(axis=0), replicates, periods, held, includes, names, oof
    )
    label = [*ROLES, *names]
    by_period = []
    for score, block in parts:
        own = resampler_for(
            times.iloc[score].reset_index(drop=True), case.option("bootstrap_resamples"), case.seed
        ).means(block)
        mean = block.mean(axis=0)
        by_period.append({k: interval(float(mean[i]), own[:, i]) for i, k in enumerate(label)})
    last = by_period[-1]
    latest = LatestPeriod(
        periods[-1].label, periods[-1].rows, {k: last[k] for k in names if not k.startswith(GAP)}
    )
    refits = replace(refits, by_period=tuple(by_period), latest_period=latest)
    whole = {k: np.concatenate([d[k] for d in decided]) for k in decided[0]} if decided else {}
    whole = {k: v for k, v in whole.items() if len(v) == len(rows)}  # in every period
    bands = _bands(whole, case, lambda v, b, k: resampler.banded_means(v, b, k, SEED_OFFSET + 1))
    refits = replace(refits, calibration_bands=bands)
    refits = replace(refits, decision_shares=oof.decision_shares(case.costs.decisions) or None)
    if any(a is None for a in arm_parts):
        return refits
    oof = arms_from_blocks(np.concatenate(arm_parts), f"out-of-fold ({plan.method})", resampler)
    return replace(refits, arms=oof)


def _decided(extras: RefitRows) -> dict[str, np.ndarray]:
    """Per probabilistic policy, its scored rows' (expected cost, decision code, gap)."""
    return {
        name: np.column_stack([own, codes, extras.gaps[name]])
        for name, (own, codes) in extras.decided.items()
    }


def _bands(decided: Mapping[str, np.ndarray], case: Case, means: BandMeans) -> dict | None:
    """Each policy's pooled out-of-fold calibration gap per band (`calibration_bands`); rows a
    refit did not score (NaN) count in no band."""
    out = {}
    for name, block in decided.items():
        codes = np.nan_to_num(block[:, 1], nan=-1).astype(int)
        out[name] = calibration_bands(block[:, 0], codes, block[:, 2], case.costs.decisions, means)
    return out or None


def _period(label: str, trained_on: int, roles: Roles, costs: Mapping[str, np.ndarray]) -> Period:
    any_costs = next(iter(costs.values()))
    return Period(
        label=label,
        rows=len(any_costs),
        trained_on=trained_on,
        control=roles.control,
        cost_per_decision={n: float(c.mean()) for n, c in costs.items() if not n.startswith(GAP)},
    )


def _pooled(plan, rows, estimate, replicates, periods, held, includes, names, oof) -> Refits:
    """The Refits from the pooled estimates and replicates: the roles' columns first, then
    every policy's by name, then the policies' calibration gaps."""
    label = [*ROLES, *names]
    series = {k: np.concatenate([[estimate[i]], replicates[:, i]]) for i, k in enumerate(label)}
    cost = {k: interval(float(estimate[i]), replicates[:, i]) for i, k in enumerate(label)}
    return Refits(
        plan=plan,
        rows_scored=int(rows),
        cost_per_decision={k: cost[k] for k in ROLES},
        policies={k: cost[k] for k in names if not k.startswith(GAP)},
        periods=tuple(periods),
        includes=includes,
        calibration_gaps={k[len(GAP) :]: cost[k] for k in names if k.startswith(GAP)} or None,
        series={k: series[k] for k in ROLES},
        held=tuple(held),
        fits={name: tuple(fits) for name, fits in oof.fits.items()},
        raw=oof.pooled_raw(),
    )


def pooled_inputs(refits: Refits, inputs: Inputs) -> Inputs:
    """The recommendation's inputs with the pooled out-of-fold costs in place of the test
    split's (unchanged for a single split)."""
    if not refits.active:
        return inputs
    s = refits.series
    return replace(inputs, base=s["baseline"], rules=s["control"], ml=s["treatment"])


def refit_option(main: Inputs, costs: np.ndarray, seed: int) -> str:
    """The option the whole procedure gives on one refit's scored rows (its own resamples and
    tie rule; its A/B test sized from its own saving by the plan's 1 / effect² rule; upkeep,
    latency and the cadence as in the main run)."""
    reps = Resampler(REFIT_RESAMPLES, seed).means(costs)
    base, rules, ml = (np.concatenate([[costs[:, i].mean()], reps[:, i]]) for i in range(3))
    enrol = main.enrol_days
    main_saving, saving = main.rules[0] - main.ml[0], rules[0] - ml[0]
    if enrol is not None and main_saving > 0:
        enrol = enrol * (main_saving / saving) ** 2 if saving > 0 else None
    inp = replace(main, base=base, rules=rules, ml=ml, enrol_days=enrol)
    chosen, _ = choose(inp)
    return settle_all(inp, chosen, best_shares(inp), top_two(inp))[0]


def settle_refits(refits: Refits, inputs: Inputs, option: str, seed: int) -> Refits:
    """Every refit's own option, and the stability: the share of refits whose option is
    `option` (the run's answer)."""
    if not refits.active:
        return refits
    options = [refit_option(inputs, block, seed + i) for i, block in enumerate(refits.held)]
    periods = tuple(replace(p, option=o) for p, o in zip(refits.periods, options, strict=True))
    share = float(np.mean([o == option for o in options])) if options else None
    return replace(refits, periods=periods, stability=share)


def with_refits(recommendation: Recommendation, refits: Refits) -> Recommendation:
    """The recommendation with its stability, and p_best saying it spans the refits too."""
    if not refits.active:
        return recommendation
    return replace(
        recommendation,
        stability=refits.stability,
        p_best_includes=(
            f"{refits.includes}; upkeep and latency as in the main fit; the A/B plan sized on "
            "the pooled out-of-fold rows, its days rescaled to each resample's own effect"
        ),
    )
