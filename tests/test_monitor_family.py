"""The monitor's alert family (`advisor.monitor.family`): each statistic against an independent
reference (Holm's adjusted p-values, scipy's chi-square and binomial tests), and the error rates held
over every read, by simulation pooled over many seeds at 90 daily windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from advisor.monitor import family
from advisor.stats.psi import PSI_MAJOR, psi_rows

DAYS = 90


def test_the_budget_adds_up_to_the_family_rate():
    assert sum(family.BUDGET.values()) == pytest.approx(family.FAMILY_RATE)
    read = family.summary(DAYS)
    assert read["rate_for_this_read"] == pytest.approx(family.FAMILY_RATE)
    assert family.summary(30)["rate_for_this_read"] < family.FAMILY_RATE
    # Drift: a share in single windows, the rest in 2 of 3 windows (C(3, 2) * level^2).
    drift, clear = family.BUDGET["drift"], family.CLEAR
    assert DAYS * family.window_level("drift") == pytest.approx(drift * clear)
    assert DAYS * 3 * family.persist_level() ** 2 == pytest.approx(drift * (1 - clear))


def test_holm_rejects_what_its_adjusted_p_values_reject():
    """Holm's adjusted p-values (the running maximum of (m - i) p_(i)) below the level are
    exactly the hypotheses the step-down procedure rejects."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        p = rng.uniform(0, 0.05, 6) ** rng.uniform(1, 3)
        got = family.holm({str(i): v for i, v in enumerate(p)}, 0.01)
        order = np.argsort(p)
        adjusted = np.maximum.accumulate((6 - np.arange(6)) * p[order])
        want = np.empty(6, dtype=bool)
        want[order] = adjusted <= 0.01
        assert [got[str(i)] for i in range(6)] == list(want)


def test_the_drift_p_value_is_pearsons_chi_square_of_both_samples():
    reference = np.array([400.0, 300.0, 200.0, 100.0])
    window = np.array([[30.0, 40.0, 20.0, 10.0], [25.0, 25.0, 25.0, 25.0]])
    got = family.drift_p_values(reference, window)
    for row, p in zip(window, got, strict=True):
        want = stats.chi2_contingency(np.vstack([reference, row]), correction=False)[1]
        assert p == pytest.approx(want)


def test_the_latency_p_value_is_the_one_sided_binomial_test():
    for over, n in ((0, 150), (3, 150), (9, 1050), (40, 1050)):
        want = stats.binomtest(over, n, 0.01, alternative="greater").pvalue
        assert float(family.latency_p_values(over, n)) == pytest.approx(want)


def test_the_cost_sequence_holds_its_level_at_every_daily_read():
    """2,000 logs of 90 days x 150 skewed costs, read every day: the share whose confidence
    sequence ever misses the true mean stays below its level (the fixed-n interval would not)."""
    rng = np.random.default_rng(1)
    runs, alpha = 2000, 0.01
    costs = rng.lognormal(3, 1, (runs, DAYS, 150))  # mean exp(3.5)
    truth = math.exp(3.5)
    n = np.arange(1, DAYS + 1) * 150.0
    total, squares = costs.sum(2).cumsum(1), (costs**2).sum(2).cumsum(1)
    mean = total / n
    sd = np.sqrt((squares / n - mean**2) * n / (n - 1))
    low, high = family.confidence_sequence(mean, sd, n, alpha)
    missed = ((low > truth) | (high < truth)).any(axis=1).mean()
    assert missed <= alpha * 1.5
    z = stats.norm.isf(alpha / 2)
    naive = ((np.abs(mean - truth) > z * sd / np.sqrt(n)).any(axis=1)).mean()
    assert naive > 2 * missed  # re-reading a fixed-n interval every day inflates its error


def test_the_sequential_sample_ratio_test_holds_its_level_and_sees_an_8_percent_canary():
    rng = np.random.default_rng(2)
    runs, share = 4000, 0.05
    treated = rng.binomial(150, share, (runs, DAYS)).cumsum(1)
    total = np.arange(1, DAYS + 1) * 150
    bar = math.log(1 / family.BUDGET["srm"])
    fired = (family.srm_log_evidence(total - treated, treated, share) >= bar).any(axis=1)
    assert fired.mean() <= family.BUDGET["srm"] * 1.5
    chi2 = stats.chi2.sf((treated - total * share) ** 2 / (total * share * (1 - share)), 1)
    assert (chi2 < family.BUDGET["srm"]).any(axis=1).mean() > 3 * fired.mean()
    skewed = rng.binomial(150, 0.08, (runs, 60)).cumsum(1)
    seen = family.srm_log_evidence(np.arange(1, 61) * 150 - skewed, skewed, share) >= bar
    assert seen.any(axis=1).mean() >= 0.95


