"""An estimate with its 95 % interval: the one shape every sample figure takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.core.record import Record


@dataclass(frozen=True)
class Interval(Record):
    """`estimate` with the interval `[low, high]`; the bounds are None when no replicate was
    finite (written as `{estimate, low, high}`)."""

    estimate: float | None
    low: float | None
    high: float | None

    @classmethod
    def unknown(cls) -> Interval:
        """No estimate at all (e.g. a share of a value that is not positive)."""
        return cls(None, None, None)

    @property
    def known(self) -> bool:
        return self.low is not None and self.high is not None

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of zero."""
        return self.known and (self.low > 0 or self.high < 0)

    @classmethod
    def from_dict(cls, data: Mapping, *, where: str | None = None) -> Interval:
        return cls(data.get("estimate"), data.get("low"), data.get("high"))


@dataclass(frozen=True)
class Histogram(Record):
    """Counts between consecutive edges (len(edges) == len(counts) + 1)."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


def quantile_interval(values: np.ndarray, q: float, level: float = 0.95) -> dict:
    """The q-quantile of `values` with a distribution-free interval from order statistics:
    ranks r and s with Binomial(n, q) probability at least `level` of the quantile between."""
    from scipy import stats

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return {"estimate": None, "low": None, "high": None}
    tail = (1 - level) / 2
    r = int(max(stats.binom.ppf(tail, n, q), 1))
    s = int(min(stats.binom.ppf(1 - tail, n, q) + 1, n))
    return {"estimate": float(np.quantile(x, q)), "low": float(x[r - 1]), "high": float(x[s - 1])}
