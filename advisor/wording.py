"""The recommendation in words: the headline and the reasons, from the numbers `recommend`
computed. Wording lives here so the decision logic stays free of prose."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from advisor.bootstrap import interval
from advisor.economics import Inputs

LABELS = {
    "ship-rules": "Ship the rules",
    "batch-ml": "Ship a batch ML model",
    "realtime-ml": "Ship a real-time ML model",
}


def money(value: float, currency: str) -> str:
    sign = "−" if value < 0 else ""
    value = abs(value)
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    return f"{sign}{text} {currency}".strip()


def pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value * 100:.0f}%"


def reasons(
    inp: Inputs,
    facts: Mapping,
    rules_name: str,
    base_decision: str,
    exp: Mapping,
    cur: str,
) -> list[str]:
    """The reasons behind the option, each a sentence with its numbers."""
    values, nets = inp.values(), inp.nets()
    ml_option = facts["ml_option"]
    rules_label = "hand-written rules" if rules_name == "expert-rules" else "learned rules"
    if rules_name == "baseline":
        rules_label = "best constant decision (no rule list was fitted)"
    out = []
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
            f"The {rules_label} capture {pct(ci['estimate'])} ({pct(ci['low'])} to "
            f"{pct(ci['high'])}) of the value ML would add over always '{base_decision}' "
            f"(target: {pct(inp.capture_target)})."
        )
    extra = interval(
        float(values[ml_option][0] - values["ship-rules"][0]),
        values[ml_option][1:] - values["ship-rules"][1:],
    )
    extra_upkeep = inp.upkeep[ml_option] - inp.upkeep["ship-rules"]
    verb = "would add" if extra["estimate"] >= 0 else "would lose"
    out.append(
        f"ML {verb} {money(abs(extra['estimate']), cur)} a year against the rules "
        f"({money(extra['low'], cur)} to {money(extra['high'], cur)}) at "
        f"{inp.decisions_per_day:,.0f} decisions a day, and a {ml_option} deployment costs "
        f"{money(extra_upkeep, cur)} a year more to run than the rules, so its extra net value "
        f"is {money(facts['extra_net'], cur)} a year."
    )
    diff = interval(float(inp.ml[0] - inp.rules[0]), inp.ml[1:] - inp.rules[1:])
    clear = "excludes" if facts["difference_clear"] or (diff["low"] or 0) > 0 else "includes"
    out.append(
        f"ML's cost per decision minus the rules' is {money(diff['estimate'], cur)} "
        f"({money(diff['low'], cur)} to {money(diff['high'], cur)}): the 95% interval {clear} zero."
    )
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
            "The hand-written rules cost less than the learned rules on the validation split, so they stand for 'ship the rules'."
        )
    if nets["ship-rules"][0] < 0:
        out.append(
            f"Even the rules' value ({money(values['ship-rules'][0], cur)} a year) does not cover their upkeep "
            f"({money(inp.upkeep['ship-rules'], cur)} a year): consider whether the current process should stay."
        )
    return out


def headline(option: str, facts: Mapping, inp: Inputs, cur: str) -> str:
    """The answer in one sentence: the option and its deciding reason."""
    if option != "ship-rules":
        days = f"{inp.enrol_days:,.0f}"
        return (
            f"{LABELS[option]}: after upkeep it nets {money(facts['extra_net'], cur)} a year more "
            f"than the rules, and an A/B test can confirm the gain in {days} day{'s' if inp.enrol_days != 1 else ''} of traffic."
        )
    if facts["capture"] is not None and facts["capture"] >= 1:
        why = f"they do at least as well as ML ({pct(facts['capture'])} of its value) on the test data"
    elif facts["capture"] is not None and facts["capture_reached"]:
        why = f"they capture {pct(facts['capture'])} of the value ML would add"
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
