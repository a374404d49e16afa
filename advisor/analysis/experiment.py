"""The A/B test: two ways to size it, the Monte Carlo check of the chosen one, and the A/A check.

The test compares the per-unit realised cost of the control (the rule list that stands for
ship-rules) and the treatment (ML). Two designs are sized from the rows the plan reads
(`experiment.rows`): the pooled out-of-fold decisions when the run refitted, else the test
split (`advisor.analysis.arms`):

- all units: every enrolled unit is analysed (the plain design);
- triggered: only units where the two policies decide differently are analysed. Elsewhere
  both arms take the same decision, so their costs cannot differ and only add noise. Both
  decisions are computed for every unit (the service can run the other policy in shadow), so
  triggered units are known in both arms. Traffic needed = triggered units needed / trigger
  rate.

The design that needs less traffic is chosen. The simulation then runs many experiments of
that design's size, drawing units from those rows' costs of each arm and judging each with
Welch's t-test; the A/A check runs the same with both arms drawn from the control, so its
false-positive rate must sit near alpha (`advisor.analysis.design_check`, with the
sample-ratio check's bounds). The test is sized on the cautious end of the effect's 95 %
interval (the point estimate's size is shown as the optimistic figure); the Monte Carlo
sizes it where Welch's power and the simulation disagree, and the always-valid readout's
size and the regression adjustment's saving are in `advisor.analysis.sizing`. The rollout
plan around the test is in `advisor.analysis.rollout`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, replace
from typing import Any

import numpy as np

from advisor.analysis.arms import TEST_SPLIT, Arms
from advisor.analysis.design_check import DaysPower, DesignCheck, simulate_design
from advisor.analysis.evaluate import Evaluation
from advisor.analysis.roles import Roles
from advisor.analysis.rollout import Rollout, rollout_plan
from advisor.analysis.shadow import Shadow
from advisor.analysis.sizing import (
    AGREEMENT,
    SequentialPlan,
    Sizes,
    VarianceReduction,
    monte_carlo_size,
    plan_sequential,
    plan_variance_reduction,
    simulated_power,
    sizes,
)
from advisor.core.case import DecisionContext
from advisor.core.record import Record, json_field
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import Interval
from advisor.stats.power import effect_size, power_curve, welch_power, welch_sample_size
from advisor.stats.simulation import SIMULATIONS

DESIGNS = ("all-units", "triggered")


@dataclass(frozen=True, kw_only=True)
class DesignSize(Sizes):
    """One design sized: the effect on the units it analyses, and its `Sizes` (the units to
    analyse and to enrol per arm, and the days; None when no size would do)."""

    trigger_rate: float
    effect_size: float
    difference: float
    pooled_sd: float
    control_mean: float
    treatment_mean: float
    control_var: float
    treatment_var: float

    def summary(self) -> DesignSummary:
        return DesignSummary(
            self.trigger_rate,
            self.effect_size,
            self.difference,
            self.n_analysed_per_arm,
            self.n_per_arm,
            self.days_enrolling,
            self.days_needed,
        )


@dataclass(frozen=True)
class DesignSummary(Record):
    """A design as result.json shows it beside the other (keys `all_units`, `triggered`)."""

    trigger_rate: float
    effect_size: float
    difference: float
    n_analysed_per_arm: int | None
    n_per_arm: int | None
    days_enrolling: float | None
    days_needed: float | None


def size_design(
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    alpha: float,
    power: float,
    share: float,
    volume_per_day: float,
    label_delay_days: float,
    trigger_rate: float = 1.0,
) -> DesignSize:
    """Units to analyse and to enrol per arm, and days of traffic, for one design, at the
    point estimate of the effect with Welch's variance.

    `control` and `treatment` are the per-unit costs of the units the design analyses;
    `trigger_rate` is the share of enrolled units it analyses (1 for all units).
    """
    eff = effect_size(control, treatment)
    nobs1 = welch_sample_size(
        eff["difference"], eff["control_var"], eff["treatment_var"], alpha, power, share
    )
    planned = sizes(
        nobs1,
        share=share,
        volume_per_day=volume_per_day,
        label_delay_days=label_delay_days,
        trigger_rate=trigger_rate,
    )
    return DesignSize(
        **vars(planned),
        trigger_rate=trigger_rate,
        effect_size=eff["d"],
        difference=eff["difference"],
        pooled_sd=eff["pooled_sd"],
        control_mean=eff["control_mean"],
        treatment_mean=eff["treatment_mean"],
        control_var=eff["control_var"],
        treatment_var=eff["treatment_var"],
    )


def _traffic(design: DesignSize) -> float:
    return math.inf if design.days_enrolling is None else design.days_enrolling


def choose_design(
    all_units: DesignSize, triggered: DesignSize | None, rows: str = TEST_SPLIT
) -> tuple[str, str]:
    """The design that needs less traffic, and why (`rows`: what the plan read)."""
    if triggered is None:
        return (
            "all-units",
            f"the two policies never disagree on the {rows} rows, so no unit triggers",
        )
    a, t = _traffic(all_units), _traffic(triggered)
    if t < a:
        ratio = "no finite number of" if math.isinf(a) else f"{a / t:,.1f} times fewer"
        return "triggered", (
            f"analysing only the {triggered.trigger_rate:.1%} of units where the policies "
            f"disagree needs {ratio} days of traffic than analysing every unit: elsewhere both "
            "arms decide alike and add only noise"
        )
    return "all-units", "analysing every unit needs no more traffic than analysing triggered units"


@dataclass(frozen=True)
class SizeRange(Record):
    """Units to enrol per arm at the two ends of the effect's 95 % interval (`low` for the
    larger effect; `high` None when the interval reaches zero or the other sign)."""

    effect_interval: Interval
    low: int | None
    high: int | None


def sample_size_range(
    design: DesignSize,
    effect_replicates: np.ndarray,
    *,
    alpha: float,
    power: float,
    share: float,
) -> SizeRange:
    """Units to enrol per arm at the two ends of the effect's 95 % interval (Welch).

    A larger effect needs fewer units (`low`); at the smaller end `high` is None when the
    interval reaches zero or the other sign (no size would then be enough).
    """
    ci = interval(design.difference, effect_replicates)
    rate = design.trigger_rate
    if ci.low is None:
        return SizeRange(ci, None, None)
    sign = 1.0 if design.difference >= 0 else -1.0
    ends = sorted((sign * ci.low, sign * ci.high))
    out = []
    for effect in (ends[1], ends[0]):
        n = (
            welch_sample_size(effect, design.control_var, design.treatment_var, alpha, power, share)
            if effect > 0
            else None
        )
        out.append(None if n is None else math.ceil(math.ceil(n) / rate))
    return SizeRange(ci, *out)


@dataclass(frozen=True)
class SizedOn(Record):
    """The effect the test is sized for (result.json key `experiment.sized_on`): the end of
    the effect's 95 % interval nearer zero when the interval lies on one side of zero, else
    the point estimate (then optimistic: no cautious size exists)."""

    effect: float
    basis: str
    point_estimate: float
    interval: Interval

    @property
    def cautious(self) -> bool:
        return self.basis.startswith("lower")


def conservative_effect(design: DesignSize, effect_replicates: np.ndarray) -> SizedOn:
    """The effect to size the test for: the cautious end of the effect's bootstrap interval."""
    ci = interval(design.difference, effect_replicates)
    point = design.difference
    sign = 1.0 if point >= 0 else -1.0
    if ci.low is not None and sign * ci.low > 0 and sign * ci.high > 0:
        near = min(sign * ci.low, sign * ci.high)
        return SizedOn(sign * near, "lower end of the 95% interval", point, ci)
    return SizedOn(point, "point estimate (the effect's 95% interval reaches zero)", point, ci)


