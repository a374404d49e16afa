"""Shadow mode and the A/B test against independent references (statsmodels, scipy, hand counts)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from advisor.analysis.experiment import plan_experiment
from advisor.analysis.shadow import rule_hits, rules_on_disagreements, shadow_summary
from advisor.stats.bootstrap import Resampler
from advisor.stats.power import normal_sample_size, welch_sample_size
from advisor.stats.sample_ratio import sample_ratio_mismatch, srm_tolerance
from advisor.stats.simulation import arm_statistics, binomial_band, simulate_experiments, welch_test


def costs_from(values, probs, n, seed):
    return np.random.default_rng(seed).choice(values, size=n, p=probs).astype(float)


# ---- shadow mode ----------------------------------------------------------------------------


def test_disagreement_counts_on_a_hand_made_case():
    control = np.array([0, 0, 1, 1, 0, 1])
    treatment = np.array([0, 1, 1, 0, 1, 1])
    c_cost = np.array([0.0, 50.0, 5.0, 0.0, 7.0, 3.0])
    t_cost = np.array([0.0, 10.0, 5.0, 40.0, 7.0, 3.0])
    out = shadow_summary(control, treatment, c_cost, t_cost, ["no", "yes"], Resampler(200, 0))
    assert out.disagreements == 3  # rows 1, 3, 4
    assert out.disagreement_rate.estimate == pytest.approx(0.5)
    assert (out.treatment_right, out.control_right, out.ties) == (1, 1, 1)
    assert out.on_disagreements.control_cost_on_disagreements == pytest.approx((50 + 0 + 7) / 3)
    assert out.on_disagreements.treatment_cost_on_disagreements == pytest.approx((10 + 40 + 7) / 3)
    assert out.saving_per_decision.estimate == pytest.approx((40 - 40) / 6)
    pairs = {(p.control, p.treatment): p for p in out.pairs}
    assert pairs[("no", "yes")].rows == 2
    assert pairs[("no", "yes")].treatment_right == 1
    assert pairs[("yes", "no")].rows == 1
    assert pairs[("yes", "no")].control_right == 1
    low, high = out.disagreement_rate.low, out.disagreement_rate.high
    assert 0 <= low <= 0.5 <= high <= 1


def test_no_disagreement():
    codes = np.array([1, 0, 1])
    out = shadow_summary(codes, codes, np.ones(3), np.ones(3), ["a", "b"], Resampler(100, 0))
    assert out.disagreements == 0
    assert out.pairs == ()
    assert out.on_disagreements is None and "treatment_right_share" not in out.to_dict()


def test_rules_on_disagreements_ranks_the_rules_ml_overrules():
    hits = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    disagree = np.array([1, 1, 0, 0, 1, 1, 1, 1], dtype=bool)
    out = rules_on_disagreements(hits, ["r0", "r1", "default"], disagree)
    assert [e.text for e in out] == ["default", "r0", "r1"]
    assert out[0].disagreements == 3
    assert out[1].disagreement_rate == pytest.approx(2 / 3)
    assert sum(e.share_of_disagreements for e in out) == pytest.approx(1.0)


class _Rules:
    default = "no"

    class _Rule:
        def __init__(self, when, decision):
            self.when, self.decision = when, decision

    rules = (_Rule("x > 1", "yes"),)

    def match_index(self, clean):
        return np.where(clean["x"] > 1, 0, 1)


class _Spec:
    def clean(self, frame):
        return frame


class _RulePolicy:
    rules_ = _Rules()
    spec = _Spec()


def test_rule_hits_reads_a_rule_policy_and_skips_others():
    frame = pd.DataFrame({"x": [0.0, 2.0, 3.0]})
    index, labels = rule_hits(_RulePolicy(), frame)
    assert index.tolist() == [1, 0, 0]
    assert labels == ["x > 1 -> yes", "otherwise -> no"]
    assert rule_hits(object(), frame) is None


# ---- sample size ----------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.5, 0.3])
def test_sizes_are_welch_at_the_cautious_end_and_at_the_point_estimate(share):
    control = costs_from([0.0, 40.0, 600.0], [0.6, 0.25, 0.15], 3000, 1)
    treatment = costs_from([0.0, 40.0, 600.0], [0.5, 0.4, 0.1], 3000, 2)
    everyone = np.ones(len(control), dtype=bool)  # every unit triggers: the plain design
    resampler = Resampler(1000, 4)
    plan = plan_experiment(
        control,
        treatment,
        500,
        disagree=everyone,
        resampler=resampler,
        treatment_share=share,
        label_delay_days=30,
        simulations=200,
    )
    assert plan.design == "all-units"
    vc, vt = control.var(ddof=1), treatment.var(ddof=1)
    diff = control.mean() - treatment.mean()
    ratio = share / (1 - share)
    # The optimistic figure: the point estimate, Welch's variance.
    n1 = normal_sample_size(diff, vc, vt, 0.05, 0.8, share)
    assert plan.optimistic.n_per_arm == math.ceil(welch_sample_size(diff, vc, vt, 0.05, 0.8, share))
    assert n1 <= plan.optimistic.n_per_arm <= n1 * 1.001 + 5  # the t correction
    # The plan: the end of the effect's 95 % interval nearer zero.
    reps = resampler.means(control - treatment)[:, 0]
    cautious = np.percentile(reps, 2.5)
    assert 0 < cautious < diff
    assert plan.sized_on.effect == pytest.approx(cautious)
    assert plan.sized_on.basis == "lower end of the 95% interval"
    n_c = welch_sample_size(cautious, vc, vt, 0.05, 0.8, share)
    assert plan.n_per_arm == math.ceil(n_c)
    assert plan.n_treatment == math.ceil(n_c * ratio)
    enrol = math.ceil(max(plan.n_per_arm / (500 * (1 - share)), plan.n_treatment / (500 * share)))
    assert plan.days_enrolling == enrol
    assert plan.days_needed == enrol + 30
    assert plan.optimistic.days_enrolling < plan.days_enrolling


def test_no_difference_is_not_confirmable():
    costs = costs_from([0.0, 10.0], [0.5, 0.5], 1000, 3)
    plan = plan_experiment(costs, costs.copy(), 1000, simulations=200)
    assert plan.n_per_arm is None and plan.days_needed is None
    assert plan.confirmable_within_max_days is False
    assert "no experiment" in plan.reason


def test_tiny_difference_says_so_plainly():
    control = costs_from([0.0, 100.0], [0.5, 0.5], 4000, 4)
    treatment = control - 0.05
    plan = plan_experiment(control, treatment, 100, max_experiment_days=90, simulations=200)
    assert plan.confirmable_within_max_days is False
    assert plan.days_enrolling > 90
    assert "too small to confirm within 90 days" in plan.reason
    assert plan.simulated_at == "90 days"


# ---- Welch's test and the simulation --------------------------------------------------------


def test_welch_equals_scipy():
    rng = np.random.default_rng(5)
    for n1, n2 in [(12, 30), (200, 150), (1000, 1000)]:
        a = rng.gamma(2.0, 3.0, n1)
        b = rng.normal(6.5, 5.0, n2)
        t, df, p = welch_test(a.mean(), a.var(ddof=1), n1, b.mean(), b.var(ddof=1), n2)
        ref = stats.ttest_ind(a, b, equal_var=False)
        assert float(t) == pytest.approx(ref.statistic, rel=1e-10)
        assert float(p) == pytest.approx(ref.pvalue, rel=1e-8)
        assert float(df) == pytest.approx(ref.df, rel=1e-10)


def test_multinomial_statistics_are_those_of_resampled_units():
    costs = costs_from([0.0, 5.0, 80.0], [0.7, 0.2, 0.1], 500, 6)
    means, var, method = arm_statistics(costs, 7, 40000, np.random.default_rng(0))
    assert method == "multinomial"
    assert means.mean() == pytest.approx(costs.mean(), rel=0.02)
    assert means.var() == pytest.approx(costs.var() / 7, rel=0.05)
    assert var.mean() == pytest.approx(costs.var(), rel=0.05)  # s² is unbiased for σ²


def test_normal_statistics_for_continuous_costs():
    costs = np.random.default_rng(7).lognormal(3, 0.8, 2000)
    means, var, method = arm_statistics(costs, 400, 40000, np.random.default_rng(1))
    assert method == "normal"
    assert means.mean() == pytest.approx(costs.mean(), rel=0.01)
    assert means.std() == pytest.approx(costs.std() / math.sqrt(400), rel=0.03)
    assert var.mean() == pytest.approx(costs.var(), rel=0.02)
    # heavy tails: s² varies more than the chi-square with n - 1 degrees of freedom
    assert var.var() > 2 * costs.var() ** 2 / 399


def test_simulation_cost_does_not_depend_on_the_planned_size():
    costs = costs_from([0.0, 1.0], [0.5, 0.5], 100, 8)
    means, var, _ = arm_statistics(costs, 10**12, 50, np.random.default_rng(2))
    assert means.shape == var.shape == (50,)
    assert np.all(np.abs(means - costs.mean()) < 1e-4)


@pytest.mark.parametrize("kind", ["normal", "multinomial"])
def test_empirical_power_close_to_analytical(kind):
    rng = np.random.default_rng(9)
    if kind == "normal":
        control, treatment = rng.normal(100, 30, 4000), rng.normal(97, 30, 4000)
    else:  # two-valued costs at a planned size in the thousands: normal-ish means
        control = costs_from([0.0, 10.0], [0.70, 0.30], 4000, 10)
        treatment = costs_from([0.0, 10.0], [0.75, 0.25], 4000, 11)
    plan = plan_experiment(control, treatment, 1000, disagree=np.ones(4000, bool), seed=3)
    assert plan.check.simulation.method == kind
    assert plan.check.analytical_power == pytest.approx(0.8, abs=0.01)
    assert abs(plan.check.power - plan.check.analytical_power) <= 0.03


@pytest.mark.parametrize("kind", ["normal", "multinomial"])
def test_aa_false_positive_rate_is_alpha_over_many_seeds(kind):
    rng = np.random.default_rng(12)
    if kind == "normal":
        control, treatment = rng.gamma(2.0, 50.0, 3000), rng.gamma(2.0, 45.0, 3000)
    else:
        control = costs_from([0.0, 40.0, 600.0], [0.6, 0.25, 0.15], 3000, 13)
        treatment = costs_from([0.0, 40.0, 600.0], [0.55, 0.33, 0.12], 3000, 14)
    everyone = np.ones(3000, dtype=bool)
    plans = [
        plan_experiment(control, treatment, 300, disagree=everyone, simulations=1000, seed=s)
        for s in range(20)
    ]
    # 20,000 A/A experiments pooled: a 99.9 % binomial band around alpha, whatever the seeds.
    rate = np.mean([p.check.aa_false_positive_rate for p in plans])
    low, high = stats.binom.interval(0.999, 20_000, 0.05)
    assert low / 20_000 <= rate <= high / 20_000
    band_low, band_high = binomial_band(1000, 0.05)
    assert plans[0].check.aa_band.to_dict() == {"low": band_low, "high": band_high, "level": 0.95}


def test_triggered_design_sizes_on_the_disagreements_against_statsmodels():
    rng = np.random.default_rng(21)
    n = 20_000
    disagree = rng.random(n) < 0.1
    shared = costs_from([0.0, 40.0, 600.0], [0.6, 0.3, 0.1], n, 22)
    control = np.where(disagree, costs_from([0.0, 600.0], [0.7, 0.3], n, 23), shared)
    treatment = np.where(disagree, costs_from([0.0, 600.0], [0.8, 0.2], n, 24), shared)
    plan = plan_experiment(
        control, treatment, 2000, disagree=disagree, resampler=Resampler(500, 1), seed=2
    )
    power = TTestIndPower()

    def needed(c, t):  # equal shares: Welch's variance is the pooled one
        sd = math.sqrt((c.var(ddof=1) + t.var(ddof=1)) / 2)
        return power.solve_power(effect_size=(c.mean() - t.mean()) / sd, alpha=0.05, power=0.8)

    rate = disagree.mean()
    analysed = math.ceil(needed(control[disagree], treatment[disagree]))
    assert plan.triggered.trigger_rate == pytest.approx(rate)
    assert plan.triggered.n_analysed_per_arm == analysed
    assert plan.triggered.n_per_arm == math.ceil(analysed / rate)
    assert plan.all_units.n_per_arm == math.ceil(needed(control, treatment))
    assert plan.design == "triggered" and "disagree" in plan.design_reason
    assert plan.triggered.n_per_arm < plan.all_units.n_per_arm
    assert plan.optimistic.n_per_arm == plan.triggered.n_per_arm
    assert plan.optimistic.days_needed == plan.triggered.days_needed
    assert plan.n_per_arm > plan.triggered.n_per_arm  # sized on the cautious end
    low, high = plan.n_per_arm_range.low, plan.n_per_arm_range.high
    assert low < plan.optimistic.n_per_arm < high
    # The Monte Carlo draws the triggered units of each arm at the planned size.
    assert plan.check.simulation.n_control == plan.n_analysed_per_arm
    assert abs(plan.check.power - plan.check.analytical_power) <= 0.03
    assert abs(plan.check.analytical_power - 0.8) <= 0.01


def test_sample_size_range_is_the_size_at_each_end_of_the_effect_interval():
    control = costs_from([0.0, 10.0], [0.70, 0.30], 4000, 30)
    treatment = costs_from([0.0, 10.0], [0.74, 0.26], 4000, 31)
    everyone = np.ones(4000, dtype=bool)
    resampler = Resampler(1000, 5)
    plan = plan_experiment(
        control, treatment, 1000, disagree=everyone, resampler=resampler, simulations=200
    )
    reps = resampler.means(control - treatment)[:, 0]
    lo_effect, hi_effect = np.percentile(reps, [2.5, 97.5])
    sd = plan.pooled_sd
    power = TTestIndPower()
    at = lambda effect: math.ceil(  # noqa: E731
        power.solve_power(effect_size=effect / sd, alpha=0.05, power=0.8)
    )
    assert plan.n_per_arm_range.low == at(hi_effect)
    assert plan.n_per_arm_range.high == (at(lo_effect) if lo_effect > 0 else None)


def test_simulated_p_values_follow_welch_on_each_draw():
    control = costs_from([0.0, 3.0, 9.0], [0.5, 0.3, 0.2], 1000, 15)
    sim = simulate_experiments(control, control + 0.5, 300, 300, simulations=100, seed=5)
    assert sim["p_values"].shape == (100,)
    assert sum(sim["observed_difference"]["histogram"]["counts"]) == 100
    assert sim["observed_difference"]["mean"] == pytest.approx(-0.5, abs=0.15)


# ---- sample-ratio mismatch and the rollout --------------------------------------------------


def test_srm_matches_scipy_and_flags_a_broken_split():
    ok = sample_ratio_mismatch(5000, 5030)
    bad = sample_ratio_mismatch(5000, 5400)
    ref = stats.chisquare([5000, 5400], f_exp=[5200, 5200])
    assert bad["p_value"] == pytest.approx(ref.pvalue)
    assert bad["mismatch"] and not ok["mismatch"]
    uneven = sample_ratio_mismatch(7000, 3000, treatment_share=0.3)
    assert not uneven["mismatch"]


def test_srm_tolerance_is_the_flagging_boundary():
    total, share = 20000, 0.5
    tol = srm_tolerance(total, share)
    inside = int(total * share + tol - 1)
    outside = int(total * share + tol + 1)
    assert not sample_ratio_mismatch(total - inside, inside, share)["mismatch"]
    assert sample_ratio_mismatch(total - outside, outside, share)["mismatch"]


def test_rollout_plan_steps():
    from advisor.analysis.rollout import rollout_plan

    control = costs_from([0.0, 40.0, 600.0], [0.6, 0.25, 0.15], 3000, 16)
    treatment = costs_from([0.0, 40.0, 600.0], [0.5, 0.4, 0.1], 3000, 17)
    plan = plan_experiment(control, treatment, 800, label_delay_days=14, simulations=200)
    ro = rollout_plan(800, plan, 0.2, {"no": 0.6, "yes": 0.4}, 50)
    names = [s.step for s in ro.steps]
    assert names == ["shadow", "canary 5%", "canary 25%", "A/B test 50%"]
    assert all(s.days >= 1 for s in ro.steps)
    assert ro.total_days == sum(s.days for s in ro.steps) + 14
    assert ro.advisable is True
    band = ro.steps[1].guardrail_bands["yes"]
    assert band.low < 0.4 < band.high
    assert "guardrail" in ro.rollback_conditions[0]
