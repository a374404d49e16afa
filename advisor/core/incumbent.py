"""The incumbent: the decisions the system running today made for each row, read from a column.

A case names it with `incumbent: COLUMN` or `incumbent: {column: COLUMN, annual_upkeep: N}`
(what keeping it costs a year; zero when not said). Its values must be decision labels of the
cost matrix. Rows where it decided nothing are refused, with their count, unless
`incumbent_missing: skip`, which drops them before the split so that every policy is compared
on the rows the incumbent decided (the comparison stays paired). The column is never a feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.errors import InputError

MISSING = ("refuse", "skip")
KEEP = "keep-incumbent"  # the recommendation's option of keeping what runs today
SHOWN_VALUES = 5  # bad values named in a message at most


@dataclass(frozen=True)
class Incumbent:
    """Which column holds today's decisions, what keeping them costs a year, and what to do
    with rows it left undecided ("refuse" or "skip")."""

    column: str
    annual_upkeep: float = 0.0
    missing: str = "refuse"

    def to_dict(self) -> dict:
        return {"column": self.column, "annual_upkeep": self.annual_upkeep, "missing": self.missing}


def parse_incumbent(raw: object, missing: object = None, where: str = "incumbent") -> Incumbent:
    """An Incumbent from the case file's `incumbent:` (a column name or a mapping) and
    `incumbent_missing:`; anything else is an InputError naming the field."""
    if missing is None:
        missing = "refuse"
    if missing not in MISSING:
        raise InputError(f"expected 'refuse' or 'skip', got {missing!r}", where="incumbent_missing")
    if isinstance(raw, str) and raw:
        return Incumbent(raw, 0.0, str(missing))
    if not isinstance(raw, Mapping):
        raise InputError(
            f"expected a column name or {{column: ..., annual_upkeep: ...}}, got {raw!r}",
            where=where,
        )
    unknown = sorted(set(raw) - {"column", "annual_upkeep"})
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r}; known: ['annual_upkeep', 'column']", where=where
        )
    column = raw.get("column")
    if not isinstance(column, str) or not column:
        raise InputError(f"expected a column name, got {column!r}", where=f"{where}.column")
    upkeep = raw.get("annual_upkeep", 0.0)
    if (
        isinstance(upkeep, bool)
        or not isinstance(upkeep, int | float)
        or not math.isfinite(upkeep)
        or upkeep < 0
    ):
        raise InputError(
            f"expected a number >= 0 (money a year), got {upkeep!r}",
            where=f"{where}.annual_upkeep",
        )
    return Incumbent(column, float(upkeep), str(missing))


def check_incumbent(
    frame: pd.DataFrame, incumbent: Incumbent, decisions: tuple[str, ...], where: str
) -> tuple[np.ndarray, int]:
    """Which rows to keep (a boolean mask) and how many the incumbent left undecided.

    Values outside the cost matrix's decisions are refused, naming them; missing values are
    refused with their count unless the incumbent's `missing` is "skip"."""
    column = incumbent.column
    if column not in frame.columns:
        raise InputError(f"incumbent column {column!r} is not in the data (incumbent)", where=where)
    values = frame[column]
    absent = values.isna().to_numpy()
    labels = values[~absent].astype(str).str.strip()
    bad = sorted(set(labels.unique()) - set(decisions))
    if bad:
        shown = ", ".join(repr(v) for v in bad[:SHOWN_VALUES])
        more = f" and {len(bad) - SHOWN_VALUES} more" if len(bad) > SHOWN_VALUES else ""
        raise InputError(
            f"incumbent column {column!r} holds {shown}{more}, which are not decisions of the "
            f"cost matrix ({list(decisions)})",
            where=where,
        )
    count = int(absent.sum())
    if count and incumbent.missing != "skip":
        raise InputError(
            f"incumbent column {column!r} is missing on {count} of {len(frame)} rows; fill them "
            "or set incumbent_missing: skip to compare every policy on the rows it decided",
            where=where,
        )
    if count == len(frame):
        raise InputError(f"incumbent column {column!r} is missing on every row", where=where)
    return ~absent, count


def incumbent_codes(values: pd.Series, decisions: tuple[str, ...]) -> np.ndarray:
    """Decision codes of incumbent labels (UNDECIDED, -1, for a missing or unknown label)."""
    text = values.astype("string").str.strip()
    codes = pd.Categorical(text, categories=list(decisions)).codes
    return np.asarray(codes, dtype=np.int64)
