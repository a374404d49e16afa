"""Sizing a two-arm test of per-unit costs: the effect size, the units needed for the target
power (statsmodels' `TTestIndPower`), and power against size or days of traffic."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

CURVE_POINTS = 20
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
