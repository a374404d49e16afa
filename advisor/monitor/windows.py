"""The log cut into time windows (`--window 1d`: UTC days), and every measure per window and
over the whole log. The test's split and power are to date (cumulative); its effect is per
window and overall."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.errors import InputError
from advisor.monitor import arms, measures
from advisor.monitor.expectations import Expectations
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


def cut(frame: pd.DataFrame, width: pd.Timedelta) -> list[tuple[pd.Timestamp, np.ndarray]]:
    """(start, row positions) of each window holding rows; windows are whole multiples of the
    width since 1970-01-01 UTC, so 1d windows are UTC days."""
    step = width.value
    number = frame["ts"].to_numpy().astype("datetime64[ns]").astype(np.int64) // step
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
        (pd.Timestamp(int(v) * step), np.arange(a, b))
        for v, a, b in zip(values, starts, bounds, strict=True)
    ]


def label(start: pd.Timestamp, width: pd.Timedelta) -> str:
    """A window's name: its UTC date for whole days, else its start to the minute."""
    whole_days = width % pd.Timedelta(1, "D") == pd.Timedelta(0)
    return start.strftime("%Y-%m-%d" if whole_days else "%Y-%m-%dT%H:%MZ")


def summarise(rows: pd.DataFrame, context: Context, seed: int) -> dict:
    """Every measure on a set of rows."""
    run = context.run
    out: dict = {"operations": measures.operations(rows, run.budget_ms)}
    if context.noise is not None and run.reference is not None:
        present = [f for f in run.reference.binners if f in rows]
        clean = run.spec.clean(rows, columns=present) if present else pd.DataFrame()
        out["drift"] = measures.drift(clean, run.reference, context.noise, context.important)
    else:
        out["drift"] = {}
    out["policies"] = {}
    for i, (name, group) in enumerate(rows[rows["in_run"]].groupby("policy", sort=True)):
        expected = run.expected(name)
        out["policies"][name] = {
            "version": run.bundles[name]["version"],
            "rows": len(group),
            "mix": measures.decision_mix(
                group["decision"],
                run.costs.decisions,
                expected.get("decision_shares"),
                expected.get("rows"),
            ),
            "cost": measures.cost(
                group, run.costs, expected.get("cost_per_decision"), seed + 10 * i
            ),
        }
    out["shadow"] = arms.shadow(rows, run.costs, run.result.get("shadow"), seed + 7)
    return out


def measure(frame: pd.DataFrame, width: pd.Timedelta, context: Context) -> tuple[list, dict]:
    """Every window's measures, and the whole log's; the test's split and power are to date."""
    windows = []
    run = context.run
    cuts = cut(frame, width)
    to_date = arms.split_to_date(frame, [rows[-1] + 1 for _, rows in cuts], run.plan, context.share)
    for index, (start, rows) in enumerate(cuts):
        part = frame.iloc[rows]
        seed = context.seed + 1000 * (index + 1)
        window = {
            "index": index,
            "label": label(start, width),
            "start": start.isoformat() + "Z",
            "end": (start + width).isoformat() + "Z",
            "first": part["ts"].iloc[0].isoformat() + "Z",
            "last": part["ts"].iloc[-1].isoformat() + "Z",
            **summarise(part, context, seed),
        }
        if to_date is not None:
            effect = arms.effect(part, run.costs, run.plan, seed + 3)
            window["experiment"] = {**to_date[index], "effect": effect}
        else:
            window["experiment"] = None
        windows.append(window)
    overall = summarise(frame, context, context.seed)
    overall["experiment"] = None
    if to_date is not None:
        effect = arms.effect(frame, run.costs, run.plan, context.seed + 3)
        overall["experiment"] = {**to_date[-1], "effect": effect}
    return windows, overall


def in_run(frame: pd.DataFrame, bundles: Mapping[str, Mapping]) -> np.ndarray:
    """Rows decided by a policy of the run at the version the run holds."""
    versions = frame["policy"].map({name: meta["version"] for name, meta in bundles.items()})
    if "model_version" not in frame:
        return versions.notna().to_numpy()
    return (versions.notna() & (versions == frame["model_version"])).to_numpy()
