"""The answer: ship the rules, a batch model or a real-time model, explained in numbers.

Rules first: ML must beat the rules by more than it costs to run, by a margin an A/B test can
confirm, and must capture clearly more than the rules already do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from advisor.evaluate import interval
from advisor.maintenance import OPTIONS
from advisor.shadow import control_name

DAYS_PER_YEAR = 365.25
LABELS = {
    "ship-rules": "Ship the rules",
    "batch-ml": "Ship a batch ML model",
    "realtime-ml": "Ship a real-time ML model",
}


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

    def values(self) -> dict[str, np.ndarray]:
        """Annual value against the baseline (estimate and replicates) of each option's policy."""
        per_year = self.decisions_per_day * DAYS_PER_YEAR
        rules = (self.base - self.rules) * per_year
        ml = (self.base - self.ml) * per_year
        return {"ship-rules": rules, "batch-ml": ml, "realtime-ml": ml}

    def nets(self) -> dict[str, np.ndarray]:
        return {o: v - self.upkeep[o] for o, v in self.values().items()}


def choose(inp: Inputs) -> tuple[str, dict]:
    """The option and the facts behind it (DESIGN.md, "The recommendation")."""
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


def _money(value: float, currency: str) -> str:
    sign = "−" if value < 0 else ""
    value = abs(value)
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    return f"{sign}{text} {currency}".strip()


def _pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value * 100:.0f}%"


def _series(payload: Mapping, evaluation, name: str) -> np.ndarray:
    estimate = payload["evaluation"]["policies"][name]["cost_per_decision"]["estimate"]
    return np.concatenate([[estimate], evaluation.replicates[name]])


def build_inputs(stages, payload: Mapping) -> tuple[Inputs, str]:
    case = stages.case
    rules_name = control_name(payload["evaluation"])
    latency = payload.get("latency") or {}
    experiment = payload.get("experiment") or {}
    upkeep = {o: payload["maintenance"][o]["annual_cost"] for o in OPTIONS}
    enrol = experiment.get("days_enrolling")
    inp = Inputs(
        base=_series(payload, stages.evaluation, "baseline"),
        rules=_series(payload, stages.evaluation, rules_name),
        ml=_series(payload, stages.evaluation, "ml"),
        decisions_per_day=case.decision.volume_per_day,
        upkeep=upkeep,
        timing=case.decision.timing,
        precomputable=case.decision.precomputable,
        budget_ms=case.decision.latency_budget_ms,
        ml_p99_ms=(latency.get("ml") or {}).get("p99_ms"),
        rules_p99_ms=(latency.get(rules_name) or {}).get("p99_ms"),
        enrol_days=enrol,
        max_experiment_days=case.option("max_experiment_days"),
        capture_target=case.option("rules_capture_target"),
    )
    return inp, rules_name


