"""The evaluation of every test row on a Dask cluster, from per-file sufficient statistics.

Each file's test rows are scored on the workers (`advisor.analysis.partitions.test_statistics`)
and reduced to counts and cost totals by class and decision, cost sums per bootstrap unit, and
the shadow's and drift windows' sums (`advisor.analysis.partition_stats`). Here those are
merged into the records the in-memory stages write: the costs with intervals from weights on
the units (periods drawn whole, or Poisson(1) weights on hash buckets of the row key), the
paired differences, the confusion tables, the decision shares, the shadow and the test
period's drift windows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from advisor.analysis.drift import Drift, track_drift
from advisor.analysis.evaluate import Confusion, Difference, Evaluation, RulesCapture, evaluate
from advisor.analysis.partition_stats import (
    DriftFrame,
    Watch,
    drift_from_sums,
    shadow_from_sums,
    window_edges,
)
from advisor.analysis.partitions import Blocking, Layout, test_statistics
from advisor.analysis.roles import Roles
from advisor.analysis.shadow import Shadow, run_shadow
from advisor.core.costs import CostMatrix
from advisor.core.data import Split
from advisor.core.features import FeatureSpec
from advisor.core.record import json_field
from advisor.stats.bootstrap import BootstrapScheme, bootstrap_weights, interval
from advisor.stats.interval import Interval
from advisor.stats.psi import Binner, Reference


def completed(client, futures) -> Iterator:
    """Each future's result as it completes."""
    from distributed import as_completed

    for future in as_completed(futures):
        yield future.result()


@dataclass(frozen=True)
class Sample:
    """The fit sample's split, its feature definitions and its drift reference (the PSI bins
    every test row is counted in)."""

    split: Split
    spec: FeatureSpec
    reference: Reference


@dataclass(frozen=True)
class EveryRowEvaluation(Evaluation):
    """The evaluation of every test row, with the shadow and the test period's drift windows
    summed in the same pass (the shadow and drift stages read them from here)."""

    shadow: Shadow | None = json_field(internal=True, default=None)
    drift: Drift | None = json_field(internal=True, default=None)


def shadow_of_every_row(evaluation, roles, control_policy, test, decisions, volume_per_day):
    """The shadow summed over every test row, else (no ML or control) the in-memory stage."""
    found = getattr(evaluation, "shadow", None)
    if found is not None:
        return found
    return run_shadow(evaluation, roles, control_policy, test, decisions, volume_per_day)


def drift_of_every_row(split, evaluation, roles, ml, spec, seed, reference, valid_costs=None):
    """The test period's windows summed over every test row, with the retraining cadence
    chosen, as in memory, on the validation sample's windows."""
    chosen = track_drift(split, evaluation, roles, ml, spec, seed, reference, valid_costs)
    found = getattr(evaluation, "drift", None)
    if found is None or not chosen.assessable:
        return chosen
    return replace(found, cadence=chosen.cadence)


def test_window_edges(
    times: np.ndarray | None, layout: Layout, test_rows: int
) -> np.ndarray | None:
    """Where the drift windows of the test period start, from the hash sample of the times."""
    if times is None or layout.cuts is None:
        return None
    test = times[times >= layout.cuts[1]]
    return window_edges(test, test_rows) if len(test) else None


def _watch(policies, roles: Roles, costs: CostMatrix, sample: Sample, edges) -> Watch:
    """What the workers sum for the shadow and the drift windows, and the training rows per
    PSI bin those windows are compared with."""
    ml = policies.get(roles.treatment) if roles.treatment else None
    binners, expected = dict(sample.reference.binners), dict(sample.reference.counts)
    if ml is not None and ml.probabilistic and edges is not None:
        train_pred = pd.Series(ml.predict_proba(sample.split.train.frame)[:, -1])
        binners["prediction"] = Binner("numeric").fit(train_pred)
        expected["prediction"] = binners["prediction"].counts(train_pred)
    shadowed = ml is not None and roles.control in policies
    return Watch(
        control=roles.control if shadowed else None,
        treatment=roles.treatment if shadowed else None,
        decisions=costs.n_decisions,
        edges=edges,
        spec=sample.spec,
        binners=binners,
    ), expected


def every_row_evaluator(client, paths, layout, blocking, case, sample: Sample, edges):
    def evaluate_everywhere(policies, test, costs, roles, resampler) -> Evaluation:
        in_sample = evaluate(policies, test, costs, roles, resampler)
        watch, expected = _watch(policies, roles, costs, sample, edges)
        shared = client.scatter([dict(policies)], broadcast=True)[0]
        futures = client.map(
            test_statistics,
            paths,
            range(len(paths)),
            layout=layout,
            policies=shared,
            costs=costs,
            blocking=blocking,
            watch=watch,
            pure=False,
        )
        stats = [s for s in completed(client, futures) if s["rows"]]
        full = full_evaluation(
            in_sample, stats, costs, roles, blocking, resampler.resamples, case.seed
        )
        shadow = drift = None
        keys = np.unique(np.concatenate([s["units"] for s in stats]))
        if watch.shadowed:
            _, sizes = unit_totals(stats, [])
            weights = unit_weights(len(keys), blocking, resampler.resamples, case.seed)
            shadow = shadow_from_sums(
                stats,
                keys,
                sizes,
                weights,
                list(costs.decisions),
                watch.control,
                watch.treatment,
                case.decision.volume_per_day,
            )
        if edges is not None:
            train_times = sample.split.train.frame[sample.split.ordered_by]
            unit = sample.split.time_unit
            last = train_times.max()
            frame = DriftFrame(
                time_column=sample.split.ordered_by,
                time_unit=unit,
                fitted=pd.Timestamp(last).to_datetime64() if unit is None else float(last),
                control=roles.control,
                treatment=roles.treatment,
                expected=expected,
                train_rows=len(sample.split.train),
                blocking_kind=blocking.kind,
                blocking_unit=blocking.unit,
                seed=case.seed,
            )
            drift = drift_from_sums(stats, frame)
        fields = {f: getattr(full, f) for f in full.__dataclass_fields__}
        return EveryRowEvaluation(**fields, shadow=shadow, drift=drift)

    return evaluate_everywhere


