"""The recommendation in words: the headline and the reasons, from the numbers `recommend`
computed. Wording lives here so the decision logic stays free of prose."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from advisor.analysis.economics import Conditions, Inputs, TopTwo
from advisor.core.money import money
from advisor.stats.bootstrap import interval

if TYPE_CHECKING:
    from advisor.analysis.experiment import ExperimentPlan

LABELS = {
    "ship-rules": "Ship the rules",
    "batch-ml": "Ship a batch ML model",
    "realtime-ml": "Ship a real-time ML model",
}


def pct(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value * 100:.0f}%"


def reasons(
    inp: Inputs,
    facts: Conditions,
    rules_name: str,
    base_decision: str,
    exp: ExperimentPlan,
    cur: str,
) -> list[str]:
    """The reasons behind the option, each a sentence with its numbers."""
    values, nets = inp.values(), inp.nets()
    ml_option = facts.ml_option
    rules_label = "hand-written rules" if rules_name == "expert-rules" else "learned rules"
    out = []
    if rules_name == "baseline":
        out.append(
            f"No rule list beats always '{base_decision}' by more than noise on the validation "
            f"split, so the simplest rule list of all, always '{base_decision}', stands for the "
            "rules: nothing to build or maintain."
        )
    if facts.capture is None:
        out.append(
            f"ML does not beat the best constant decision ('{base_decision}') on the test data, "
            "so it adds no value for the rules to capture."
        )
    elif rules_name != "baseline":
        ml_value = inp.base[1:] - inp.ml[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = np.where(ml_value > 0, (inp.base[1:] - inp.rules[1:]) / ml_value, np.nan)
        ci = interval(facts.capture, reps)
        out.append(
            f"The {rules_label} capture {pct(ci.estimate)} ({pct(ci.low)} to "
            f"{pct(ci.high)}) of the value ML would add over always '{base_decision}' "
            f"(target: {pct(inp.capture_target)})."
        )
    extra = interval(
        float(values[ml_option][0] - values["ship-rules"][0]),
        values[ml_option][1:] - values["ship-rules"][1:],
    )
    extra_upkeep = inp.upkeep[ml_option] - inp.upkeep["ship-rules"]
    verb = "would add" if extra.estimate >= 0 else "would lose"
    out.append(
        f"ML {verb} {money(abs(extra.estimate), cur)} a year against the rules "
        f"({money(extra.low, cur)} to {money(extra.high, cur)}) at "
        f"{inp.decisions_per_day:,.0f} decisions a day, and a {ml_option} deployment costs "
        f"{money(extra_upkeep, cur)} a year more to run than the rules, so its extra net value "
        f"is {money(facts.extra_net, cur)} a year."
    )
    diff = interval(float(inp.ml[0] - inp.rules[0]), inp.ml[1:] - inp.rules[1:])
    clear = "excludes" if facts.difference_clear or (diff.low or 0) > 0 else "includes"
    out.append(
        f"ML's cost per decision minus the rules' is {money(diff.estimate, cur)} "
        f"({money(diff.low, cur)} to {money(diff.high, cur)}): the 95% interval {clear} zero."
    )
    test = exp.test
    if exp.n_per_arm is None:
        out.append(
            "No A/B test of any length could confirm a difference: the two policies cost the same on the test data."
        )
    elif facts.confirmable:
        out.append(
            f"An A/B test could confirm it: {test.n_per_arm:,} decisions per arm{_design(exp)}, "
            f"{inp.enrol_days:,.0f} days of traffic plus {test.label_delay_days:,.0f} days "
            "until the outcomes are known, sized on the cautious end of the saving's 95% interval"
            + _optimistic(exp)
            + "."
        )
    else:
        out.append(
            f"An A/B test could not confirm the difference within {inp.max_experiment_days:,.0f} days: "
            f"it would need {test.n_per_arm:,} decisions per arm{_design(exp)}, "
            f"{inp.enrol_days:,.0f} days of traffic."
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
        bounds = inp.ml_p99_bounds
        out.append(
            "The decision is live and cannot be scored in advance; the model's p99 latency "
            + ("through the real service over HTTP " if inp.latency_figure == "http" else "")
            + ("in CPU time per call " if inp.latency_figure == "cpu" else "")
            + f"is {inp.ml_p99_ms:.2f} ms"
            + (f" ({bounds[0]:.2f} to {bounds[1]:.2f})" if bounds else "")
            + f" against a {inp.budget_ms:g} ms budget"
            + (
                ", within noise of it: this measurement cannot tell whether it fits."
                if inp.latency_within_noise
                else "."
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


def _optimistic(experiment: ExperimentPlan) -> str:
    """The point estimate's size, the optimistic figure, when it differs."""
    test = experiment.test
    opt = test.optimistic.n_per_arm if test is not None and test.optimistic else None
    if opt is None or opt == test.n_per_arm:
        return ""
    return f" (at the point estimate, optimistically, {opt:,} per arm)"


