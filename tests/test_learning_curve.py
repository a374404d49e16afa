"""The learning curve of a sampled fit: its a + b / sqrt(n) extrapolation, and a verdict that
does not call a sample free when the rows left out could still buy a saving."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.analysis.learning_curve import _verdict, extrapolate
from advisor.stats.interval import Interval


def test_the_extrapolation_recovers_a_curve_of_its_own_shape():
    rows = np.array([25_000.0, 50_000.0, 100_000.0])
    costs = np.column_stack([5.6 + 20 / np.sqrt(rows), 3.0 + 0 * rows])
    got = extrapolate(rows, costs, 1_200_000)
    assert got == pytest.approx([5.6 + 20 / np.sqrt(1_200_000), 3.0])


def test_a_flat_last_doubling_still_quotes_what_all_rows_could_buy():
    """The 2M-row run: 100k sampled rows looked flat (+0.0018 for the last doubling), yet a
    fit on all 1.2M training rows saved 0.08 a decision; the extrapolation's interval allowed
    it, and the verdict must say so instead of "costs little"."""
    flat = Interval(0.0018, -0.03, 0.035)
    more = Interval(-0.045, -0.12, 0.02)
    said = _verdict(False, flat, more, 100_000, 1_200_000, "USD")
    assert "no longer improves measurably" in said
    assert "all 1,200,000 training rows" in said
    assert "could still save up to" in said and "costs little" not in said
    nothing = _verdict(False, flat, Interval(0.004, 0.001, 0.01), 100_000, 1_200_000, "USD")
    assert "costs little" in nothing and "could still save" not in nothing
    every_row = _verdict(False, flat, more, 100_000, 100_000, "USD")
    assert "Extrapolated" not in every_row