@dataclass(frozen=True)
class Optimistic(Record):
    """The test's size and days at the point estimate of the effect (the optimistic figure)."""

    n_per_arm: int | None
    days_enrolling: float | None
    days_needed: float | None


NO_DIFFERENCE = (
    "The two policies' mean costs do not differ on the {rows} rows, so no experiment of "
    "any length could confirm a difference."
)


@dataclass(frozen=True)
class ABTest(Record):
    """The planned A/B test: the effect, both designs and the chosen one, its size and days,
    and its simulated check (the body of result.json key `experiment`). The variances, the
    effect it is sized on, the optimistic size, the sizing method and the sequential readout's
    size are None in a plan written before they were planned."""

    effect_size: float
    difference: float
    pooled_sd: float
    control_mean: float
    treatment_mean: float
    _: KW_ONLY
    control_var: float | None = None
    treatment_var: float | None = None
    direction: str
    design: str
    design_reason: str
    all_units: DesignSummary
    triggered: DesignSummary | None
    n_per_arm_range: SizeRange
    sized_on: SizedOn | None = None
    optimistic: Optimistic | None = None
    alpha: float
    target_power: float
    treatment_share: float
    volume_per_day: float
    label_delay_days: float
    max_experiment_days: float
    sized_by: str | None = None
    sizing_note: str | None = json_field(omit_none=True)
    n_per_arm: int | None
    n_treatment: int | None
    n_analysed_per_arm: int | None
    n_total: int | None
    days_enrolling: float | None
    days_needed: float | None
    confirmable_within_max_days: bool
    reason: str | None = json_field(omit_none=True)
    check: DesignCheck = json_field(flatten=True)
    simulated_at: str
    sequential: SequentialPlan | None = None
    variance_reduction: VarianceReduction | None = None
    power_curve: tuple[DaysPower, ...]
    rollout: Rollout | None = json_field(omit_none=True, default=None)
    control: str | None = json_field(omit_none=True, default=None)
    treatment: str | None = json_field(omit_none=True, default=None)
    summary: str | None = json_field(omit_none=True, default=None)
    rows: str = TEST_SPLIT


