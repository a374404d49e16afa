"""The bootstrap every stage shares: resampling weights, replicates of means, and intervals.

Resampling n rows with replacement is the same as multinomial counts over the rows, so the
mean of any per-row series over a resample is one matrix product with those counts. Using the
same seed for several series gives paired replicates (the same resampled rows).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CHUNK = 250
CHUNK_CELLS = 10_000_000  # resamples x rows held at once: about 80 MB of weights


def interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> dict:
    """`{estimate, low, high}` from bootstrap replicates (percentile interval)."""
    tail = (1 - level) / 2 * 100
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return {"estimate": float(estimate), "low": None, "high": None}
    low, high = np.percentile(finite, [tail, 100 - tail])
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def bootstrap_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of resampling weights (how often each row is drawn), shape (chunk, n)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(CHUNK, max(1, CHUNK_CELLS // n), resamples - done)
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of the column means of `values` (rows x series): (resamples, series)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    n = len(values)
    return np.vstack([w @ values / n for w in bootstrap_weights(n, resamples, seed)])
