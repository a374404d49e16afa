"""Bootstrap intervals against normal theory, and the paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.evaluate import bootstrap_means, interval


def test_bootstrap_interval_matches_normal_theory_on_a_large_sample():
    rng = np.random.default_rng(0)
    x = rng.exponential(50.0, size=20_000)
    reps = bootstrap_means(x, 2000, seed=1)[:, 0]
    ci = interval(x.mean(), reps)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(len(x))
    assert ci["low"] == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert ci["high"] == pytest.approx(x.mean() + half, abs=0.1 * half)


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
