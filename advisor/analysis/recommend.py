"""The answer: ship the rules, a batch model or a real-time model, explained in numbers.

Rules first: ML must beat the rules by more than it costs to run, by a margin an A/B test can
confirm, and must capture clearly more than the rules already do.

`p_best` says how sure the answer is: the share of resamples in which the recommended option
has the highest net value of the feasible options (what the resamples include is stated with
it). When no option is best in TIE_BELOW of them, or the 95 % interval of the top two options'
net difference includes zero, the options are within noise of each other: the answer is
called a tie and the rules-first principle picks the rules. So is it when the whole procedure
(the rules-first tests included), rerun on each resample's own figures, gives its answer in
fewer than TIE_BELOW of them, when the rules' capture's 95 % interval contains its target and
the answer turns on it, and when a real-time model's p99 is within noise of its latency
budget (the budget inside the p99's interval) and the answer turns on whether it fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from advisor.analysis.economics import Conditions, Inputs, TopTwo
from advisor.analysis.evaluate import Evaluation
from advisor.analysis.experiment import ExperimentPlan
from advisor.analysis.latency import Latency
from advisor.analysis.maintenance import Upkeep
from advisor.analysis.roles import Roles
from advisor.analysis.wording import headline, reasons, settle
from advisor.core.assumptions import OPTIONS
from advisor.core.case import DecisionContext
from advisor.core.record import Record, json_field
from advisor.stats.bootstrap import interval
from advisor.stats.interval import Interval

VOLUME_RANGE = (1e-3, 1e3)  # break-even volumes are searched from 1/1000 to 1000 times today's
TIE_BELOW = 0.8  # p_best below this: the options are within noise of each other
P_BEST_INCLUDES = (
    "paired resamples of the rows that score the options; the fitted policies, the rule list "
    "that stands for the rules, calibration and the retraining cadence are held as fitted"
)
TIE_RULE = (
    f"no option has the highest net value in {TIE_BELOW:.0%} of the resamples, or the 95 % "
    "interval of the top two options' net difference includes zero: the options are called "
    "tied and the rules-first principle picks ship-rules; likewise when the whole procedure, "
    f"its rules-first tests included, gives its answer in fewer than {TIE_BELOW:.0%} of the "
    "resamples, or the 95 % interval of the rules' capture of ML's value contains its target, "
    "or the real-time model's p99 latency is within noise of its budget, and the answer turns "
    "on that test"
)


@dataclass(frozen=True)
class BreakEven(Record):
    """The volume (decisions a day) nearest today's at which the answer flips, or why none does."""

    volume_per_day: float | None
    flips_to: str | None
    verified: bool | None = json_field(omit_none=True, default=None)
    reason: str | None = None


@dataclass(frozen=True)
class OptionValue(Record):
    """What an option is worth a year against the baseline, its upkeep and its net value."""

    policy: str | None
    annual_value: Interval
    annual_upkeep: float
    net: Interval
    feasible: bool
    note: str | None


@dataclass(frozen=True)
class Sensitivity(Record):
    """The option chosen when one input is multiplied."""

    factor: str
    multiplier: float
    option: str