def test_drift_alerts_hold_their_share_over_90_windows_and_see_a_shift_at_once():
    """Windows of 150 rows from the training distribution of seven features, read daily over
    90 days in 1,000 runs: any drift alert (PSI at the major level and Holm within the window,
    at the single-window level or in 2 of the last 3 windows) in at most the drift share; a
    feature whose values moved to the top bins alerts on its first day."""
    rng = np.random.default_rng(3)
    runs, features, bins = 1000, 7, 10
    reference = rng.integers(150, 400, (features, bins)).astype(float)
    shares = reference / reference.sum(1, keepdims=True)

    def holm(p: np.ndarray, level: float) -> np.ndarray:
        order = np.sort(p, axis=0)
        steps = level / (features - np.arange(features))[:, None]
        passed = np.cumprod(order <= steps, axis=0).astype(bool)
        count = passed.sum(0)
        cut = np.where(count > 0, order[np.maximum(count - 1, 0), np.arange(p.shape[1])], -1)
        return p <= cut

    def alarms(counts: np.ndarray) -> np.ndarray:
        p = np.stack([family.drift_p_values(reference[f], counts[f]) for f in range(features)])
        major = np.stack([psi_rows(reference[f], counts[f]) for f in range(features)]) >= PSI_MAJOR
        clear = (holm(p, family.window_level("drift")) & major).reshape(features, runs, -1)
        hit = (holm(p, family.persist_level()) & major).reshape(features, runs, -1)
        return (clear | (hit & (family.rolling(hit, family.SPAN) >= family.PERSIST))).any(0)

    calm = np.stack([rng.multinomial(150, s, (runs * DAYS)) for s in shares]).astype(float)
    assert alarms(calm).any(axis=1).mean() <= family.BUDGET["drift"]
    shifted = np.stack([rng.multinomial(150, s, (runs * 2)) for s in shares]).astype(float)
    shifted[0] = rng.multinomial(150, np.r_[np.full(bins - 2, 0.02), 0.42, 0.42], runs * 2)
    fired = alarms(shifted)
    assert fired[:, 0].mean() >= 0.95


RISKS = np.array([0.02, 0.05, 0.3, 0.8])  # what the model says of each row, rightly
PER_DAY, TEST_ROWS = 200, 2000


def paired_cost_runs(runs: int, days: int, harm: bool, seed: int) -> tuple[np.ndarray, ...]:
    """Daily logs of PER_DAY decisions by a calibrated model (P(bad) one of RISKS; skip costs
    100 on a bad outcome, call costs 10, or 30 on a bad one), each run with its own test split
    of TEST_ROWS for the offline figures. With `harm`, from day 10 a share of the good outcomes turns
    bad, raising the cost per decision by 20 % of the offline cost. Returns, per run and day,
    the cost alert of the paired test (realised minus expected cost against the calibration
    gap) and of the unpaired one (realised cost against the offline cost)."""
    rng = np.random.default_rng(seed)

    def draw(shape):
        p = RISKS[rng.integers(0, len(RISKS), shape)]
        bad = rng.random(shape) < p
        call = p > 0.125
        realised = np.where(call, 10 + 20 * bad, 100 * bad)
        expected = np.where(call, 10 + 20 * p, 100 * p)
        worse = np.where(call, 20.0, 100.0) * ~bad  # what turning a good outcome bad adds
        return realised, expected, worse

    def reference(x: np.ndarray) -> tuple[np.ndarray, float]:
        """Each run's test-split figure of x (runs, 1) and its standard error (as the run's
        interval gives it; one value, the runs' average, as every run's interval is alike)."""
        return x.mean(1, keepdims=True), float(x.std(1, ddof=1).mean() / math.sqrt(x.shape[1]))

    realised, expected, worse = draw((runs, TEST_ROWS))
    parts = (family.PAIRED, 1 - family.PAIRED)  # the paired test's and the unpaired one's
    references = (reference(realised - expected), reference(realised))
    turn = 0.2 * np.abs(realised.mean(1, keepdims=True)) / worse.mean(1, keepdims=True)
    sums = np.zeros((2, runs, days))
    squares = np.zeros((2, runs, days))
    for day in range(days):
        r, e, w = draw((runs, PER_DAY))
        if harm and day >= 9:
            r = r + np.where(rng.random(r.shape) < turn, w, 0.0)
        for i, x in enumerate((r - e, r)):
            sums[i, :, day], squares[i, :, day] = x.sum(1), (x**2).sum(1)
    n = PER_DAY * np.arange(1, days + 1.0)
    mean = sums.cumsum(2) / n
    sd = np.sqrt((squares.cumsum(2) / n - mean**2) * n / (n - 1))
    fired = []
    for i, part in enumerate(parts):
        estimate, se = references[i]
        alpha = family.BUDGET["cost"] * part
        low, _ = family.referenced_sequence(mean[i], sd[i], n, se, alpha, PER_DAY * 45)
        fired.append(low > estimate)
    return fired[0], fired[1]