def plan_experiment(
    control: np.ndarray,
    treatment: np.ndarray,
    volume_per_day: float,
    *,
    disagree: np.ndarray | None = None,
    expected: tuple[np.ndarray, np.ndarray] | None = None,
    resampler: Resampler | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
    label_delay_days: float = 0.0,
    max_experiment_days: float = 90,
    simulations: int = SIMULATIONS,
    seed: int = 0,
    rows: str = TEST_SPLIT,
) -> ABTest:
    """Size both designs, choose one, size it on a conservative effect, and simulate it.

    `control` and `treatment` are per-unit costs on the same rows; `disagree` marks the
    rows where the two decide differently (default: where their costs differ); `expected`
    holds the model's expected cost of each arm's decision per row (the covariate of the
    regression-adjusted readout). The test is sized on the lower end of the effect's 95 %
    interval (`sized_on`); the point estimate's size is `optimistic`. `days_needed` is days
    of enrolment plus the label delay. The difference is confirmable when enrolment at the
    conservative size fits in `max_experiment_days`; otherwise `days_needed` is still given
    when finite, and null with a reason when no size would do (no difference at all).
    `rows` names the rows the costs come from (result.json `experiment.rows`).
    """
    control = np.asarray(control, dtype=float)
    treatment = np.asarray(treatment, dtype=float)
    if disagree is None:
        disagree = control != treatment
    disagree = np.asarray(disagree, dtype=bool)
    resampler = resampler or Resampler(1000, seed)
    share = treatment_share
    timing = dict(share=share, volume_per_day=volume_per_day, label_delay_days=label_delay_days)
    all_units = size_design(control, treatment, alpha=alpha, power=power, **timing)
    rate = float(disagree.mean())
    triggered = None
    if disagree.sum() >= 2:
        triggered = size_design(
            control[disagree],
            treatment[disagree],
            trigger_rate=rate,
            alpha=alpha,
            power=power,
            **timing,
        )
    design, why = choose_design(all_units, triggered, rows)
    chosen = triggered if design == "triggered" else all_units
    analysed_rate = rate if design == "triggered" else 1.0
    timing["trigger_rate"] = analysed_rate
    reps = resampler.means(np.column_stack([control - treatment, disagree]))
    with np.errstate(divide="ignore", invalid="ignore"):
        effect_reps = reps[:, 0] if design == "all-units" else reps[:, 0] / reps[:, 1]
    sized_on = conservative_effect(chosen, effect_reps)
    var_c, var_t = chosen.control_var, chosen.treatment_var
    effect = sized_on.effect
    nobs1 = welch_sample_size(effect, var_c, var_t, alpha, power, share)
    planned = sizes(nobs1, **timing)
    analysed_c = control[disagree] if design == "triggered" else control
    analysed_t = treatment[disagree] if design == "triggered" else treatment
    # The Monte Carlo draws the treatment at the effect the test is sized for.
    sized_t = analysed_t + (chosen.difference - effect)
    sizing = {"effect": effect, "control_var": var_c, "treatment_var": var_t}
    sized_by, sizing_note = "welch", None
    if planned.n_per_arm is not None:
        n_a = planned.n_analysed_per_arm
        check = simulated_power(analysed_c, sized_t, n_a, alpha, share, seed)
        welch = welch_power(effect, var_c, var_t, n_a, alpha, share)
        if abs(check - welch) > AGREEMENT:
            n_mc = monte_carlo_size(analysed_c, sized_t, nobs1, power, alpha, share, seed)
            sized_by = "monte carlo"
            sizing_note = (
                f"Welch's power at its size ({welch:.0%}) and the Monte Carlo's ({check:.0%}) "
                f"differ by more than {AGREEMENT:.0%} (few analysed units or heavy tails), so "
                "the Monte Carlo sizes the test."
            )
            planned = sizes(n_mc, **timing)
    d = chosen.effect_size
    enrol = planned.days_enrolling
    confirmable = enrol is not None and enrol <= max_experiment_days
    reason = None
    if enrol is None:
        reason = NO_DIFFERENCE.format(rows=rows)
    elif not confirmable:
        reason = (
            f"The difference is too small to confirm within {max_experiment_days:g} days: the "
            f"test would need {enrol:,.0f} days of traffic at {volume_per_day:,.0f} decisions a day."
        )
    # Simulate at the planned size; when that is out of reach, at what max_experiment_days buys.
    if confirmable:
        n_sim = (planned.n_analysed_per_arm, planned.n_analysed_treatment)
        total = planned.n_total
    else:
        days = float(max_experiment_days)
        n_sim = (
            max(2, int(volume_per_day * (1 - share) * days * analysed_rate)),
            max(2, int(volume_per_day * share * days * analysed_rate)),
        )
        total = int(volume_per_day * days)
    check = simulate_design(
        analysed_c,
        sized_t,
        sizing,
        n_sim,
        total,
        alpha=alpha,
        share=share,
        simulations=simulations,
        seed=seed,
    )
    curve = power_curve(
        sizing,
        alpha,
        share,
        volume_per_day * analysed_rate,
        label_delay_days,
        max(2 * (enrol or 0), max_experiment_days),
    )
    return ABTest(
        effect_size=d,
        difference=chosen.difference,
        pooled_sd=chosen.pooled_sd,
        control_mean=chosen.control_mean,
        treatment_mean=chosen.treatment_mean,
        control_var=var_c,
        treatment_var=var_t,
        direction="treatment cheaper" if d > 0 else "control cheaper" if d < 0 else "equal",
        design=design,
        design_reason=why,
        all_units=all_units.summary(),
        triggered=triggered.summary() if triggered is not None else None,
        n_per_arm_range=sample_size_range(
            chosen, effect_reps, alpha=alpha, power=power, share=share
        ),
        sized_on=sized_on,
        optimistic=Optimistic(chosen.n_per_arm, chosen.days_enrolling, chosen.days_needed),
        alpha=alpha,
        target_power=power,
        treatment_share=share,
        volume_per_day=volume_per_day,
        label_delay_days=label_delay_days,
        max_experiment_days=max_experiment_days,
        sized_by=sized_by,
        sizing_note=sizing_note,
        n_per_arm=planned.n_per_arm,
        n_treatment=planned.n_treatment,
        n_analysed_per_arm=planned.n_analysed_per_arm,
        n_total=None if enrol is None else planned.n_total,
        days_enrolling=enrol,
        days_needed=planned.days_needed,
        confirmable_within_max_days=confirmable,
        reason=reason,
        check=check,
        simulated_at="planned size" if confirmable else f"{max_experiment_days:g} days",
        sequential=plan_sequential(
            analysed_c, sized_t, sizing, alpha=alpha, power=power, timing=timing, seed=seed
        ),
        variance_reduction=plan_variance_reduction(
            analysed_c,
            analysed_t,
            expected,
            disagree if design == "triggered" else None,
            planned,
            timing=timing,
        ),
        power_curve=tuple(DaysPower(**p) for p in curve),
        rows=rows,
    )


