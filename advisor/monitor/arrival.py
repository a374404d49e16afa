"""Outcomes that are not missing at random: when the share of outcomes arrived differs by the
decision made or by the predicted risk (defaults known sooner than repayments), the realised
cost on the rows with outcomes is biased, and a cost alert read from it would be too.

Per policy and window, two chi-square tests of independence between "outcome arrived" and a
grouping of the decided rows: the decision, and (when the run holds an ML bundle) the band of
the row's predicted cost, Σ_k p_k c_k for the decision taken, in quintiles of the window. A
group whose expected arrived or waiting count is below `MIN_EXPECTED` is left out. To date, the
windows are strata: the statistics and degrees of freedom add up over the windows read, so
arrival that merely rises with a row's age (old windows complete, new ones waiting) is no
evidence. The two tests share `HOLD_LEVEL` (Bonferroni). A rejection is a **hold**, not an
alert: the window says its outcomes are selectively missing and the cost alert from the cost to
date is held (a note instead). A hold can only silence an alert, so it spends nothing of the
family's false-alarm budget; its own rate (a healthy window held) is measured in
`tests/test_monitor_arrival.py`.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

HOLD_LEVEL = 0.001
BANDS = 5
MIN_EXPECTED = 5.0
RULE = (
    "outcomes selectively missing: the share arrived differs by decision or by predicted-cost "
    f"band (chi-square test of independence, level {HOLD_LEVEL:g} split between the two; "
    "to date, windows are strata); the realised cost is biased there and its alert is held"
)


def chi_square(arrived: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson's chi-square statistic and degrees of freedom of independence between arrival
    and group, per row of (windows, groups) counts; groups with an expected cell below
    MIN_EXPECTED are left out (0 and 0 when fewer than two groups remain)."""
    a = np.atleast_2d(np.asarray(arrived, dtype=float))
    n = np.atleast_2d(np.asarray(total, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = a.sum(axis=1, keepdims=True) / n.sum(axis=1, keepdims=True)
        keep = (n * share >= MIN_EXPECTED) & (n * (1 - share) >= MIN_EXPECTED)
        a, n = np.where(keep, a, 0.0), np.where(keep, n, 0.0)
        share = a.sum(axis=1, keepdims=True) / n.sum(axis=1, keepdims=True)
        expected = n * share
        cells = np.where(keep, (a - expected) ** 2 / (expected * (1 - share)), 0.0)
    df = keep.sum(axis=1) - 1
    chi2 = np.where(df > 0, cells.sum(axis=1), 0.0)
    return chi2, np.maximum(df, 0).astype(np.int64)


def bands(risk: np.ndarray, window: np.ndarray, size: int) -> np.ndarray:
    """Each row's quintile (0..BANDS-1) of predicted cost within its window (rank order, ties
    by position); -1 without one or in a window of fewer than BANDS rows."""
    risk, window = np.asarray(risk, dtype=float), np.asarray(window)
    out = np.full(len(risk), -1, dtype=np.int64)
    if len(window) and window[0] >= 0 and (np.diff(window) >= 0).all():
        # Rows in window order (as the log's are): rank each window's rows on their own, so
        # the transient arrays are a window long, not the log long.
        top = max(size, int(window[-1]) + 1)
        cuts = np.searchsorted(window, np.arange(top + 1), side="left")
        for a, b in itertools.pairwise(cuts):
            pos = a + np.flatnonzero(np.isfinite(risk[a:b]))
            if len(pos) >= BANDS:
                order = pos[np.argsort(risk[pos], kind="stable")]
                out[order] = np.arange(len(order)) * BANDS // len(order)
        return out
    pos = np.flatnonzero(np.isfinite(risk))
    order = pos[np.lexsort((risk[pos], window[pos]))]
    counts = np.bincount(window[order], minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    w = window[order]
    rank = np.arange(len(order)) - starts[w]
    band = (rank * BANDS // np.maximum(counts[w], 1)).astype(np.int64)
    out[order] = np.where(counts[w] >= BANDS, band, -1)
    return out


def _tables(window: np.ndarray, group: np.ndarray, arrived: np.ndarray, size: int, k: int):
    ok = group >= 0
    cell = window[ok] * k + group[ok]
    total = np.bincount(cell, minlength=size * k)[: size * k].reshape(size, k)
    got = np.bincount(cell, weights=arrived[ok], minlength=size * k)[: size * k].reshape(size, k)
    return got, total


def _p(chi2: np.ndarray, df: np.ndarray) -> np.ndarray:
    return np.where(df > 0, stats.chi2.sf(chi2, np.maximum(df, 1)), 1.0)


def arrival(
    arrived: np.ndarray,
    decision: np.ndarray,
    decisions: list[str],
    risk: np.ndarray | None,
    window: np.ndarray,
    size: int,
) -> tuple[list[dict], list[dict]]:
    """One policy's decided rows (arrived: bool, decision: code, risk: predicted cost or None,
    window: index 0..size-1): per window, the share arrived by decision and by risk band with
    the tests and whether they hold the cost; and the same to date (windows as strata)."""
    arrived = np.asarray(arrived, dtype=bool)
    k = len(decisions)
    got, total = _tables(window, decision, arrived, size, k)
    tests = {"decision": chi_square(got, total)}
    band = None
    if risk is not None:
        band = bands(np.asarray(risk, dtype=float), window, size)
        bgot, btotal = _tables(window, band, arrived, size, BANDS)
        tests["risk"] = chi_square(bgot, btotal)
    level = HOLD_LEVEL / len(tests)
    p_window = {name: _p(*t) for name, t in tests.items()}
    p_to_date = {name: _p(np.cumsum(t[0]), np.cumsum(t[1])) for name, t in tests.items()}
    windows, to_date = [], []
    for w in range(size):
        n, a = int(total[w].sum()), int(got[w].sum())
        figure = {
            "rows": n,
            "arrived": a,
            "by_decision": {
                d: (float(got[w, j] / total[w, j]) if total[w, j] else None)
                for j, d in enumerate(decisions)
            },
            "p_values": {name: float(p[w]) for name, p in p_window.items()},
            "level": level,
        }
        if band is not None:
            figure["by_risk_band"] = [
                float(bgot[w, b] / btotal[w, b]) if btotal[w, b] else None for b in range(BANDS)
            ]
        figure["selective"] = bool(min(figure["p_values"].values()) < level)
        windows.append(figure)
        dated = {name: float(p[w]) for name, p in p_to_date.items()}
        to_date.append(
            {"p_values": dated, "level": level, "selective": bool(min(dated.values()) < level)}
        )
    return windows, to_date


class Arrival:
    """One policy's arrival figures per window and to date, as a window's cost shows them."""

    def __init__(self, windows: list[dict], to_date: list[dict]) -> None:
        self.windows, self.to_date = windows, to_date

    def at(self, step: int) -> dict:
        """Window `step`'s figure with its to-date test (`held`: the cost to date is held);
        step -1 is the whole log, whose test is the last to date."""
        dated = self.to_date[step]
        if step >= 0:
            return {**self.windows[step], "to_date": dated, "held": dated["selective"]}
        rows = sum(w["rows"] for w in self.windows)
        got = sum(w["arrived"] for w in self.windows)
        return {
            "rows": rows,
            "arrived": got,
            "p_values": dated["p_values"],
            "level": dated["level"],
            "selective": dated["selective"],
            "to_date": dated,
            "held": dated["selective"],
        }
