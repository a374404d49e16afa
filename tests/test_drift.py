"""Drift: PSI against a hand computation, windows, and the retraining cadence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advisor.analysis.drift import (
    assess_drift,
    not_assessable,
    retraining_cadence,
    time_windows,
    window_count,
)
from advisor.core.data import Schema
from advisor.core.features import FeatureSpec
from advisor.stats.interval import Interval
from advisor.stats.psi import Binner, noise_threshold, psi, psi_flag, training_reference


def test_psi_equals_a_hand_computation():
    expected = [50, 30, 20]
    actual = [30, 30, 40]
    hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + 0 + (0.4 - 0.2) * math.log(0.4 / 0.2)
    assert psi(expected, actual) == pytest.approx(hand)
    assert psi(expected, expected) == 0.0
    assert psi_flag(0.05) == "stable" and psi_flag(0.1) == "moderate" and psi_flag(0.3) == "major"


def test_binner_uses_training_quantiles_and_categories():
    train = pd.Series(np.arange(100.0))
    b = Binner("numeric", bins=4).fit(train)
    assert b.counts(train).tolist() == [25, 25, 25, 25, 0]
    test = pd.Series([1.0, 30.0, 99.0, 200.0, np.nan])
    assert b.counts(test).tolist() == [1, 1, 0, 2, 1]  # the last bin is missing
    c = Binner("categorical").fit(pd.Series(["a", "b", "a", None]))
    assert c.counts(pd.Series(["a", "b", "z", None, "a"])).tolist() == [2, 1, 1, 1]


def test_binner_on_many_values_places_its_edges_from_a_sample_close_to_the_deciles():
    values = pd.Series(np.random.default_rng(3).normal(size=1_000_000))
    b = Binner("numeric").fit(values)
    shares = b.counts(values)[:-1] / len(values)
    assert len(shares) == 10
    assert np.abs(shares - 0.1).max() < 0.003  # a 200,000-value sample misses by ~0.07 pp
    again = Binner("numeric").fit(values)
    assert again.edges_.tolist() == b.edges_.tolist()  # the sample is seeded


def test_categorical_bins_read_text_codes_and_category_dtypes_alike():
    levels = ["b", "a", "a", None, "c", "a", "b"]
    text = Binner("categorical", levels=2).fit(pd.Series(levels))
    category = Binner("categorical", levels=2).fit(
        pd.Series(pd.Categorical(levels, categories=["a", "b", "c", "never"]))
    )
    assert text.levels_ == category.levels_ == {"a": 0, "b": 1}
    new = pd.Series(["c", "a", None, "zz", "b"])
    assert text.counts(new).tolist() == category.counts(new).tolist() == [1, 1, 2, 1]
    assert text.counts(pd.Series([None, None], dtype=object)).tolist() == [0, 0, 0, 2]


def test_psi_of_a_shifted_feature_by_hand():
    train = pd.Series(np.repeat([1.0, 2.0, 3.0, 4.0], 25))
    b = Binner("numeric", bins=4).fit(train)
    shifted = pd.Series(np.repeat([2.0, 3.0, 4.0, 4.0], 25))
    e, a = b.counts(train), b.counts(shifted)
    floor = 1e-4
    shares_e = np.maximum(e / e.sum(), floor)
    shares_a = np.maximum(a / a.sum(), floor)
    hand = sum((x - y) * math.log(x / y) for x, y in zip(shares_a, shares_e, strict=True))
    assert psi(e, a) == pytest.approx(hand)
    assert psi(e, a) > 0.25


def test_window_count():
    assert window_count(20000) == 12
    assert window_count(2400) == 8
    assert window_count(1800) == 6
    assert window_count(500) == 2  # windows of at least 200 rows
    assert window_count(399) == 1  # not two: nothing to compare


def _windows(advantages, se=5.0):
    """Mid-months and ML's advantage with its interval, one window each half month."""
    mids = [i * 0.5 for i in range(len(advantages))]
    return mids, [Interval(a, a - 1.96 * se, a + 1.96 * se) for a in advantages]


def test_cadence_from_a_decaying_advantage():
    adv = [100 - 4 * i for i in range(10)]  # loses 8 a month from 100: 10% in 1.25 months
    out = retraining_cadence(*_windows(adv, se=1.0))
    assert out.method == "decay"
    assert out.retrains_per_month == pytest.approx(0.8, rel=1e-6)


