"""Always-valid inference for the difference in mean cost: a confidence sequence.

The asymptotic confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central limit
theory", the normal-mixture boundary), the one GrowthBook's gbstats uses for its sequential
tests. With N units analysed in both arms together and the difference's standard error se,
the interval is estimate ± se·c(N), where

    c(N)² = N·2(Nρ² + 1)/(Nρ²)² · ln(√(Nρ² + 1) / α)   and
    ρ² = (−2 ln α + ln(1 − 2 ln α)) / M.

M (`tuning`) is the N at which the sequence is narrowest; the plan sets it to the analysed
units at its sequential horizon, where c(M) is a constant (3.04 at α = 0.05, against 1.96 for
a single look). The sequence covers the true difference at every N at once with probability
1 − α (asymptotically), so it may be read after every window, as often as one likes, and
the chance that it ever excludes zero when the arms cost the same stays at most α.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

DECISIONS = ("better", "worse", "not yet")
DEFAULT_TUNING = 5000.0  # gbstats' default M, for a test read without a plan


def mixture_rho2(alpha: float, tuning: float) -> float:
    """ρ² of the normal mixture that makes the sequence narrowest at `tuning` units."""
    log_a = -2 * math.log(alpha)
    return (log_a + math.log(log_a + 1)) / tuning


def boundary(n: np.ndarray | float, tuning: float, alpha: float) -> np.ndarray | float:
    """c(N): the half-width of the sequence in standard errors after N analysed units."""
    n = np.asarray(n, dtype=float)
    x = n * mixture_rho2(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = 2 * (x + 1) / x * np.log(np.sqrt(x + 1) / alpha)
    out = np.where(n > 0, np.sqrt(c2), np.inf)
    return float(out) if out.ndim == 0 else out


def horizon_boundary(alpha: float) -> float:
    """c(M) at the tuning size itself (it does not depend on M)."""
    return float(boundary(1.0, 1.0, alpha))


def readout(estimate: float, se: float, n: float, tuning: float, alpha: float) -> dict:
    """The effect to date with its always-valid interval and the decision it supports.

    `estimate` is control's cost minus treatment's (positive: the treatment saves): "better"
    when the whole interval is above zero, "worse" when it is below, "not yet" otherwise."""
    if not (math.isfinite(se) and n > 0):
        return {"effect": {"estimate": estimate, "low": None, "high": None}, "decision": "not yet"}
    half = se * float(boundary(n, tuning, alpha))
    low, high = estimate - half, estimate + half
    decision = "better" if low > 0 else "worse" if high < 0 else "not yet"
    return {"effect": {"estimate": estimate, "low": low, "high": high}, "decision": decision}


def sequential_sample_size(
    difference: float, var_c: float, var_t: float, alpha: float, power: float, share: float
) -> float | None:
    """Control-arm units at which the sequence, tuned to that size, excludes zero with
    probability `power` at its last look: (c(M) + z_power)² (σc² + σt²/r) / Δ².

    Earlier looks only add chances to cross, so the power of reading it every day up to
    that size is at least this; the Monte Carlo measures how much more."""
    if not math.isfinite(difference) or abs(difference) < 1e-9 or var_c + var_t <= 0:
        return None
    z = horizon_boundary(alpha) + stats.norm.ppf(power)
    return z**2 * (var_c + var_t * (1 - share) / share) / difference**2


def sequential_power(
    difference: float,
    var_c: float,
    var_t: float,
    n_control: float,
    share: float,
    alpha: float,
    tuning: float,
) -> float:
    """Chance that the sequence excludes zero at the look with `n_control` control units."""
    n_t = n_control * share / (1 - share)
    se = math.sqrt(var_c / n_control + var_t / n_t)
    c = float(boundary(n_control + n_t, tuning, alpha))
    shift = abs(difference) / se if se > 0 else math.inf
    return float(stats.norm.sf(c - shift) + stats.norm.cdf(-c - shift))
