"""The A/B test: plan, Monte Carlo simulation and A/A self-check.

The test compares the per-unit realised cost of the control (the rules) and the treatment
(ML). The plan sizes it with statsmodels' `TTestIndPower` from the effect size observed on
the test split; the simulation runs many experiments of that size, drawing units from each
arm's test-split costs and judging each with Welch's t-test; the A/A check runs the same
procedure with both arms drawn from the control, so its false-positive rate must sit near
alpha. The sample-ratio check and the rollout plan around the test are in `advisor.rollout`
(`sample_ratio_mismatch` is importable from here too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from advisor.case import DecisionContext
from advisor.evaluate import Evaluation
from advisor.roles import Roles
from advisor.rollout import SRM_THRESHOLD, rollout_plan, srm_tolerance
from advisor.rollout import sample_ratio_mismatch as sample_ratio_mismatch
from advisor.shadow import Shadow

SIMULATIONS = 2000
MAX_DISTINCT = 100
CURVE_POINTS = 20
HISTOGRAM_BINS = 30
MIN_EFFECT = 1e-9
MAX_UNITS = 1e15


def effect_size(control: np.ndarray, treatment: np.ndarray) -> dict:
    """Cohen's d of the saving: (mean control − mean treatment) / pooled SD of per-unit costs."""
    c, t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    nc, nt = len(c), len(t)
    pooled_var = ((nc - 1) * c.var(ddof=1) + (nt - 1) * t.var(ddof=1)) / (nc + nt - 2)
    sd = math.sqrt(pooled_var)
    diff = float(c.mean() - t.mean())
    return {
        "d": diff / sd if sd > 0 else 0.0,
        "difference": diff,
        "pooled_sd": sd,
        "control_mean": float(c.mean()),
        "treatment_mean": float(t.mean()),
    }


def solve_sample_size(d: float, alpha: float, power: float, treatment_share: float) -> float | None:
    """Control-arm units (statsmodels' nobs1) for a two-sided test; None when not reachable.

    The treatment arm gets `ratio = share / (1 − share)` times as many units.
    """
    from statsmodels.stats.power import TTestIndPower

    if not math.isfinite(d) or abs(d) < MIN_EFFECT:
        return None
    ratio = treatment_share / (1 - treatment_share)
    try:
        n = float(
            TTestIndPower().solve_power(effect_size=abs(d), alpha=alpha, power=power, ratio=ratio)
        )
    except (ValueError, RuntimeError, ArithmeticError):
        return None
    return n if math.isfinite(n) and 0 < n < MAX_UNITS else None


def analytical_power(d: float, n_control: float, alpha: float, treatment_share: float) -> float:
    """Power of the two-sided t-test with `n_control` control units at effect size d.

    statsmodels' noncentral t; where its numerics give up (very large noncentrality), the
    normal approximation, which is exact in that limit.
    """
    from statsmodels.stats.power import TTestIndPower

    if n_control < 2:
        return 0.0
    if abs(d) < MIN_EFFECT:
        return alpha
    ratio = treatment_share / (1 - treatment_share)
    with np.errstate(all="ignore"):
        power = TTestIndPower().power(effect_size=abs(d), nobs1=n_control, alpha=alpha, ratio=ratio)
    power = float(power)
    if not math.isfinite(power):
        shift = abs(d) * math.sqrt(n_control * ratio / (1 + ratio))
        z = stats.norm.isf(alpha / 2)
        power = float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))
    return min(max(power, 0.0), 1.0)


