"""The shadow and the drift windows over every test row, from per-partition sums.

On the workers (`Watch.sums`), each file's test rows add to: per bootstrap unit, the rows
where ML and the control disagree, the cost saved there and who was right; per pair of
decisions, the disagreements and their costs; per rule of the control, its rows and its
disagreements; and per drift window (cut at fixed times, the reference bins fitted on the fit
sample), the cost sums per policy and bootstrap unit, the first and last time, and the rows in
each PSI bin of every feature and of ML's prediction. On the client those sums are merged and
turned into the same records the in-memory stages write (`advisor.analysis.shadow`,
`advisor.analysis.drift`), their intervals from Poisson or period weights on the units, so no
resample gathers rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.analysis.drift import (
    WINDOW_RESAMPLES,
    Drift,
    WindowSpan,
    drift_record,
    drift_window,
    window_count,
)
from advisor.analysis.shadow import (
    DisagreementPair,
    Disagreements,
    OnDisagreements,
    RuleOnDisagreements,
    Shadow,
    rule_hits,
)
from advisor.stats.bootstrap import BootstrapScheme, bootstrap_weights, interval
from advisor.stats.psi import Binner, NoiseLevels

PAIR_SUMS = ("rows", "control_cost", "treatment_cost", "treatment_right", "control_right")


@dataclass(frozen=True)
class Watch:
    """What the workers sum beside the costs: the shadow's counts (when there are a control and
    an ML treatment) and the drift windows' (when there is a time column)."""

    control: str | None
    treatment: str | None
    decisions: int
    edges: np.ndarray | None = None  # ordering time at which each window after the first starts
    spec: object = None  # the FeatureSpec whose cleaned features the binners count
    binners: Mapping[str, Binner] | None = None  # per feature, and "prediction" for ML's

    @property
    def shadowed(self) -> bool:
        return self.control is not None and self.treatment is not None

    def sums(
        self,
        frame: pd.DataFrame,
        times: np.ndarray | None,
        codes: Mapping[str, np.ndarray],
        costs: Mapping[str, np.ndarray],
        proba: np.ndarray | None,
        units: tuple[np.ndarray, np.ndarray],
        control_policy: object,
    ) -> dict:
        """One file's shadow and window sums; `units` is (unit keys, each row's unit index)."""
        out: dict = {}
        if self.shadowed:
            out["shadow"] = shadow_sums(
                codes[self.control],
                codes[self.treatment],
                costs[self.control],
                costs[self.treatment],
                units[1],
                len(units[0]),
                self.decisions,
                rule_hits(control_policy, frame),
            )
        if self.edges is not None and times is not None:
            out["windows"] = self.window_sums(frame, times, costs, proba, units)
        return out

    def window_sums(self, frame, times, costs, proba, units) -> dict:
        """Per drift window: rows, first and last time, cost sums per (window, unit), PSI bins."""
        keys, unit_rows = units
        window = np.searchsorted(self.edges, times, side="right")
        cell = window * len(keys) + unit_rows
        cells, at = np.unique(cell, return_inverse=True)
        names = list(costs)
        sums = np.column_stack(
            [np.bincount(at, weights=costs[n], minlength=len(cells)) for n in names]
        )
        present = np.unique(window)
        cleaned = self.spec.clean(frame)
        bins = {}
        for w in present:
            rows = window == w
            bins[int(w)] = {
                f: b.counts(pd.Series(proba[rows, -1]) if f == "prediction" else cleaned[f][rows])
                for f, b in self.binners.items()
                if f != "prediction" or proba is not None
            }
        return {
            "names": names,
            "cell_window": cells // len(keys),
            "cell_unit": keys[cells % len(keys)],
            "cell_rows": np.bincount(at),
            "cell_sums": sums,
            "first": {int(w): times[window == w].min() for w in present},
            "last": {int(w): times[window == w].max() for w in present},
            "bins": bins,
        }


def shadow_sums(control, treatment, c_cost, t_cost, unit_rows, n_units, decisions, hits) -> dict:
    """A file's shadow counts: per bootstrap unit (disagreements, cost saved, ML right,
    control right), per decision pair, and per rule of the control (rows, disagreements)."""
    disagree = control != treatment
    saving = np.where(disagree, c_cost - t_cost, 0.0)
    t_right = disagree & (t_cost < c_cost)
    c_right = disagree & (c_cost < t_cost)
    per_unit = np.column_stack(
        [
            np.bincount(unit_rows, weights=w, minlength=n_units)
            for w in (disagree.astype(float), saving, t_right.astype(float), c_right)
        ]
    )
    pair = (control * decisions + treatment)[disagree]
    picked = [np.ones(len(pair)), c_cost[disagree], t_cost[disagree]]
    picked += [t_right[disagree].astype(float), c_right[disagree].astype(float)]
    pairs = np.column_stack([np.bincount(pair, weights=w, minlength=decisions**2) for w in picked])
    out = {"per_unit": per_unit, "pairs": pairs}
    if hits is not None:
        index, labels = hits
        out["labels"] = labels
        out["rule_rows"] = np.bincount(index, minlength=len(labels))
        out["rule_disagreements"] = np.bincount(index[disagree], minlength=len(labels))
    return out


