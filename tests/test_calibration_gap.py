"""The calibration gap per band resamples each band's sums from the rows' own columns
(`banded_means`), not from a zero-filled column pair per band: the same bands, estimates and
intervals as that dense computation, on every path of the bootstrap (rows, distinct rows,
time blocks, repeats of cross-fitting)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.analysis.calibration_gap import calibration_bands, calibration_gaps, cut_bands
from advisor.analysis.crossfit import RepeatResampler
from advisor.core.costs import CostMatrix
from advisor.stats.bootstrap import (
    Banded,
    Resampler,
    banded_means,
    bootstrap_means,
    bootstrap_weights,
    distinct_rows,
    interval,
    resampler_for,
)

COSTS = CostMatrix.from_mapping(
    {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
)


def dense_bands(expected, codes, gap, decisions, means) -> dict:
    """The computation before `banded_means`: two zero-filled columns per band, resampled."""
    from advisor.analysis.calibration_gap import BANDS_BY, band_edges

    expected, codes, gap = (np.asarray(a, dtype=float) for a in (expected, codes, gap))
    keep = np.isfinite(expected) & np.isfinite(gap) & (codes >= 0)
    found, columns = [], []
    for d, name in enumerate(decisions):
        mine = keep & (codes == d)
        if not mine.any():
            continue
        lows = band_edges(expected[mine])
        band = np.searchsorted(lows, expected, side="right")
        for b, low in enumerate([None, *lows.tolist()]):
            inside = mine & (band == b)
            found.append({"decision": name, "from": low, "rows": int(inside.sum())})
            columns += [np.where(inside, gap, 0.0), inside.astype(float)]
    sums = np.column_stack(columns)
    reps = means(sums)
    ratios = reps[:, 0::2] / reps[:, 1::2]
    for i, entry in enumerate(found):
        inside = sums[:, 2 * i + 1] > 0
        entry.update(interval(float(sums[inside, 2 * i].mean()), ratios[:, i]).to_dict())
    return {"by": BANDS_BY, "bands": found}


def decided(n: int, seed: int, levels: int | None = None):
    """Expected costs, decisions and gaps of n rows scored by probabilities (`levels` distinct
    ones, as a rule list's class frequencies, or continuous), a few rows undecided."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 4, n) if levels is None else rng.choice(np.linspace(0.02, 0.6, levels), n)
    expected = np.column_stack([100 * p, 10 + 20 * p])
    codes = expected.argmin(axis=1)
    own = expected[np.arange(n), codes]
    y = rng.random(n) < p
    realised = np.where(codes == 0, np.where(y, 100.0, 0.0), np.where(y, 30.0, 10.0))
    codes[rng.random(n) < 0.01] = -1
    return own, codes, realised - own


def assert_same(got: dict, reference: dict, exact: bool) -> None:
    assert [(b["decision"], b["from"], b["rows"]) for b in got["bands"]] == [
        (b["decision"], b["from"], b["rows"]) for b in reference["bands"]
    ]
    for b, r in zip(got["bands"], reference["bands"], strict=True):
        assert b["estimate"] == r["estimate"]
        if exact:
            assert (b["low"], b["high"]) == (r["low"], r["high"])
        else:
            assert (b["low"], b["high"]) == pytest.approx((r["low"], r["high"]), rel=1e-12)


def in_band_order(own, codes, gap, repeats: int = 1):
    """The rows sorted by band (stable; within each repeat of stacked rows): rows resampled
    one at a time are resampled in that order, an equally valid bootstrap whose bands read
    contiguous slices of the counts."""
    _, band = cut_bands(own, codes, gap, COSTS.decisions)
    size = len(band) // repeats
    order = np.concatenate(
        [
            r * size + np.argsort(band[r * size : (r + 1) * size], kind="stable")
            for r in range(repeats)
        ]
    )
    return own[order], codes[order], gap[order]


@pytest.mark.parametrize(("n", "levels"), [(3000, None), (20_000, None)])
def test_rows_resampled_one_at_a_time_give_the_dense_computations_bands(n, levels):
    own, codes, gap = in_band_order(*decided(n, 1, levels))
    resampler = Resampler(300, 5)
    got = calibration_bands(own, codes, gap, COSTS.decisions, resampler.banded_means)
    assert len(got["bands"]) >= 10
    assert_same(got, dense_bands(own, codes, gap, COSTS.decisions, resampler.means), exact=False)


def test_few_distinct_rows_are_drawn_as_the_dense_computation_draws_them():
    """A rule list's gaps take a few values: the dense matrix's distinct rows were resampled
    by one multinomial draw; the banded rows give the same rows, order and counts."""
    own, codes, gap = decided(30_000, 2, levels=6)
    resampler = Resampler(300, 5)
    reference = dense_bands(own, codes, gap, COSTS.decisions, resampler.means)
    captured = []
    dense_bands(
        own, codes, gap, COSTS.decisions, lambda v: captured.append(v) or resampler.means(v)
    )
    assert distinct_rows(captured[0]) is not None  # the path this test is about
    got = calibration_bands(own, codes, gap, COSTS.decisions, resampler.banded_means)
    assert_same(got, reference, exact=True)


def test_time_blocks_give_the_dense_computations_bands_exactly():
    own, codes, gap = decided(8000, 3)
    times = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(8000) // 100, "D"))
    resampler = resampler_for(times, 300, 5)
    assert resampler.blocks is not None
    got = calibration_bands(own, codes, gap, COSTS.decisions, resampler.banded_means)
    assert_same(got, dense_bands(own, codes, gap, COSTS.decisions, resampler.means), exact=True)


def test_repeats_of_cross_fitting_give_the_dense_computations_bands():
    """Rows stacked repeat after repeat, a refit leaving some unscored (NaN)."""
    own, codes, gap = decided(3 * 2000, 4)
    gap[np.random.default_rng(0).random(len(gap)) < 0.05] = np.nan
    own, codes, gap = in_band_order(own, codes, gap, repeats=3)
    resampler = RepeatResampler(Resampler(300, 5), 3)
    got = calibration_bands(own, codes, gap, COSTS.decisions, resampler.banded_means)
    assert_same(got, dense_bands(own, codes, gap, COSTS.decisions, resampler.means), exact=False)


@pytest.mark.parametrize("k", [1, 3])
def test_banded_means_are_the_means_of_the_zero_filled_matrix(k):
    """Any values (zeros included), any number of columns, bands with no rows."""
    rng = np.random.default_rng(6)
    n, n_bands = 6000, 5
    values = rng.choice([0.0, 1.5, -2.0], size=(n, k))
    bands = rng.choice([-1, 0, 1, 3], n)
    spread = np.zeros((n, n_bands * k))
    for b in range(n_bands):
        spread[:, b * k : (b + 1) * k] = np.where((bands == b)[:, None], values, 0.0)
    assert distinct_rows(spread) is not None
    np.testing.assert_array_equal(
        banded_means(values, bands, n_bands, 200, 9), bootstrap_means(spread, 200, 9)
    )
    values = rng.normal(size=(n, k))
    spread = np.zeros((n, n_bands * k))
    for b in range(n_bands):
        spread[:, b * k : (b + 1) * k] = np.where((bands == b)[:, None], values, 0.0)
    in_order = spread[np.argsort(bands, kind="stable")]  # rows resampled in band order
    np.testing.assert_allclose(
        banded_means(values, bands, n_bands, 200, 9),
        bootstrap_means(in_order, 200, 9),
        rtol=1e-12,
        atol=1e-15,  # means near zero: the sums' order differs
    )


@pytest.mark.parametrize("levels", [None, 6])
def test_gaps_and_bands_resampled_together_are_what_each_gives_alone(levels):
    """One pass over the counts for the gaps and every policy's bands: the same replicates,
    bit for bit, as resampling each statistic apart with the same seed (continuous gaps, and
    a rule list's few distinct ones, which are drawn their own way)."""
    own, codes, gap = decided(20_000, 7, levels)
    other_own, other_codes, other_gap = decided(20_000, 8)
    resampler = Resampler(300, 5)
    pairs = [(own, codes, gap), (other_own, other_codes, other_gap)]
    entries = []
    for o, c, g in pairs:
        found, band = cut_bands(o, c, g, COSTS.decisions)
        values = np.column_stack([np.where(band >= 0, g, 0.0), np.ones(len(g))])
        entries.append(Banded(values, band, len(found)))
    plain = np.column_stack([gap, other_gap])
    together, bands = resampler.means_and_banded(plain, entries, 17)
    np.testing.assert_array_equal(together, resampler.means(plain, 17))
    for entry, got in zip(entries, bands, strict=True):
        alone = resampler.banded_means(entry.values, entry.bands, entry.n_bands, 17)
        np.testing.assert_array_equal(got, alone)


def two_policies(rng, n: int):
    """Outcomes, and a model's and a rule list's probabilities, decisions and realised costs."""
    y = (rng.random(n) < 0.3).astype(int)
    drawn = (("ml", rng.beta(2, 5, n)), ("rules", rng.choice([0.1, 0.3, 0.6], n)))
    probas = {name: np.column_stack([1 - p, p]) for name, p in drawn}
    frame = pd.DataFrame({"x": np.zeros(n)})
    codes = {k: COSTS.expected_costs(p, frame).argmin(axis=1) for k, p in probas.items()}
    each = COSTS.cost_of_each_decision(y, frame)
    realised = {k: each[np.arange(n), c] for k, c in codes.items()}
    return y, probas, frame, codes, realised


def test_the_evaluations_gaps_and_bands_are_those_of_one_policy_at_a_time():
    """`calibration_gaps` (all policies in one pass) gives the gaps the paired intervals of
    `resampler.means` and each policy the bands of `calibration_bands`, at the gap's seed."""
    n = 12_000
    _, probas, frame, codes, realised = two_policies(np.random.default_rng(3), n)
    resampler = Resampler(300, 2)
    gaps, bands = calibration_gaps(realised, codes, probas, COSTS, frame, resampler)
    own = {k: COSTS.expected_costs(p, frame)[np.arange(n), codes[k]] for k, p in probas.items()}
    d = {k: realised[k] - own[k] for k in probas}
    reps = resampler.means(np.column_stack(list(d.values())), 17)
    for i, name in enumerate(probas):
        assert gaps[name] == interval(float(d[name].mean()), reps[:, i])
        alone = calibration_bands(
            own[name],
            codes[name],
            d[name],
            COSTS.decisions,
            lambda v, b, k: resampler.banded_means(v, b, k, 17),
        )
        assert bands[name] == alone
    assert len(bands["ml"]["bands"]) >= 10 and len(bands["rules"]["bands"]) >= 2


def test_weight_chunks_handed_out_are_each_their_own():
    """`bootstrap_weights` may be kept chunk by chunk (the partitioned analysis stacks them):
    each chunk is its own array, though the counts are drawn into one buffer."""
    chunks = list(bootstrap_weights(40_000, 600, 1))
    assert len(chunks) > 1
    assert not np.shares_memory(chunks[0], chunks[1])
    assert (chunks[0].sum(axis=1) == 40_000).all() and not np.array_equal(chunks[0], chunks[1])


@pytest.mark.parametrize("by_time", [False, True])
def test_the_evaluation_resamples_gaps_and_probability_metrics_in_one_pass(by_time):
    """The evaluation adds the probability metrics' per-row scores to the gaps' pass: the gaps
    and bands are `calibration_gaps`' (to rounding), the metrics' intervals are those of the
    same resamples of their rows, and the AUC's is DeLong's (by time blocks when there are)."""
    from advisor.analysis.evaluate import _described
    from advisor.core.data import Part
    from advisor.stats.probability_quality import auc_interval, metric_rows

    n = 12_000
    y, probas, frame, codes, realised = two_policies(np.random.default_rng(5), n)
    times = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) // 100, "D"))
    resampler = resampler_for(times if by_time else None, 300, 2)
    assert (resampler.blocks is not None) == by_time
    gaps, bands, metrics, method = _described(
        Part(frame, y), realised, codes, probas, COSTS, resampler
    )
    assert method is None  # few rows: the bootstrap
    alone_gaps, alone_bands = calibration_gaps(realised, codes, probas, COSTS, frame, resampler)
    for name in probas:
        for got, want in ((gaps[name], alone_gaps[name]), *zip_bands(bands, alone_bands, name)):
            assert got.estimate == want.estimate
            assert got.low == pytest.approx(want.low, rel=1e-12)
            assert got.high == pytest.approx(want.high, rel=1e-12)
    reps = resampler.means(metric_rows(y, probas), 17)
    for i, name in enumerate(probas):
        got = metrics[name]["log_loss"]
        want = interval(
            float(metric_rows(y, {name: probas[name]})[:, 2].mean()), reps[:, 3 * i + 2]
        )
        assert (got.estimate, got.low, got.high) == pytest.approx(
            (want.estimate, want.low, want.high), rel=1e-12
        )
        assert metrics[name]["roc_auc"] == auc_interval(y, probas[name], resampler.blocks)


def zip_bands(bands, alone, name):
    """Pairs of (got, wanted) band intervals of one policy."""
    from advisor.stats.interval import Interval

    got, want = bands[name]["bands"], alone[name]["bands"]
    assert len(got) == len(want) > 0
    return [(Interval.from_dict(a), Interval.from_dict(b)) for a, b in zip(got, want, strict=True)]