def test_the_paired_cost_test_holds_its_share_and_catches_a_20_percent_harm():
    """Pooled over 1,000 runs each way, the two tests sharing the cost share as the monitor
    runs them (family.PAIRED to the paired test): with no change over 90 daily reads, a cost
    alert from either in at most the cost share (the test split's own error included); a +20 % cost
    harm from day 10 of 60 caught in at least 95 % of runs, more often than by the unpaired
    test alone (whose noise and reference also carry the inputs' spread)."""
    paired, unpaired = paired_cost_runs(1000, DAYS, False, 11)
    assert (paired | unpaired).any(axis=1).mean() <= family.BUDGET["cost"]
    paired, unpaired = paired_cost_runs(1000, 60, True, 12)
    caught = (paired | unpaired)[:, 9:].any(axis=1).mean()
    assert caught >= 0.95
    assert unpaired[:, 9:].any(axis=1).mean() < caught - 0.03


def test_the_referenced_sequence_is_the_likelihood_ratio_it_says_at_its_boundary():
    """At the sequence's edge the mixture's likelihood ratio, integrated numerically (the
    shift's prior as the convolution of the reference's normal error and a half-normal), is
    1 / alpha; with no reference error the half-width is the one-sided normal mixture's."""
    sd, n, s, alpha, tuned = 40.0, 3000.0, 1.5, 0.01, 5000
    _, high = family.referenced_sequence(np.array(0.0), np.array(sd), np.array(n), s, alpha, tuned)
    total = float(high) * n  # the sum of (x_i - y0) on the boundary
    log_bar = -math.log(alpha)
    tau2 = (2 * log_bar + math.log(2 * log_bar + 1)) * (sd**2 / tuned + s**2)
    tau = math.sqrt(tau2)

    v = np.linspace(-12, 12, 4001) * math.sqrt(s**2 + tau2)  # the shift, on a fine grid
    d = np.linspace(0, 12 * tau, 3001)
    # the data's likelihood given the shift v, up to a constant, and the two priors of v: the
    # reference's error, and that error plus a half-normal shift (their convolution, summed)
    likelihood = np.exp(v * total / sd**2 - n * v**2 / (2 * sd**2))
    null = stats.norm.pdf(v, 0, s)
    half = 2 * stats.norm.pdf(d, 0, tau) * (d[1] - d[0])
    half[[0, -1]] /= 2
    alt = np.array([stats.norm.pdf(x - d, 0, s) @ half for x in v])
    ratio = np.trapezoid(alt * likelihood, v) / np.trapezoid(null * likelihood, v)
    assert ratio == pytest.approx(1 / alpha, rel=1e-3)

    rho2 = (2 * log_bar + math.log(2 * log_bar + 1)) / tuned
    _, plain = family.referenced_sequence(
        np.array(0.0), np.array(sd), np.array(n), 0.0, alpha, tuned
    )
    c = n * rho2 + 1

    def one_sided(half: float) -> float:  # log of the one-sided normal mixture at the edge
        z = half * math.sqrt(n) / sd
        return (
            -0.5 * math.log(c)
            + z**2 * n * rho2 / (2 * c)
            + math.log(2)
            + stats.norm.logcdf(z * math.sqrt(n * rho2 / c))
        )

    assert one_sided(float(plain)) == pytest.approx(log_bar, abs=1e-6)


def test_the_referenced_sequence_holds_its_level_with_the_reference_error_at_every_read():
    """1,000 runs x 4 seeds of 90 daily reads of 100 skewed costs, each against a reference
    figure from its own 5,000 rows: the sequence carrying the reference's error passes the
    reference's estimate in at most its level, though the reference's error is as large as
    production's by day 50; a +10 % shift from day 10 is caught more often than by the union of
    a plain sequence and the reference's upper end at half the level each (the test before)."""
    alpha, per, days, rows, runs = 0.01, 100, 90, 5000, 1000
    truth = math.exp(3.5)  # of lognormal(3, 1)
    se = math.sqrt((math.exp(1) - 1) * math.exp(7) / rows)
    fired, caught, caught_union = [], [], []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        reference = truth + rng.normal(0, se, (runs, 1))  # each run's test-split figure
        sums, squares = np.zeros((2, runs, days)), np.zeros((2, runs, days))
        for day in range(days):
            x = rng.lognormal(3, 1, (runs, per))
            for harm in (0, 1):
                y = x + 0.1 * truth * (harm and day >= 9)
                sums[harm, :, day], squares[harm, :, day] = y.sum(1), (y**2).sum(1)
        n = per * np.arange(1, days + 1.0)
        mean = sums.cumsum(2) / n
        sd = np.sqrt((squares.cumsum(2) / n - mean**2) * n / (n - 1))
        low, _ = family.referenced_sequence(mean, sd, n, se, alpha, per * 45)
        union = family.confidence_sequence(mean[1], sd[1], n, alpha / 2)[0]
        union = union > reference + stats.norm.isf(alpha / 2) * se
        fired.append((low[0] > reference).any(1))
        caught.append((low[1] > reference)[:, 9:60].any(1))
        caught_union.append(union[:, 9:60].any(1))
    assert np.mean(fired) <= alpha
    assert np.mean(caught) > np.mean(caught_union) + 0.1
