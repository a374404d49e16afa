"""The Monte Carlo check of a planned A/B test: at the planned size, many simulated
experiments judged by Welch's t-test give the power, the same with both arms drawn from the
control gives the A/A false-positive rate (it must sit near alpha), and the sample-ratio
check's bounds and power against size go beside them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.core.record import Record
from advisor.stats.interval import Histogram
from advisor.stats.power import power_by_size, welch_power
from advisor.stats.sample_ratio import SRM_THRESHOLD, srm_tolerance
from advisor.stats.simulation import binomial_band, simulate_experiments


@dataclass(frozen=True)
class Band(Record):
    """Where a rate should fall by chance alone, at `level`."""

    low: float
    high: float
    level: float


@dataclass(frozen=True)
class ObservedDifferences(Record):
    """The spread of the observed difference over the simulated experiments."""

    mean: float | None
    sd: float | None
    quantiles: Mapping[str, float | None]
    wrong_sign_share: float | None
    histogram: Histogram


@dataclass(frozen=True)
class Simulated(Record):
    """Many simulated experiments of one size (`advisor.stats.simulation`)."""

    simulations: int
    n_control: int
    n_treatment: int
    method: str
    rejection_rate: float
    right_direction_rate: float | None
    observed_difference: ObservedDifferences


@dataclass(frozen=True)
class SizePower(Record):
    n_control: int
    power: float


@dataclass(frozen=True)
class DaysPower(Record):
    days_enrolling: float
    days_total: float
    n_control: int
    n_treatment: int
    power: float


@dataclass(frozen=True)
class SampleRatioCheck(Record):
    """The daily sample-ratio check's bounds for the planned enrolment."""

    threshold: float
    test: str
    total_units: int
    expected_treatment: float
    flag_if_treatment_outside: tuple[float, float]


@dataclass(frozen=True)
class DesignCheck(Record):
    """The Monte Carlo check of one size: power, the A/A false-positive rate, the sample-ratio
    bounds and power against size."""

    analytical_power: float
    power: float
    aa_false_positive_rate: float
    aa_band: Band
    aa_within_band: bool
    simulation: Simulated
    aa_observed_difference: ObservedDifferences
    power_by_size: tuple[SizePower, ...]
    srm: SampleRatioCheck


def simulate_design(
    control: np.ndarray,
    treatment: np.ndarray,
    sizing: Mapping[str, float],
    sizes: tuple[int, int],
    total: int,
    *,
    alpha: float,
    share: float,
    simulations: int,
    seed: int,
) -> DesignCheck:
    """Monte Carlo power and the A/A false-positive rate at `sizes` analysed units per arm,
    the sample-ratio check's bounds for `total` enrolled units, and power against size, at the
    effect and variances in `sizing` (Welch)."""
    n_c, n_t = sizes
    sim = simulate_experiments(control, treatment, n_c, n_t, alpha, simulations, seed)
    aa = simulate_experiments(control, control, n_c, n_t, alpha, simulations, seed + 1)
    band = binomial_band(simulations, alpha)
    sim.pop("p_values")
    tol = srm_tolerance(total, share)
    return DesignCheck(
        analytical_power=welch_power(
            sizing["effect"], sizing["control_var"], sizing["treatment_var"], n_c, alpha, share
        ),
        power=sim["rejection_rate"],
        aa_false_positive_rate=aa["rejection_rate"],
        aa_band=Band(band[0], band[1], 0.95),
        aa_within_band=band[0] <= aa["rejection_rate"] <= band[1],
        simulation=Simulated.from_dict(sim),
        aa_observed_difference=ObservedDifferences.from_dict(aa["observed_difference"]),
        power_by_size=tuple(SizePower(**p) for p in power_by_size(sizing, alpha, share, n_c)),
        srm=SampleRatioCheck(
            threshold=SRM_THRESHOLD,
            test="chi-square of the arm counts against the planned split, checked daily",
            total_units=total,
            expected_treatment=total * share,
            flag_if_treatment_outside=(total * share - tol, total * share + tol),
        ),
    )
