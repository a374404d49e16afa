"""The calibration gap: how far a probabilistic policy's realised cost on the test split lies
from the expected cost its own probabilities give the same decisions (realised minus expected,
per decision, with its bootstrap interval).

The monitor compares production with it: realised minus expected cost of the same logged
decisions varies only by the outcomes' noise, not by which inputs arrived, so a change in the
outcomes shows against this gap sooner than against the offline cost; and the estimated cost
before the outcomes arrive is corrected by it (a model that overstates its cost offline
overstates it in production too). A model whose error grows with the risk needs more than one
number: the gap per band of the expected cost (`calibration_bands`) follows a window's own mix
of risks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix
from advisor.stats.bootstrap import Banded, Resampler, bootstrap_means, interval
from advisor.stats.interval import Interval
from advisor.stats.large_sample import mean_intervals, near_normal

SEED_OFFSET = 17  # its own replicates, so adding it leaves every other interval unchanged
BANDS = 10  # the most bands of the expected cost per decision
BAND_ROWS = 250  # the fewest rows a band is measured on
BANDS_BY = "decision made, then the expected cost of it (bands from quantiles; `from` inclusive)"


@dataclass(frozen=True)
class Gaps:
    """Each probabilistic policy's per-row gap (realised minus expected cost) and its bands,
    ready to resample (`plain`, `banded`) and then to summarise."""

    names: tuple[str, ...]
    per_row: Mapping[str, np.ndarray]
    cuts: Mapping[str, tuple[list[dict], np.ndarray]]

    @property
    def plain(self) -> np.ndarray:
        """Rows x policies: the gaps whose means are each policy's calibration gap."""
        return np.column_stack([self.per_row[n] for n in self.names])

    @property
    def with_bands(self) -> list[str]:
        return [n for n in self.names if self.cuts[n][0]]

    @property
    def banded(self) -> list[Banded]:
        """Each banded policy's gaps per band, to resample (`Resampler.means_and_banded`)."""
        return [_banded(self.per_row[n], *self.cuts[n]) for n in self.with_bands]

    def summarise(
        self, replicates: np.ndarray, band_replicates: Sequence[np.ndarray]
    ) -> tuple[dict[str, Interval], dict[str, dict]]:
        """The gaps and bands with their intervals, from the replicates of `plain`'s column
        means and of each of `banded`'s."""
        found = {
            n: interval(float(self.per_row[n].mean()), replicates[:, i])
            for i, n in enumerate(self.names)
        }
        bands = {n: {"by": BANDS_BY, "bands": []} for n in self.names}
        for name, reps in zip(self.with_bands, band_replicates, strict=True):
            bands[name] = _summary(self.per_row[name], *self.cuts[name], reps)
        return found, bands

    def near_normal(self) -> bool:
        """Whether every policy's overall gap is near enough normal for `normal`."""
        return near_normal(self.plain)

    def normal(self, resampler: Resampler) -> tuple[dict[str, Interval], dict[str, dict]]:
        """`summarise`'s figures with the normal interval of each mean in place of the
        bootstrap's, for large splits whose overall gaps pass `near_normal`. A band's interval
        is that of its own rows' mean (the first-order spread of the ratio the bootstrap
        resamples); a band whose mean is not near normal is bootstrapped on its own rows
        (`_band_interval`)."""
        found = dict(zip(self.names, mean_intervals(self.plain), strict=True))
        bands = {n: {"by": BANDS_BY, "bands": []} for n in self.names}
        for name in self.with_bands:
            each = [_band_interval(gap, resampler) for gap in self._by_band(name)]
            entries = self.cuts[name][0]
            bands[name] = {
                "by": BANDS_BY,
                "bands": [{**e, **i.to_dict()} for e, i in zip(entries, each, strict=True)],
            }
        return found, bands

    def _by_band(self, name: str) -> list[np.ndarray]:
        """The policy's gaps of each band's rows, band by band."""
        entries, band = self.cuts[name]
        order = np.argsort(band, kind="stable")
        edges = np.searchsorted(band[order], np.arange(len(entries) + 1))
        gaps = self.per_row[name][order]
        return [gaps[edges[b] : edges[b + 1]] for b in range(len(entries))]


def _band_interval(gap: np.ndarray, resampler: Resampler) -> Interval:
    """One band's mean gap with its normal interval or, when its mean is not near normal, the
    percentile interval from resampling the band's own rows (`resampler`'s resamples, at the
    gaps' seed): given how many rows land in the band, that is what resampling every row
    does to it, and the band's count varies by only about its square root."""
    if near_normal(gap):
        return mean_intervals(gap)[0]
    seed = resampler.seed + SEED_OFFSET
    return interval(float(gap.mean()), bootstrap_means(gap, resampler.resamples, seed)[:, 0])


