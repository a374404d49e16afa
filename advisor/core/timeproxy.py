"""Features that only encode the date: calendar parts of the time column and values that move
on with time, found on the training rows so a model cannot learn months it will never see again.

Two kinds are caught. A *calendar part* is a feature that is, value for value, a part of the
date that names it (year, quarter, month, week of the year, day of the year, day of the month,
the date, year and month), read in any whole-hour time zone: the feature and the part each
determine the other on at least MATCH of the rows. Hour of the day and day of the week are not
parts that name a date (they recur every week), so they stay. A feature *moves on with time*
when, on the training rows in time order, most of the later third's values were never seen in
the earlier two thirds (outside their range for a number, a new level for a category) and, for
a number, its rank correlation with time is at least MONOTONE: a counter or a date as a number.
Tenure, age or an amount that merely drifts with time keeps its earlier range and stays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MATCH = 0.95  # share of rows on which a feature and a calendar part determine each other
UNSEEN = 0.5  # share of later training rows with a value never seen earlier
MONOTONE = 0.9  # |Spearman correlation| of a number with time
SAMPLE_ROWS = 50_000  # rows read at most (a seeded sample, kept in time order)
MAX_LEVELS = 400  # features with more distinct values are not compared with calendar parts
OFFSETS_HOURS = tuple(range(-12, 15))  # time zones a calendar part may be read in
POLICIES = ("drop", "keep")


def calendar_parts(stamps: pd.Series) -> dict[str, np.ndarray]:
    """The parts of each timestamp that name its date, as integer codes."""
    dt = stamps.dt
    days = stamps.to_numpy(dtype="datetime64[D]").astype(np.int64)
    iso = dt.isocalendar()
    return {
        "year": dt.year.to_numpy(),
        "quarter": (dt.year * 10 + dt.quarter).to_numpy(),
        "month": dt.month.to_numpy(),
        "year and month": (dt.year * 100 + dt.month).to_numpy(),
        "week of the year": iso["week"].to_numpy(dtype=np.int64),
        "day of the year": dt.day_of_year.to_numpy(),
        "day of the month": dt.day.to_numpy(),
        "date": days,
    }


def determined_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows whose `a` is the most common `a` among the rows with the same `b`."""
    pairs = pd.DataFrame({"a": a, "b": b}).value_counts()
    return float(pairs.groupby(level="b").max().sum() / len(a))


class CalendarParts:
    """The calendar parts of the training timestamps in every whole-hour time zone, computed
    once and only when a feature could be one (it is mostly determined by the UTC date)."""

    def __init__(self, stamps: pd.Series) -> None:
        self.stamps = stamps
        self.dates = stamps.to_numpy(dtype="datetime64[D]").astype(np.int64)
        sub_daily = bool((stamps.dt.normalize() != stamps).any())
        self.offsets = OFFSETS_HOURS if sub_daily else (0,)
        self._parts: dict[int, dict[str, np.ndarray]] = {}

    def at(self, hours: int) -> dict[str, np.ndarray]:
        if hours not in self._parts:
            self._parts[hours] = calendar_parts(self.stamps + pd.Timedelta(hours=hours))
        return self._parts[hours]


def matching_part(codes: np.ndarray, calendar: CalendarParts) -> str | None:
    """The calendar part (in some whole-hour time zone) that the feature codes encode, or None."""
    if len(np.unique(codes)) < 2 or determined_share(codes, calendar.dates) < 0.5:
        return None
    for hours in calendar.offsets:
        for name, part in calendar.at(hours).items():
            if len(np.unique(part)) < 2:
                continue
            if determined_share(codes, part) >= MATCH and determined_share(part, codes) >= MATCH:
                return name
    return None


def moves_on(values: pd.Series, kind: str, order_time: np.ndarray) -> str | None:
    """Why a feature's later values were never seen earlier in the training rows, or None."""
    cut = 2 * len(values) // 3
    early, late = values.iloc[:cut], values.iloc[cut:]
    if kind == "numeric":
        x_early = pd.to_numeric(early, errors="coerce").dropna()
        x_late = pd.to_numeric(late, errors="coerce").dropna()
        if x_early.empty or x_late.empty:
            return None
        outside = float(((x_late < x_early.min()) | (x_late > x_early.max())).mean())
        x = pd.to_numeric(values, errors="coerce")
        known = x.notna().to_numpy()
        rho = pd.Series(x.to_numpy()[known]).rank().corr(pd.Series(order_time[known]).rank())
        if outside >= UNSEEN and abs(rho) >= MONOTONE:
            return (
                f"{outside:.0%} of its later training values lie outside its earlier range and it "
                f"follows time (rank correlation {rho:+.2f})"
            )
        return None
    known = late.dropna()
    if known.empty:
        return None
    unseen = float((~known.isin(set(early.dropna()))).mean())
    if unseen >= UNSEEN:
        return f"{unseen:.0%} of its later training rows carry a value never seen earlier"
    return None


def time_proxies(
    frame: pd.DataFrame,
    features: dict[str, str],
    time_column: str,
    time_unit: str | None,
    train_share: float = 0.6,
) -> dict[str, str]:
    """Each feature that only encodes the date, with why, read on the earliest `train_share`
    of the rows by time (the training split): column -> reason."""
    order = np.argsort(frame[time_column].to_numpy(), kind="stable")
    rows = order[: max(1, round(len(order) * train_share))]
    if len(rows) > SAMPLE_ROWS:
        keep = np.random.default_rng(0).choice(len(rows), SAMPLE_ROWS, replace=False)
        rows = rows[np.sort(keep)]
    train = frame.iloc[rows]
    times = train[time_column]
    stamps = pd.to_datetime(times) if time_unit is None else None
    calendar = CalendarParts(stamps) if stamps is not None else None
    order_time = (
        stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if stamps is not None
        else pd.to_numeric(times).to_numpy(dtype=float)
    )
    found: dict[str, str] = {}
    for column, kind in features.items():
        values = train[column]
        if calendar is not None and values.nunique(dropna=True) <= MAX_LEVELS:
            codes = pd.factorize(values, use_na_sentinel=True)[0]
            part = matching_part(codes, calendar)
            if part is not None:
                found[column] = f"it is the {part} of {time_column!r}"
                continue
        why = moves_on(values, kind, order_time)
        if why is not None:
            found[column] = why
    return found
