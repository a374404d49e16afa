"""The normal interval of a mean, for large test splits where the bootstrap costs seconds and
adds nothing.

A bootstrap percentile interval of a mean and the normal interval (mean ± 1.96 standard
errors) differ, to first order, by a shift of each end of about skewness / sqrt(rows) x
(1.96² - 1) / 6 standard errors. With |skewness| / sqrt(rows) at most SKEW_LIMIT that shift is
under 0.05 standard errors: less than the Monte Carlo error of a percentile end from 2,000
resamples (about 0.06 standard errors). On a split large enough for the bootstrap to cost
seconds (LARGE_ROWS rows, resampled one at a time), the evaluation gives the calibration gaps
and the per-row probability metrics the normal interval when every overall gap and metric
passes that test (else the bootstrap for all); a calibration band whose mean fails it (the
lowest band of a rare outcome) is bootstrapped on its own few thousand rows, not the whole
split. `tests/test_large_sample.py` checks both claims against the bootstrap and by coverage
pooled over many seeds.
"""

from __future__ import annotations

import numpy as np

from advisor.stats.interval import Interval

LARGE_ROWS = 50_000  # from here 2,000 resamples of the rows take about a second or more
SKEW_LIMIT = 0.1  # |skewness| / sqrt(rows): the normal and percentile ends within 0.05 SE
Z = 1.959963984540054  # the standard normal's 97.5 % quantile
NORMAL_INTERVAL = (
    f"normal interval of a mean (at least {LARGE_ROWS:,} test rows, each mean's |skewness| / "
    f"sqrt(rows) at most {SKEW_LIMIT:g}; a calibration band beyond it is bootstrapped on its "
    "own rows)"
)


def skew_ratios(values: np.ndarray) -> np.ndarray:
    """|skewness| / sqrt(rows) of each column of `values` (rows x columns; 0 for a constant
    column): how far from normal the sampling distribution of its mean is."""
    values = _matrix(values)
    n = len(values)
    centred = values - values.mean(axis=0)
    m2 = np.einsum("ij,ij->j", centred, centred) / n
    m3 = np.einsum("ij,ij,ij->j", centred, centred, centred) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = np.where(m2 > 0, np.abs(m3) / np.maximum(m2, 1e-300) ** 1.5, 0.0)
    return skew / np.sqrt(max(n, 1))


def near_normal(values: np.ndarray) -> bool:
    """Whether every column's mean is near enough normal for `mean_intervals`."""
    values = _matrix(values)
    return len(values) > 1 and bool((skew_ratios(values) <= SKEW_LIMIT).all())


def mean_intervals(values: np.ndarray) -> list[Interval]:
    """Each column's mean with its normal 95 % interval; the standard error is the bootstrap's
    (the population standard deviation of the rows over sqrt(rows))."""
    values = _matrix(values)
    means = values.mean(axis=0)
    se = values.std(axis=0) / np.sqrt(len(values))
    return [
        Interval(float(m), float(m - Z * s), float(m + Z * s))
        for m, s in zip(means, se, strict=True)
    ]


def _matrix(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values