def welch_test(m1, v1, n1, m2, v2, n2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's t-test from means, sample variances and sizes (vectorised): (t, df, p two-sided)."""
    m1, v1, m2, v2 = (np.asarray(x, dtype=float) for x in (m1, v1, m2, v2))
    a, b = v1 / n1, v2 / n2
    se2 = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (m1 - m2) / np.sqrt(se2)
        df = se2**2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    p = np.where(se2 > 0, 2 * stats.t.sf(np.abs(t), np.where(se2 > 0, df, 1.0)), 1.0)
    return t, df, p


def arm_statistics(
    costs: np.ndarray, n: int, simulations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """Sample mean and variance of `n` units drawn from `costs`, for each simulated experiment.

    Only these sufficient statistics enter Welch's test, so they are drawn directly and the
    cost is O(simulations × distinct values), whatever n is:

    - "multinomial" (at most MAX_DISTINCT distinct costs, the usual case of a plain cost
      matrix): how many of the n units land on each distinct cost is one multinomial draw,
      which gives the exact sample mean and variance of n units resampled from the costs.
    - "normal" (costs that vary per example, e.g. a share of the amount): the sample mean is
      drawn from N(μ, σ²/n) (central limit theorem: planned sizes are in the hundreds or more),
      and the sample variance from σ²·χ²_ν/ν, with ν = 2σ⁴ / Var(s²) matched to the costs'
      fourth moment (ν = n − 1 for normal costs; fewer for heavy-tailed ones). The mean and
      variance are drawn independently; their correlation (the skewness over √n) is ignored.
    """
    x = np.asarray(costs, dtype=float)
    mu = float(x.mean())
    values, counts = np.unique(x - mu, return_counts=True)
    if len(values) <= MAX_DISTINCT:
        draws = rng.multinomial(n, counts / counts.sum(), size=simulations).astype(float)
        centred = draws @ values / n
        second = draws @ values**2
        var = np.maximum(second - n * centred**2, 0.0) / (n - 1)
        return mu + centred, var, "multinomial"
    dev = x - mu
    sigma2 = float(np.mean(dev**2))
    mu4 = float(np.mean(dev**4))
    var_s2 = max((mu4 - sigma2**2 * (n - 3) / (n - 1)) / n, 1e-300)
    nu = min(2 * sigma2**2 / var_s2, float(n - 1)) if sigma2 > 0 else float(n - 1)
    means = rng.normal(mu, math.sqrt(sigma2 / n), size=simulations)
    var = sigma2 * rng.chisquare(nu, size=simulations) / nu
    return means, var, "normal"


def simulate_experiments(
    control: np.ndarray,
    treatment: np.ndarray,
    n_control: int,
    n_treatment: int,
    alpha: float = 0.05,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> dict:
    """Monte Carlo experiments judged by Welch's t-test: rejection rate and observed differences.

    The observed difference is mean control − mean treatment per unit (positive: treatment
    cheaper).
    """
    rng = np.random.default_rng(seed)
    mc, vc, method_c = arm_statistics(control, n_control, simulations, rng)
    mt, vt, method_t = arm_statistics(treatment, n_treatment, simulations, rng)
    _, _, p = welch_test(mc, vc, n_control, mt, vt, n_treatment)
    diff = mc - mt
    reject = p < alpha
    true_sign = np.sign(np.mean(control) - np.mean(treatment))
    counts, edges = np.histogram(diff, bins=HISTOGRAM_BINS)
    q = np.percentile(diff, [2.5, 25, 50, 75, 97.5])
    return {
        "simulations": simulations,
        "n_control": int(n_control),
        "n_treatment": int(n_treatment),
        "method": method_c if method_c == method_t else f"{method_c}/{method_t}",
        "rejection_rate": float(reject.mean()),
        "right_direction_rate": float((reject & (np.sign(diff) == true_sign)).mean()),
        "p_values": p,
        "observed_difference": {
            "mean": float(diff.mean()),
            "sd": float(diff.std(ddof=1)),
            "quantiles": dict(zip(["p2.5", "p25", "p50", "p75", "p97.5"], q.tolist(), strict=True)),
            "wrong_sign_share": float((np.sign(diff) != true_sign).mean()) if true_sign else None,
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        },
    }


def binomial_band(simulations: int, alpha: float, level: float = 0.95) -> tuple[float, float]:
    """Where the A/A false-positive rate of `simulations` experiments falls with prob. `level`."""
    low, high = stats.binom.interval(level, simulations, alpha)
    return float(low) / simulations, float(high) / simulations


def power_curve(
    d: float, alpha: float, share: float, per_day: float, delay: float, up_to_days: float
) -> list[dict]:
    """Analytical power against days of enrolment: CURVE_POINTS points up to `up_to_days`."""
    out = []
    for day in np.linspace(0, max(up_to_days, 1.0), CURVE_POINTS + 1)[1:]:
        n_c = per_day * (1 - share) * day
        out.append(
            {
                "days_enrolling": float(day),
                "days_total": float(day + delay),
                "n_control": int(n_c),
                "n_treatment": int(per_day * share * day),
                "power": analytical_power(d, n_c, alpha, share),
            }
        )
    return out


def power_by_size(d: float, alpha: float, share: float, n_control: int) -> list[dict]:
    """Analytical power from a tenth to three times the planned control-arm size."""
    sizes = np.unique(np.ceil(np.linspace(0.1, 3.0, CURVE_POINTS) * n_control).astype(int))
    return [
        {"n_control": int(n), "power": analytical_power(d, float(n), alpha, share)}
        for n in sizes
        if n >= 2
    ]


def plan_experiment(
    control: np.ndarray,
    treatment: np.ndarray,
    volume_per_day: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_share: float = 0.5,
    label_delay_days: float = 0.0,
    max_experiment_days: float = 90,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> dict:
    """Size, time and simulate the A/B test of `treatment` against `control` per-unit costs.

    `days_needed` is the days of enrolment the sample needs at this volume plus the label
    delay before the last outcome can be read. The difference is confirmable when enrolment
    fits in `max_experiment_days`; otherwise `days_needed` is still given when finite, and null
    with a reason when no size would do (no difference at all).
    """
    share = treatment_share
    eff = effect_size(control, treatment)
    d = eff["d"]
    nobs1 = solve_sample_size(d, alpha, power, share)
    out: dict = {
        "effect_size": d,
        **{k: eff[k] for k in ("difference", "pooled_sd", "control_mean", "treatment_mean")},
        "direction": "treatment cheaper" if d > 0 else "control cheaper" if d < 0 else "equal",
        "alpha": alpha,
        "target_power": power,
        "treatment_share": share,
        "volume_per_day": volume_per_day,
        "label_delay_days": label_delay_days,
        "max_experiment_days": max_experiment_days,
    }
    if nobs1 is None:
        n_c = n_t = None
        enrol = None
        out["reason"] = (
            "The two policies' mean costs do not differ on the test split, so no experiment of "
            "any length could confirm a difference."
        )
    else:
        n_c = math.ceil(nobs1)
        n_t = math.ceil(nobs1 * share / (1 - share))
        enrol = float(
            math.ceil(max(n_c / ((1 - share) * volume_per_day), n_t / (share * volume_per_day)))
        )
    confirmable = enrol is not None and enrol <= max_experiment_days
    out.update(
        {
            "n_per_arm": n_c,
            "n_control": n_c,
            "n_treatment": n_t,
            "n_total": None if n_c is None else n_c + n_t,
            "days_enrolling": enrol,
            "days_needed": None if enrol is None else enrol + label_delay_days,
            "confirmable_within_max_days": confirmable,
        }
    )
    if enrol is not None and not confirmable:
        out["reason"] = (
            f"The difference is too small to confirm within {max_experiment_days:g} days: the "
            f"test would need {enrol:,.0f} days of traffic at {volume_per_day:,.0f} decisions a day."
        )
    # Simulate at the planned size; when that is out of reach, at what max_experiment_days buys.
    sim_days = enrol if confirmable else float(max_experiment_days)
    sim_c = n_c if confirmable else max(2, int(volume_per_day * (1 - share) * sim_days))
    sim_t = n_t if confirmable else max(2, int(volume_per_day * share * sim_days))
    sim = simulate_experiments(control, treatment, sim_c, sim_t, alpha, simulations, seed)
    aa = simulate_experiments(control, control, sim_c, sim_t, alpha, simulations, seed + 1)
    band = binomial_band(simulations, alpha)
    sim.pop("p_values")
    aa_rate = aa["rejection_rate"]
    out.update(
        {
            "simulated_at": "planned size" if confirmable else f"{max_experiment_days:g} days",
            "analytical_power": analytical_power(d, sim_c, alpha, share),
            "power": sim["rejection_rate"],
            "aa_false_positive_rate": aa_rate,
            "aa_band": {"low": band[0], "high": band[1], "level": 0.95},
            "aa_within_band": band[0] <= aa_rate <= band[1],
            "simulation": sim,
            "aa_observed_difference": aa["observed_difference"],
            "power_curve": power_curve(
                d,
                alpha,
                share,
                volume_per_day,
                label_delay_days,
                max(2 * (enrol or 0), max_experiment_days),
            ),
            "power_by_size": power_by_size(d, alpha, share, sim_c),
        }
    )
    total = sim_c + sim_t
    tol = srm_tolerance(total, share)
    out["srm"] = {
        "threshold": SRM_THRESHOLD,
        "test": "chi-square of the arm counts against the planned split, checked daily",
        "total_units": total,
        "expected_treatment": total * share,
        "flag_if_treatment_outside": [total * share - tol, total * share + tol],
    }
    return out


def summary_sentence(plan: Mapping, currency: str) -> str:
    """The plan in one plain sentence."""
    if plan["n_per_arm"] is None:
        return plan["reason"]
    who = "ML" if plan["direction"] == "treatment cheaper" else "the control"
    days = plan["days_enrolling"]
    text = (
        f"At {plan['volume_per_day']:,.0f} decisions a day, a {plan['treatment_share']:.0%} test "
        f"needs {plan['n_per_arm']:,} units per arm: {days:,.0f} day{'s' if days != 1 else ''} of traffic "
        f"plus {plan['label_delay_days']:g} days for the outcomes, {plan['days_needed']:,.0f} days "
        f"in all, to confirm that {who} saves {abs(plan['difference']):,.2f} {currency} per decision."
    )
    if not plan["confirmable_within_max_days"]:
        text += " " + plan["reason"]
    return text


@dataclass(frozen=True)
class ExperimentPlan:
    """The A/B test of the ML treatment against the control (result.json key `experiment`)."""

    available: bool
    n_per_arm: int | None = None
    days_enrolling: float | None = None
    label_delay_days: float = 0.0
    details: Mapping = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.details, "available": self.available}


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
) -> ExperimentPlan:
    """Size, time and simulate the A/B test, and put the rollout around it on a calendar."""
    control, treatment = roles.control, roles.treatment
    if treatment is None or control not in evaluation.policies:
        return ExperimentPlan(False, details={"reason": "no ML policy or control policy"})
    plan = plan_experiment(
        evaluation.policies[control].costs,
        evaluation.policies[treatment].costs,
        decision.volume_per_day,
        alpha=alpha,
        power=power,
        treatment_share=treatment_share,
        label_delay_days=decision.label_delay_days,
        max_experiment_days=max_experiment_days,
        seed=seed,
    )
    plan["rollout"] = rollout_plan(
        decision.volume_per_day,
        plan,
        shadow.disagreement_rate,
        evaluation.policies[treatment].decision_shares,
        decision.latency_budget_ms,
    )
    plan.update({"control": control, "treatment": treatment})
    plan["summary"] = summary_sentence(plan, currency)
    return ExperimentPlan(
        True, plan["n_per_arm"], plan["days_enrolling"], decision.label_delay_days, plan
    )