def summary_sentence(plan: ABTest, currency: str) -> str:
    """The plan in one plain sentence."""
    if plan.n_per_arm is None:
        return plan.reason
    who = "ML" if plan.direction == "treatment cheaper" else "the control"
    days = plan.days_enrolling
    if plan.design == "triggered":
        analysed = (
            f", analysing the {plan.triggered.trigger_rate:.1%} where the policies "
            f"disagree ({plan.n_analysed_per_arm:,} per arm)"
        )
        per = "decision where they disagree"
    else:
        analysed, per = "", "decision"
    sized = plan.sized_on
    basis = (
        f"sized on the cautious end of the saving's 95% interval "
        f"({abs(sized.effect):,.2f} {currency} per {per}; the point estimate "
        f"{abs(plan.difference):,.2f} would need {plan.optimistic.n_per_arm:,})"
        if sized.cautious
        else f"sized on the point estimate, {abs(plan.difference):,.2f} {currency} per {per}, "
        "because the saving's 95% interval reaches zero (optimistic)"
    )
    text = (
        f"At {plan.volume_per_day:,.0f} decisions a day, a {plan.treatment_share:.0%} test "
        f"needs {plan.n_per_arm:,} units per arm{analysed}: {days:,.0f} "
        f"day{'s' if days != 1 else ''} of traffic plus {plan.label_delay_days:g} days for the "
        f"outcomes, {plan.days_needed:,.0f} days in all, to confirm that {who} saves money, "
        f"read once at the end ({basis})."
    )
    seq = plan.sequential
    if seq.n_per_arm is not None:
        text += (
            f" Read every day with the always-valid interval, it needs {seq.n_per_arm:,} units "
            f"per arm, {seq.days_enrolling:,.0f} days of traffic ({seq.days_needed:,.0f} "
            "in all), and may stop as soon as the interval excludes zero."
        )
    if not plan.confirmable_within_max_days:
        text += " " + plan.reason
    return text


