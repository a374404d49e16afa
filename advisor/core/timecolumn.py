"""The time column as users have it, normalised to one of two shapes downstream code can trust.

Timestamps (naive, dated, or with `Z` / `+02:00` / mixed UTC offsets) become tz-naive UTC
datetime64; numbers become a float ordering in the column's own unit (`time_unit`: day, week,
month, quarter, year or period), or timestamps when the unit says they are Unix time.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from advisor.core.errors import InputError

DAYS_PER_MONTH = 365.25 / 12
# Numeric orderings and the days in one unit (None: periods of unknown length).
ORDERING_UNITS: dict[str, float | None] = {
    "day": 1.0,
    "week": 7.0,
    "month": DAYS_PER_MONTH,
    "quarter": 365.25 / 4,
    "year": 365.25,
    "period": None,
}
EPOCH_UNITS = {"epoch_seconds": "s", "epoch_milliseconds": "ms"}
TIME_UNITS = (*ORDERING_UNITS, *EPOCH_UNITS)
# Plausible Unix times (2000 to 2100), for a hint when numbers look like them.
_EPOCH_RANGE = {"epoch_seconds": (9.46e8, 4.1e9), "epoch_milliseconds": (9.46e11, 4.1e12)}
_OFFSET = re.compile(
    r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)\s*$", re.IGNORECASE
)


def check_time_unit(unit: object, where: str = "time_unit") -> str | None:
    """The unit if it is one advisor knows (or None), else an InputError listing the choices."""
    if unit is None or unit in TIME_UNITS:
        return unit
    raise InputError(f"expected one of {', '.join(TIME_UNITS)}, got {unit!r}", where=where)


def normalise_time(
    series: pd.Series, column: str, where: str, unit: str | None = None
) -> tuple[pd.Series, str | None, list[str]]:
    """(values, ordering unit or None for timestamps, warnings) for the case's time column.

    Timestamps come back tz-naive in UTC; numeric orderings as float. Missing values stay
    missing (the caller drops those rows); anything unreadable is an InputError.
    """
    if series.notna().sum() == 0:
        raise InputError(f"time column {column!r} is empty (every value is missing)", where=where)
    if pd.api.types.is_bool_dtype(series):
        raise InputError(f"time column {column!r} holds true/false, not times", where=where)
    if pd.api.types.is_numeric_dtype(series):
        return _numeric_time(series, column, where, unit)
    if unit is not None:
        kind = "timestamps" if pd.api.types.is_datetime64_any_dtype(series) else "text"
        raise InputError(
            f"time_unit {unit!r} is for a numeric time column, but {column!r} holds {kind}",
            where=where,
        )
    if pd.api.types.is_datetime64_any_dtype(series):
        if series.dt.tz is None:
            return series, None, []
        note = _tz_note(column, series.dt.tz)
        return series.dt.tz_convert("UTC").dt.tz_localize(None), None, [note]
    return _text_time(series, column, where)


def _numeric_time(
    series: pd.Series, column: str, where: str, unit: str | None
) -> tuple[pd.Series, str | None, list[str]]:
    values = series.astype(float)
    if np.isinf(values.to_numpy()).any():
        raise InputError(f"time column {column!r} holds an infinite value", where=where)
    if unit in EPOCH_UNITS:
        try:
            stamps = pd.to_datetime(values, unit=EPOCH_UNITS[unit])
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            raise InputError(
                f"time column {column!r} holds values too large for {unit}", where=where
            ) from None
        note = f"Time column {column!r} was read as Unix time ({unit.replace('_', ' ')}, UTC)."
        return stamps, None, [note]
    notes = []
    if unit is None:
        unit = "period"
        notes.append(
            f"Time column {column!r} holds numbers: they order the rows, and drift is reported "
            "in the column's own units. Set time_unit (day, week, month, quarter or year) to "
            "get a retraining cadence from the data."
        )
        lo, hi = values.min(), values.max()
        integral = bool(np.all(np.mod(values.dropna().to_numpy(), 1) == 0))
        for epoch, (low, high) in _EPOCH_RANGE.items():
            if integral and low <= lo and hi < high:
                first = pd.to_datetime(lo, unit=EPOCH_UNITS[epoch])
                notes.append(
                    f"Time column {column!r} looks like Unix time ({first:%Y-%m-%d} on); set "
                    f"time_unit: {epoch} to read it as timestamps."
                )
    return values, unit, notes


def _text_time(series: pd.Series, column: str, where: str) -> tuple[pd.Series, None, list[str]]:
    notes = []
    try:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # mixed UTC offsets, or offsets beside naive values
        parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        text = series.dropna().astype(str)
        naive = int((~text.str.contains(_OFFSET)).sum())
        notes.append(
            f"Time column {column!r} mixes UTC offsets; every timestamp was converted to UTC"
            + (f" ({naive:,} without an offset were taken as UTC)." if naive else ".")
        )
    else:
        if getattr(parsed.dt, "tz", None) is not None:
            notes.append(_tz_note(column, parsed.dt.tz))
    bad = parsed.isna() & series.notna()
    if bad.any():
        raise InputError(
            f"time column {column!r} has a value that is not a timestamp: {series[bad].iloc[0]!r}",
            where=where,
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed, None, notes


def _tz_note(column: str, tz: object) -> str:
    if str(tz) in ("UTC", "UTC+00:00"):
        return f"Time column {column!r} holds UTC timestamps; they are used as UTC."
    return f"Time column {column!r} holds timestamps in {tz}; they were converted to UTC."


def time_text(value: object) -> str:
    """A time value as the report shows it: a timestamp, or a number without float noise."""
    if isinstance(value, float | np.floating | int | np.integer):
        v = float(value)
        return str(int(v)) if math.isfinite(v) and v.is_integer() else f"{v:.6g}"
    return str(pd.Timestamp(value))


def months_between(delta: object, unit: str | None) -> float | None:
    """A time difference in months: timedelta for timestamps, a number in `unit` otherwise.

    None when the unit's length is unknown (`period`).
    """
    if unit is None:
        return float(delta / np.timedelta64(1, "D")) / DAYS_PER_MONTH
    days = ORDERING_UNITS.get(unit)
    return None if days is None else float(delta) * days / DAYS_PER_MONTH