def test_cadence_default_when_flat_and_clamped_when_fast():
    flat = retraining_cadence(*_windows([50.0, 52.0, 49.0, 51.0, 50.0, 50.5]))
    assert flat.method == "default" and flat.retrains_per_month == 1.0
    fast = retraining_cadence(*_windows([100 - 30 * i for i in range(4)], se=1.0))
    assert fast.retrains_per_month == 4.0 and "clamped" in fast.reason
    drifted = retraining_cadence(*_windows([50.0] * 6), drift_after_months=0.5, drifted=["x"])
    assert drifted.method == "psi" and drifted.retrains_per_month == 2.0


def test_no_time_column_uses_the_stated_default():
    out = not_assessable("no time column")
    assert out.assessable is False
    assert out.retrains_per_month == 1.0
    assert "cannot be assessed" in out.cadence.reason


def test_assess_drift_on_a_synthetic_shift():
    rng = np.random.default_rng(0)
    n_train, n_test = 3000, 2400
    train = pd.DataFrame({"x": rng.normal(0, 1, n_train), "c": rng.choice(["a", "b"], n_train)})
    shift = np.linspace(0, 2, n_test)  # the mean of x drifts upward over the test period
    test = pd.DataFrame(
        {
            "x": rng.normal(shift, 1),
            "c": rng.choice(["a", "b"], n_test),
            "t": pd.date_range("2024-01-01", periods=n_test, freq="h"),
        }
    )
    spec = FeatureSpec(Schema({"x": "numeric", "c": "categorical"}, target="y")).fit(train)
    ml_cost = 10 + 5 * shift + rng.normal(0, 1, n_test)  # ML's edge decays with the shift
    costs = {"rules": np.full(n_test, 25.0), "ml": ml_cost}
    out = assess_drift(test, "t", costs, "rules", spec, train, seed=1, train_end="2023-12-31")
    windows = out.windows
    assert len(windows) == 8 and sum(w.n for w in windows) == n_test
    assert windows[-1].psi["x"] > windows[0].psi["x"]
    assert "x" in windows[-1].flags["major"] and windows[0].psi["c"] < 0.1
    assert windows[0].ml_advantage.estimate > windows[-1].ml_advantage.estimate
    assert out.cadence.method == "decay"
    assert 0.25 <= out.retrains_per_month <= 4.0
    assert set(windows[0].cost_per_decision) == {"rules", "ml"}


def test_categories_beyond_the_most_frequent_share_one_bin():
    values = pd.Series([f"l{i:03d}" for i in range(200) for _ in range(200 - i)])
    b = Binner("categorical", levels=20).fit(values)
    counts = b.counts(values)
    assert len(counts) == 22 and counts[:20].tolist() == list(range(200, 180, -1))
    assert counts[20] == values.size - sum(range(181, 201)) and counts[21] == 0


def test_noise_threshold_is_the_quantile_of_simulated_windows():
    expected = np.array([500.0, 300.0, 150.0, 50.0])
    level = noise_threshold(expected, 300, seed=1, quantile=0.95)
    rng = np.random.default_rng(7)  # an independent simulation
    sims = [psi(expected, rng.multinomial(300, expected / expected.sum())) for _ in range(4000)]
    assert np.mean(np.array(sims) > level) == pytest.approx(0.05, abs=0.012)
    assert noise_threshold(expected, 3000, seed=1) < noise_threshold(expected, 300, seed=1)
    assert psi_flag(0.3, noise=0.5) == "stable" and psi_flag(0.6, noise=0.5) == "major"


def test_no_drift_with_200_levels_and_300_row_windows_is_rarely_flagged():
    rng = np.random.default_rng(3)
    shares = rng.dirichlet(np.ones(200))
    levels = np.array([f"level-{i}" for i in range(200)])

    def frame(n):
        cols = {f"c{j}": rng.choice(levels, n, p=shares) for j in range(10)}
        cols |= {f"x{j}": rng.normal(0, 1, n) for j in range(10)}
        return pd.DataFrame(cols)

    kinds = {f"c{j}": "categorical" for j in range(10)} | {f"x{j}": "numeric" for j in range(10)}
    train = frame(20000)
    test = frame(3600).assign(t=pd.date_range("2024-01-01", periods=3600, freq="h"))
    spec = FeatureSpec(Schema(kinds, target="y")).fit(train)
    costs = {"rules": rng.normal(10, 1, 3600), "ml": rng.normal(9, 1, 3600)}
    out = assess_drift(test, "t", costs, "rules", spec, train, seed=2, train_end="2023-12-31")
    windows = out.windows
    assert len(windows) == 12 and all(w.n == 300 for w in windows)
    # Without the noise level, sampling noise alone would flag a good share of the pairs.
    raw = sum(psi_flag(v) != "stable" for w in windows for v in w.psi.values())
    assert raw > 0.04 * 12 * 20
    assert out.period.flagged_pairs / (12 * 20) < 0.01
    assert out.cadence.method != "psi"


