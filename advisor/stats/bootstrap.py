"""The bootstrap every stage shares: resampling weights, replicates of means, and intervals.

Resampling n rows with replacement is the same as multinomial counts over the rows, so the
mean of any per-row series over a resample is one matrix product with those counts. Using the
same seed for several series gives paired replicates (the same resampled rows).

When the rows are a time series (the case has a time column), neighbouring rows share
conditions, single-row resampling understates the spread, and its intervals are too narrow.
A `Resampler` then draws whole blocks of consecutive time (days, weeks, ...): the moving parts
are the same, with blocks in place of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.record import Record
from advisor.stats.interval import Interval

CHUNK = 250
CHUNK_CELLS = 10_000_000  # resamples x units held at once: about 80 MB of counts
MAX_DISTINCT_ROWS = 4096  # up to this many distinct rows, resample their counts, not the rows
MIN_BLOCKS = 30  # fewest blocks for a block bootstrap; with fewer, rows are resampled
CALENDAR_UNITS = (("hour", "h"), ("day", "D"), ("week", "W"), ("month", "M"))
NUMERIC_WIDTHS = tuple(m * 10**e for e in range(-3, 10) for m in (1, 2, 5))


def interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> Interval:
    """The estimate with its percentile interval from bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(float(estimate), None, None)
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def bootstrap_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of resampling counts (how often each of n units is drawn), shape (chunk, n)."""
    for counts in _weight_chunks(n, resamples, seed):
        yield counts.copy()


def _weight_chunks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """`bootstrap_weights` in one reused buffer, for a caller done with each chunk before it
    asks for the next: a fresh 80 MB a chunk cost as much as drawing it (page faults)."""
    rng = np.random.default_rng(seed)
    small = np.int32 if n < 2**31 else np.int64  # half the bytes to draw
    size = min(CHUNK, max(1, CHUNK_CELLS // n), resamples)
    buffer = np.empty((size, n), dtype=np.float64)
    # bincount counts intp; handed int32 it makes an intp copy first, a fresh allocation each
    # time (page faults) that cost twice the counting: one row's draws are widened in place
    wide = np.empty(n, dtype=np.intp)
    done = 0
    while done < resamples:
        b = min(size, resamples - done)
        draws = rng.integers(0, n, size=(b, n), dtype=small)
        counts = buffer[:b]
        for i in range(b):  # one resample at a time: its counts stay in cache
            np.copyto(wide, draws[i])
            counts[i] = np.bincount(wide, minlength=n)
        yield counts
        done += b


def bootstrap_means(
    values: np.ndarray, resamples: int, seed: int, blocks: np.ndarray | None = None
) -> np.ndarray:
    """Bootstrap replicates of the column means of `values` (rows x series): (resamples, series).

    `blocks` (a block number 0..B-1 per row) resamples whole blocks; each replicate's mean is
    then the mean over the rows of the blocks drawn.
    """
    values = _matrix(values)
    if blocks is None:
        return resampled_together(len(values), resamples, seed, [values], [])[0][0]
    blocks = np.asarray(blocks, dtype=np.int64)
    n_blocks = int(blocks.max()) + 1
    sums = np.column_stack(
        [
            np.bincount(blocks, weights=values[:, j], minlength=n_blocks)
            for j in range(values.shape[1])
        ]
    )
    return _block_means(sums, np.bincount(blocks, minlength=n_blocks), resamples, seed)


@dataclass(frozen=True)
class Banded:
    """Per-row values (rows x k) and the band of each row (-1: none), for `banded_means`."""

    values: np.ndarray
    bands: np.ndarray
    n_bands: int


def banded_means(
    values: np.ndarray,
    bands: np.ndarray,
    n_bands: int,
    resamples: int,
    seed: int,
    blocks: np.ndarray | None = None,
) -> np.ndarray:
    """`bootstrap_means` of the (rows x n_bands * k) matrix whose column b * k + j holds
    values[:, j] on the rows of band b and 0 on the others (band -1: no band), without
    building that matrix, from the rows' own k columns: the same replicates (up to rounding)
    as that matrix with its rows in band order, which on the row path is a reordering of the
    rows and on the blocks and distinct-rows paths changes nothing.
    """
    values = _matrix(values)
    bands = np.asarray(bands, dtype=np.int64)
    n, k = values.shape
    if blocks is None:
        return resampled_together(n, resamples, seed, [], [Banded(values, bands, n_bands)])[1][0]
    blocks = np.asarray(blocks, dtype=np.int64)
    n_blocks = int(blocks.max()) + 1
    inside = bands >= 0
    cell = blocks[inside] * n_bands + bands[inside]
    sums = np.column_stack(
        [
            np.bincount(cell, weights=values[inside, j], minlength=n_blocks * n_bands)
            for j in range(k)
        ]
    ).reshape(n_blocks, n_bands * k)
    return _block_means(sums, np.bincount(blocks, minlength=n_blocks), resamples, seed)


def _block_means(sums: np.ndarray, sizes: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Replicates of the mean per row when whole blocks are drawn: each block's sums (blocks x
    series) and rows, weighted by how often each block is drawn."""
    sizes = sizes.astype(float)
    return np.vstack(
        [(w @ sums) / (w @ sizes)[:, None] for w in _weight_chunks(len(sizes), resamples, seed)]
    )


