"""Sizing a two-arm test of per-unit costs with Welch's variance σc²/nc + σt²/nt: the units
needed for the target power at any treatment share and any pair of variances, and power
against size or days of traffic.

A pooled SD is right only when both arms have the same share and variance; with Welch's
variance the size is right for unequal ones too, and it equals statsmodels' `TTestIndPower`
when the variances and shares are equal (a special case the tests pin).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

CURVE_POINTS = 20
MIN_EFFECT = 1e-9
MAX_UNITS = 1e15


def effect_size(control: np.ndarray, treatment: np.ndarray) -> dict:
    """The saving (mean control − mean treatment), each arm's variance, and Cohen's d of the
    saving over the pooled SD (shown to readers; the sizes use the two variances)."""
    c, t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    nc, nt = len(c), len(t)
    var_c, var_t = float(c.var(ddof=1)), float(t.var(ddof=1))
    pooled_var = ((nc - 1) * var_c + (nt - 1) * var_t) / (nc + nt - 2)
    sd = math.sqrt(pooled_var)
    diff = float(c.mean() - t.mean())
    return {
        "d": diff / sd if sd > 0 else 0.0,
        "difference": diff,
        "pooled_sd": sd,
        "control_var": var_c,
        "treatment_var": var_t,
        "control_mean": float(c.mean()),
        "treatment_mean": float(t.mean()),
    }


def _ratio(share: float) -> float:
    return share / (1 - share)


def welch_se(var_c: float, var_t: float, n_c: float, n_t: float) -> float:
    """Standard error of the difference in means: sqrt(σc²/nc + σt²/nt)."""
    return math.sqrt(var_c / n_c + var_t / n_t)


def welch_df(var_c: float, var_t: float, n_c: float, n_t: float) -> float:
    """Welch–Satterthwaite degrees of freedom."""
    a, b = var_c / n_c, var_t / n_t
    if a + b <= 0:
        return max(n_c + n_t - 2, 1.0)
    return (a + b) ** 2 / (a**2 / max(n_c - 1, 1) + b**2 / max(n_t - 1, 1))


def normal_sample_size(
    difference: float, var_c: float, var_t: float, alpha: float, power: float, share: float
) -> float:
    """The closed form: nc = (z₁₋α/₂ + z_power)² (σc² + σt²/r) / Δ², r = share / (1 − share)."""
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    return z**2 * (var_c + var_t / _ratio(share)) / difference**2


def welch_power(
    difference: float, var_c: float, var_t: float, n_control: float, alpha: float, share: float
) -> float:
    """Power of the two-sided Welch t-test with `n_control` control units (the treatment arm
    gets share / (1 − share) times as many): the noncentral t with Welch's degrees of freedom;
    the normal approximation where its numerics give up (it is exact in that limit)."""
    if n_control < 2:
        return 0.0
    n_t = n_control * _ratio(share)
    if n_t < 2:
        return 0.0
    se = welch_se(var_c, var_t, n_control, n_t)
    if se <= 0:
        return 1.0 if abs(difference) > 0 else alpha
    shift = abs(difference) / se
    if shift < MIN_EFFECT:
        return alpha
    df = welch_df(var_c, var_t, n_control, n_t)
    crit = stats.t.isf(alpha / 2, df)
    with np.errstate(all="ignore"):
        p = float(stats.nct.sf(crit, df, shift) + stats.nct.cdf(-crit, df, shift))
    if not math.isfinite(p):
        z = stats.norm.isf(alpha / 2)
        p = float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))
    return min(max(p, 0.0), 1.0)


def welch_sample_size(
    difference: float, var_c: float, var_t: float, alpha: float, power: float, share: float
) -> float | None:
    """Control-arm units that give `power` to the two-sided Welch test; None when unreachable.

    Starts from the normal closed form and solves the noncentral-t power for the exact size
    (a few units more for small samples)."""
    if not math.isfinite(difference) or abs(difference) < MIN_EFFECT or var_c + var_t <= 0:
        return None
    closed = normal_sample_size(difference, var_c, var_t, alpha, power, share)
    if not math.isfinite(closed) or closed >= MAX_UNITS:
        return None
    low = max(2.0, 2.0 / _ratio(share))
    if welch_power(difference, var_c, var_t, low, alpha, share) >= power:
        return low
    high = max(2 * closed, low + 10)
    while welch_power(difference, var_c, var_t, high, alpha, share) < power:
        high *= 2
        if high > MAX_UNITS:
            return None
    gap = lambda n: welch_power(difference, var_c, var_t, n, alpha, share) - power  # noqa: E731
    return float(optimize.brentq(gap, low, high, xtol=1e-6))


def analytical_power(d: float, n_control: float, alpha: float, treatment_share: float) -> float:
    """Power at a standardised effect d with equal variances (statsmodels' `TTestIndPower`)."""
    return welch_power(d, 1.0, 1.0, n_control, alpha, treatment_share)


def power_curve(
    sizing: dict, alpha: float, share: float, per_day: float, delay: float, up_to_days: float
) -> list[dict]:
    """Welch power against days of enrolment: CURVE_POINTS points up to `up_to_days`.

    `sizing` holds the effect the test is sized for and each arm's variance."""
    out = []
    for day in np.linspace(0, max(up_to_days, 1.0), CURVE_POINTS + 1)[1:]:
        n_c = per_day * (1 - share) * day
        out.append(
            {
                "days_enrolling": float(day),
                "days_total": float(day + delay),
                "n_control": int(n_c),
                "n_treatment": int(per_day * share * day),
                "power": _power(sizing, n_c, alpha, share),
            }
        )
    return out


def power_by_size(sizing: dict, alpha: float, share: float, n_control: int) -> list[dict]:
    """Welch power from a tenth to three times the planned control-arm size."""
    sizes = np.unique(np.ceil(np.linspace(0.1, 3.0, CURVE_POINTS) * n_control).astype(int))
    return [
        {"n_control": int(n), "power": _power(sizing, float(n), alpha, share)}
        for n in sizes
        if n >= 2
    ]


def _power(sizing: dict, n_control: float, alpha: float, share: float) -> float:
    return welch_power(
        sizing["effect"], sizing["control_var"], sizing["treatment_var"], n_control, alpha, share
    )