def unit_totals(stats: list[dict], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(cost sums: units x policies, rows per unit) over every file, units merged by key."""
    keys = np.unique(np.concatenate([s["units"] for s in stats]))
    sums = np.zeros((len(keys), len(names)))
    sizes = np.zeros(len(keys))
    for s in stats:
        at = np.searchsorted(keys, s["units"])
        sizes[at] += s["unit_sizes"]
        for j, name in enumerate(names):
            sums[at, j] += s["policies"][name]["unit_sums"]
    return sums, sizes


def unit_weights(units: int, blocking: Blocking, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap weights on the units (resamples x units): whole periods drawn with
    replacement, or Poisson(1) weights on hash buckets."""
    if blocking.kind == "periods":
        weights = np.vstack(list(bootstrap_weights(units, resamples, seed)))
    else:
        weights = np.random.default_rng(seed).poisson(1.0, size=(resamples, units))
    return weights.astype(float)


def unit_replicates(
    sums: np.ndarray, sizes: np.ndarray, blocking: Blocking, resamples: int, seed: int
) -> np.ndarray:
    """Bootstrap replicates of each policy's cost per decision from the units' sums."""
    weights = unit_weights(len(sizes), blocking, resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ sums) / (weights @ sizes)[:, None]


def full_evaluation(
    sample: Evaluation,
    stats: list[dict],
    costs: CostMatrix,
    roles: Roles,
    blocking: Blocking,
    resamples: int,
    seed: int,
) -> Evaluation:
    """The evaluation of every test row from the files' sufficient statistics; the sample's
    per-row arrays (for the stages that read rows) and probability metrics are kept."""
    names = list(sample.policies)
    sums, sizes = unit_totals(stats, names)
    reps = unit_replicates(sums, sizes, blocking, resamples, seed)
    replicates = {n: reps[:, j] for j, n in enumerate(names)}
    n = int(sizes.sum())
    means, scores = {}, {}
    for name in names:
        counts = sum(s["policies"][name]["counts"] for s in stats)
        totals = sum(s["policies"][name]["totals"] for s in stats)
        means[name] = float(totals.sum() / n)
        shares = counts.sum(axis=0) / n
        scores[name] = replace(
            sample.policies[name],
            cost_per_decision=interval(means[name], replicates[name]),
            total_cost=float(totals.sum()),
            decision_shares={d: float(s) for d, s in zip(costs.decisions, shares, strict=True)},
            confusion=Confusion(
                classes=tuple(str(c) for c in costs.classes),
                decisions=tuple(costs.decisions),
                counts=tuple(map(tuple, counts.tolist())),
                total_cost=tuple(map(tuple, totals.round(2).tolist())),
            ),
        )
    differences = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = replicates[a] - replicates[b]
            cost = interval(means[a] - means[b], diff)
            differences.append(
                Difference(a, b, cost, float((diff < 0).mean()), cost.excludes_zero())
            )
    units = "periods" if blocking.kind == "periods" else "hash buckets"
    scheme = BootstrapScheme(
        "blocks" if blocking.kind == "periods" else "buckets",
        blocking.unit,
        len(sizes),
        resamples,
        seed,
        f"every test row scored on the workers; {len(sizes)} {units} of rows resampled "
        + (
            f"whole (one {blocking.unit} each), because neighbouring rows of a time series "
            "are not independent"
            if blocking.kind == "periods"
            else "with Poisson(1) weights from a hash of the row key, summed per partition"
        ),
    )
    return replace(
        sample,
        n_test=n,
        bootstrap=scheme,
        policies=scores,
        differences=tuple(differences),
        rules_capture=_capture(means, replicates, roles),
        replicates=replicates,
    )


def _capture(means: Mapping, replicates: Mapping, roles: Roles) -> RulesCapture | None:
    """Share of ML's value over the baseline that the control rule list captures."""
    base, ml, rules = roles.baseline, roles.treatment, roles.control
    if ml is None or not {base, ml, rules} <= set(means):
        return None
    value = means[base] - means[ml]
    est = (means[base] - means[rules]) / value if value > 0 else float("nan")
    rep_ml = replicates[base] - replicates[ml]
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(rep_ml > 0, (replicates[base] - replicates[rules]) / rep_ml, np.nan)
    share = interval(est, reps) if np.isfinite(est) else Interval.unknown()
    return RulesCapture(share, rules, float(value))
