"""The monitor's alerts as one family with a stated false-alarm rate.

A team runs the monitor every day and acts on any alert, so what matters is the chance that
*some* alert fires over a horizon of daily windows when nothing changed. The family rate
(`FAMILY_RATE` over `HORIZON` windows) is split between the tests (`BUDGET`):

- per-window tests (drift, errors, latency, the estimated cost) spend their share evenly over
  the horizon: each window tests at share / HORIZON, and the features of one window are
  corrected with Holm's step-down procedure; a read of N windows spends N / HORIZON of it.
  Drift spends a quarter of its share on a shift clear in one window and the rest on a test at
  a larger level that must reject in 2 of the last 3 windows (chosen by simulation): a one-off noisy window, or rows that
  differ a little from training in a way a long log would show, does not page anyone;
- cumulative tests re-read at every window (the realised cost, the sample ratio) are
  sequential: a confidence sequence for a mean and a beta-binomial mixture test of the split,
  both valid however often they are read (Ville's inequality);
- the cost test is paired when it can be: for a policy with class probabilities (the ML bundle,
  a rule list's class frequencies) whose inputs are logged, PAIRED of its level follows realised
  minus expected cost of the same decisions, whose spread is only the outcomes' noise, against
  the calibration gap the run measured on its test split (outcomes worse for the same inputs);
  the rest, as all of it for every other policy, the realised cost against the offline cost (a
  costlier mix of inputs). Chosen by simulation (`benchmarks/monitor_alarms.py`): the offline
  figure's own error dominated the unpaired test (credit-scoring caught a +20 % cost harm in
  44 % of runs, 97 % with the pair);
- the offline reference (the calibration gap, or the offline cost) is itself an estimate: the
  cost test compares with its upper end widened to the `offline` share's one-sided normal
  quantile, which holds its own error.

The union bound over the shares gives the family rate; `benchmarks/monitor_alarms.py` measures
the real rate (no change) and the power (harm) by simulation on every bundled case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import special, stats

FAMILY_RATE = 0.05
HORIZON = 90  # daily windows the family rate holds over
BUDGET = {  # shares of FAMILY_RATE; they sum to it
    "drift": 0.015,
    "errors": 0.005,
    "latency": 0.005,
    "estimated_cost": 0.005,
    "cost": 0.01125,
    "srm": 0.005,
    "offline": 0.00375,
}
PER_WINDOW = ("drift", "errors", "latency", "estimated_cost")
SEQUENTIAL = ("cost", "srm", "offline")
PERSIST, SPAN = 2, 3  # a drift alert needs its test to reject in 2 of the last 3 windows
CLEAR = 0.25  # or, with a quarter of the drift share, in one window at a strict level
SRM_CONCENTRATION = 100.0  # the beta prior's weight: deviations of about 2 points at a 5 % split
PAIRED = 0.9  # of a policy's cost level (and offline share) for the paired test, with a pair
CS_TUNED_ROWS = 5000  # the confidence sequence is tightest near this many outcomes
TUNED_DAYS = HORIZON / 2  # the cost sequences: tightest at the case's volume times this
LATENCY_SPAN = 7  # the latency test reads a window and the 6 before it
MIN_EXPECTED = 5.0  # bins expected to hold fewer window rows than this are pooled for the test
EXCLUDED = (
    "treatment_worse (the A/B test's always-valid readout) keeps its own error rate, the test's "
    "alpha over every read, stated with the test; it comes on top of this family's"
)


def window_level(test: str) -> float:
    """The level each window's test of this kind runs at (drift: CLEAR of its share, for a
    shift that is clear in a single window)."""
    share = BUDGET[test] * CLEAR if test == "drift" else BUDGET[test]
    return share / HORIZON


def persist_level() -> float:
    """The level of the drift test that must reject in PERSIST of the last SPAN windows: for
    independent windows that happens by chance with probability at most C(SPAN, PERSIST) *
    level^PERSIST, so it spends the rest of the drift share at a larger level."""
    share = BUDGET["drift"] * (1 - CLEAR) / (HORIZON * math.comb(SPAN, PERSIST))
    return share ** (1 / PERSIST)


def summary(windows: int) -> dict:
    """The family's false-alarm rate as monitor.json states it, for a read of `windows`."""
    per_window = sum(BUDGET[k] for k in PER_WINDOW)
    sequential = sum(BUDGET[k] for k in SEQUENTIAL)
    return {
        "rate": FAMILY_RATE,
        "horizon_windows": HORIZON,
        "windows_read": windows,
        "rate_for_this_read": min(1.0, sequential + per_window * windows / HORIZON),
        "budget": dict(BUDGET),
        "per_window_levels": {k: window_level(k) for k in PER_WINDOW}
        | {"drift_persisting": persist_level(), "persist": [PERSIST, SPAN]},
        "excluded": EXCLUDED,
    }


