"""Outcomes not missing at random (`advisor.monitor.arrival`): the chi-square statistic against
scipy's, and by simulation pooled over seeds at a realistic horizon (60 daily windows of 150
decisions): when defaults arrive before repayments the realised cost on the arrived rows is
biased and the hold catches it; when arrival is at random (even when it falls with a row's age
and the decision mix moves over time) the hold stays quiet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from advisor.monitor.arrival import HOLD_LEVEL, arrival, chi_square

DAYS, PER_DAY, SEEDS = 60, 150, 200
DECISIONS = ["approve", "reject"]
COST = np.array([[0.0, 1.0], [5.0, 0.0]])  # rows: outcome good/bad; columns: the decision


def test_the_statistic_is_pearsons_chi_square_of_the_two_way_table():
    rng = np.random.default_rng(1)
    total = rng.integers(40, 200, size=(6, 4))
    got = rng.binomial(total, rng.uniform(0.3, 0.7, size=(6, 4)))
    chi2, df = chi_square(got, total)
    for i in range(6):
        table = np.vstack([got[i], total[i] - got[i]])
        ref = stats.chi2_contingency(table, correction=False)
        assert chi2[i] == pytest.approx(ref.statistic)
        assert df[i] == ref.dof


def production(rng, defaults_first: bool):
    """A log of DAYS windows: each row's risk p, its decision, its outcome and whether the
    outcome has arrived (older windows more complete)."""
    n = DAYS * PER_DAY
    window = np.repeat(np.arange(DAYS), PER_DAY)
    p = rng.beta(1.5, 8, n) * np.where(window > DAYS // 2, 1.3, 1.0)  # the mix moves
    decision = (p > 0.2).astype(int)
    bad = rng.random(n) < p
    age = (DAYS - window) / DAYS
    chance = 0.25 + 0.5 * age  # at random given the row's age
    if defaults_first:
        chance = np.where(bad, 0.95, chance)
    arrived = rng.random(n) < chance
    return window, p, decision, bad.astype(int), arrived


def simulate(defaults_first: bool):
    held, any_window, bias = [], [], []
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        window, p, decision, bad, arrived = production(rng, defaults_first)
        risk = COST[1, decision] * p + COST[0, decision] * (1 - p)
        windows, to_date = arrival(arrived, decision, DECISIONS, risk, window, DAYS)
        held.append(to_date[-1]["selective"])
        any_window.append(
            any(w["selective"] for w in windows) or any(t["selective"] for t in to_date)
        )
        cost = COST[bad, decision]
        bias.append(cost[arrived].mean() - cost.mean())
    return np.mean(held), np.mean(any_window), np.mean(bias)


def test_defaults_arriving_first_bias_the_cost_and_are_held():
    held, _, bias = simulate(defaults_first=True)
    assert bias > 0.1  # the arrived rows overstate the cost per decision
    assert held >= 0.98


def test_outcomes_arriving_at_random_are_not_held():
    held, any_window, bias = simulate(defaults_first=False)
    assert abs(bias) < 0.01
    assert held <= 0.02
    assert any_window <= 0.1
    assert HOLD_LEVEL <= 0.001


def test_bands_are_quintiles_within_each_window():
    from advisor.monitor.arrival import bands

    risk = np.array([5, 1, 3, 2, 4, 10, 30, 20, 50, 40, 7.0])
    window = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    assert list(bands(risk, window, 3)) == [4, 0, 2, 1, 3, 0, 2, 1, 4, 3, -1]


def test_bands_ranked_per_window_match_the_whole_sort():
    """Rows in window order are ranked a window at a time (memory of a window, not the log):
    the same bands as the one sort of every row, ties and missing risks included."""
    from advisor.monitor.arrival import bands

    rng = np.random.default_rng(11)
    for _ in range(50):
        n, size = int(rng.integers(1, 400)), int(rng.integers(1, 9))
        window = np.sort(rng.integers(0, size, n))
        risk = np.round(rng.normal(size=n), 1)
        risk[rng.random(n) < 0.2] = np.nan
        # The windows' blocks out of order (each window's rows in their order): the whole sort.
        shuffle = np.argsort(rng.permutation(size)[window], kind="stable")
        whole = np.empty(n, dtype=np.int64)
        whole[shuffle] = bands(risk[shuffle], window[shuffle], size)
        by_window = bands(risk, window, size)
        assert np.array_equal(by_window, whole)