def _design(experiment: ExperimentPlan) -> str:
    """How the test is analysed, when it is not on every unit."""
    if experiment.test is None or experiment.test.design != "triggered":
        return ""
    rate = experiment.test.triggered.trigger_rate
    return f" (analysing only the {pct(rate)} where the two decide differently)"


def headline(
    option: str,
    facts: Conditions,
    inp: Inputs,
    cur: str,
    *,
    rules_name: str,
    base_decision: str,
    shares: Mapping[str, float] | None,
    tied: bool = False,
    pair: TopTwo | None = None,
    tie_below: float = 0.8,
    tied_on: str | None = None,
    agreement: Mapping[str, float] | None = None,
    chosen: str | None = None,
) -> str:
    """The answer in one sentence or two: whether any option pays for itself first, then the
    option and its deciding reason; when `tied` (no option best in `tie_below` of the
    resamples, `shares` being each option's share, or the top two's net difference interval,
    `pair`, including zero; `tied_on` "procedure": the whole procedure, rerun on the
    resamples, gives `chosen` in fewer than `tie_below` of them, `agreement` being each
    option's share; "capture": the rules' capture interval contains its target; "latency":
    the real-time model's p99 within noise of its budget), that
    the options are tied and rules first picks the rules."""
    if shares is None:
        core = _rules_core(facts, inp, rules_name, base_decision)
        return f"The data cannot tell the options apart (a tie). {core}"
    if tied:
        split = ", ".join(f"{o} in {pct(v)}" for o, v in shares.items() if v > 0)
        rules = _rules_core(facts, inp, rules_name, base_decision, tied=True)
        if tied_on == "procedure" and agreement is not None:
            among = ", ".join(f"{o} in {pct(v)}" for o, v in agreement.items() if v > 0)
            why = (
                f"the whole decision, its rules-first tests included, rerun on each resample "
                f"gives {chosen} in fewer than {pct(tie_below)} of them ({among})"
            )
        elif tied_on == "capture":
            ci = facts.capture_interval
            why = (
                f"the rules capture {pct(facts.capture)} ({pct(ci.low)} to {pct(ci.high)}) of "
                f"the value ML would add, an interval that contains the "
                f"{pct(inp.capture_target)} target the rules-first test reads"
            )
        elif tied_on == "latency":
            low, high = inp.ml_p99_bounds
            why = (
                f"the real-time model's p99 latency, {inp.ml_p99_ms:.2f} ms ({low:.2f} to "
                f"{high:.2f}), is within noise of the {inp.budget_ms:g} ms budget and the "
                "answer turns on whether it fits"
            )
        elif max(shares.values()) < tie_below or pair is None:
            why = f"no option has the highest net value in {pct(tie_below)} of resamples ({split})"
        else:
            a, b = pair.options
            d = pair.net_difference
            why = (
                f"{a} nets {money(d.estimate, cur)} a year more than {b}, but the 95% interval "
                f"({money(d.low, cur)} to {money(d.high, cur)}) includes zero (best in {split})"
            )
        return (
            f"Too close to call: {why}, so they are tied and rules first prefers the rules. {rules}"
        )
    if option == "ship-rules":
        core = _rules_core(facts, inp, rules_name, base_decision)
        return core if rules_name == "baseline" else _none_pays(inp, cur) + core
    total = inp.enrol_days + inp.label_delay_days
    return _none_pays(inp, cur) + (
        f"{LABELS[option]}: after upkeep it nets {money(facts.extra_net, cur)} a year more "
        f"than the rules, and an A/B test sized on the cautious end of the saving's interval "
        f"can confirm the gain within {total:,.0f} day{'s' if total != 1 else ''} "
        f"({inp.enrol_days:,.0f} of traffic plus {inp.label_delay_days:,.0f} until the "
        "outcomes are known)."
    )


