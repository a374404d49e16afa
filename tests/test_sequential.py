"""Sizes that give the power they claim, the always-valid readout and the regression-adjusted
estimate, each against a closed form, statsmodels or a vectorised simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from advisor.analysis.experiment import plan_experiment
from advisor.stats.power import normal_sample_size, welch_power, welch_sample_size
from advisor.stats.sequential import (
    boundary,
    horizon_boundary,
    mixture_rho2,
    readout,
    sequential_sample_size,
)
from advisor.stats.simulation import simulate_looks
from advisor.stats.variance_reduction import adjusted_effect, adjusted_variance_factor

ALPHA = 0.05


def welch_rejections(n_c, n_t, mu_c, sd_c, mu_t, sd_t, tests, rng):
    """Two-sided Welch tests on normal samples, vectorised over `tests` (sufficient statistics)."""
    mc = rng.normal(mu_c, sd_c / math.sqrt(n_c), tests)
    mt = rng.normal(mu_t, sd_t / math.sqrt(n_t), tests)
    vc = sd_c**2 * rng.chisquare(n_c - 1, tests) / (n_c - 1)
    vt = sd_t**2 * rng.chisquare(n_t - 1, tests) / (n_t - 1)
    se = np.sqrt(vc / n_c + vt / n_t)
    df = se**4 / ((vc / n_c) ** 2 / (n_c - 1) + (vt / n_t) ** 2 / (n_t - 1))
    return 2 * stats.t.sf(np.abs((mc - mt) / se), df) < ALPHA


def one_sided_bound(tests: int, alpha: float = ALPHA) -> float:
    """The rate a procedure holding `alpha` stays below with probability 99 %."""
    return stats.binom.ppf(0.99, tests, alpha) / tests


# ---- Welch sizes ----------------------------------------------------------------------------


def test_the_closed_form_is_pinned():
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    assert normal_sample_size(3.0, 100.0, 1600.0, 0.05, 0.8, 0.2) == pytest.approx(
        z**2 * (100 + 1600 * 4) / 9
    )
    n = welch_sample_size(3.0, 100.0, 1600.0, 0.05, 0.8, 0.2)
    closed = normal_sample_size(3.0, 100.0, 1600.0, 0.05, 0.8, 0.2)
    assert closed <= n <= closed * 1.01 + 3  # the t-distribution's small correction
    assert welch_power(3.0, 100.0, 1600.0, n, 0.05, 0.2) == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize("d", [0.1, 0.3, 0.8])
def test_equal_variances_and_shares_give_statsmodels_size(d):
    ours = welch_sample_size(d, 1.0, 1.0, 0.05, 0.8, 0.5)
    assert ours == pytest.approx(TTestIndPower().solve_power(d, alpha=0.05, power=0.8), rel=1e-6)


def test_unequal_shares_and_variances_get_the_power_they_claim():
    # control N(100, 10), treatment N(97, 40), 20 % in treatment: 2,000 tests per size.
    rng = np.random.default_rng(1)
    n_c = math.ceil(welch_sample_size(3.0, 100.0, 1600.0, 0.05, 0.8, 0.2))
    n_t = math.ceil(n_c * 0.25)
    welch = welch_rejections(n_c, n_t, 100, 10, 97, 40, 4000, rng).mean()
    assert abs(welch - 0.8) <= 0.025
    pooled_sd = math.sqrt(0.8 * 100 + 0.2 * 1600)  # the old plan: one pooled SD
    n_pooled = math.ceil(
        TTestIndPower().solve_power(3 / pooled_sd, alpha=0.05, power=0.8, ratio=0.25)
    )
    pooled = welch_rejections(n_pooled, math.ceil(n_pooled / 4), 100, 10, 97, 40, 4000, rng)
    assert pooled.mean() < 0.7  # what the pooled SD promised as 80 %
    assert n_c > 1.4 * n_pooled


def test_the_plan_agrees_with_its_monte_carlo_on_the_unequal_variance_case():
    rng = np.random.default_rng(2)
    control, treatment = rng.normal(100, 10, 20000), rng.normal(97, 40, 20000)
    plan = plan_experiment(
        control, treatment, 5000, disagree=np.ones(20000, bool), treatment_share=0.2, seed=4
    ).to_dict()
    assert plan["sized_by"] == "welch"
    assert abs(plan["analytical_power"] - 0.8) <= 0.01
    assert abs(plan["power"] - plan["analytical_power"]) <= 0.03
    assert plan["optimistic"]["n_per_arm"] < plan["n_per_arm"]


def test_heavy_tails_are_sized_by_the_monte_carlo():
    # Rare large losses in both arms, on a few distinct costs (the simulation draws them
    # exactly): Welch's normal power at its own size understates the real power, so the Monte
    # Carlo must size the test, and a size it picks must really give the target power.
    rng = np.random.default_rng(3)
    n = 40000
    control = np.where(rng.random(n) < 0.01, 5000.0, 0.0) + rng.integers(0, 3, n)
    treatment = np.where(rng.random(n) < 0.001, 5000.0, 0.0) + rng.integers(0, 3, n)
    plan = plan_experiment(control, treatment, 20000, disagree=np.ones(n, bool), seed=1).to_dict()
    assert plan["sized_by"] == "monte carlo"
    assert "Monte Carlo sizes the test" in plan["sizing_note"]
    assert abs(plan["power"] - 0.8) <= 0.04
    assert plan["analytical_power"] < 0.8 - 0.03  # Welch's figure at that size is off
    # An independent check: Welch tests on units drawn directly at the planned size.
    size = plan["n_analysed_per_arm"]
    sims = 4000
    shift = plan["difference"] - plan["sized_on"]["effect"]  # the effect the test is sized on
    draw = np.random.default_rng(7)
    c = control[draw.integers(0, n, (sims, size))]
    t = treatment[draw.integers(0, n, (sims, size))] + shift
    _, p = stats.ttest_ind(c, t, axis=1, equal_var=False)
    assert abs((p < ALPHA).mean() - 0.8) <= 0.04


# ---- the confidence sequence ----------------------------------------------------------------


def test_boundary_is_the_normal_mixture_of_gbstats():
    # Waudby-Smith et al.: half-width = sqrt(s2) sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / a)
    # / (n rho)^2) with s2 = se^2 n; rho^2 = (-2 ln a + ln(-2 ln a + 1)) / M.
    a, m = 0.05, 5000.0
    rho2 = (-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / m
    assert mixture_rho2(a, m) == pytest.approx(rho2)
    for n in (10, 800, 5000, 40000):
        se = 2.0
        half = math.sqrt(se**2 * n) * math.sqrt(
            2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / a) / (n**2 * rho2)
        )
        assert se * boundary(n, m, a) == pytest.approx(half)
    assert horizon_boundary(0.05) == pytest.approx(float(boundary(m, m, a)))
    assert 3.0 < horizon_boundary(0.05) < 3.1  # wider than 1.96: the price of peeking


def test_readout_decides_only_when_the_interval_excludes_zero():
    assert readout(5.0, 1.0, 1000, 1000, 0.05)["decision"] == "better"
    assert readout(-5.0, 1.0, 1000, 1000, 0.05)["decision"] == "worse"
    out = readout(2.5, 1.0, 1000, 1000, 0.05)  # significant once, not always-valid
    assert out["decision"] == "not yet"
    assert out["effect"]["low"] < 0 < out["effect"]["high"]


def triggered_null(seed: int, n: int = 20000):
    """Two policies that differ where they trigger, at equal expected cost there."""
    rng = np.random.default_rng(seed)
    control = rng.choice([0.0, 100.0], p=[0.7, 0.3], size=n)
    treatment = rng.choice([0.0, 60.0], p=[0.5, 0.5], size=n)
    return control, treatment - treatment.mean() + control.mean()


def test_reading_every_day_holds_alpha_under_a_triggered_null():
    # 200 tests x 30 daily looks per seed, 10 seeds pooled: the share that EVER declares.
    ever = []
    for seed in range(10):
        control, treatment = triggered_null(seed)
        looks = np.arange(1, 31) * 60.0  # 60 triggered control units a day
        sim = simulate_looks(
            control,
            treatment,
            looks,
            share=0.5,
            tuning=3600,
            alpha=ALPHA,
            simulations=200,
            seed=100 + seed,
        )
        assert sim["looks"] == 30
        ever.append(sim["ever_rate"])
    assert np.mean(ever) <= one_sided_bound(2000)


def test_the_sequential_plan_reaches_its_power_with_daily_looks():
    rng = np.random.default_rng(5)
    control = rng.choice([0.0, 100.0], p=[0.7, 0.3], size=20000)
    treatment = rng.choice([0.0, 100.0], p=[0.76, 0.24], size=20000)
    plan = plan_experiment(control, treatment, 400, disagree=np.ones(20000, bool), seed=2).to_dict()
    seq = plan["sequential"]
    assert seq["n_per_arm"] > plan["n_per_arm"]  # always-valid costs units
    assert abs(seq["power"] - 0.8) <= 0.03
    # 1,000 fresh tests (5 seeds x 200) at the plan's size, with the effect it was sized for.
    shifted = treatment + (plan["difference"] - plan["sized_on"]["effect"])
    per_day = 400 * 0.5
    days = math.ceil(seq["n_analysed_per_arm"] / per_day)
    looks = np.minimum(np.arange(1, days + 1) * per_day, seq["n_analysed_per_arm"])
    looks[-1] = seq["n_analysed_per_arm"]
    better = [
        simulate_looks(
            control,
            shifted,
            looks,
            share=0.5,
            tuning=seq["tuning"],
            alpha=ALPHA,
            simulations=200,
            seed=50 + s,
        )["better_rate"]
        for s in range(5)
    ]
    assert abs(np.mean(better) - plan["target_power"]) <= 0.05
    assert seq["days_needed"] == seq["days_enrolling"] + plan["label_delay_days"]


def test_sequential_size_is_the_closed_form_at_the_horizon_boundary():
    z = horizon_boundary(0.05) + stats.norm.ppf(0.8)
    assert sequential_sample_size(2.0, 50.0, 80.0, 0.05, 0.8, 0.5) == pytest.approx(
        z**2 * (50 + 80) / 4
    )


# ---- regression adjustment ------------------------------------------------------------------


def potential_outcomes(n: int, seed: int):
    """Both arms' costs on the same units, and the model's expected cost of each arm's decision."""
    rng = np.random.default_rng(seed)
    risk = rng.beta(2, 5, n)
    x_c, x_t = 100 * risk, 80 * risk + 5
    y_c = np.where(rng.random(n) < risk, 100.0, 0.0)
    y_t = np.where(rng.random(n) < risk * 0.8, 100.0, 0.0) + 5
    return y_c, y_t, np.column_stack([x_c, x_t])