def procedure(inp: Inputs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The whole decision, run on the estimates (index 0) and on every bootstrap replicate.

    Each replicate's costs per decision stand in for the estimates; the widths of the
    intervals it needs are those of the estimates (the difference's upper bound moves with
    the replicate's difference). Each replicate sizes its own A/B test from its own saving by
    the plan's rule: units, and so days, scale as 1 / effect² from the plan, whose effect is the
    cautious end of the saving's interval (moved by the replicate's own saving; anchored on the
    plan's days whichever arm the estimate favoured); a replicate in which ML saves nothing
    cannot confirm it. Returns the option per entry and the facts per entry.
    """
    nets = inp.nets()
    ml_option = inp.ml_option
    ml_value = inp.base - inp.ml
    with np.errstate(divide="ignore", invalid="ignore"):
        capture = np.where(ml_value > 0, (inp.base - inp.rules) / ml_value, np.nan)
    diff = inp.ml - inp.rules  # ML minus the rules: negative when ML is cheaper
    high = np.percentile(diff[1:], 97.5) if diff.size > 1 else np.nan
    saving = -diff
    if inp.enrol_days is None or saving[0] == 0:
        enrol = np.full(diff.shape, np.inf)
    else:
        sized = saving[0] * inp.sized_fraction
        moved = sized + saving - saving[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            enrol = np.where(moved > 0, inp.enrol_days * (sized / moved) ** 2, np.inf)
    facts = {
        "capture": capture,
        "capture_reached": np.isnan(capture) | (capture >= inp.capture_target),
        "extra_net": nets[ml_option] - nets["ship-rules"],
        "difference_clear": (high + (diff - diff[0])) < 0,
        "confirmable": enrol <= inp.max_experiment_days,
    }
    rules_first = (
        facts["capture_reached"]
        | (facts["extra_net"] <= 0)
        | ~facts["difference_clear"]
        | ~facts["confirmable"]
    )
    ship_rules = rules_first | (not inp.feasible(ml_option))
    return np.where(ship_rules, "ship-rules", ml_option), facts


def choose(inp: Inputs) -> tuple[str, Conditions]:
    """The option and the facts behind it: the rules ship unless ML clears every rules-first test."""
    options, facts = procedure(inp)
    capture = float(facts["capture"][0])
    known = not np.isnan(capture)
    return str(options[0]), Conditions(
        ml_option=inp.ml_option,
        capture=capture if known else None,
        capture_interval=interval(capture, facts["capture"][1:]) if known else None,
        capture_reached=bool(facts["capture_reached"][0]),
        extra_net=float(facts["extra_net"][0]),
        difference_clear=bool(facts["difference_clear"][0]),
        confirmable=bool(facts["confirmable"][0]),
        ml_feasible=inp.feasible(inp.ml_option),
    )


def is_tie(inp: Inputs) -> bool:
    """Whether every option's policy costs the same in every resample (e.g. pure noise, where
    each policy ends up taking the same decision): nothing separates the options."""
    return bool(np.allclose(inp.base, inp.rules) and np.allclose(inp.rules, inp.ml))


def top_two(inp: Inputs) -> TopTwo | None:
    """The rules against the better feasible ML option (batch and real-time ML are one policy
    and differ only in upkeep), higher net value first, and the interval of their difference
    over the resamples; None when no ML option is feasible."""
    nets = inp.nets()
    ml = [o for o in OPTIONS[1:] if inp.feasible(o)]
    if not ml:
        return None
    best_ml = max(ml, key=lambda o: nets[o][0])
    a, b = sorted(("ship-rules", best_ml), key=lambda o: -nets[o][0])
    gap = nets[a] - nets[b]
    return TopTwo((a, b), interval(float(gap[0]), gap[1:]))


def best_shares(inp: Inputs) -> dict[str, float] | None:
    """Per feasible option, the share of resamples in which its net value is the highest (ties
    go to the option listed first, the rules); None without resamples or for a tie."""
    if is_tie(inp) or inp.base.size < 2:
        return None
    nets = inp.nets()
    feasible = [o for o in OPTIONS if inp.feasible(o)]
    best = np.argmax(np.column_stack([nets[o][1:] for o in feasible]), axis=1)
    counts = np.bincount(best, minlength=len(feasible)) / best.size
    return {o: float(c) for o, c in zip(feasible, counts, strict=True)}


def settle_ties(
    option: str, shares: Mapping[str, float] | None, pair: TopTwo | None = None
) -> tuple[str, float | None, bool]:
    """The option after the tie rule, its p_best, and whether the options are tied: when no
    option has the highest net value in TIE_BELOW of the resamples, or the 95 % interval of
    the top two's net difference (`pair`, from `top_two`) includes zero, they are within noise
    of each other, and rules first means the rules."""
    if shares is None:
        return option, None, True
    tied = max(shares.values()) < TIE_BELOW or (pair is not None and pair.overlaps)
    if tied:
        option = "ship-rules"
    return option, shares.get(option, 0.0), tied


def latency_decides(inp: Inputs) -> bool:
    """Whether the real-time model's p99 is within noise of its budget and the answer turns on
    it: the procedure gives another option at the low end of the p99's interval than at the
    high end."""
    if not inp.latency_within_noise:
        return False
    low, high = inp.ml_p99_bounds
    return choose(replace(inp, ml_p99_ms=low))[0] != choose(replace(inp, ml_p99_ms=high))[0]


def procedure_shares(inp: Inputs) -> dict[str, float] | None:
    """Per option, the share of resamples in which the whole procedure, rerun on the
    resample's own figures (`procedure`: capture, difference, A/B days), gives it; None
    without resamples or for a tie."""
    if is_tie(inp) or inp.base.size < 2:
        return None
    options = procedure(inp)[0][1:]
    return {o: float(np.mean(options == o)) for o in OPTIONS if np.any(options == o)}


def capture_decides(inp: Inputs, facts: Conditions) -> bool:
    """Whether the 95 % interval of the rules' capture of ML's value contains the capture
    target and the answer turns on it: without the capture test, ML would ship."""
    ci = facts.capture_interval
    if ci is None or not ci.known or not ci.low <= inp.capture_target <= ci.high:
        return False
    return choose(replace(inp, capture_target=np.inf))[0] != "ship-rules"


def settle_all(
    inp: Inputs, chosen: str, shares: Mapping[str, float] | None, pair: TopTwo | None
) -> tuple[str, float | None, bool, str | None]:
    """`settle_ties`, then the procedure's own agreement (`procedure_shares` below TIE_BELOW
    for `chosen`), the capture tie (`capture_decides`) and the latency tie
    (`latency_decides`): the option, its p_best, whether the options are tied, and why ("net
    value", "procedure", "capture", "latency"; None when not)."""
    option, p_best, tied = settle_ties(chosen, shares, pair)
    if tied:
        return option, p_best, tied, "net value"
    agreement = procedure_shares(inp)
    why = None
    if agreement is not None and agreement.get(chosen, 0.0) < TIE_BELOW:
        why = "procedure"
    elif capture_decides(inp, choose(inp)[1]):
        why = "capture"
    elif latency_decides(inp):
        why = "latency"
    if why is None:
        return option, p_best, False, None
    option = "ship-rules"
    return option, None if shares is None else shares.get(option, 0.0), True, why


def break_even(inp: Inputs) -> BreakEven:
    """The volume (decisions a day) nearest today's at which the answer flips, found by
    re-running the decision at other volumes and verified on both sides; or why none does."""
    now = choose(inp)[0]
    decide = lambda f: choose(inp.scaled("volume", float(f)))[0]  # noqa: E731
    factors = np.geomspace(*VOLUME_RANGE, 241)
    options = np.array([decide(f) for f in factors])
    flips = np.flatnonzero(options != now)
    if flips.size == 0:
        return BreakEven(None, None, reason=_no_flip(inp, now))
    i = int(flips[np.argmin(np.abs(np.log(factors[flips])))])
    inside, outside = (i + 1, i) if factors[i] < 1 else (i - 1, i)
    lo, hi = np.log(factors[inside]), np.log(factors[outside])
    for _ in range(40):  # bisect on the log of the factor
        mid = (lo + hi) / 2
        if decide(np.exp(mid)) == options[inside]:
            lo = mid
        else:
            hi = mid
    flipped = decide(np.exp(hi))
    return BreakEven(
        volume_per_day=float(np.exp(hi) * inp.decisions_per_day),
        flips_to=flipped,
        verified=bool(decide(np.exp(lo)) == options[inside] and flipped != options[inside]),
        reason=None,
    )


def _no_flip(inp: Inputs, option: str) -> str:
    _, facts = choose(inp)
    span = f"{VOLUME_RANGE[0] * inp.decisions_per_day:,.3g} to {VOLUME_RANGE[1] * inp.decisions_per_day:,.0f}"
    if option != "ship-rules":
        return f"ML stays ahead at every volume from {span} decisions a day."
    if not facts.ml_feasible:
        return "ML cannot serve this decision (latency or scores in advance), whatever the volume."
    if facts.capture is None:
        return "ML is not cheaper per decision than the best constant decision, at any volume."
    if facts.capture_reached:
        return (
            "The rules capture enough of ML's value per decision; volume scales both alike, "
            "so no volume changes the answer."
        )
    if not facts.difference_clear:
        return (
            "ML's advantage per decision cannot be told apart from zero; more decisions a day "
            "do not change that (more test data would)."
        )
    return f"No volume from {span} decisions a day changes the answer."


def break_even_volume(inp: Inputs) -> float | None:
    """The volume at which the answer flips (see `break_even`), or None."""
    return break_even(inp).volume_per_day


def sensitivity(inp: Inputs) -> list[Sensitivity]:
    """The option when volume, the cost scale or the upkeep is halved or doubled."""
    return [
        Sensitivity(factor, by, choose(inp.scaled(factor, by))[0])
        for factor in ("volume", "cost scale", "maintenance")
        for by in (0.5, 2.0)
    ]


@dataclass(frozen=True)
class Recommendation(Record):
    """The answer and the numbers behind it (result.json key `recommendation`)."""

    option: str
    headline: str
    reasons: tuple[str, ...]
    p_best: float | None
    p_best_by_option: Mapping[str, float] | None
    p_best_includes: str
    tied: bool
    tie_rule: str
    top_two: TopTwo | None
    procedure_option: str
    break_even: BreakEven
    rules_policy: str
    facts: Conditions = json_field(key="conditions")
    options: Mapping[str, OptionValue]
    sensitivity: tuple[Sensitivity, ...]
    settle: str | None
    currency: str
    stability: float | None = None  # share of refits whose own procedure gives `option`
    # per option, the share of resamples whose whole procedure gives it (before the tie rule)
    procedure_agreement: Mapping[str, float] | None = json_field(omit_none=True, default=None)


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
    ml_p99_ms, figure = latency.realtime_p99_ms(roles.treatment)
    bounds = latency.realtime_p99_interval(roles.treatment)
    return Inputs(
        base=evaluation.series(roles.baseline),
        rules=evaluation.series(roles.control),
        ml=evaluation.series(roles.treatment),
        decisions_per_day=decision.volume_per_day,
        upkeep=upkeep.annual_cost,
        timing=decision.timing,
        precomputable=decision.precomputable,
        budget_ms=decision.latency_budget_ms,
        ml_p99_ms=ml_p99_ms,
        rules_p99_ms=latency.p99_ms(roles.control),
        latency_figure=figure,
        ml_p99_bounds=None if bounds is None or not bounds.known else (bounds.low, bounds.high),
        enrol_days=experiment.days_enrolling,
        max_experiment_days=max_experiment_days,
        capture_target=capture_target,
        label_delay_days=decision.label_delay_days,
        sized_fraction=_sized_fraction(experiment),
    )


def _sized_fraction(experiment: ExperimentPlan) -> float:
    """The effect the A/B test is sized for as a share of the point estimate (1 without one)."""
    test = experiment.test
    if test is None or test.sized_on is None or not test.difference:
        return 1.0
    return float(test.sized_on.effect / test.difference)


def option_notes(inp: Inputs) -> dict[str, str | None]:
    """Why an option is not feasible, per option (None when it is)."""
    realtime = None
    if not inp.feasible("realtime-ml"):
        realtime = (
            "latency not measured"
            if inp.ml_p99_ms is None
            else "misses the latency budget, within noise of it"
            if inp.latency_within_noise
            else "misses the latency budget"
        )
    batch = (
        None
        if inp.feasible("batch-ml")
        else "scores cannot be computed in advance for this live decision"
    )
    return {"ship-rules": None, "batch-ml": batch, "realtime-ml": realtime}


def recommend(
    inp: Inputs,
    roles: Roles,
    experiment: ExperimentPlan,
    baseline_decision: str,
    currency: str,
    n_test: int,
) -> Recommendation:
    """Choose the option, and say why in numbers."""
    chosen, facts = choose(inp)
    shares = best_shares(inp)
    pair = top_two(inp)
    option, p_best, tied, tied_on = settle_all(inp, chosen, shares, pair)
    agreement = procedure_shares(inp)
    values, nets = inp.values(), inp.nets()
    notes = option_notes(inp)
    rules_name = roles.control
    return Recommendation(
        option=option,
        facts=facts,
        p_best=p_best,
        p_best_by_option=shares,
        p_best_includes=P_BEST_INCLUDES,
        tied=tied,
        tie_rule=TIE_RULE,
        procedure_agreement=agreement,
        top_two=pair,
        procedure_option=chosen,
        break_even=break_even(inp),
        rules_policy=rules_name,
        options={
            o: OptionValue(
                policy=rules_name if o == "ship-rules" else roles.treatment,
                annual_value=interval(float(values[o][0]), values[o][1:]),
                annual_upkeep=float(inp.upkeep[o]),
                net=interval(float(nets[o][0]), nets[o][1:]),
                feasible=inp.feasible(o),
                note=notes[o],
            )
            for o in OPTIONS
        },
        sensitivity=tuple(sensitivity(inp)),
        headline=headline(
            option,
            facts,
            inp,
            currency,
            rules_name=rules_name,
            base_decision=baseline_decision,
            shares=shares,
            tied=tied,
            pair=pair,
            tie_below=TIE_BELOW,
            tied_on=tied_on,
            agreement=agreement,
            chosen=chosen,
        ),
        reasons=tuple(reasons(inp, facts, rules_name, baseline_decision, experiment, currency)),
        settle=settle(tied, experiment, n_test),
        currency=currency,
    )
