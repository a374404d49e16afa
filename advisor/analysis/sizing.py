"""Sizes of the planned A/B test beyond the fixed-horizon Welch size: units and days from an
analysed size, the Monte Carlo size where Welch's power and the simulation disagree, the
size at which the always-valid readout read every day reaches the target power, and the days
the regression-adjusted readout saves."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core.record import Record
from advisor.stats.sequential import horizon_boundary, sequential_power, sequential_sample_size
from advisor.stats.simulation import SIMULATIONS, simulate_experiments, simulate_looks
from advisor.stats.variance_reduction import adjusted_variance_factor

AGREEMENT = 0.03  # the Monte Carlo sizes the test when its power and Welch's differ by more
MAX_LOOKS = 90
SEQUENTIAL_METHOD = "confidence sequence (normal mixture, Waudby-Smith et al. 2023)"


@dataclass(frozen=True)
class Sizes:
    """Units analysed and enrolled per arm and the days they take (all None when no size would
    do)."""

    n_analysed_per_arm: int | None = None
    n_analysed_treatment: int | None = None
    n_per_arm: int | None = None
    n_treatment: int | None = None
    days_enrolling: float | None = None
    days_needed: float | None = None

    @property
    def n_total(self) -> int | None:
        return None if self.n_per_arm is None else self.n_per_arm + self.n_treatment


def sizes(
    nobs1: float | None,
    *,
    share: float,
    volume_per_day: float,
    label_delay_days: float,
    trigger_rate: float = 1.0,
) -> Sizes:
    """Units analysed and enrolled per arm and the days they take, from control units analysed."""
    if nobs1 is None:
        return Sizes()
    analysed_c = math.ceil(nobs1)
    analysed_t = math.ceil(nobs1 * share / (1 - share))
    n_c = math.ceil(analysed_c / trigger_rate)
    n_t = math.ceil(analysed_t / trigger_rate)
    enrol = float(
        math.ceil(max(n_c / ((1 - share) * volume_per_day), n_t / (share * volume_per_day)))
    )
    return Sizes(analysed_c, analysed_t, n_c, n_t, enrol, enrol + label_delay_days)


def simulated_power(
    control: np.ndarray,
    treatment: np.ndarray,
    n_control: float,
    alpha: float,
    share: float,
    seed: int,
) -> float:
    """The Monte Carlo's power of the fixed-horizon Welch test at `n_control` analysed units."""
    n_c = max(2, math.ceil(n_control))
    n_t = max(2, math.ceil(n_control * share / (1 - share)))
    return simulate_experiments(control, treatment, n_c, n_t, alpha, SIMULATIONS, seed)[
        "rejection_rate"
    ]


def monte_carlo_size(
    control: np.ndarray,
    treatment: np.ndarray,
    start: float,
    power: float,
    alpha: float,
    share: float,
    seed: int,
) -> float:
    """Control units analysed at which the Monte Carlo's power reaches `power` (bisection on
    the log of the size, the same seed at every size)."""

    def reached(n: float) -> float:
        return simulated_power(control, treatment, n, alpha, share, seed)

    low, high = max(2.0, start / 4), start * 4
    while reached(high) < power and high < 1e9:
        low, high = high, high * 4
    for _ in range(16):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if reached(mid) < power else (low, mid)
        if high - low < 1:
            break
    return high


@dataclass(frozen=True)
class SequentialPlan(Record):
    """The size and days at which the always-valid readout, read after every day of traffic,
    reaches the target power (result.json key `experiment.sequential`); `power` is the Monte
    Carlo's of daily looks, `analytical_power` the closed form's at the last look."""

    method: str
    boundary_at_horizon: float
    n_per_arm: int | None = None
    n_analysed_per_arm: int | None = None
    n_treatment: int | None = None
    days_enrolling: float | None = None
    days_needed: float | None = None
    tuning: float | None = None
    looks: int | None = None
    analytical_power: float | None = None
    power: float | None = None


def daily_looks(planned: Sizes, timing: dict) -> np.ndarray:
    """Analysed control units to date at the end of each day of traffic (at most MAX_LOOKS)."""
    per_day = timing["volume_per_day"] * (1 - timing["share"]) * timing["trigger_rate"]
    analysed = planned.n_analysed_per_arm
    days = max(1, math.ceil(analysed / per_day))
    looks = np.minimum(per_day * np.arange(1, days + 1), analysed)
    looks[-1] = analysed
    if len(looks) > MAX_LOOKS:
        looks = looks[np.linspace(0, len(looks) - 1, MAX_LOOKS).round().astype(int)]
    return looks


