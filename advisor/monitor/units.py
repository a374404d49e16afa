"""Units counted by sorting, not hashing: which row is each unit's first, and each unit's code in
order of first appearance, from a stable sort of the units' 64-bit keys. At ten million rows a
sort holds a few arrays of 8 bytes a row, where pandas' `drop_duplicates`, `groupby` and
`factorize` build hash tables several times that size. Every missing unit counts as one unit,
as in `drop_duplicates`; `codes` gives it -1, as `factorize` does."""

from __future__ import annotations

import numpy as np
import pandas as pd


def keys(units) -> tuple[np.ndarray, np.ndarray]:
    """Each unit as a 64-bit key (equal units, equal keys) and where it is missing: integer
    units as they are (the scan's hashes), others by their position among the distinct values."""
    series = units if isinstance(units, pd.Series) else pd.Series(units)
    missing = series.isna().to_numpy()
    if series.dtype.kind in "iu":
        numpy_dtype = getattr(series.dtype, "numpy_dtype", series.dtype)
        values = series.to_numpy(dtype=numpy_dtype, na_value=0)
        return np.ascontiguousarray(values).view(np.uint64), missing
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return codes.astype(np.int64).view(np.uint64), missing


def _sorted(keys_: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys at `rows` in a stable sort, their rows, and where each distinct key starts."""
    order = np.argsort(keys_[rows], kind="stable")
    at = rows[order]
    del order
    sorted_keys = keys_[at]
    start = np.ones(len(at), dtype=bool)
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=start[1:])
    return sorted_keys, at, start


def first_rows(keys_: np.ndarray, missing: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of the rows at positions `rows` (ascending), each unit's first, ascending: the rows
    `drop_duplicates` on the unit keeps (every missing unit as one)."""
    rows = np.asarray(rows, dtype=np.int64)
    gone = missing[rows]
    present = rows[~gone] if gone.any() else rows
    _, at, start = _sorted(keys_, present)
    firsts = at[start]
    if gone.any():
        firsts = np.append(firsts, rows[gone][0])
    return np.sort(firsts)


def firsts_by_unit(
    keys_: np.ndarray, missing: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Of the rows at `rows` (ascending) with a unit: the distinct unit keys, sorted, and the
    row where each first appears."""
    rows = np.asarray(rows, dtype=np.int64)
    present = rows[~missing[rows]]
    sorted_keys, at, start = _sorted(keys_, present)
    return sorted_keys[start], at[start]


def codes(units) -> tuple[np.ndarray, int]:
    """Each row's unit code in order of first appearance (-1: missing) and the number of
    units: what `pd.factorize(units)` gives, by a sort."""
    keys_, missing = keys(units)
    rows = np.flatnonzero(~missing)
    sorted_keys, at, start = _sorted(keys_, rows)
    del sorted_keys
    group = np.cumsum(start) - 1  # each sorted row's distinct key, in key order
    first = at[start]
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    out = np.full(len(keys_), -1, dtype=np.int64)
    out[at] = rank[group]
    return out, len(first)
