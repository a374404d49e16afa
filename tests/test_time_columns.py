"""Time columns as users have them: UTC offsets, naive timestamps, dates and numeric time."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

from advisor.cli.main import main
from advisor.core.errors import InputError
from advisor.core.timecolumn import months_between, normalise_time

HOUR = pd.Timedelta(hours=1)


def _normalise(values, unit=None):
    return normalise_time(pd.Series(values), "t", "d.csv", unit)


def test_z_suffix_and_a_fixed_offset_become_naive_utc():
    values, unit, notes = _normalise(["2024-03-01T10:00:00Z", "2024-03-01T11:30:00Z"])
    assert unit is None and values.dt.tz is None
    assert list(values) == [pd.Timestamp("2024-03-01 10:00"), pd.Timestamp("2024-03-01 11:30")]
    assert notes and "UTC" in notes[0]

    values, _, notes = _normalise(["2024-03-01T10:00:00+02:00", "2024-03-01T00:30:00+02:00"])
    assert list(values) == [pd.Timestamp("2024-03-01 08:00"), pd.Timestamp("2024-02-29 22:30")]
    assert "converted to UTC" in notes[0]


def test_mixed_offsets_are_converted_and_naive_values_counted():
    raw = ["2024-03-01T10:00:00Z", "2024-03-01T12:00:00+02:00", "2024-03-01T05:00:00-05:00"]
    values, _, notes = _normalise(raw)
    assert list(values) == [pd.Timestamp("2024-03-01 10:00")] * 3
    assert "mixes UTC offsets" in notes[0] and "without an offset" not in notes[0]

    values, _, notes = _normalise([*raw, "2024-03-01 10:00:00", "2024-03-02"])
    assert values.iloc[3] == pd.Timestamp("2024-03-01 10:00")
    assert values.iloc[4] == pd.Timestamp("2024-03-02")
    assert "2 without an offset were taken as UTC" in notes[0]


def test_naive_timestamps_and_dates_are_kept_as_they_are():
    values, unit, notes = _normalise(["2024-03-01 10:00:00", None, "2024-03-02 09:15:00"])
    assert unit is None and notes == []
    assert values.iloc[2] == pd.Timestamp("2024-03-02 09:15") and pd.isna(values.iloc[1])
    values, _, notes = _normalise(["2024-03-01", "2024-02-29"])
    assert list(values) == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-02-29")]
    assert notes == []


def test_a_timezone_aware_datetime_column_is_converted():
    stamps = pd.Series(pd.date_range("2024-06-01 12:00", periods=3, freq="h", tz="Europe/Berlin"))
    values, unit, notes = normalise_time(stamps, "t", "frame")
    assert unit is None and values.dt.tz is None
    assert values.iloc[0] == pd.Timestamp("2024-06-01 10:00")  # CEST is UTC+2
    assert "Europe/Berlin" in notes[0]


def test_numbers_are_an_ordering_in_their_own_unit():
    values, unit, notes = _normalise([3, 1, 2, None])
    assert unit == "period" and values.dtype == float
    assert "own units" in notes[0] and len(notes) == 1
    values, unit, notes = _normalise([3, 1, 2], unit="week")
    assert unit == "week" and notes == []


def test_unix_time_is_read_when_the_unit_says_so_and_hinted_otherwise():
    seconds = [1_700_000_000, 1_700_003_600]
    values, unit, _ = _normalise(seconds, unit="epoch_seconds")
    assert unit is None
    assert list(values) == [
        pd.Timestamp("2023-11-14 22:13:20"),
        pd.Timestamp("2023-11-14 23:13:20"),
    ]
    millis, _, _ = _normalise([s * 1000 for s in seconds], unit="epoch_milliseconds")
    assert list(millis) == list(values)
    _, unit, notes = _normalise(seconds)
    assert unit == "period" and any("time_unit: epoch_seconds" in n for n in notes)


@pytest.mark.parametrize(
    ("values", "unit", "message"),
    [
        ([None, None], None, "is empty"),
        ([True, False], None, "true/false"),
        ([1.0, np.inf], None, "infinite"),
        (["2024-01-01", "soon"], None, "not a timestamp: 'soon'"),
        (["2024-01-01", "2024-01-02"], "day", "is for a numeric time column"),
        ([1e300, 1.0], "epoch_seconds", "too large"),
    ],
)
def test_unreadable_time_is_an_input_error(values, unit, message):
    with pytest.raises(InputError, match=message) as err:
        _normalise(values, unit)
    assert str(err.value).startswith("d.csv: time column 't'") or "time_unit" in str(err.value)


def test_months_between_matches_the_calendar():
    assert months_between(pd.Timestamp("2025-01-01") - pd.Timestamp("2024-01-01"), None) == (
        pytest.approx(366 / (365.25 / 12))
    )
    assert months_between(30.0, "day") == pytest.approx(30 / 30.4375)
    assert months_between(2.0, "quarter") == pytest.approx(6.0)
    assert months_between(5.0, "period") is None


N = 2000  # the test split (400 rows) then holds two drift windows of 200 rows
START = pd.Timestamp("2024-01-01")
OFFSETS = np.array([0, 2, -5])  # hours east of UTC, cycling over the rows


def _local_text(utc: pd.DatetimeIndex, fmt: str) -> list[str]:
    """Each UTC instant written in a cycling local offset, with its suffix."""
    out = []
    for t, h in zip(utc, OFFSETS[np.arange(len(utc)) % 3], strict=True):
        local = (t + h * HOUR).strftime(fmt)
        out.append(local + ("Z" if h == 0 else f"{h:+03d}:00"))
    return out


def _time_column(kind: str) -> tuple[list, str | None]:
    """(values as written in the CSV, time_unit); row i is hour i (or day i) after START."""
    utc = pd.date_range(START, periods=N, freq="h")
    index = np.arange(N)
    seconds = (utc - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
    return {
        "utc-z": (list(utc.strftime("%Y-%m-%dT%H:%M:%SZ")), None),
        "offset+02": (list((utc + 2 * HOUR).strftime("%Y-%m-%dT%H:%M:%S+02:00")), None),
        "mixed-offsets": (_local_text(utc, "%Y-%m-%dT%H:%M:%S"), None),
        "naive": (list(utc.strftime("%Y-%m-%d %H:%M:%S")), None),
        "dates": (list(pd.date_range(START, periods=N, freq="D").strftime("%Y-%m-%d")), None),
        "period-index": (list(index // 4), None),
        "week-index": (list(index // 10), "week"),
        "epoch-seconds": (list(seconds), "epoch_seconds"),
        "epoch-millis": (list(seconds * 1000), "epoch_milliseconds"),
    }[kind]


KINDS = [
    "utc-z",
    "offset+02",
    "mixed-offsets",
    "naive",
    "dates",
    "period-index",
    "week-index",
    "epoch-seconds",
    "epoch-millis",
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_time_runs_end_to_end(tmp_path: Path, kind: str):
    values, unit = _time_column(kind)
    frame = synthetic_frame(N, seed=2)
    frame["when"] = values
    frame.sample(frac=1, random_state=4).to_csv(tmp_path / "d.csv", index=False)
    body = f"""
        name: timed
        data: d.csv
        target: outcome
        time: when
        {f"time_unit: {unit}" if unit else ""}
        costs:
          matrix:
            "no": {{"no": 0, "yes": 10}}
            "yes": {{"no": 100, "yes": 30}}
        options: {{bootstrap_resamples: 200}}
        """
    (tmp_path / "c.yaml").write_text(textwrap.dedent(body))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["analyze", str(tmp_path / "c.yaml"), "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    [json_path] = out.rglob("result.json")
    data = json.loads(json_path.read_text())

    numeric = kind.endswith("-index")
    parse = float if numeric else pd.Timestamp
    split = data["data"]["split"]
    assert split["method"] == "time-ordered on 'when'"
    assert parse(split["train"]["to"]) <= parse(split["valid"]["from"])
    assert parse(split["valid"]["to"]) <= parse(split["test"]["from"])
    if not numeric and kind != "dates":  # the UTC instants 60% of the way through
        assert split["train"]["to"] == str(START + (round(0.6 * N) - 1) * HOUR)
        assert split["test"]["from"] == str(START + round(0.8 * N) * HOUR)

    drift = data["drift"]
    assert drift["assessable"] and len(drift["windows"]) >= 2
    windows = drift["windows"]
    assert sum(w["n"] for w in windows) == split["test"]["rows"]
    starts = [parse(w["start"]) for w in windows]
    assert starts == sorted(starts) and parse(windows[0]["start"]) == parse(split["test"]["from"])
    since = [w["since_training"] for w in windows]
    assert all(s > 0 for s in since) and since == sorted(since)
    if kind == "period-index":  # periods of unknown length: no months, the stated default cadence
        assert drift["since_training_unit"] == "periods"
        assert all(w["months_since_training"] is None for w in windows)
        assert drift["cadence"]["method"] == "default"
        assert any("own units" in w for w in data["data"]["warnings"])
    elif kind == "week-index":
        assert drift["since_training_unit"] == "weeks"
        assert windows[0]["months_since_training"] == pytest.approx(since[0] * 7 / 30.4375)
    else:
        assert drift["since_training_unit"] == "months"
        assert windows[0]["months_since_training"] == pytest.approx(since[0])
    if kind in ("utc-z", "offset+02", "mixed-offsets"):
        assert any("UTC" in w for w in data["data"]["warnings"])
    assert 0.25 <= drift["cadence"]["retrains_per_month"] <= 4
