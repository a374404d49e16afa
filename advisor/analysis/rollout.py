"""Around the A/B test: the rollout plan puts shadow mode, a canary ramp and the test itself on
a calendar, with the guardrail bands (`advisor.stats.sample_ratio`) read daily.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from scipy import stats

from advisor.core.record import Record, json_field
from advisor.stats.sample_ratio import SRM_THRESHOLD

CANARY_SHARES = (0.05, 0.25)
CANARY_MIN_DAYS, CANARY_MAX_DAYS = 3, 14
CANARY_UNITS = 500
SHADOW_MIN_DAYS, SHADOW_MAX_DAYS, SHADOW_DISAGREEMENTS = 7, 30, 1000


class PlannedTest(Protocol):
    """What the rollout reads of the planned A/B test (`advisor.analysis.experiment.ABTest`)."""

    treatment_share: float
    days_enrolling: float | None
    label_delay_days: float
    confirmable_within_max_days: bool
    direction: str
    max_experiment_days: float


@dataclass(frozen=True)
class GuardrailBand(Record):
    """The share of one decision the treatment arm should show, read daily."""

    expected: float
    low: float
    high: float


@dataclass(frozen=True)
class RolloutStep(Record):
    """One step of the rollout: the treatment's share of traffic, its days and when it exits."""

    step: str
    treatment_share: float
    days: float | None
    treatment_units: int | None = json_field(omit_none=True)
    purpose: str
    exit: str
    guardrail_bands: Mapping[str, GuardrailBand] | None = json_field(omit_none=True, default=None)


@dataclass(frozen=True)
class Rollout(Record):
    """Shadow period, canary ramp and the A/B test on a calendar (key `experiment.rollout`)."""

    advisable: bool
    note: str
    steps: tuple[RolloutStep, ...]
    total_days: float | None
    guardrail_metric: str
    rollback_conditions: tuple[str, ...]


def rollout_plan(
    volume_per_day: float,
    plan: PlannedTest,
    disagreement_rate: float | None,
    decision_shares: Mapping[str, float],
    latency_budget_ms: float,
) -> Rollout:
    """Shadow period, canary ramp and the A/B test itself, with the days each step takes.

    The guardrail is read daily, before any outcome arrives: the treatment's share of each
    decision so far in the step against what ML decided on the test split (a 99.9% band for
    the step's treatment units), the sample-ratio check, and p99 latency against the budget.
    """
    z = stats.norm.isf(SRM_THRESHOLD / 2)
    steps = []
    rate = disagreement_rate or 0.0
    shadow_days = SHADOW_MAX_DAYS
    if rate > 0:
        shadow_days = min(
            SHADOW_MAX_DAYS,
            max(SHADOW_MIN_DAYS, math.ceil(SHADOW_DISAGREEMENTS / (rate * volume_per_day))),
        )
    steps.append(
        RolloutStep(
            step="shadow",
            treatment_share=0.0,
            days=shadow_days,
            treatment_units=None,
            purpose="ML decides beside the rules without acting; log disagreements and latency.",
            exit=f"{SHADOW_DISAGREEMENTS:,} disagreements logged (at least {SHADOW_MIN_DAYS} days) "
            "and p99 latency within budget",
        )
    )
    for share in CANARY_SHARES:
        per_day = volume_per_day * share
        days = min(CANARY_MAX_DAYS, max(CANARY_MIN_DAYS, math.ceil(CANARY_UNITS / per_day)))
        steps.append(
            RolloutStep(
                step=f"canary {share:.0%}",
                treatment_share=share,
                days=days,
                treatment_units=int(days * per_day),
                purpose="Catch operational faults on a small share of traffic.",
                exit=f"{days} days ({int(days * per_day):,} treatment decisions) with no "
                "guardrail breach",
                guardrail_bands=_bands(decision_shares, days * per_day, z),
            )
        )
    ab_share = float(plan.treatment_share)
    enrol = plan.days_enrolling
    ab_units = (enrol or 0) * volume_per_day * ab_share
    steps.append(
        RolloutStep(
            step=f"A/B test {ab_share:.0%}",
            treatment_share=ab_share,
            days=enrol,
            treatment_units=None if enrol is None else int(ab_units),
            purpose="Confirm the cost difference with the planned sample.",
            exit=f"planned sample enrolled, then {plan.label_delay_days:g} days for outcomes",
            guardrail_bands=_bands(decision_shares, max(ab_units, 1.0), z),
        )
    )
    known = [s.days for s in steps if s.days is not None]
    total = None if enrol is None else sum(known) + float(plan.label_delay_days)
    advisable = bool(plan.confirmable_within_max_days) and plan.direction == "treatment cheaper"
    if advisable:
        note = "Roll out in these steps; each step starts only when the one before exits cleanly."
    elif plan.direction != "treatment cheaper":
        note = "Do not start the rollout: on the test split ML is not cheaper than the control."
    else:
        note = (
            "Do not start the rollout: the A/B test could not confirm the difference within "
            f"{plan.max_experiment_days:g} days of traffic."
        )
    return Rollout(
        advisable=advisable,
        note=note,
        steps=tuple(steps),
        total_days=total,
        guardrail_metric="share of each decision in the treatment arm, read daily",
        rollback_conditions=(
            "a decision's share leaves its guardrail band",
            f"the sample-ratio check flags (p < {SRM_THRESHOLD:g})",
            f"p99 latency exceeds the {latency_budget_ms:g} ms budget or the error rate rises",
            "once outcomes arrive, the treatment's cost per decision is worse than control's "
            "with a 95% interval that excludes zero",
        ),
    )


def _bands(shares: Mapping[str, float], units: float, z: float) -> dict[str, GuardrailBand]:
    out = {}
    for decision, p in shares.items():
        half = z * math.sqrt(max(p * (1 - p), 0.0) / max(units, 1.0))
        out[decision] = GuardrailBand(p, max(0.0, p - half), min(1.0, p + half))
    return out
