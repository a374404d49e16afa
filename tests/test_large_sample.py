"""The normal interval of a mean on large test splits (`advisor.stats.large_sample`): its
closed form, its agreement with the bootstrap percentile interval where the gate lets it in,
its coverage at the gate's edge pooled over many seeds, and the evaluation's choice between
the two."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_calibration_gap import COSTS, two_policies

from advisor.analysis.calibration_gap import SEED_OFFSET, Gaps, calibration_gaps, gaps_of
from advisor.analysis.evaluate import _described, uses_normal_interval
from advisor.core.data import Part
from advisor.stats.bootstrap import Resampler, bootstrap_means, interval, resampler_for
from advisor.stats.large_sample import (
    LARGE_ROWS,
    NORMAL_INTERVAL,
    SKEW_LIMIT,
    mean_intervals,
    near_normal,
    skew_ratios,
)
from advisor.stats.probability_quality import metric_rows


def test_the_interval_is_the_normal_one_with_the_bootstraps_standard_error():
    x = np.random.default_rng(0).exponential(size=(1_000, 2)) * [1.0, 7.0]
    for column, got in zip(x.T, mean_intervals(x), strict=True):
        low, high = stats.norm.interval(0.95, column.mean(), column.std(ddof=0) / np.sqrt(1000))
        assert (got.estimate, got.low, got.high) == pytest.approx((column.mean(), low, high))


def test_skew_ratios_are_scipys_skewness_over_the_root_of_the_rows():
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.exponential(size=5_000), rng.normal(size=5_000), np.ones(5_000)])
    want = np.abs(stats.skew(x[:, :2], axis=0)) / np.sqrt(5_000)
    assert skew_ratios(x)[:2] == pytest.approx(want, rel=1e-9)
    assert skew_ratios(x)[2] == 0.0  # a constant column is not skewed


def test_rare_events_fail_the_gate_and_common_ones_pass():
    rng = np.random.default_rng(2)
    rare = (rng.random(2_000) < 0.002).astype(float)  # about 4 events: skewness 22 / 45
    common = (rng.random(2_000) < 0.3).astype(float)
    assert not near_normal(rare)
    assert near_normal(common)
    assert not near_normal(np.column_stack([common, rare]))  # every mean must pass


@pytest.mark.parametrize("seed", [3, 4])
def test_at_the_gate_the_ends_are_the_bootstraps_to_within_its_monte_carlo_error(seed):
    """50,000 rows of means as skewed as the gate allows (ratio about 0.09) and less: each end
    of the normal interval lies within 0.2 standard errors of the bootstrap percentile end
    from 2,000 resamples (the systematic part is under 0.05, the Monte Carlo part about 0.06
    per end)."""
    rng = np.random.default_rng(seed)
    n = LARGE_ROWS
    x = np.column_stack(
        [
            (rng.random(n) < 0.0025).astype(float) * 50,  # a rare cost: skewness about 20
            rng.lognormal(0, 1, n),
            rng.random(n) < 0.3,
            rng.normal(size=n),
        ]
    )
    ratios = skew_ratios(x)
    assert ratios.max() == pytest.approx(0.09, abs=0.01)
    assert near_normal(x)
    reps = bootstrap_means(x, 2_000, seed)
    for j, got in enumerate(mean_intervals(x)):
        want = interval(x[:, j].mean(), reps[:, j])
        se = x[:, j].std() / np.sqrt(n)
        assert abs(got.low - want.low) < 0.2 * se
        assert abs(got.high - want.high) < 0.2 * se


def test_coverage_at_the_gates_edge_pooled_over_4000_seeds():
    """Bernoulli means whose skewness / sqrt(rows) is at the limit (p = 0.046 at 2,000 rows):
    the interval covers the true rate about 95 % of the time, and neither end misses much
    more often than its 2.5 % (the normal ends' first-order error there is about 0.9 points
    a side)."""
    rng = np.random.default_rng(5)
    n, p, seeds = 2_000, 0.046, 4_000
    assert (1 - 2 * p) / np.sqrt(p * (1 - p)) / np.sqrt(n) == pytest.approx(SKEW_LIMIT, rel=0.05)
    rates = rng.binomial(n, p, size=seeds) / n
    se = np.sqrt(rates * (1 - rates) / n)
    below, above = rates + 1.96 * se < p, rates - 1.96 * se > p
    assert 1 - below.mean() - above.mean() == pytest.approx(0.95, abs=0.015)
    assert below.mean() < 0.045 and above.mean() < 0.045
    # the same as `mean_intervals` on one of those samples
    draws = (rng.random(n) < p).astype(float)
    got = mean_intervals(draws)[0]
    rate = draws.mean()
    assert got.high == pytest.approx(rate + stats.norm.ppf(0.975) * np.sqrt(rate * (1 - rate) / n))


def test_a_large_split_takes_the_normal_interval_and_agrees_with_the_bootstrap():
    """60,000 test rows, two policies: the gaps, bands and per-row metrics take the normal
    interval, named in the description, and every end lies within 10 % of the interval's width
    of the bootstrap's on the same rows (`calibration_gaps`, 2,000 resamples)."""
    n = 60_000
    y, probas, frame, codes, realised = two_policies(np.random.default_rng(6), n)
    resampler = Resampler(2_000, 7)
    gaps, bands, metrics, method = _described(
        Part(frame, y), realised, codes, probas, COSTS, resampler
    )
    assert method == NORMAL_INTERVAL
    boot_gaps, boot_bands = calibration_gaps(realised, codes, probas, COSTS, frame, resampler)
    pairs = [(gaps[n], boot_gaps[n]) for n in probas]
    for name in probas:
        assert [b["rows"] for b in bands[name]["bands"]] == [
            b["rows"] for b in boot_bands[name]["bands"]
        ]
        pairs += [
            (_interval(a), _interval(b))
            for a, b in zip(bands[name]["bands"], boot_bands[name]["bands"], strict=True)
        ]
    reps = resampler.means(metric_rows(y, probas), 17)
    scores = metric_rows(y, probas)
    for i, name in enumerate(probas):
        for j, metric in enumerate(("accuracy", "brier", "log_loss")):
            c = 3 * i + j
            pairs.append((metrics[name][metric], interval(scores[:, c].mean(), reps[:, c])))
    assert len(pairs) > 10
    for got, want in pairs:
        assert got.estimate == pytest.approx(want.estimate, rel=1e-12, abs=1e-12)
        width = want.high - want.low
        assert abs(got.low - want.low) < 0.1 * width
        assert abs(got.high - want.high) < 0.1 * width