def plan_sequential(
    control: np.ndarray,
    treatment: np.ndarray,
    sizing: dict,
    *,
    alpha: float,
    power: float,
    timing: dict,
    seed: int,
) -> SequentialPlan:
    """The size and days at which the always-valid readout (`advisor.stats.sequential`), read
    after every day of traffic, reaches the target power.

    The closed form gives the power at the last look only; reading every day adds chances
    to cross earlier, so the size is then lowered until the Monte Carlo of daily looks (the
    sequence tuned to that size) gives the target power: `power` is that Monte Carlo's."""
    share = timing["share"]
    effect, var_c, var_t = sizing["effect"], sizing["control_var"], sizing["treatment_var"]
    closed = sequential_sample_size(effect, var_c, var_t, alpha, power, share)
    none = SequentialPlan(SEQUENTIAL_METHOD, horizon_boundary(alpha))
    if closed is None or closed >= 1e12:
        return none

    def simulated(n: float) -> tuple[float, Sizes, float, int]:
        planned = sizes(n, **timing)
        looks = daily_looks(planned, timing)
        tuning = float(planned.n_analysed_per_arm + planned.n_analysed_treatment)
        sim = simulate_looks(
            control, treatment, looks, share=share, tuning=tuning, alpha=alpha, seed=seed + 2
        )
        rate = sim["better_rate"] if effect > 0 else sim["worse_rate"]
        return rate, planned, tuning, len(looks)

    reached, planned, tuning, looks = simulated(closed)
    low, high = closed / 2, closed
    if reached > power + AGREEMENT / 2:
        for _ in range(12):
            mid = (low + high) / 2
            rate = simulated(mid)[0]
            low, high = (mid, high) if rate < power else (low, mid)
            if high - low < max(1.0, closed * 0.005):
                break
        reached, planned, tuning, looks = simulated(high)
    return SequentialPlan(
        SEQUENTIAL_METHOD,
        horizon_boundary(alpha),
        n_per_arm=planned.n_per_arm,
        n_analysed_per_arm=planned.n_analysed_per_arm,
        n_treatment=planned.n_treatment,
        days_enrolling=planned.days_enrolling,
        days_needed=planned.days_needed,
        tuning=tuning,
        looks=looks,
        analytical_power=sequential_power(
            effect, var_c, var_t, planned.n_analysed_per_arm, share, alpha, tuning
        ),
        power=reached,
    )


@dataclass(frozen=True)
class VarianceReduction(Record):
    """The regression-adjusted readout against the plain one on the test split (result.json key
    `experiment.variance_reduction`): its variance as a share of the plain one's, the arms' R²
    on the covariate, and the size and days it needs."""

    covariate: str
    factor: float
    variance_reduction: float
    r2_control: float
    r2_treatment: float
    n_per_arm: int | None
    days_enrolling: float | None
    days_needed: float | None
    days_saved: float | None


def plan_variance_reduction(
    control: np.ndarray,
    treatment: np.ndarray,
    expected: tuple[np.ndarray, np.ndarray] | None,
    triggered: np.ndarray | None,
    planned: Sizes,
    *,
    timing: dict,
) -> VarianceReduction | None:
    """The regression-adjusted readout's variance against the plain one on the test split, with
    the model's expected cost of each arm's decision as covariate, and the days it saves."""
    if expected is None or planned.n_per_arm is None:
        return None
    x_c, x_t = (np.asarray(x, dtype=float) for x in expected)
    if triggered is not None:
        x_c, x_t = x_c[triggered], x_t[triggered]
    share = timing["share"]
    factor = adjusted_variance_factor(control, treatment, np.column_stack([x_c, x_t]), share)
    adjusted = sizes(planned.n_analysed_per_arm * factor["factor"], **timing)
    return VarianceReduction(
        covariate="the model's expected cost of each arm's decision (known before treatment)",
        **factor,
        n_per_arm=adjusted.n_per_arm,
        days_enrolling=adjusted.days_enrolling,
        days_needed=adjusted.days_needed,
        days_saved=planned.days_enrolling - adjusted.days_enrolling,
    )