@dataclass(frozen=True)
class ExperimentPlan(Record):
    """The A/B test of the ML treatment against the control (result.json key `experiment`):
    `test` when there is one to plan, else the `reason` there is none."""

    available: bool
    test: ABTest | None = json_field(flatten=True, default=None)
    reason: str | None = json_field(omit_none=True, default=None)

    @property
    def n_per_arm(self) -> int | None:
        return self.test.n_per_arm if self.test else None

    @property
    def days_enrolling(self) -> float | None:
        return self.test.days_enrolling if self.test else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None) -> ExperimentPlan:
        if not data.get("available"):
            return cls(False, reason=data.get("reason"))
        return cls(True, ABTest.from_dict(data, where=where or "experiment"))


def plan_ab_test(
    evaluation: Evaluation,
    roles: Roles,
    shadow: Shadow,
    decision: DecisionContext,
    *,
    alpha: float,
    power: float,
    treatment_share: float,
    max_experiment_days: float,
    currency: str,
    seed: int,
    model_expected: np.ndarray | None = None,
    out_of_fold: Arms | None = None,
) -> ExperimentPlan:
    """Size, time and simulate the A/B test, and put the rollout around it on a calendar.

    `model_expected` is the model's expected cost of each decision per test row (rows ×
    decisions): the covariate of the regression-adjusted readout. `out_of_fold`, when the run
    refitted, holds the pooled out-of-fold arms the plan then reads instead of the test split."""
    scored = evaluation.arms(roles)
    if scored is None:
        return ExperimentPlan(False, reason="no ML policy or control policy")
    arms = out_of_fold or _test_split_arms(evaluation, scored, model_expected)
    plan = plan_experiment(
        arms.control,
        arms.treatment,
        decision.volume_per_day,
        disagree=arms.disagree,
        expected=arms.expected,
        resampler=arms.resampler,
        rows=arms.rows,
        alpha=alpha,
        power=power,
        treatment_share=treatment_share,
        label_delay_days=decision.label_delay_days,
        max_experiment_days=max_experiment_days,
        seed=seed,
    )
    plan = replace(
        plan,
        rollout=rollout_plan(
            decision.volume_per_day,
            plan,
            shadow.disagreement_rate,
            evaluation.policies[roles.treatment].decision_shares,
            decision.latency_budget_ms,
        ),
        control=roles.control,
        treatment=roles.treatment,
        summary=summary_sentence(plan, currency),
    )
    return ExperimentPlan(True, plan)


def _test_split_arms(
    evaluation: Evaluation, scored: tuple, model_expected: np.ndarray | None
) -> Arms:
    """The A/B plan's arms on the test split, as `evaluate` scored them."""
    c, t = scored
    return Arms(
        rows=TEST_SPLIT,
        control=c.costs,
        treatment=t.costs,
        disagree=c.decisions != t.decisions,
        expected=_arm_expectations(model_expected, c.decisions, t.decisions),
        resampler=evaluation.resampler,
    )


def _arm_expectations(
    expected: np.ndarray | None, control: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's expected cost of the control's and of the treatment's decision per row."""
    if expected is None:
        return None
    rows = np.arange(len(control))
    codes = [np.asarray(d, dtype=int) for d in (control, treatment)]
    if any(((c < 0) | (c >= expected.shape[1])).any() for c in codes):
        return None
    return expected[rows, codes[0]], expected[rows, codes[1]]
