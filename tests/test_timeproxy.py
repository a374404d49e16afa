"""Features that only encode the date are found, warned about and left out; features that
merely correlate with time (tenure, age, an amount that grows) are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import advisor
from advisor.core.errors import InputError
from advisor.core.timeproxy import time_proxies

N = 6000
MONTHS = np.array(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
)


def frame(seed: int = 0) -> pd.DataFrame:
    """Hourly rows over most of a year; local calendar columns five hours behind the UTC time
    column, as in a flights table; and ordinary features, some drifting with time."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2023-01-02") + pd.to_timedelta(np.sort(rng.uniform(0, 320, N)), "D")
    when = pd.Series(when).dt.floor("h")
    local = when - pd.Timedelta(hours=5)
    step = np.arange(N) / N
    tenure = rng.gamma(2, 12, N) + 30 * step  # longer tenure later on: correlated, not a proxy
    out = pd.DataFrame(
        {
            "when": when,
            "year": local.dt.year,
            "month": local.dt.month,
            "day": local.dt.day,
            "month_name": MONTHS[local.dt.month.to_numpy() - 1],
            "week": local.dt.isocalendar().week.to_numpy(dtype=int),
            "period": local.dt.strftime("%Y-%m"),
            "hour": local.dt.hour,
            "weekday": local.dt.day_name(),
            "days_since_launch": (when - pd.Timestamp("2020-06-01")).dt.days + rng.normal(0, 2, N),
            "tenure": tenure,
            "age": rng.integers(18, 80, N) + 10 * step,
            "amount": rng.lognormal(4, 0.6, N) * (1 + 0.3 * step),  # prices rise over the year
            "plan": rng.choice(["basic", "plus"], N),
        }
    )
    out["outcome"] = np.where(rng.random(N) < 0.2 + 0.1 * (out["plan"] == "basic"), "yes", "no")
    return out


FEATURES = {
    c: "numeric" if pd.api.types.is_numeric_dtype(frame()[c]) else "categorical"
    for c in frame().columns
    if c not in {"when", "outcome"}
}


def test_calendar_parts_and_counters_are_caught_and_correlates_are_not():
    found = time_proxies(frame(), FEATURES, "when", None)
    assert set(found) == {"month", "day", "month_name", "week", "period", "days_since_launch"}
    assert found["month"] == "it is the month of 'when'"
    assert found["day"] == "it is the day of the month of 'when'"
    assert found["month_name"] == "it is the month of 'when'"
    assert "outside its earlier range" in found["days_since_launch"]
    # Hour and weekday recur every week; tenure, age and amount drift with time but keep their
    # earlier range; year is one value here (nothing to learn from it either way).
    for kept in ("hour", "weekday", "tenure", "age", "amount", "plan", "year"):
        assert kept not in found


def test_tenure_strongly_correlated_with_time_is_still_kept():
    data = frame(1)
    step = np.arange(N) / N
    data["tenure"] = 40 * step + np.random.default_rng(1).gamma(2, 10, N)
    rho = data["tenure"].rank().corr(pd.Series(np.arange(N)).rank())
    assert rho > 0.5  # clearly correlated with time
    assert "tenure" not in time_proxies(data, {"tenure": "numeric"}, "when", None)


def test_a_new_level_in_later_rows_is_caught_on_a_numeric_time_column():
    data = frame(2).assign(t=np.arange(N, dtype=float))
    data["release"] = np.where(np.arange(N) < 0.45 * N, "v1", "v2")  # v2 only in the late rows
    found = time_proxies(data, {"release": "categorical", "amount": "numeric"}, "t", "day")
    assert set(found) == {"release"} and "never seen earlier" in found["release"]


def _advise(data: pd.DataFrame, **kwargs) -> advisor.Result:
    return advisor.advise(
        data,
        target="outcome",
        costs={"fp": 10, "fn": 40},
        time="when",
        bootstrap_resamples=200,
        **kwargs,
    )


def test_the_analysis_warns_drops_them_by_default_and_keeps_them_on_request():
    data = frame(3)[["when", "month", "day", "hour", "tenure", "plan", "outcome"]]
    data["when"] = data["when"].astype(str)
    dropped = _advise(data).data["data"]
    assert set(dropped["schema"]["features"]) == {"hour", "tenure", "plan"}
    assert [(p["column"], p["used"]) for p in dropped["time_proxies"]] == [
        ("month", False),
        ("day", False),
    ]
    warned = [w for w in dropped["warnings"] if "only encodes the date" in w]
    assert len(warned) == 2 and "Column 'month'" in warned[0] and "left out" in warned[0]
    kept = _advise(data, time_features="keep").data["data"]
    assert {"month", "day"} <= set(kept["schema"]["features"])
    assert all(p["used"] for p in kept["time_proxies"])


def test_time_features_must_be_drop_or_keep():
    with pytest.raises(InputError, match="expected 'drop' or 'keep'"):
        _advise(frame(4), time_features="yes")