def _reasons(inp: Inputs, facts: Mapping, rules_name: str, payload: Mapping, cur: str) -> list[str]:
    values, nets = inp.values(), inp.nets()
    ml_option = facts["ml_option"]
    rules_label = "hand-written rules" if rules_name == "expert-rules" else "learned rules"
    if rules_name == "baseline":
        rules_label = "best constant decision (no rule list was fitted)"
    out = []
    base_decision = payload["evaluation"]["policies"]["baseline"]["description"]["details"][
        "decision"
    ]
    if facts["capture"] is None:
        out.append(
            f"ML does not beat the best constant decision ('{base_decision}') on the test data, "
            "so it adds no value for the rules to capture."
        )
    else:
        ml_value = inp.base[1:] - inp.ml[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = np.where(ml_value > 0, (inp.base[1:] - inp.rules[1:]) / ml_value, np.nan)
        ci = interval(facts["capture"], reps)
        out.append(
            f"The {rules_label} capture {_pct(ci['estimate'])} ({_pct(ci['low'])} to "
            f"{_pct(ci['high'])}) of the value ML would add over always '{base_decision}' "
            f"(target: {_pct(inp.capture_target)})."
        )
    extra = interval(
        float(values[ml_option][0] - values["ship-rules"][0]),
        values[ml_option][1:] - values["ship-rules"][1:],
    )
    extra_upkeep = inp.upkeep[ml_option] - inp.upkeep["ship-rules"]
    verb = "would add" if extra["estimate"] >= 0 else "would lose"
    out.append(
        f"ML {verb} {_money(abs(extra['estimate']), cur)} a year against the rules "
        f"({_money(extra['low'], cur)} to {_money(extra['high'], cur)}) at "
        f"{inp.decisions_per_day:,.0f} decisions a day, and a {ml_option} deployment costs "
        f"{_money(extra_upkeep, cur)} a year more to run than the rules, so its extra net value "
        f"is {_money(facts['extra_net'], cur)} a year."
    )
    diff = interval(float(inp.ml[0] - inp.rules[0]), inp.ml[1:] - inp.rules[1:])
    clear = "excludes" if facts["difference_clear"] or (diff["low"] or 0) > 0 else "includes"
    out.append(
        f"ML's cost per decision minus the rules' is {_money(diff['estimate'], cur)} "
        f"({_money(diff['low'], cur)} to {_money(diff['high'], cur)}): the 95% interval {clear} zero."
    )
    exp = payload.get("experiment") or {}
    if exp.get("n_per_arm") is None:
        out.append(
            "No A/B test of any length could confirm a difference: the two policies cost the same on the test data."
        )
    elif facts["confirmable"]:
        out.append(
            f"An A/B test could confirm it: {exp['n_per_arm']:,} decisions per arm, "
            f"{inp.enrol_days:,.0f} days of traffic plus {exp.get('label_delay_days', 0):,.0f} days "
            "until the outcomes are known."
        )
    else:
        out.append(
            f"An A/B test could not confirm the difference within {inp.max_experiment_days:,.0f} days: "
            f"it would need {exp['n_per_arm']:,} decisions per arm, {inp.enrol_days:,.0f} days of traffic."
        )
    if inp.timing == "periodic":
        out.append(
            "The decision is periodic, so a scheduled batch score serves it: no always-on service is needed."
        )
    elif inp.precomputable:
        out.append(
            "The decision is live but its scores can be computed in advance and looked up, so batch scoring serves it."
        )
    elif inp.ml_p99_ms is not None:
        fits = inp.ml_p99_ms <= inp.budget_ms
        out.append(
            f"The decision is live and cannot be scored in advance; the model's p99 latency is "
            f"{inp.ml_p99_ms:.2f} ms against a {inp.budget_ms:g} ms budget"
            + (
                "."
                if fits
                else ", so a real-time model would miss it: it would need fewer or shallower trees, "
                "precomputed features, or a larger budget."
            )
        )
    if rules_name == "expert-rules":
        out.append(
            "The hand-written rules cost less than the learned rules on the test data, so they stand for 'ship the rules'."
        )
    if nets["ship-rules"][0] < 0:
        out.append(
            f"Even the rules' value ({_money(values['ship-rules'][0], cur)} a year) does not cover their upkeep "
            f"({_money(inp.upkeep['ship-rules'], cur)} a year): consider whether the current process should stay."
        )
    return out


def _headline(option: str, facts: Mapping, inp: Inputs, cur: str) -> str:
    if option != "ship-rules":
        days = f"{inp.enrol_days:,.0f}"
        return (
            f"{LABELS[option]}: after upkeep it nets {_money(facts['extra_net'], cur)} a year more "
            f"than the rules, and an A/B test can confirm the gain in {days} day{'s' if inp.enrol_days != 1 else ''} of traffic."
        )
    if facts["capture"] is not None and facts["capture"] >= 1:
        why = f"they do at least as well as ML ({_pct(facts['capture'])} of its value) on the test data"
    elif facts["capture"] is not None and facts["capture_reached"]:
        why = f"they capture {_pct(facts['capture'])} of the value ML would add"
    elif facts["capture"] is None:
        why = "ML adds no value over the best constant decision"
    elif facts["extra_net"] <= 0:
        why = "ML's extra value does not cover its extra upkeep"
    elif not facts["difference_clear"]:
        why = "ML's advantage over the rules cannot be told apart from zero on the test data"
    elif not facts["confirmable"]:
        why = f"an A/B test could not confirm ML's advantage within {inp.max_experiment_days:,.0f} days"
    else:
        why = f"the model misses the {inp.budget_ms:g} ms latency budget for this live decision"
    return f"Ship the rules: {why}."


def recommend(inp: Inputs, rules_name: str, payload: Mapping, currency: str) -> dict:
    """payload["recommendation"]: option, headline, reasons, options table, confidence, sensitivity."""
    option, facts = choose(inp)
    values, nets = inp.values(), inp.nets()
    conf = confidence(inp, option)
    notes = {
        "realtime-ml": None
        if inp.feasible("realtime-ml")
        else "misses the latency budget"
        if inp.ml_p99_ms is not None
        else "latency not measured",
        "batch-ml": None
        if inp.feasible("batch-ml")
        else "scores cannot be computed in advance for this live decision",
        "ship-rules": None,
    }
    return {
        "option": option,
        "headline": _headline(option, facts, inp, currency),
        "reasons": _reasons(inp, facts, rules_name, payload, currency),
        "confidence": conf,
        "confidence_label": "high" if conf >= 0.9 else "moderate" if conf >= 0.7 else "low",
        "break_even_volume_per_day": break_even_volume(inp),
        "rules_policy": rules_name,
        "conditions": facts,
        "options": {
            o: {
                "policy": rules_name if o == "ship-rules" else "ml",
                "annual_value": interval(float(values[o][0]), values[o][1:]),
                "annual_upkeep": float(inp.upkeep[o]),
                "net": interval(float(nets[o][0]), nets[o][1:]),
                "feasible": inp.feasible(o),
                "note": notes[o],
            }
            for o in OPTIONS
        },
        "sensitivity": sensitivity(inp),
        "currency": currency,
    }


def run_recommendation_stage(stages, payload: dict) -> None:
    inp, rules_name = build_inputs(stages, payload)
    payload["recommendation"] = recommend(inp, rules_name, payload, stages.case.currency)