def _interval(band: dict):
    from advisor.stats.interval import Interval

    return Interval(band["estimate"], band["low"], band["high"])


def test_small_splits_time_blocks_and_skewed_means_keep_the_bootstrap():
    n = LARGE_ROWS
    y, probas, frame, codes, realised = two_policies(np.random.default_rng(8), n)
    gaps = gaps_of(realised, codes, probas, COSTS, frame)
    scores = metric_rows(y, probas)
    assert uses_normal_interval(Resampler(2_000, 0), gaps, scores)
    assert not uses_normal_interval(Resampler(2_000, 0), gaps, scores[:-1])  # too few rows
    times = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) // 500, "D"))
    blocked = resampler_for(times, 2_000, 0)
    assert blocked.blocks is not None
    assert not uses_normal_interval(blocked, gaps, scores)
    skewed = scores.copy()
    skewed[:, 2] = 0.0
    skewed[:5, 2] = 30.0  # a log loss that is almost always 0 and 30 five times
    assert not uses_normal_interval(Resampler(2_000, 0), gaps, skewed)


def test_a_band_far_from_normal_is_bootstrapped_on_its_own_rows():
    """A rare outcome's lowest band (20,000 rows, about 1 in 500 costly: skewness / sqrt(rows)
    about 0.16) fails the test while the other band and the overall gap pass: that band's
    interval is the percentile interval of its own rows resampled, and it agrees with
    resampling every row (`summarise`) to within 10 % of the width; the other band's is the
    normal one."""
    rng = np.random.default_rng(9)
    low, high = 20_000, 40_000
    gap = np.concatenate(
        [(rng.random(low) < 0.002) * 50.0 - 0.1, (rng.random(high) < 0.3) * 50.0 - 14.0]
    )
    band = np.repeat([0, 1], [low, high])
    found = [
        {"decision": "skip", "from": None, "rows": low},
        {"decision": "skip", "from": 0.01, "rows": high},
    ]
    gaps = Gaps(("ml",), {"ml": gap}, {"ml": (found, band)})
    assert gaps.near_normal() and not near_normal(gap[:low]) and near_normal(gap[low:])
    resampler = Resampler(2_000, 4)
    _, bands = gaps.normal(resampler)
    got = [_interval(b) for b in bands["ml"]["bands"]]
    own = bootstrap_means(gap[:low], 2_000, 4 + SEED_OFFSET)[:, 0]
    assert got[0] == interval(gap[:low].mean(), own)
    assert got[1] == mean_intervals(gap[low:])[0]
    reps, band_reps = resampler.means_and_banded(gaps.plain, gaps.banded, SEED_OFFSET)
    _, every_row = gaps.summarise(reps, band_reps)
    for mine, want in zip(got, every_row["ml"]["bands"], strict=True):
        width = want["high"] - want["low"]
        assert abs(mine.low - want["low"]) < 0.1 * width
        assert abs(mine.high - want["high"]) < 0.1 * width