def test_adjusted_variance_matches_a_simulation():
    y_c, y_t, x = potential_outcomes(50000, 0)
    predicted = adjusted_variance_factor(y_c, y_t, x, 0.5)
    assert 0 < predicted["factor"] < 1
    rng = np.random.default_rng(1)
    plain, adjusted, ses = [], [], []
    for _ in range(1500):
        rows = rng.integers(0, len(y_c), 800)
        treated = rng.random(800) < 0.5
        cost = np.where(treated, y_t[rows], y_c[rows])
        plain.append(cost[~treated].mean() - cost[treated].mean())
        est, se = adjusted_effect(cost, x[rows], treated)
        adjusted.append(est)
        ses.append(se)
    truth = y_c.mean() - y_t.mean()
    ratio = np.var(adjusted) / np.var(plain)
    assert ratio == pytest.approx(predicted["factor"], rel=0.12)
    assert abs(np.mean(adjusted) - truth) < 3 * np.std(adjusted) / math.sqrt(1500)
    assert np.mean(ses) == pytest.approx(np.std(adjusted), rel=0.08)


def test_the_plan_prices_the_days_the_adjustment_saves():
    y_c, y_t, x = potential_outcomes(8000, 3)
    plan = plan_experiment(
        y_c,
        y_t,
        300,
        disagree=np.ones(8000, bool),
        expected=(x[:, 0], x[:, 1]),
        seed=1,
        simulations=500,
    ).to_dict()
    vr = plan["variance_reduction"]
    assert vr["factor"] == pytest.approx(adjusted_variance_factor(y_c, y_t, x, 0.5)["factor"])
    assert vr["n_per_arm"] < plan["n_per_arm"]
    assert vr["days_saved"] == plan["days_enrolling"] - vr["days_enrolling"] >= 0