def gaps_of(
    realised: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
    probas: Mapping[str, np.ndarray],
    costs: CostMatrix,
    frame: pd.DataFrame,
) -> Gaps:
    """The per-row gaps and bands of every policy with probabilities."""
    names = tuple(n for n in probas if probas[n] is not None and n in realised)
    rows = np.arange(len(frame))
    per_row, cuts = {}, {}
    for name in names:
        expected = costs.expected_costs(np.asarray(probas[name], dtype=float), frame)
        own = expected[rows, codes[name]]
        per_row[name] = realised[name] - own
        cuts[name] = cut_bands(own, codes[name], per_row[name], costs.decisions)
    return Gaps(names, per_row, cuts)


def calibration_gaps(
    realised: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
    probas: Mapping[str, np.ndarray],
    costs: CostMatrix,
    frame: pd.DataFrame,
    resampler: Resampler,
) -> tuple[dict[str, Interval], dict[str, dict]]:
    """Per probabilistic policy: mean realised minus expected cost of its decisions, and the
    same per band of the expected cost (`calibration_bands`); all resampled together (the
    gaps' replicates are what `resampler.means` gives them alone)."""
    gaps = gaps_of(realised, codes, probas, costs, frame)
    if not gaps.names:
        return {}, {}
    reps, band_reps = resampler.means_and_banded(gaps.plain, gaps.banded, SEED_OFFSET)
    return gaps.summarise(reps, band_reps)


BandMeans = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def calibration_bands(
    expected: np.ndarray,
    codes: np.ndarray,
    gap: np.ndarray,
    decisions: Sequence[str],
    means: BandMeans,
) -> dict:
    """The calibration gap per band of the expected cost within each decision made: up to
    BANDS bands of at least BAND_ROWS rows, cut at quantiles of the expected cost; each band's
    mean gap with its 95 % bootstrap interval (`means`: the rows' resampler's `banded_means`,
    (values, band of each row, bands) -> replicates of each band's column means). A window's
    mix of bands weighs them (`advisor.monitor.estimate`)."""
    gap = np.asarray(gap, dtype=float)
    found, band = cut_bands(expected, codes, gap, decisions)
    if not found:
        return {"by": BANDS_BY, "bands": []}
    entry = _banded(gap, found, band)
    return _summary(gap, found, band, means(entry.values, entry.bands, entry.n_bands))


def cut_bands(
    expected: np.ndarray, codes: np.ndarray, gap: np.ndarray, decisions: Sequence[str]
) -> tuple[list[dict], np.ndarray]:
    """The bands (decision, lower edge, rows) and each row's band (-1: none)."""
    expected, codes, gap = (np.asarray(a, dtype=float) for a in (expected, codes, gap))
    keep = np.isfinite(expected) & np.isfinite(gap) & (codes >= 0)
    found: list[dict] = []
    band = np.full(len(gap), -1, dtype=np.int64)
    for d, name in enumerate(decisions):
        mine = keep & (codes == d)
        if not mine.any():
            continue
        lows = band_edges(expected[mine])
        within = np.searchsorted(lows, expected[mine], side="right")
        band[mine] = len(found) + within
        counts = np.bincount(within, minlength=len(lows) + 1)
        for low, rows in zip([None, *lows.tolist()], counts.tolist(), strict=True):
            found.append({"decision": name, "from": low, "rows": rows})
    return found, band


def _banded(gap: np.ndarray, found: list[dict], band: np.ndarray) -> Banded:
    """Each band's sum of gaps and its rows, to resample: ratios of means are the bands' gaps."""
    values = np.column_stack([np.where(band >= 0, gap, 0.0), np.ones(len(gap))])
    return Banded(values, band, len(found))


def _summary(gap: np.ndarray, found: list[dict], band: np.ndarray, reps: np.ndarray) -> dict:
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = reps[:, 0::2] / reps[:, 1::2]
    bands = [
        {**entry, **interval(float(gap[band == i].mean()), ratios[:, i]).to_dict()}
        for i, entry in enumerate(found)
    ]
    return {"by": BANDS_BY, "bands": bands}


def band_edges(values: np.ndarray) -> np.ndarray:
    """The lower edges of the bands after the first: quantiles of `values` that are values, so
    no band is empty; up to BANDS bands of at least BAND_ROWS rows."""
    k = max(1, min(BANDS, len(values) // BAND_ROWS))
    cuts = np.quantile(values, np.linspace(0, 1, k + 1)[1:-1], method="lower")
    return np.unique(cuts[cuts > values.min()])