def merged_units(stats: Sequence[dict], keys: np.ndarray, what: str) -> np.ndarray:
    """A per-unit array of every file's shadow sums, aligned with the sorted unit `keys`."""
    total = None
    for s in stats:
        part = s["watch"]["shadow"][what]
        if total is None:
            total = np.zeros((len(keys), part.shape[1]))
        total[np.searchsorted(keys, s["units"])] += part
    return total


def shadow_from_sums(
    stats: Sequence[dict],
    keys: np.ndarray,
    sizes: np.ndarray,
    weights: np.ndarray,
    decisions: Sequence[str],
    control: str,
    treatment: str,
    volume_per_day: float,
    note: str | None = None,
) -> Shadow:
    """The shadow of every test row from the files' sums; `weights` (resamples x units) are the
    evaluation's bootstrap weights on the units, so its intervals pair with the costs'."""
    per_unit = merged_units(stats, keys, "per_unit")
    n = float(sizes.sum())
    dis, saving, t_right, c_right = per_unit.sum(axis=0)
    reps = weights @ per_unit
    rows = weights @ sizes
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_reps, saving_reps = reps[:, 0] / rows, reps[:, 1] / rows
        right_reps = reps[:, 2:4] / reps[:, [0]]
        per_dis_reps = reps[:, 1] / reps[:, 0]
    pairs = sum(s["watch"]["shadow"]["pairs"] for s in stats)
    on_dis = None
    if dis:
        on_dis = OnDisagreements(
            control_cost_on_disagreements=float(pairs[:, 1].sum() / dis),
            treatment_cost_on_disagreements=float(pairs[:, 2].sum() / dis),
            control_total_on_disagreements=float(pairs[:, 1].sum()),
            treatment_total_on_disagreements=float(pairs[:, 2].sum()),
            treatment_right_share=interval(t_right / dis, right_reps[:, 0]),
            control_right_share=interval(c_right / dis, right_reps[:, 1]),
            saving_per_disagreement=interval(saving / dis, per_dis_reps),
        )
    summary = Disagreements(
        n=int(n),
        disagreements=int(dis),
        disagreement_rate=interval(dis / n, rate_reps),
        saving_per_decision=interval(saving / n, saving_reps),
        treatment_right=int(t_right),
        control_right=int(c_right),
        ties=int(dis - t_right - c_right),
        on_disagreements=on_dis,
        pairs=_pairs(pairs, decisions),
    )
    blamed = _rules(stats)
    if blamed is None and note is None:
        note = (
            f"The control policy {control!r} has no rules, so no rule can be blamed for "
            "the disagreements."
        )
    return Shadow(
        True,
        summary,
        blamed,
        note if blamed is None else None,
        volume_per_day,
        summary.disagreement_rate.estimate * volume_per_day,
        control,
        treatment,
    )


