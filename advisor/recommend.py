"""The answer: ship the rules, a batch model or a real-time model, explained in numbers.

Rules first: ML must beat the rules by more than it costs to run, by a margin an A/B test can
confirm, and must capture clearly more than the rules already do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.bootstrap import interval
from advisor.case import DecisionContext
from advisor.economics import DAYS_PER_YEAR, Inputs
from advisor.evaluate import Evaluation
from advisor.experiment import ExperimentPlan
from advisor.latency import Latency
from advisor.maintenance import OPTIONS, Upkeep
from advisor.roles import Roles
from advisor.wording import headline, reasons


def choose(inp: Inputs) -> tuple[str, dict]:
    """The option and the facts behind it: the rules ship unless ML clears every rules-first test."""
    nets = inp.nets()
    ml_option = inp.ml_option
    ml_value = float(inp.base[0] - inp.ml[0])
    capture = float((inp.base[0] - inp.rules[0]) / ml_value) if ml_value > 0 else None
    diff = inp.ml[1:] - inp.rules[1:]
    high = np.percentile(diff, 97.5) if diff.size else np.nan
    facts = {
        "ml_option": ml_option,
        "capture": capture,
        "capture_reached": capture is None or capture >= inp.capture_target,
        "extra_net": float(nets[ml_option][0] - nets["ship-rules"][0]),
        "difference_clear": bool(high < 0),
        "confirmable": inp.enrol_days is not None and inp.enrol_days <= inp.max_experiment_days,
        "ml_feasible": inp.feasible(ml_option),
    }
    rules_first = (
        facts["capture_reached"]
        or facts["extra_net"] <= 0
        or not facts["difference_clear"]
        or not facts["confirmable"]
    )
    if rules_first or not facts["ml_feasible"]:
        return "ship-rules", facts
    return ml_option, facts


def confidence(inp: Inputs, option: str) -> float:
    """Share of bootstrap resamples in which `option` has the highest net value of the feasible options."""
    nets = inp.nets()
    feasible = [o for o in OPTIONS if inp.feasible(o)]
    stacked = np.vstack([nets[o][1:] for o in feasible])
    if stacked.shape[1] == 0 or option not in feasible:
        return float("nan")
    return float((np.argmax(stacked, axis=0) == feasible.index(option)).mean())


def break_even_volume(inp: Inputs) -> float | None:
    """Decisions per day at which ML's extra net value over the rules is zero, or None if none."""
    extra_value_per_decision = float(inp.rules[0] - inp.ml[0])
    extra_upkeep = inp.upkeep[inp.ml_option] - inp.upkeep["ship-rules"]
    if extra_value_per_decision <= 0 or extra_upkeep <= 0:
        return None
    return extra_upkeep / (extra_value_per_decision * DAYS_PER_YEAR)


def sensitivity(inp: Inputs) -> list[dict]:
    return [
        {"factor": factor, "multiplier": by, "option": choose(inp.scaled(factor, by))[0]}
        for factor in ("volume", "cost scale", "maintenance")
        for by in (0.5, 2.0)
    ]


@dataclass(frozen=True)
class Recommendation:
    """The answer and the numbers behind it (result.json key `recommendation`)."""

    option: str
    facts: Mapping
    confidence: float
    break_even_volume_per_day: float | None
    rules_policy: str
    options: Mapping[str, dict]
    sensitivity: tuple[dict, ...]
    headline: str
    reasons: tuple[str, ...]
    currency: str

    @property
    def confidence_label(self) -> str:
        c = self.confidence
        return "high" if c >= 0.9 else "moderate" if c >= 0.7 else "low"

    def to_dict(self) -> dict:
        return {
            "option": self.option,
            "headline": self.headline,
            "reasons": list(self.reasons),
            "confidence": self.confidence,
            "confidence_label": self.confidence_label,
            "break_even_volume_per_day": self.break_even_volume_per_day,
            "rules_policy": self.rules_policy,
            "conditions": dict(self.facts),
            "options": dict(self.options),
            "sensitivity": list(self.sensitivity),
            "currency": self.currency,
        }


def decision_inputs(
    evaluation: Evaluation,
    roles: Roles,
    experiment: ExperimentPlan,
    latency: Latency,
    upkeep: Upkeep,
    decision: DecisionContext,
    *,
    max_experiment_days: float,
    capture_target: float,
) -> Inputs:
    """Everything the choice reads, gathered from the earlier stages' values."""
    return Inputs(
        base=evaluation.series(roles.baseline),
        rules=evaluation.series(roles.control),
        ml=evaluation.series(roles.treatment),
        decisions_per_day=decision.volume_per_day,
        upkeep=dict(upkeep.annual_cost),
        timing=decision.timing,
        precomputable=decision.precomputable,
        budget_ms=decision.latency_budget_ms,
        ml_p99_ms=latency.p99_ms(roles.treatment),
        rules_p99_ms=latency.p99_ms(roles.control),
        enrol_days=experiment.days_enrolling,
        max_experiment_days=max_experiment_days,
        capture_target=capture_target,
    )


def option_notes(inp: Inputs) -> dict[str, str | None]:
    """Why an option is not feasible, per option (None when it is)."""
    realtime = None
    if not inp.feasible("realtime-ml"):
        realtime = (
            "misses the latency budget" if inp.ml_p99_ms is not None else "latency not measured"
        )
    batch = (
        None
        if inp.feasible("batch-ml")
        else "scores cannot be computed in advance for this live decision"
    )
    return {"ship-rules": None, "batch-ml": batch, "realtime-ml": realtime}


def recommend(
    inp: Inputs, roles: Roles, experiment: ExperimentPlan, baseline_decision: str, currency: str
) -> Recommendation:
    """Choose the option, and say why in numbers."""
    option, facts = choose(inp)
    values, nets = inp.values(), inp.nets()
    notes = option_notes(inp)
    rules_name = roles.control
    return Recommendation(
        option=option,
        facts=facts,
        confidence=confidence(inp, option),
        break_even_volume_per_day=break_even_volume(inp),
        rules_policy=rules_name,
        options={
            o: {
                "policy": rules_name if o == "ship-rules" else roles.treatment,
                "annual_value": interval(float(values[o][0]), values[o][1:]),
                "annual_upkeep": float(inp.upkeep[o]),
                "net": interval(float(nets[o][0]), nets[o][1:]),
                "feasible": inp.feasible(o),
                "note": notes[o],
            }
            for o in OPTIONS
        },
        sensitivity=tuple(sensitivity(inp)),
        headline=headline(option, facts, inp, currency),
        reasons=tuple(
            reasons(inp, facts, rules_name, baseline_decision, experiment.details, currency)
        ),
        currency=currency,
    )
