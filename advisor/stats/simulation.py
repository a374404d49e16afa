"""Monte Carlo experiments: draw each arm's sufficient statistics from per-unit costs and judge
every simulated experiment with Welch's t-test, for the planned test and the A/A self-check."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

SIMULATIONS = 2000
MAX_DISTINCT = 100
HISTOGRAM_BINS = 30


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


def arm_sums(
    costs: np.ndarray, n: int, simulations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of `n` units drawn from `costs`, for each simulated experiment
    (from `arm_statistics`; one unit is drawn directly)."""
    if n == 1:
        x = rng.choice(np.asarray(costs, dtype=float), size=simulations)
        return x, x**2
    means, var, _ = arm_statistics(costs, n, simulations, rng)
    return n * means, (n - 1) * var + n * means**2


def simulate_looks(
    control: np.ndarray,
    treatment: np.ndarray,
    looks: np.ndarray,
    *,
    share: float,
    tuning: float,
    alpha: float,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> dict:
    """Many tests read with the confidence sequence after each look (vectorised over tests).

    `looks` holds the analysed control units to date at each look; the treatment gets
    share / (1 − share) times as many. Each look adds the new units' sums to every test, so
    the looks of one test share their units, as a test read every day does. Returns the
    share of tests that ever said "better" or "worse" and the look at which each first did
    (−1: never)."""
    from advisor.stats.sequential import boundary

    rng = np.random.default_rng(seed)
    sums = np.zeros((4, simulations))  # control sum, sum of squares; treatment the same
    first = np.full(simulations, -1)
    side = np.zeros(simulations, dtype=int)
    had_c = had_t = 0
    ratio = share / (1 - share)
    for k, n_c in enumerate(np.asarray(looks, dtype=float)):
        now_c, now_t = int(n_c), int(np.rint(n_c * ratio))
        for arm, costs, had, now in ((0, control, had_c, now_c), (2, treatment, had_t, now_t)):
            if now > had:
                s, ss = arm_sums(costs, now - had, simulations, rng)
                sums[arm] += s
                sums[arm + 1] += ss
        had_c, had_t = max(had_c, now_c), max(had_t, now_t)
        if had_c < 2 or had_t < 2:
            continue
        mc, mt = sums[0] / had_c, sums[2] / had_t
        vc = np.maximum(sums[1] - had_c * mc**2, 0) / (had_c - 1)
        vt = np.maximum(sums[3] - had_t * mt**2, 0) / (had_t - 1)
        estimate = mc - mt
        half = np.sqrt(vc / had_c + vt / had_t) * boundary(had_c + had_t, tuning, alpha)
        better, worse = estimate - half > 0, estimate + half < 0
        new = (first < 0) & (better | worse)
        first[new] = k
        side[new] = np.where(better, 1, -1)[new]
    return {
        "simulations": simulations,
        "looks": len(looks),
        "better_rate": float((side == 1).mean()),
        "worse_rate": float((side == -1).mean()),
        "ever_rate": float((first >= 0).mean()),
        "first_look": first,
        "side": side,
    }