def _pairs(pairs: np.ndarray, decisions: Sequence[str]) -> tuple[DisagreementPair, ...]:
    d = len(decisions)
    out = []
    for flat in np.flatnonzero(pairs[:, 0]):
        rows, c_cost, t_cost, t_right, c_right = pairs[flat]
        out.append(
            DisagreementPair(
                control=decisions[flat // d],
                treatment=decisions[flat % d],
                rows=int(rows),
                control_cost=float(c_cost / rows),
                treatment_cost=float(t_cost / rows),
                treatment_right=int(t_right),
                control_right=int(c_right),
            )
        )
    out.sort(key=lambda r: -r.rows)
    return tuple(out)


def _rules(stats: Sequence[dict]) -> tuple[RuleOnDisagreements, ...] | None:
    """The control's rules that decided the most disagreement rows (as `rules_on_disagreements`)."""
    shadows = [s["watch"]["shadow"] for s in stats]
    if not shadows or "labels" not in shadows[0]:
        return None
    labels = shadows[0]["labels"]
    rows = sum(s["rule_rows"] for s in shadows)
    dis = sum(s["rule_disagreements"] for s in shadows)
    total = max(int(dis.sum()), 1)
    out = [
        RuleOnDisagreements(
            rule=int(i),
            text=labels[i],
            rows=int(rows[i]),
            disagreements=int(dis[i]),
            share_of_disagreements=int(dis[i]) / total,
            disagreement_rate=int(dis[i]) / int(rows[i]),
        )
        for i in np.flatnonzero(dis)
    ]
    out.sort(key=lambda e: (-e.disagreements, e.rule))
    from advisor.analysis.shadow import TOP_RULES

    return tuple(out[:TOP_RULES])


def window_edges(test_times: np.ndarray, test_rows: int) -> np.ndarray:
    """The time at which each drift window after the first starts, from a sample of the test
    period's ordering times: one window per distinct time when there are few, else quantiles
    (windows of about equal row count; rows with the same time stay in one window)."""
    distinct = np.unique(test_times)
    count = window_count(test_rows)
    if len(distinct) <= count:
        return distinct[1:]
    ordered = np.sort(test_times)
    cuts = ordered[[round(k * len(ordered) / count) for k in range(1, count)]]
    return np.unique(cuts[cuts > ordered[0]])


@dataclass(frozen=True)
class DriftFrame:
    """What the windows' records need besides the sums."""

    time_column: str
    time_unit: str | None
    fitted: object  # the last training time, as the windows' times
    control: str
    treatment: str | None
    expected: Mapping[str, np.ndarray]  # training rows per PSI bin, per feature and prediction
    train_rows: int
    blocking_kind: str  # "periods" or "buckets"
    blocking_unit: str | None
    seed: int


def drift_from_sums(stats: Sequence[dict], frame: DriftFrame) -> Drift:
    """The test period's drift windows from the files' sums: each window's costs with intervals
    from weights on its own units (periods drawn whole, or Poisson(1) on hash buckets), and its
    PSI against the reference bins. The cadence here reads these test windows; the pipeline
    keeps the one chosen on the validation period."""
    parts = [s["watch"]["windows"] for s in stats if "windows" in s.get("watch", {})]
    names = parts[0]["names"]
    window = np.concatenate([p["cell_window"] for p in parts])
    unit = np.concatenate([p["cell_unit"] for p in parts])
    rows = np.concatenate([p["cell_rows"] for p in parts])
    sums = np.vstack([p["cell_sums"] for p in parts])
    has_adv = frame.control in names and frame.treatment in names
    if has_adv:
        adv = sums[:, names.index(frame.control)] - sums[:, names.index(frame.treatment)]
        sums = np.column_stack([sums, adv])
    noise = NoiseLevels(dict(frame.expected), frame.seed)
    present = np.unique(window)
    first = {w: min(p["first"][w] for p in parts if w in p["first"]) for w in present}
    last = {w: max(p["last"][w] for p in parts if w in p["last"]) for w in present}
    origin = _as_time(first[present[0]], frame.time_unit)
    windows = []
    for i, w in enumerate(present):
        mine = window == w
        keys, at = np.unique(unit[mine], return_inverse=True)
        unit_rows = np.bincount(at, weights=rows[mine])
        unit_sums = np.column_stack([np.bincount(at, weights=col) for col in sums[mine].T]).reshape(
            len(keys), -1
        )
        weights = _weights(len(keys), frame, i)
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = (weights @ unit_sums) / (weights @ unit_rows)[:, None]
        counts = {}
        for p in parts:
            for f, c in p["bins"].get(int(w), {}).items():
                counts[f] = counts.get(f, 0) + c
        span = WindowSpan(
            i,
            _as_time(first[w], frame.time_unit),
            _as_time(last[w], frame.time_unit),
            int(unit_rows.sum()),
        )
        est = unit_sums.sum(axis=0) / unit_rows.sum()
        clock = (origin, frame.fitted, frame.time_unit)
        windows.append(
            drift_window(span, names, est, reps, has_adv, counts, frame.expected, noise, clock)
        )
    kind = "blocks" if frame.blocking_kind == "periods" else "buckets"
    scheme = BootstrapScheme(
        kind,
        frame.blocking_unit,
        None,
        WINDOW_RESAMPLES,
        frame.seed,
        "every test row summed on the workers; within each window, "
        + (
            f"whole periods (one {frame.blocking_unit} each) resampled"
            if kind == "blocks"
            else "hash buckets of the row key resampled with Poisson(1) weights"
        ),
    )
    return drift_record(
        windows,
        has_adv,
        time_column=frame.time_column,
        time_unit=frame.time_unit,
        fitted=frame.fitted,
        control=frame.control,
        treatment=frame.treatment,
        features=[f for f in frame.expected if f != "prediction"],
        train_rows=frame.train_rows,
        bootstrap=scheme,
        resamples=WINDOW_RESAMPLES,
    )


def _weights(units: int, frame: DriftFrame, offset: int) -> np.ndarray:
    seed = frame.seed + offset
    if frame.blocking_kind == "periods":
        return np.vstack(list(bootstrap_weights(units, WINDOW_RESAMPLES, seed)))
    rng = np.random.default_rng(seed)
    return rng.poisson(1.0, size=(WINDOW_RESAMPLES, units)).astype(float)


def _as_time(value, time_unit: str | None):
    """An ordering value back as the drift stage's time: a datetime64 for timestamps."""
    if time_unit is None:
        return np.datetime64(int(value), "ns")
    return float(value)
