"""What the monitor measures on a set of log rows (one window, or the whole log): operations,
input drift, the decision mix and the realised cost, each with its interval or its test.

The intervals: Clopper-Pearson for rates, order statistics for latency percentiles, the shared
bootstrap (`advisor.stats.bootstrap`) for costs, resampling whole units when a unit has several rows
(and random groups of units when there are very many).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from advisor.core.costs import CostMatrix
from advisor.core.predictionlog import REQUEST_RECORDS
from advisor.monitor import family
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import quantile_interval
from advisor.stats.psi import NoiseLevels, Reference, psi, psi_flag

LEVEL = 0.95
RESAMPLES = 2000
MIX_THRESHOLD = 0.001  # p-value below which the decision mix moved beyond noise
MIN_ROWS = 30  # fewer rows (or rows with outcomes) than this: shown, not tested
MAX_GROUPS = 2000  # more units than this are resampled in this many random groups


def proportion(k: int, n: int) -> dict:
    """A rate with its exact (Clopper-Pearson) 95 % interval: {estimate, low, high, k, n}."""
    if n == 0:
        return {"estimate": None, "low": None, "high": None, "k": 0, "n": 0}
    ci = stats.binomtest(int(k), int(n)).proportion_ci(LEVEL, method="exact")
    return {"estimate": k / n, "low": float(ci.low), "high": float(ci.high), "k": int(k), "n": n}


def resampler(units: pd.Series, seed: int) -> Resampler:
    """The shared bootstrap over units: rows one at a time, or whole units when a unit has
    several rows (its rows are not independent). Above MAX_GROUPS units, the units are dealt
    at random into MAX_GROUPS groups of equal size and whole groups are resampled: for
    independent units that keeps the mean's bootstrap distribution (a group's sum is a sum of
    independent units) at a cost that no longer grows with the rows."""
    codes, uniques = pd.factorize(units)
    missing = codes < 0
    codes[missing] = len(uniques) + np.arange(int(missing.sum()))  # a unit of its own
    n_units = len(uniques) + int(missing.sum())
    if n_units <= MAX_GROUPS:
        if n_units == len(units):
            return Resampler(RESAMPLES, seed)
        return Resampler(RESAMPLES, seed, codes, "unit", "whole units resampled (units repeat)")
    group = np.random.default_rng(seed).permutation(n_units) % MAX_GROUPS
    note = f"{MAX_GROUPS:,} random groups of whole units resampled ({n_units:,} units)"
    return Resampler(RESAMPLES, seed, group[codes], "group of units", note)


def operations(rows: pd.DataFrame, budget_ms: float | None) -> dict:
    """Requests, the error rate (a row with an `error` or no decision) and latency p50 / p99
    with their intervals against the budget, when the log has `latency_ms`. The budget is per
    decision a caller waits for, so latency is read on the lines of single-record requests: a
    batch's line carries the whole batch's time (`request_records` above 1; counted, left out)."""
    failed = rows["decision"].isna().to_numpy()
    if "error" in rows:
        error = rows["error"]
        if error.dtype == bool:  # the scan's flag: the line had an error
            failed = failed | error.to_numpy()
        else:
            failed = failed | (error.notna() & (error.astype(str).str.strip() != "")).to_numpy()
    out: dict = {"requests": len(rows), "errors": proportion(int(failed.sum()), len(rows))}
    if "latency_ms" in rows:
        ms = pd.to_numeric(rows["latency_ms"], errors="coerce")
        batch = np.zeros(len(rows), dtype=bool)
        if REQUEST_RECORDS in rows:
            batch = (pd.to_numeric(rows[REQUEST_RECORDS], errors="coerce") > 1).to_numpy()
        ms = ms[~batch].dropna().to_numpy(dtype=float)
        if len(ms):
            out["latency"] = {
                "n": len(ms),
                "batch_lines_excluded": int(batch.sum()),
                "p50_ms": quantile_interval(ms, 0.50),
                "p99_ms": quantile_interval(ms, 0.99),
                "budget_ms": budget_ms,
                "over_budget": None if budget_ms is None else int((ms > budget_ms).sum()),
            }
    return out


def drift_from_counts(
    counts: Mapping[str, np.ndarray],
    rows: int,
    reference: Reference,
    noise: NoiseLevels,
    important: set[str],
) -> dict:
    """From each logged feature's bin counts over `rows` rows: its PSI against the training
    reference, the PSI sampling noise reaches at this many rows, the flag (stable, moderate,
    major: the level and beyond noise) and the chi-square p-value of the bins against the
    training counts."""
    out = {}
    for name in reference.binners:
        if name not in counts:
            continue
        value = psi(reference.counts[name], counts[name])
        level = noise.at(name, rows)
        out[name] = {
            "psi": value,
            "noise": level if math.isfinite(level) else None,
            "flag": psi_flag(value, level),
            "important": name in important,
            "p_value": float(family.drift_p_values(reference.counts[name], counts[name])[0]),
        }
    return out


def decision_mix(
    decisions: pd.Series, names: Sequence[str], offline: Mapping | None, offline_rows: int | None
) -> dict:
    """Counts and shares of each decision against the test split's shares, with a chi-square
    test of homogeneity of the two samples (the offline shares are a sample too)."""
    counts = decisions.value_counts().reindex(list(names), fill_value=0).astype(int)
    n = int(counts.sum())
    out: dict = {
        "n": n,
        "counts": {d: int(c) for d, c in counts.items()},
        "shares": {d: (int(c) / n if n else None) for d, c in counts.items()},
        "offline": dict(offline or {}),
        "p_value": None,
        "moved": False,
    }
    if not offline or not offline_rows or n < MIN_ROWS:
        return out
    before = np.array([float(offline.get(d) or 0.0) * offline_rows for d in names])
    table = np.vstack([np.round(before), counts.to_numpy(dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        out["p_value"] = 1.0
        return out
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    out.update(chi2=float(chi2), p_value=float(p), moved=bool(p < MIX_THRESHOLD))
    return out


def realised_at(rows: pd.DataFrame, pos: np.ndarray, column: str, costs: CostMatrix) -> np.ndarray:
    """The cost the decision in `column` realised at each row at positions `pos` (rows with an
    outcome), taking only those rows of the columns it reads (no copy of the frame)."""
    codes = decision_codes(rows[column].iloc[pos], costs.decisions)
    taken = pd.DataFrame({c: rows[c].to_numpy()[pos] for c in costs.columns if c in rows})
    return costs.realised(rows["outcome"].to_numpy()[pos], codes, taken)


def decision_codes(values: pd.Series, decisions: Sequence[str]) -> np.ndarray:
    """Each value's position in `decisions` (-1: missing or not one); a categorical is read off
    its codes, without a text copy of the column."""
    index = pd.Index(list(decisions))
    if isinstance(values.dtype, pd.CategoricalDtype):
        table = index.get_indexer(values.cat.categories.astype(object))
        return np.append(table, -1)[values.cat.codes.to_numpy()]
    return index.get_indexer(values.astype(object))


def cost(
    rows: pd.DataFrame,
    costs: CostMatrix,
    offline: Mapping | None,
    seed: int,
    pos: np.ndarray | None = None,
) -> dict:
    """Realised cost per decision on the rows with outcomes (95 % bootstrap interval), the
    share still waiting for an outcome, and where it stands against the offline interval; on
    the rows at positions `pos` (all when None), reading only what it needs there."""
    at = np.arange(len(rows)) if pos is None else np.asarray(pos)
    decided = at[rows["decision"].notna().to_numpy()[at]]
    known = decided[rows["outcome"].to_numpy()[decided] >= 0]
    n = len(decided)
    out: dict = {
        "rows": n,
        "with_outcomes": len(known),
        "waiting_share": 1 - len(known) / n if n else None,
        "offline": dict(offline) if offline else None,
        "cost_per_decision": None,
        "position": "no outcomes yet",
    }
    if len(known) == 0:
        return out
    values = realised_at(rows, known, "decision", costs)
    reps = resampler(rows["unit"].iloc[known], seed).means(values)[:, 0]
    realised = interval(float(values.mean()), reps).to_dict()
    out["cost_per_decision"] = realised
    if len(known) < MIN_ROWS or not offline or offline.get("high") is None:
        out["position"] = "too few outcomes" if len(known) < MIN_ROWS else "no offline figure"
        return out
    if realised["low"] > offline["high"]:
        out["position"] = "above"
    elif realised["high"] < offline["low"]:
        out["position"] = "below"
    else:
        out["position"] = "within"
    return out