def resampled_together(
    n: int, resamples: int, seed: int, plain: list[np.ndarray], banded: list[Banded]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rows resampled one at a time: replicates of the column means of each `plain` matrix
    and the `banded_means` of each `Banded`, each exactly what it gives alone with this seed;
    those with many distinct rows read one shared pass over the counts, each chunk drawn once.

    A band's rows are resampled in band order (a stable sort): the counts of n rows are
    exchangeable, so this is the same bootstrap, and each band reads one contiguous slice of
    every chunk instead of gathering its columns.
    """
    plain = [_matrix(v) for v in plain]
    plain_out: list = [_distinct_means(distinct_rows(v), n, resamples, seed) for v in plain]
    banded_out: list = []
    by_band = []
    for entry in banded:
        values, bands = _matrix(entry.values), np.asarray(entry.bands, dtype=np.int64)
        few = _distinct_banded(values, bands, entry.n_bands)
        banded_out.append(_distinct_means(few, n, resamples, seed))
        if few is not None:
            by_band.append(None)
            continue
        order = np.argsort(bands, kind="stable")
        edges = np.searchsorted(bands[order], np.arange(entry.n_bands + 1))
        by_band.append((values[order], edges))
    plain_parts = {i: [] for i, out in enumerate(plain_out) if out is None}
    band_parts = {i: [] for i, out in enumerate(banded_out) if out is None}
    if plain_parts or band_parts:
        for w in _weight_chunks(n, resamples, seed):
            for i, parts in plain_parts.items():
                parts.append(w @ plain[i] / n)
            for i, parts in band_parts.items():
                parts.append(_band_sums(w, *by_band[i]) / n)
    for i, parts in plain_parts.items():
        plain_out[i] = np.vstack(parts)
    for i, parts in band_parts.items():
        banded_out[i] = np.vstack(parts)
    return plain_out, banded_out


def _band_sums(w: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each chunk row's weighted sums of `values` per band, the rows in band order (band b
    from edges[b] to edges[b + 1]): (chunk, bands * columns)."""
    sums = np.empty((len(w), len(edges) - 1, values.shape[1]))
    for b in range(len(edges) - 1):
        sums[:, b] = w[:, edges[b] : edges[b + 1]] @ values[edges[b] : edges[b + 1]]
    return sums.reshape(len(w), -1)


def _matrix(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values


def _distinct_means(
    distinct: tuple[np.ndarray, np.ndarray] | None, n: int, resamples: int, seed: int
) -> np.ndarray | None:
    """Replicates of the means from few distinct rows and their counts (one multinomial draw
    a resample); None when there are many."""
    if distinct is None:
        return None
    rows, counts = distinct
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    return draws @ rows / n


def _spread(values: np.ndarray, bands: np.ndarray, n_bands: int) -> np.ndarray:
    """The matrix `banded_means` stands for, for a few rows."""
    n, k = values.shape
    out = np.zeros((n, n_bands, k))
    inside = np.flatnonzero(bands >= 0)
    out[inside, bands[inside]] = values[inside]
    return out.reshape(n, n_bands * k)


def _distinct_banded(
    values: np.ndarray, bands: np.ndarray, n_bands: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """`distinct_rows` of the banded matrix, from its distinct (band, values) rows: the same
    rows in the same order and the same counts whenever both find few rows (the banded rows
    are tested on a prefix, the matrix's on a spread sample first, so at the margin one may
    find them where the other does not)."""
    if len(values) <= MAX_DISTINCT_ROWS:
        return None
    head = 4 * MAX_DISTINCT_ROWS
    for column in _spread(values[:head], bands[:head], n_bands).T:
        if len(np.unique(column)) > MAX_DISTINCT_ROWS:
            return None
    # a row outside every band, or with only zeros, is the banded matrix's row of zeros
    zero = (bands < 0) | ~values.any(axis=1)
    key = np.column_stack([np.where(zero, -1, bands), np.where(zero[:, None], 0.0, values)])
    found = unique_rows(key, MAX_DISTINCT_ROWS)
    if found is None:
        return None
    pairs, _, counts = found
    spread = _spread(pairs[:, 1:], pairs[:, 0].astype(np.int64), n_bands)
    rows, where = np.unique(spread, axis=0, return_inverse=True)
    return rows, np.bincount(where.ravel(), weights=counts, minlength=len(rows))


def distinct_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct rows of `values` and how often each occurs, when there are at most
    MAX_DISTINCT_ROWS of them (per-row costs under a plain cost matrix take a handful of
    values); None otherwise.

    A resample's mean depends only on how many of its n draws land on each distinct row, and
    those counts are one multinomial draw: the same bootstrap distribution as resampling the
    rows, at a cost that does not grow with n.
    """
    if len(values) <= MAX_DISTINCT_ROWS:
        return None
    # Rows spread over the series first: more distinct rows there means more in all, found
    # without sorting every row (a column can pass alone while the rows jointly do not).
    spread = values[:: max(1, len(values) // (4 * MAX_DISTINCT_ROWS))]
    if len(np.unique(spread, axis=0)) > MAX_DISTINCT_ROWS:
        return None
    found = unique_rows(values, MAX_DISTINCT_ROWS)
    return None if found is None else (found[0], found[2])


def unique_rows(values: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`np.unique(values, axis=0)`'s distinct rows (in its order), each row's index among them
    and their counts (as floats), or None when there are more than `most`. Each column is
    coded by its own sorted values and the codes are combined into one integer key a column
    at a time: the same lexicographic order, at the cost of sorting numbers, not whole rows
    (a sixth of the time at 200,000 rows)."""
    n, k = values.shape
    key, radix = np.zeros(n, dtype=np.int64), 1
    for j in range(k):
        levels, code = np.unique(values[:, j], return_inverse=True)
        if len(levels) > most:
            return None
        if radix > 2**62 // len(levels):  # keep the key within int64: renumber it
            _, key = np.unique(key, return_inverse=True)
            key, radix = key.ravel(), int(key.max()) + 1
            if radix > most:
                return None
        key = key * len(levels) + code.ravel()
        radix *= len(levels)
    distinct, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if len(distinct) > most:
        return None
    inverse = inverse.ravel()
    return values[first], inverse, np.bincount(inverse, minlength=len(first)).astype(float)


@dataclass(frozen=True)
class BootstrapScheme(Record):
    """How a split's rows were resampled, as written beside every interval (key `bootstrap`)."""

    method: str
    unit: str | None
    blocks: int | None
    resamples: int
    seed: int
    note: str


@dataclass(frozen=True)
class Resampler:
    """How a split's rows are resampled: one row at a time, or blocks of consecutive time."""

    resamples: int
    seed: int
    blocks: np.ndarray | None = None
    unit: str | None = None
    note: str = "rows resampled one at a time"

    def means(self, values: np.ndarray, seed_offset: int = 0) -> np.ndarray:
        """Replicates of the column means of `values` (rows as in the split)."""
        return bootstrap_means(values, self.resamples, self.seed + seed_offset, self.blocks)

    def banded_means(
        self, values: np.ndarray, bands: np.ndarray, n_bands: int, seed_offset: int = 0
    ) -> np.ndarray:
        """`means` of each band's values apart (`banded_means`): (resamples, n_bands * k)."""
        return banded_means(
            values, bands, n_bands, self.resamples, self.seed + seed_offset, self.blocks
        )

    def means_and_banded(
        self, values: np.ndarray, banded: list[Banded], seed_offset: int = 0
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`means` of `values` and `banded_means` of each entry, each what it gives alone
        with this seed; rows resampled one at a time share one pass over the counts."""
        if self.blocks is not None:
            apart = [self.banded_means(e.values, e.bands, e.n_bands, seed_offset) for e in banded]
            return self.means(values, seed_offset), apart
        seed = self.seed + seed_offset
        plain, bands = resampled_together(len(values), self.resamples, seed, [values], banded)
        return plain[0], bands

    def subset(self, rows: np.ndarray, seed_offset: int = 0) -> Resampler:
        """The same scheme on some of the rows (e.g. one time window); rows when too few blocks."""
        seed = self.seed + seed_offset
        if self.blocks is None:
            return Resampler(self.resamples, seed)
        _, blocks = np.unique(self.blocks[rows], return_inverse=True)
        if blocks.max() + 1 < MIN_BLOCKS:
            return Resampler(self.resamples, seed, note="rows (too few time blocks)")
        return Resampler(self.resamples, seed, blocks, self.unit, self.note)

    @property
    def n_blocks(self) -> int | None:
        return None if self.blocks is None else int(self.blocks.max()) + 1

    @property
    def scheme(self) -> BootstrapScheme:
        return BootstrapScheme(
            "rows" if self.blocks is None else "blocks",
            self.unit,
            self.n_blocks,
            self.resamples,
            self.seed,
            self.note,
        )

    def to_dict(self) -> dict:
        return self.scheme.to_dict()


def time_blocks(times: pd.Series) -> tuple[np.ndarray, str] | None:
    """Block numbers for time-ordered rows: the longest calendar unit (hour, day, week, month)
    or, for numeric time, the widest round width, that still gives MIN_BLOCKS blocks; None
    when even the shortest gives fewer."""
    if pd.api.types.is_datetime64_any_dtype(times):
        stamps = pd.to_datetime(times)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        for name, freq in reversed(CALENDAR_UNITS):
            periods = pd.PeriodIndex(stamps, freq=freq).asi8
            _, blocks = np.unique(periods, return_inverse=True)
            if blocks.max() + 1 >= MIN_BLOCKS:
                return blocks, name
        return None
    x = pd.to_numeric(times, errors="coerce").to_numpy(dtype=float)
    for width in reversed(NUMERIC_WIDTHS):
        _, blocks = np.unique(np.floor(x / width), return_inverse=True)
        if blocks.max() + 1 >= MIN_BLOCKS:
            return blocks, f"{width:g} time units"
    return None


def resampler_for(times: pd.Series | None, resamples: int, seed: int) -> Resampler:
    """Rows when there is no time column; blocks of time when there is one and it has enough
    distinct periods; rows with a note otherwise."""
    if times is None:
        return Resampler(resamples, seed)
    found = time_blocks(times)
    if found is None:
        return Resampler(
            resamples,
            seed,
            note=f"rows: the time column spans fewer than {MIN_BLOCKS} periods of any length",
        )
    blocks, unit = found
    return Resampler(
        resamples,
        seed,
        blocks,
        unit,
        f"blocks of one {unit} resampled whole ({int(blocks.max()) + 1} blocks), because "
        "neighbouring rows of a time series are not independent",
    )