def _rules_core(
    facts: Conditions, inp: Inputs, rules_name: str, base_decision: str, tied: bool = False
) -> str:
    """The rules' sentence: the constant decision in words, or why the rules ship."""
    if rules_name == "baseline":
        if tied:  # a model may well pay for itself; it is only not clearly ahead
            return f"Keep it simple: always {base_decision}; no rule list does better."
        if facts.capture is not None and facts.extra_net > 0:
            # ML pays for its upkeep; a rules-first test (A/B, difference, latency) keeps it out
            return (
                f"Keep it simple: always {base_decision}; no rule list does better, and "
                f"{_why_rules(facts, inp)}."
            )
        return (
            f"Keep it simple: always {base_decision}; neither a rule list nor a model pays for "
            "its upkeep here."
        )
    if tied:
        if facts.capture is None:
            return "Ship the rules: ML adds no value over the best constant decision."
        return f"Ship the rules: {_capture_text(facts)}."
    return f"Ship the rules: {_why_rules(facts, inp)}."


def _capture_text(facts: Conditions) -> str:
    """What share of ML's value the rules capture, with its interval."""
    ci = facts.capture_interval
    span = f" ({pct(ci.low)} to {pct(ci.high)})" if ci is not None and ci.known else ""
    return f"they capture {pct(facts.capture)}{span} of the value ML would add"


def _why_rules(facts: Conditions, inp: Inputs) -> str:
    if facts.capture is not None and facts.capture_reached:
        return _capture_text(facts)
    if facts.capture is None:
        return "ML adds no value over the best constant decision"
    if facts.extra_net <= 0:
        return "ML's extra value does not cover its extra upkeep"
    if not facts.difference_clear:
        return "ML's advantage over the rules cannot be told apart from zero on the test data"
    if not facts.confirmable:
        return f"an A/B test could not confirm ML's advantage within {inp.max_experiment_days:,.0f} days"
    return f"the model misses the {inp.budget_ms:g} ms latency budget for this live decision"


def _none_pays(inp: Inputs, cur: str) -> str:
    """A first sentence when no feasible option clearly pays for its upkeep, else ''."""
    nets = inp.nets()
    feasible = [o for o in nets if inp.feasible(o)]
    best = max(feasible, key=lambda o: nets[o][0])
    net = interval(float(nets[best][0]), nets[best][1:])
    if net.low is not None and net.low > 0:
        return ""
    return (
        f"No option clearly pays for its upkeep here: the best, {best}, nets "
        f"{money(net.estimate, cur)} a year ({money(net.low, cur)} to "
        f"{money(net.high, cur)}). "
    )


def settle(tied: bool, experiment: ExperimentPlan, n_test: int) -> str | None:
    """What would settle a tied answer, or None when the answer is settled."""
    if not tied:
        return None
    more = (
        f"More labelled data: the intervals come from {n_test:,} test rows and narrow with the "
        "square root of that number."
    )
    test = experiment.test
    if test is not None and test.confirmable_within_max_days:
        return (
            f"{more} Or run the A/B test: {test.n_per_arm:,} units per arm, "
            f"{test.days_needed:,.0f} days until the answer."
        )
    days = test.max_experiment_days if test is not None else 90
    return f"{more} An A/B test could not settle it within {days:g} days."
