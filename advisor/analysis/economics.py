"""What each option is worth a year: value against the baseline, upkeep and net, with the
bootstrap replicates carried along so every figure keeps its interval. The decision logic
(`recommend`) and its wording (`wording`) both read these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from advisor.core.record import Record
from advisor.stats.interval import Interval

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Inputs:
    """Everything the choice depends on, so the sensitivity table can re-run it with one changed."""

    base: np.ndarray  # cost per decision: [estimate, *bootstrap replicates]
    rules: np.ndarray
    ml: np.ndarray
    decisions_per_day: float
    upkeep: Mapping[str, float]
    timing: str
    precomputable: bool
    budget_ms: float
    ml_p99_ms: float | None
    rules_p99_ms: float | None
    enrol_days: float | None  # days of traffic an A/B test needs; None: no size would do
    max_experiment_days: float
    capture_target: float
    latency_figure: str = "in-process"  # which p99 ml_p99_ms is: "cpu", "in-process" or "http"
    ml_p99_bounds: tuple[float, float] | None = None  # ml_p99_ms's 95 % interval, when known
    label_delay_days: float = 0.0  # days after the traffic until the test's outcomes are known
    sized_fraction: float = 1.0  # the effect the test is sized for over the point estimate

    def scaled(self, factor: str, by: float) -> Inputs:
        if factor == "volume":
            enrol = None if self.enrol_days is None else self.enrol_days / by
            return replace(self, decisions_per_day=self.decisions_per_day * by, enrol_days=enrol)
        if factor == "cost scale":
            return replace(self, base=self.base * by, rules=self.rules * by, ml=self.ml * by)
        return replace(self, upkeep={k: v * by for k, v in self.upkeep.items()})

    @property
    def ml_option(self) -> str:
        return "realtime-ml" if self.timing == "live" and not self.precomputable else "batch-ml"

    def feasible(self, option: str) -> bool:
        if option == "realtime-ml":
            return self.ml_p99_ms is not None and self.ml_p99_ms <= self.budget_ms
        if option == "batch-ml":
            return self.timing == "periodic" or self.precomputable
        return True

    @property
    def latency_within_noise(self) -> bool:
        """Whether the real-time budget lies inside the interval of ML's p99."""
        bounds = self.ml_p99_bounds
        return bounds is not None and bounds[0] <= self.budget_ms <= bounds[1]

    def values(self) -> dict[str, np.ndarray]:
        """Annual value against the baseline (estimate and replicates) of each option's policy."""
        per_year = self.decisions_per_day * DAYS_PER_YEAR
        rules = (self.base - self.rules) * per_year
        ml = (self.base - self.ml) * per_year
        return {"ship-rules": rules, "batch-ml": ml, "realtime-ml": ml}

    def nets(self) -> dict[str, np.ndarray]:
        return {o: v - self.upkeep[o] for o, v in self.values().items()}


@dataclass(frozen=True)
class Conditions(Record):
    """The rules-first tests on the estimates: ML ships only when it clears every one."""

    ml_option: str
    capture: float | None
    capture_interval: Interval | None  # the capture's 95 % interval over the resamples
    capture_reached: bool
    extra_net: float
    difference_clear: bool
    confirmable: bool
    ml_feasible: bool


@dataclass(frozen=True)
class TopTwo(Record):
    """The two options compared for a tie, higher net value first, and the 95 % interval of
    their net difference (a year) over the resamples."""

    options: tuple[str, str]
    net_difference: Interval

    @property
    def overlaps(self) -> bool:
        """Whether the net difference's interval includes zero: they cannot be told apart."""
        d = self.net_difference
        return d.known and d.low <= 0 <= d.high