def holm(p_values: Mapping[str, float], level: float) -> dict[str, bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family level `level`."""
    ranked = sorted(p_values.items(), key=lambda kv: kv[1])
    out = {name: False for name in p_values}
    for i, (name, p) in enumerate(ranked):
        if p > level / (len(ranked) - i):
            break
        out[name] = True
    return out


def drift_p_values(reference: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Chi-square test of homogeneity between the training counts and each window's counts
    (rows: windows, columns: bins), with bins expected to hold fewer than MIN_EXPECTED window
    rows pooled into one; the p-value of each window (1 when fewer than two bins remain)."""
    ref = np.asarray(reference, dtype=float)
    win = np.atleast_2d(np.asarray(windows, dtype=float))
    n = win.sum(axis=1)
    out = np.ones(len(win))
    for size in np.unique(n):
        rows = n == size
        if size <= 0 or ref.sum() <= 0:
            continue
        small = ref / ref.sum() * size < MIN_EXPECTED
        r = np.append(ref[~small], ref[small].sum())
        w = np.column_stack([win[rows][:, ~small], win[rows][:, small].sum(axis=1)])
        keep = (r + w.sum(axis=0)) > 0
        r, w = r[keep], w[:, keep]
        if len(r) < 2:
            continue
        total = r.sum() + size
        share = (r + w) / total  # pooled bin shares, per window
        e_ref, e_win = share * r.sum(), share * size
        with np.errstate(divide="ignore", invalid="ignore"):  # a bin empty on both sides adds 0
            cells = (r - e_ref) ** 2 / e_ref + (w - e_win) ** 2 / e_win
        chi2 = np.where(share > 0, cells, 0.0).sum(axis=1)
        out[rows] = stats.chi2.sf(chi2, len(r) - 1)
    return out


def rolling(values: np.ndarray, span: int = LATENCY_SPAN) -> np.ndarray:
    """Sums over each window and the span - 1 windows before it, along the last axis."""
    total = np.cumsum(np.asarray(values, dtype=float), axis=-1)
    before = np.concatenate([np.zeros((*total.shape[:-1], span)), total[..., :-span]], axis=-1)[
        ..., : total.shape[-1]
    ]
    return total - before


def latency_p_values(over: np.ndarray, requests: np.ndarray) -> np.ndarray:
    """One-sided binomial p-values that more than 1 % of the requests exceed the budget (that
    the p99 is above it), from the requests over budget and all requests."""
    over = np.asarray(over, dtype=float)
    return stats.binom.sf(over - 1, np.asarray(requests, dtype=float), 0.01)


def confidence_sequence(
    mean: np.ndarray, sd: np.ndarray, n: np.ndarray, alpha: float, tuned: int = CS_TUNED_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """An asymptotic confidence sequence for a mean (the normal-mixture boundary of
    Waudby-Smith et al., time-uniform central limit theory): with the running mean, standard
    deviation and count, (low, high) that cover the true mean at every n at once with
    probability about 1 - alpha. Tightest near `tuned` rows."""
    n = np.asarray(n, dtype=float)
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuned
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.asarray(sd, dtype=float) * np.sqrt(
            2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha)
        )
    half = np.where(n > 1, half, np.inf)
    return np.asarray(mean) - half, np.asarray(mean) + half


def referenced_sequence(
    mean: np.ndarray,
    sd: np.ndarray,
    n: np.ndarray,
    reference_se: float,
    alpha: float,
    tuned: float = CS_TUNED_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """A one-sided confidence sequence for a running mean compared with a reference figure
    that is itself an estimate (standard error `reference_se`): (low, high) such that `low`
    exceeds the reference's estimate at some read with probability at most alpha when the true
    mean is at most the reference's true value (and `high` falls below it likewise).

    Given the reference y0, production values are x_i = y0 + v + noise with v ~ N(0, s^2)
    under no change (s: the reference's standard error; with a flat prior on the reference's
    true value this is exactly how x_i - y0 vary, so a martingale here answers the frequentist
    question). Against it, v = that error plus a shift d >= 0 drawn half-normal with spread
    tau: the ratio of the two models' likelihoods is a nonnegative martingale under no change,
    and Ville's inequality bounds its crossing of 1 / alpha at any read. The two errors add in
    quadrature instead of each bar holding its own share; with s = 0 it is the one-sided
    normal mixture. tau^2 is set so that the boundary is tightest near `tuned` rows."""
    n = np.asarray(n, dtype=float)
    sd = np.asarray(sd, dtype=float)
    var, s2 = sd**2, float(reference_se) ** 2
    log_bar = -math.log(alpha)
    tau2 = (2 * log_bar + math.log(2 * log_bar + 1)) * (var / tuned + s2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        far, near = var + n * (s2 + tau2), var + n * s2
        slope = var * tau2 / (far * near)  # (s2 + tau2) / far - s2 / near, without cancelling
        spread = (s2 + tau2) * var / far  # the shift's posterior variance under the mixture
        skew = s2 * (s2 + tau2) / tau2

        def log_ratio(total: np.ndarray) -> np.ndarray:
            two_sided = 0.5 * np.log(near / far) + total**2 * slope / (2 * var)
            centre = (s2 + tau2) * total / far
            return two_sided + math.log(2) + stats.norm.logcdf(centre / np.sqrt(skew + spread))

        # the sum of (x_i - y0) where the ratio reaches 1 / alpha, by bisection (it rises in it)
        low = np.zeros(np.broadcast(n, var).shape)
        high = np.sqrt(2 * var * (log_bar + 0.5 * np.log(far / near)) / slope)
        for _ in range(60):
            mid = (low + high) / 2
            up = log_ratio(mid) >= log_bar
            high, low = np.where(up, mid, high), np.where(up, low, mid)
        half = high / n
    half = np.where((n > 1) & (sd > 0) & np.isfinite(half), half, np.inf)
    return np.asarray(mean) - half, np.asarray(mean) + half


def reference_se(reference: Mapping | None) -> float | None:
    """A reference figure's standard error, read off its 95 % interval (None without one)."""
    if not reference or reference.get("high") is None or reference.get("low") is None:
        return None
    return (float(reference["high"]) - float(reference["low"])) / (2 * stats.norm.ppf(0.975))


def tuned_rows(volume_per_day: float | None) -> float:
    """Where the cost sequences are tightest: the case's daily volume times TUNED_DAYS (half
    the horizon, where harm that began early is still worth catching), CS_TUNED_ROWS without
    a volume."""
    if not volume_per_day or volume_per_day <= 0:
        return float(CS_TUNED_ROWS)
    return float(volume_per_day) * TUNED_DAYS


def offline_bar(offline: Mapping, share: float = BUDGET["offline"]) -> float | None:
    """An offline figure's upper end at the `offline` share (the cost per decision, or the
    calibration gap): its estimate plus the one-sided normal quantile at `share` (of the
    family's `offline` share; one bar holding its error) times its standard error (read off
    its 95 % interval)."""
    if not offline or offline.get("high") is None or offline.get("low") is None:
        return None
    se = (float(offline["high"]) - float(offline["low"])) / (2 * stats.norm.ppf(0.975))
    return float(float(offline["estimate"]) + stats.norm.isf(share) * se)


def srm_log_evidence(n_control: np.ndarray, n_treatment: np.ndarray, share: float) -> np.ndarray:
    """The log Bayes factor of a beta-binomial mixture (prior Beta(c·share, c·(1 - share)), c =
    SRM_CONCENTRATION) against the planned split: a nonnegative martingale under the plan, so
    it exceeds log(1 / alpha) at any read with probability at most alpha."""
    c, t = np.asarray(n_control, dtype=float), np.asarray(n_treatment, dtype=float)
    a, b = SRM_CONCENTRATION * share, SRM_CONCENTRATION * (1 - share)
    return (
        special.betaln(a + t, b + c)
        - special.betaln(a, b)
        - t * math.log(share)
        - c * math.log(1 - share)
    )


def srm_sequential(n_control: int, n_treatment: int, share: float) -> dict:
    """The sequential sample-ratio test at the family's `srm` share."""
    evidence = float(srm_log_evidence(np.array(n_control), np.array(n_treatment), share))
    bar = math.log(1 / BUDGET["srm"])
    return {
        "log_evidence": evidence,
        "log_bar": bar,
        "p_value": min(1.0, math.exp(-evidence)),
        "mismatch": bool(evidence >= bar),
    }
