"""Features binned once for the rule search: numbers into quantile bins, categories into levels.

Numbers get at most MAX_BINS quantile bins of their known values plus a missing bin;
categories their MAX_LEVELS most frequent levels (compared as text) plus "other" plus
missing. Codes are uint8, so every candidate condition is a set of bins.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

MAX_BINS = 32
MAX_LEVELS = 30
QUANTILE_SAMPLE = 200_000
PARALLEL_ROWS = 100_000  # below this, threads cost more than they save


@cache
def counting_pool() -> ThreadPoolExecutor:
    """Two counting threads, shared by every search in the process."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="advisor-rules")


@dataclass
class BinnedFeature:
    """One feature's bin codes (uint8) and how to turn a set of bins into a condition."""

    name: str
    kind: str
    codes: np.ndarray
    n_bins: int
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    levels: tuple = ()
    values: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> BinnedFeature:
        """The same bins on a subset of the rows (binning is done once per fit)."""
        values = None if self.values is None else self.values[rows]
        return BinnedFeature(
            self.name, self.kind, self.codes[rows], self.n_bins, self.edges, self.levels, values
        )

    @property
    def missing_bin(self) -> int:
        return self.n_bins - 1

    @property
    def n_values(self) -> int:
        """Bins that hold known values (numeric: value bins; categorical: levels + other)."""
        return self.n_bins - 1


def numeric_edges(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Upper bin edges: every distinct known value when few, else at most MAX_BINS quantiles."""
    known = values[~np.isnan(values)]
    if len(known) > QUANTILE_SAMPLE:
        known = rng.choice(known, QUANTILE_SAMPLE, replace=False)
    distinct = np.unique(known)
    if len(distinct) <= MAX_BINS:
        return distinct[:-1]
    qs = np.linspace(0, 1, MAX_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(known, qs, method="inverted_cdf"))
    return edges[edges < distinct[-1]]


def bin_numeric(name: str, values: np.ndarray, edges: np.ndarray) -> BinnedFeature:
    """Quantile bins of known values by `edges`, then a missing bin."""
    codes = np.searchsorted(edges, values, side="left").astype(np.uint8)
    n_bins = len(edges) + 2
    codes[np.isnan(values)] = n_bins - 1
    return BinnedFeature(name, "numeric", codes, n_bins, edges=edges, values=values)


def bin_categorical(name: str, column: pd.Series) -> BinnedFeature:
    """The most frequent levels (compared as text), then "other", then missing."""
    raw_codes, uniques = pd.factorize(column, use_na_sentinel=True)
    raw_codes = np.asarray(raw_codes)
    text = [str(u) for u in uniques]
    counts = np.bincount(raw_codes[raw_codes >= 0], minlength=len(text))
    by_text: dict[str, int] = {}
    for t, c in zip(text, counts, strict=True):
        by_text[t] = by_text.get(t, 0) + int(c)
    ranked = sorted(by_text.items(), key=lambda kv: (-kv[1], kv[0]))
    levels = tuple(t for t, c in ranked[:MAX_LEVELS] if c > 0)
    position = {t: i for i, t in enumerate(levels)}
    other, missing = len(levels), len(levels) + 1
    lookup = np.array([position.get(t, other) for t in text] + [missing], dtype=np.uint8)
    codes = lookup[np.where(raw_codes >= 0, raw_codes, len(text))]
    return BinnedFeature(name, "categorical", codes, len(levels) + 2, levels=levels)


def bin_frame(
    frame: pd.DataFrame, kinds: Mapping[str, str], random_state: int | None = 0
) -> list[BinnedFeature]:
    """Bin every feature of `frame` (kinds: numeric, boolean or categorical).

    Edges are chosen in column order (one seeded generator); the codes of large frames are
    computed on two threads, since numpy's searchsorted releases the GIL.
    """
    rng = np.random.default_rng(random_state)
    jobs = []
    for name, kind in kinds.items():
        col = frame[name]
        if kind == "categorical":
            jobs.append((bin_categorical, (name, col)))
        else:
            values = _as_float(col)
            jobs.append((bin_numeric, (name, values, numeric_edges(values, rng))))
    if len(frame) < PARALLEL_ROWS:
        return [fn(*args) for fn, args in jobs]
    return list(counting_pool().map(lambda job: job[0](*job[1]), jobs))


def _as_float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(col.astype(object), errors="coerce").to_numpy(dtype=float)
