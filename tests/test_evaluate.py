"""Bootstrap intervals against normal theory, and the paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.stats.bootstrap import bootstrap_means, interval, resampler_for, time_blocks


def test_bootstrap_interval_matches_normal_theory_on_a_large_sample():
    rng = np.random.default_rng(0)
    x = rng.exponential(50.0, size=20_000)
    reps = bootstrap_means(x, 2000, seed=1)[:, 0]
    ci = interval(x.mean(), reps)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(len(x))
    assert ci.low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert ci.high == pytest.approx(x.mean() + half, abs=0.1 * half)


def test_bootstrap_is_seeded_and_paired():
    rng = np.random.default_rng(2)
    a = rng.normal(10, 5, 3000)
    b = a + rng.normal(-0.3, 0.5, 3000)  # b tracks a closely: pairing narrows the difference
    reps = bootstrap_means(np.column_stack([a, b]), 1000, seed=7)
    np.testing.assert_array_equal(reps, bootstrap_means(np.column_stack([a, b]), 1000, seed=7))
    diff = reps[:, 1] - reps[:, 0]
    paired_sd = diff.std()
    unpaired_sd = np.sqrt(reps[:, 0].var() + reps[:, 1].var())
    assert paired_sd < unpaired_sd / 5
    assert paired_sd == pytest.approx(0.5 / np.sqrt(3000), rel=0.15)


def _day_effect_costs(rng, days: int = 60, per_day: int = 50) -> tuple[np.ndarray, pd.Series]:
    """Costs whose days differ (a shared daily effect): true mean 0, rows of a day correlated."""
    day = np.repeat(np.arange(days), per_day)
    costs = rng.normal(0, 1, days)[day] + rng.normal(0, 1, days * per_day)
    times = pd.Series(pd.Timestamp("2024-03-01") + pd.to_timedelta(day * 24 + 1, unit="h"))
    return costs, times


def test_block_bootstrap_covers_at_the_nominal_rate_where_rows_do_not():
    rng = np.random.default_rng(11)
    covered = {"rows": [], "blocks": []}
    for i in range(300):
        costs, times = _day_effect_costs(rng)
        blocks = resampler_for(times, 400, seed=i)
        assert blocks.unit == "day" and blocks.n_blocks == 60
        replicates = {"blocks": blocks.means(costs)[:, 0]}
        if i < 100:  # rows miss so clearly that fewer runs show it
            replicates["rows"] = bootstrap_means(costs, 400, seed=i)[:, 0]
        for name, reps in replicates.items():
            ci = interval(costs.mean(), reps)
            covered[name].append(ci.low <= 0.0 <= ci.high)
    # 300 runs: the binomial 99 % band around 95 % is about 91 % to 98 %; percentile
    # intervals from 60 blocks run a point or two narrow.
    assert 0.90 <= np.mean(covered["blocks"]) <= 0.985
    assert np.mean(covered["rows"]) < 0.5


def test_time_blocks_take_the_longest_unit_with_enough_blocks():
    hourly = pd.Series(pd.date_range("2024-01-01", periods=24 * 400, freq="h"))
    blocks, unit = time_blocks(hourly)
    assert unit == "week" and blocks.max() + 1 == 58  # 400 days: 13 months are too few
    numeric = pd.Series(np.arange(1000.0))
    blocks, unit = time_blocks(numeric)
    assert unit == "20 time units" and blocks.max() + 1 == 50
    assert time_blocks(pd.Series(pd.date_range("2024-01-01", periods=20, freq="h"))) is None
    assert resampler_for(None, 100, 0).blocks is None


@pytest.mark.parametrize(("columns", "levels"), [(1, 5), (3, 4), (40, 2), (70, 2)])
def test_unique_rows_are_numpys_in_numpys_order(columns, levels):
    """The few-distinct-rows path codes each column and combines the codes into one key (and
    renumbers the key before it would overflow): the rows, their order, each row's index and
    the counts are exactly `np.unique(axis=0)`'s, on which the multinomial draws depend."""
    from advisor.stats.bootstrap import unique_rows

    rng = np.random.default_rng(columns)
    values = rng.choice(np.linspace(-3, 7, levels), size=(20_000, columns))
    # many columns, few distinct rows: the columns past the sixth repeat the first six's
    # values, a few rows zeroed
    values[:, 6:] = values[:, np.arange(6, columns) % 6] * (rng.random((20_000, 1)) < 0.999)
    got = unique_rows(values, 4096)
    rows, inverse, counts = np.unique(values, axis=0, return_inverse=True, return_counts=True)
    assert got is not None
    np.testing.assert_array_equal(got[0], rows)
    np.testing.assert_array_equal(got[1], inverse.ravel())
    np.testing.assert_array_equal(got[2], counts)


def test_unique_rows_give_up_past_the_limit():
    from advisor.stats.bootstrap import unique_rows

    rng = np.random.default_rng(0)
    assert unique_rows(rng.integers(0, 3, size=(5000, 9)).astype(float), 4096) is None
    assert unique_rows(rng.normal(size=(5000, 1)), 4096) is None
    assert unique_rows(rng.integers(0, 2, size=(5000, 12)).astype(float), 4096) is not None