def test_a_coarse_time_column_gets_one_window_per_value():
    months = np.array(
        ["2018-03", "2018-01", "2018-02", "2018-03", "2018-01"], dtype="datetime64[M]"
    )
    order = np.argsort(months, kind="stable")
    windows = time_windows(months, order, count=6)
    assert [w.tolist() for w in windows] == [[1, 4], [2], [0, 3]]
    hours = np.arange(20.0)[::-1]
    windows = time_windows(hours, np.argsort(hours, kind="stable"), count=4)
    assert [len(w) for w in windows] == [5, 5, 5, 5]
    assert windows[0].tolist() == [19, 18, 17, 16, 15]


def test_the_cadence_reads_the_validation_windows_not_the_test_windows():
    """Validation costs with a clear decay of ML's edge set the cadence; flat test costs do not."""
    from types import SimpleNamespace

    from advisor.analysis.drift import track_drift
    from advisor.analysis.roles import Roles
    from advisor.core.data import Part, Schema, Split
    from advisor.core.features import FeatureSpec
    from advisor.stats.bootstrap import Resampler

    rng = np.random.default_rng(0)
    n = 3600
    when = pd.date_range("2024-01-01", periods=n, freq="2h")
    frame = pd.DataFrame({"x": rng.normal(size=n), "when": when})
    y = np.zeros(n, dtype=np.int64)
    parts = [
        Part(frame.iloc[a:b].reset_index(drop=True), y[a:b])
        for a, b in ((0, 2160), (2160, 2880), (2880, n))
    ]
    split = Split(*parts, ordered_by="when")
    spec = FeatureSpec(Schema({"x": "numeric"}, "y", time="when")).fit(parts[0].frame)
    flat = np.full(len(parts[2]), 1.0)

    def score(costs):
        return SimpleNamespace(costs=costs)

    evaluation = SimpleNamespace(
        policies={"rules": score(flat + 5), "ml": score(flat)}, resampler=Resampler(200, 0)
    )
    roles = Roles("rules", "ml", "baseline", {}, "")
    m = len(parts[1])
    fading = 5 * (1 - np.arange(m) / m) + rng.normal(0, 0.5, m)  # ML's edge fades to nothing
    drift = track_drift(
        split,
        evaluation,
        roles,
        None,
        spec,
        0,
        valid_costs={"rules": np.full(m, 6.0), "ml": 6.0 - fading},
    )
    assert drift.cadence.split == "validation"
    assert drift.cadence.method == "decay"
    assert drift.cadence.reason.startswith("On the validation period's windows")


def test_the_training_reference_counts_every_row_of_each_cleaned_feature():
    rng = np.random.default_rng(4)
    n = 5000
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.1] = np.nan
    raw = pd.DataFrame(
        {
            "x": x,
            "flag": rng.choice(["true", "false", None], n),
            "c": pd.Categorical(rng.choice(["a", "b", "c", None], n)),
        }
    )
    schema = Schema({"x": "numeric", "flag": "boolean", "c": "categorical"}, target="y")
    spec = FeatureSpec(schema).fit(raw)
    reference = training_reference(spec, raw)
    assert reference.rows == n and list(reference.binners) == ["x", "flag", "c"]
    cleaned = spec.clean(raw)  # every column at once: what the reference must equal
    for name, binner in reference.binners.items():
        expected = Binner(binner.kind).fit(cleaned[name])
        assert binner.to_dict() == expected.to_dict()
        assert reference.counts[name].tolist() == expected.counts(cleaned[name]).tolist()
        assert reference.counts[name].sum() == n
    assert reference.counts["x"][-1] == int(np.isnan(x).sum())  # missing: the last bin
