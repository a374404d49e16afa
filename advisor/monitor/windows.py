"""The log cut into time windows (`--window 1d`: UTC days), and every measure per window and
over the whole log, each on the columns it reads of the scanned log (`advisor.monitor.scan`). The test's split and power are to date (cumulative); its effect is per
window and overall."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.errors import InputError
from advisor.monitor import calculators
from advisor.monitor.expectations import Expectations
from advisor.monitor.scan import Scan, give_back_memory
from advisor.stats.psi import NoiseLevels

MAX_WINDOWS = 1000
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(min|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"min": "min", "m": "min", "h": "h", "d": "D", "w": "W"}
_WORDS = {"min": "minute", "h": "hour", "D": "day", "W": "week"}


def parse_window(text: str) -> tuple[pd.Timedelta, str]:
    """`30min`, `6h`, `1d`, `1w` -> the width and how a person says it ('1 day')."""
    match = _WINDOW.match(str(text))
    if not match:
        raise InputError(
            f"cannot read {text!r}: expected a number and min, h, d or w (e.g. 1d, 6h)",
            where="--window",
        )
    amount, unit = float(match.group(1)), _UNITS[match.group(2).lower()]
    width = pd.Timedelta(amount * (7 if unit == "W" else 1), "D" if unit == "W" else unit)
    if width < pd.Timedelta(1, "min"):
        raise InputError("the window must be at least one minute", where="--window")
    word = _WORDS[unit] + ("" if amount == 1 else "s")
    return width, f"{amount:g} {word}"


@dataclass(frozen=True)
class Context:
    """What every window's measures need besides its rows."""

    run: Expectations
    important: set[str]
    noise: NoiseLevels | None
    share: float
    seed: int


def cut(stamps: pd.Series, width: pd.Timedelta) -> list[tuple[pd.Timestamp, int, int, int]]:
    """(start, number, first row, one past the last row) of each window holding rows, from the
    log's timestamps in time order; windows are whole multiples of the width since 1970-01-01
    UTC (`number` counts them from there), so 1d windows are UTC days."""
    step = width.value
    number = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64) // step
    first, last = int(number.min()), int(number.max())
    if last - first + 1 > MAX_WINDOWS:
        raise InputError(
            f"the log spans {last - first + 1:,} windows of this width (at most "
            f"{MAX_WINDOWS:,}); choose a longer window",
            where="--window",
        )
    values, starts = np.unique(number, return_index=True)
    bounds = [*starts[1:], len(number)]
    return [
        (pd.Timestamp(int(v) * step), int(v), int(a), int(b))
        for v, a, b in zip(values, starts, bounds, strict=True)
    ]


def label(start: pd.Timestamp, width: pd.Timedelta) -> str:
    """A window's name: its UTC date for whole days, else its start to the minute."""
    whole_days = width % pd.Timedelta(1, "D") == pd.Timedelta(0)
    return start.strftime("%Y-%m-%d" if whole_days else "%Y-%m-%dT%H:%MZ")


def fitted(context: Context, scan: Scan) -> list[calculators.Measure]:
    """Every measure, fitted on the run's expectations."""
    return [
        calculators.Operations().fit(context.run),
        calculators.Drift(context.important, context.noise, scan.drift).fit(context.run),
        calculators.Mix().fit(context.run),
        calculators.Cost().fit(context.run),
        calculators.Shadow().fit(context.run),
        calculators.Test(context.share).fit(context.run),
        calculators.EstimatedCost().fit(context.run),
    ]


def read(
    scan: Scan, fit: list[calculators.Measure], name: str, at: tuple, index: int | None, seed: int
) -> calculators.Reading:
    """Every measure's result for one window (rows `at` = (number, first, stop)) or the whole
    log; each measure sees only the columns it reads."""
    number, first, stop = at
    results = []
    for m in fit:
        rows = scan.rows(m.reads(), first, stop)
        results.append(m.calculate(calculators.Window(name, rows, index, seed, number)))
        del rows
        if index is None:  # the whole log: what this measure freed goes back before the next
            give_back_memory()
    operations, drift, mix, cost, shadow, test, estimated = results
    estimated = estimated.judged(drift, set(drift.features))
    return calculators.Reading(name, operations, drift, mix, cost, shadow, test, estimated)


def measure(
    scan: Scan, width: pd.Timedelta, context: Context
) -> tuple[list[dict], dict, list[calculators.Reading], calculators.Reading]:
    """Every window's readings and the whole log's, as monitor.json has them and as typed
    results; the test's split and power are to date."""
    stamps = scan.light["ts"]
    cuts = cut(stamps, width)
    fit = fitted(context, scan)
    ends = [stop for _, _, _, stop in cuts]
    for m in fit:
        m.prepare(scan.rows(m.reads()), ends)
        give_back_memory()
    windows, readings = [], []
    for index, (start, number, first, stop) in enumerate(cuts):
        name = label(start, width)
        seed = context.seed + 1000 * (index + 1)
        reading = read(scan, fit, name, (number, first, stop), index, seed)
        readings.append(reading)
        windows.append(
            {
                "index": index,
                "label": name,
                "start": start.isoformat() + "Z",
                "end": (start + width).isoformat() + "Z",
                "first": stamps.iloc[first].isoformat() + "Z",
                "last": stamps.iloc[stop - 1].isoformat() + "Z",
                **reading.to_dict(),
            }
        )
    whole = read(scan, fit, "all", (None, 0, None), None, context.seed)
    return windows, whole.to_dict(), readings, whole


def in_run(frame: pd.DataFrame, bundles: Mapping[str, Mapping]) -> np.ndarray:
    """Rows decided by a policy of the run at the version the run holds."""
    versions = frame["policy"].map({name: meta["version"] for name, meta in bundles.items()})
    if "model_version" not in frame:
        return versions.notna().to_numpy()
    return (versions.notna() & (versions == frame["model_version"])).to_numpy()
