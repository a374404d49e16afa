"""Population stability index (PSI): bins fitted on training values, and the PSI level that
sampling noise alone reaches for a window of a given size.

PSI on small windows is biased upward, the more so the more bins there are: 300 rows spread
over 200 categories show "major drift" with no drift at all. So categories are capped at the
most frequent training levels (the rest share an "other" bin), and a feature is flagged only
when its PSI also exceeds what windows of that size drawn from the training distribution
reach (their 99.9th percentile): a flag then means drift, not noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
PSI_BINS = 10
PSI_LEVELS = 20  # most frequent training categories with a bin of their own
PSI_FLOOR = 1e-4
NOISE_QUANTILE = 0.999
NOISE_DRAWS = 4000
QUANTILE_ROWS = 200_000  # numeric bin edges from at most this many values (a seeded sample)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two count (or share) vectors over the same bins.

    PSI = Σ (a − e) · ln(a / e) over bins, with shares floored at PSI_FLOOR so that an empty
    bin gives a large but finite term.
    """
    return float(
        psi_rows(np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)[None])[0]
    )


def psi_rows(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """PSI of each row of `actual` (windows x bins) against `expected` (bins)."""
    e = np.maximum(expected / expected.sum(), PSI_FLOOR)
    a = np.maximum(actual / actual.sum(axis=1, keepdims=True), PSI_FLOOR)
    return np.sum((a - e) * np.log(a / e), axis=1)


def noise_threshold(
    expected: np.ndarray, rows: int, seed: int = 0, quantile: float = NOISE_QUANTILE
) -> float:
    """The PSI that `rows` rows drawn from the training distribution exceed with probability
    1 − `quantile`: the level below which a window's PSI is sampling noise."""
    e = np.asarray(expected, dtype=float)
    if rows < 1 or e.sum() <= 0:
        return math.inf
    draws = np.random.default_rng(seed).multinomial(rows, e / e.sum(), size=NOISE_DRAWS)
    return float(np.quantile(psi_rows(e, draws.astype(float)), quantile))


def psi_flag(value: float | None, noise: float = 0.0) -> str:
    """stable, moderate or major: the conventional PSI levels, raised to the noise level."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if value >= max(PSI_MAJOR, noise):
        return "major"
    return "moderate" if value >= max(PSI_MODERATE, noise) else "stable"


class Binner:
    """Bins fitted on training values: quantile edges for numbers, the most frequent levels for
    categories. Missing values get a bin of their own; other categories share one bin."""

    def __init__(self, kind: str, bins: int = PSI_BINS, levels: int = PSI_LEVELS) -> None:
        self.kind = kind
        self.bins = bins
        self.levels = levels

    def fit(self, values: pd.Series) -> Binner:
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            if len(x) > QUANTILE_ROWS:  # the edges only need to be close to the quantiles
                x = x[np.random.default_rng(0).choice(len(x), QUANTILE_ROWS, replace=False)]
            qs = np.quantile(x, np.linspace(0, 1, self.bins + 1)[1:-1]) if len(x) else []
            self.edges_ = np.unique(qs)
            self.size_ = len(self.edges_) + 2
        else:
            counts = values.value_counts(dropna=True, sort=False)
            counts.index = counts.index.astype(str)
            counts = counts[counts > 0].groupby(level=0).sum()  # a category dtype lists unseen ones
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.levels]
            self.levels_ = {v: i for i, (v, _) in enumerate(ranked)}
            self.size_ = len(self.levels_) + 2
        return self

    def counts(self, values: pd.Series) -> np.ndarray:
        """Rows per bin: the value bins, then 'other' (categories only), then missing last."""
        if self.kind == "numeric":
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            idx = np.where(np.isnan(x), self.size_ - 1, np.searchsorted(self.edges_, x, "right"))
        else:
            rows, distinct = pd.factorize(values, use_na_sentinel=True)  # -1: missing
            codes = pd.Index(list(self.levels_)).get_indexer(pd.Index(distinct).astype(str))
            bins = np.where(codes < 0, len(self.levels_), codes)  # unknown levels: "other"
            idx = np.append(bins, self.size_ - 1)[rows]  # a missing row's -1 picks the last bin
        return np.bincount(idx.astype(np.int64), minlength=self.size_)

    def to_dict(self) -> dict:
        """The fitted bins as JSON data (`from_dict` rebuilds a Binner that counts alike)."""
        out: dict = {"kind": self.kind, "bins": self.bins, "levels": self.levels}
        if self.kind == "numeric":
            out["edges"] = [float(e) for e in self.edges_]
        else:
            out["categories"] = sorted(self.levels_, key=self.levels_.__getitem__)
        out["size"] = int(self.size_)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Binner:
        binner = cls(data["kind"], int(data["bins"]), int(data["levels"]))
        if binner.kind == "numeric":
            binner.edges_ = np.asarray(data["edges"], dtype=float)
        else:
            binner.levels_ = {str(v): i for i, v in enumerate(data["categories"])}
        binner.size_ = int(data["size"])
        return binner


def feature_binners(spec, train: pd.DataFrame) -> dict[str, Binner]:
    """One Binner per feature of a FeatureSpec, fitted on the cleaned training values."""
    return {e.name: _binner(e).fit(e.clean_column(train[e.name])) for e in spec.encoders_}


def _binner(encoder) -> Binner:
    return Binner("numeric" if encoder.kind == "numeric" else "categorical")


@dataclass(frozen=True)
class Reference:
    """Each feature's training distribution over its PSI bins, fitted once on the training
    split: drift compares the test windows with it, and every policy bundle carries it."""

    binners: Mapping[str, Binner]
    counts: Mapping[str, np.ndarray]
    rows: int

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "features": {
                name: {**b.to_dict(), "counts": self.counts[name].tolist()}
                for name, b in self.binners.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Reference:
        features = data["features"]
        return cls(
            binners={name: Binner.from_dict(f) for name, f in features.items()},
            counts={name: np.asarray(f["counts"], dtype=np.int64) for name, f in features.items()},
            rows=int(data["rows"]),
        )


def training_reference(spec, train: pd.DataFrame) -> Reference:
    """Every feature's bins and the training rows' counts in them (a FeatureSpec's features).
    One column is cleaned at a time, so at most one cleaned copy of a column is held."""
    binners, counts = {}, {}
    for e in spec.encoders_:
        cleaned = e.clean_column(train[e.name])
        binners[e.name] = _binner(e).fit(cleaned)
        counts[e.name] = binners[e.name].counts(cleaned)
    return Reference(binners, counts, len(train))


class NoiseLevels:
    """The noise PSI per feature and window size, simulated once per (feature, size)."""

    def __init__(self, expected: Mapping[str, np.ndarray], seed: int) -> None:
        self.expected = expected
        self.seed = seed
        self.cache: dict[tuple[str, int], float] = {}

    def at(self, feature: str, rows: int) -> float:
        key = (feature, rows)
        if key not in self.cache:
            offset = list(self.expected).index(feature)
            self.cache[key] = noise_threshold(self.expected[feature], rows, self.seed + offset)
        return self.cache[key]
