"""`advisor analyze DATASET --engine dask`: fit on what fits, score on everything.

The passes over the partitions (`advisor.analysis.partitions`) run on the workers: the
split's time cut points, the rows by split and class, then a seeded, stratified sample drawn
by hash. The policies are fitted in memory on that sample by the usual pipeline, and every
test row is scored on the workers, reduced to per-file sufficient statistics: counts and cost
totals by class and decision, and cost sums per bootstrap unit (periods of the time column, or
hash buckets of the row key with Poisson(1) weights), so no resample gathers rows. The same
pass sums the shadow's disagreements and the drift windows' costs and PSI bins
(`advisor.analysis.partition_stats`). The stages that must read single rows (the A/B
simulation, latency, the model's explanation) run on a sample of the test rows the same size
as the validation sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.analysis.dask_fit import (
    ENGINES,
    check_room,
    even_split,
    fit_every_row,
    gain_over_sample,
    lightgbm_dask,
    with_every_row_ml,
)
from advisor.analysis.every_row import (
    Sample,
    completed,
    drift_of_every_row,
    every_row_evaluator,
    shadow_of_every_row,
    test_window_edges,
)
from advisor.analysis.learning_curve import learning_curve
from advisor.analysis.partitions import (
    DRAW,
    KEY,
    PART,
    TEST,
    TRAIN,
    VALID,
    Blocking,
    Layout,
    check_schemas,
    draw_limits,
    file_counts,
    parquet_files,
    sampled_rows,
    take_sample,
    time_sample,
)
from advisor.analysis.pipeline import (
    Analysis,
    Progress,
    StageClock,
    analyse_split,
    fit_policies,
)
from advisor.core.case import Case
from advisor.core.costs import label_key
from advisor.core.data import Part, Split, load_dataset
from advisor.core.errors import InputError, first_line
from advisor.core.features import FeatureSpec
from advisor.core.record import Record
from advisor.core.timecolumn import time_text
from advisor.policies.rules.policy import refuse_date_columns
from advisor.stats.bootstrap import time_blocks
from advisor.stats.psi import training_reference

MAX_FIT_ROWS = 1_000_000
MIN_FIT_ROWS = 20_000
FOOTPRINT = 4.6  # the in-memory analysis peaks near 4.6x its raw table (11.1 GB at 10M x 30)
TIME_SAMPLE_ROWS = 200_000  # hash sample of times for the split's cut points
BUCKETS = 1000
CONNECT_TIMEOUT = "10s"


@dataclass(frozen=True)
class FitSample(Record):
    """How many rows fitted the policies, out of how many, and why that many."""

    train_rows: int
    valid_rows: int
    test_sample_rows: int
    train_available: int
    valid_available: int
    test_rows_scored: int
    sized_by: str
    why: str


@contextmanager
def connect(scheduler: str | None, **cluster: object) -> Iterator:
    """A Dask client: the scheduler at `scheduler`, or a LocalCluster sized to the machine."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "--engine dask needs the dask extra: pip install 'advisor-ship[dask]'"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"cannot reach the Dask scheduler: {first_line(exc)}", where=scheduler
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    import logging

    settings = {"dashboard_address": None, "silence_logs": logging.ERROR, **cluster}
    with LocalCluster(**settings) as local, Client(local) as client:
        yield client


def default_fit_rows(client, columns: int) -> tuple[int, str]:
    """Training rows for the fit from the smallest worker's memory limit: half of it holds the
    in-memory analysis of the sample (train, validation and test samples, 5/3 of the training
    rows, at FOOTPRINT times 8 bytes a cell)."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    limit = min(limits) if limits and min(limits) > 0 else 4 * 1024**3
    per_row = 8 * columns * FOOTPRINT
    rows = int(limit / 2 / per_row / (5 / 3))
    chosen = int(min(MAX_FIT_ROWS, max(MIN_FIT_ROWS, rows)))
    why = (
        f"half the smallest worker's memory limit ({limit / 1024**3:.1f} GiB) holds the "
        f"in-memory analysis of {rows:,} training rows plus validation and test samples of a "
        f"third as many each (about {per_row:,.0f} bytes a row while fitting)"
    )
    if chosen != rows:
        why += f"; kept within {MIN_FIT_ROWS:,} to {MAX_FIT_ROWS:,} rows"
    return chosen, why


def _distinct_targets(path: str, target: str) -> list:
    import pyarrow.parquet as pq

    values = pq.read_table(path, columns=[target]).column(target).unique().to_pylist()
    return [v for v in values if v is not None]


def target_values(client, files: list[Path], target: str) -> list:
    """The distinct target values over every partition (sorted), read on the workers."""
    seen: dict[str, object] = {}
    for values in completed(
        client, client.map(_distinct_targets, [str(f) for f in files], target=target)
    ):
        for v in values:
            seen.setdefault(label_key(v), v)
            if len(seen) > 1000:
                raise InputError(
                    f"target {target!r} has over 1,000 different values (an identifier?)",
                    where=str(files[0].parent),
                )
    return sorted(seen.values(), key=label_key)


def analyse_partitioned(
    source: str | Path,
    case_for: Callable[[list], Case],
    *,
    target: str,
    scheduler: str | None = None,
    fit_rows: int | None = None,
    progress: Progress | None = None,
    cluster: Mapping | None = None,
    fit_engine: str = "sample",
) -> Analysis:
    """Analyse a folder (or glob) of Parquet partitions on a Dask cluster.

    `case_for(values)` builds the Case from the distinct values of the `target` column (the
    binary cost shortcut needs them). `fit_engine` "lightgbm-dask" refits the ML policy on
    every training row across the workers (`advisor.analysis.dask_fit`).
    """
    if fit_engine not in ENGINES:
        raise InputError(f"--fit-engine must be one of {', '.join(ENGINES)}, not {fit_engine!r}")
    clock = StageClock(progress)
    files = parquet_files(source)
    paths = [str(f) for f in files]
    check_schemas(files, {target: "target"})
    with clock("connect", f"Connecting to Dask ({len(files)} Parquet files)"):
        stack = ExitStack()
        client = stack.enter_context(connect(scheduler, **dict(cluster or {})))
    with stack:
        with clock("load", "Reading the partitions' layout on the workers"):
            workers = len(client.scheduler_info().get("workers", {}))
            case = case_for(target_values(client, files, target))
            schema = check_schemas(files, _needed(case))
            classes = {label_key(c): i for i, c in enumerate(case.costs.classes)}
            layout = Layout(case.target, classes, case.seed, case.time, case.time_unit)
            layout, times = _time_cuts(client, paths, layout)
            counts, dropped, digest, spans = _count(client, paths, layout, case.costs.n_classes)
            if fit_engine == "lightgbm-dask":
                lightgbm_dask()
                rows = even_split(int(counts[TRAIN].sum()), len(paths))
                check_room(client, rows, len(schema) - 1)
        with clock("split", "Drawing the fit sample on the workers"):
            if fit_rows is None:
                fit_rows, why = default_fit_rows(client, len(schema))
                sized_by = "worker memory"
            else:
                why, sized_by = f"--fit-rows {fit_rows:,}", "--fit-rows"
            wanted = np.array([fit_rows, max(1, fit_rows // 3), max(1, fit_rows // 3)])
            keep, limits = draw_limits(counts, wanted)
            sample = _draw(client, paths, layout, keep, limits, case)
            data, split = _sample_split(case, sample, str(source))
            blocking = _blocking(times, layout)
        spec = FeatureSpec(data.schema).fit(split.train.frame)
        sample = Sample(split, spec, training_reference(spec, split.train.frame))
        edges = test_window_edges(times, layout, int(counts[TEST].sum()))
        evaluator = every_row_evaluator(client, paths, layout, blocking, case, sample, edges)
        analysis = analyse_split(
            case,
            data,
            split,
            clock,
            evaluator=evaluator,
            fitter=_fitter(fit_engine, client, paths, layout, split, int(counts[TRAIN].sum())),
            shadow_runner=shadow_of_every_row,
            drift_tracker=drift_of_every_row,
        )
        on_sample, every_row = dict(analysis.policies), None
        if fit_engine == "lightgbm-dask":
            on_sample["ml"] = analysis.policies["ml"].sample_fit_
            every_row = gain_over_sample(
                analysis.policies["ml"], split, _valid_resampler(case, split), workers
            )
        with clock("learning_curve", "Refitting on 1/4 and 1/2 of the sample"):
            curve = learning_curve(
                case,
                split,
                spec,
                on_sample,
                _valid_resampler(case, split),
                int(counts[TRAIN].sum()),
            )
    fit = FitSample(
        train_rows=len(split.train),
        valid_rows=len(split.valid),
        test_sample_rows=len(split.test),
        train_available=int(counts[TRAIN].sum()),
        valid_available=int(counts[VALID].sum()),
        test_rows_scored=int(counts[TEST].sum()),
        sized_by=sized_by,
        why=why,
    )
    summary = {
        **analysis.data,
        "rows": int(counts.sum()),
        "columns": len(schema),
        "class_counts": {
            str(c): int(n) for c, n in zip(case.costs.classes, counts.sum(axis=0), strict=True)
        },
        "dropped_rows": int(dropped),
        "sha256": digest,
        "split": _split_summary(counts, layout, spans, fit),
        "scale": {
            "engine": "dask",
            "source": str(source),
            "files": len(files),
            "workers": workers,
            "fit": fit.to_dict(),
            "learning_curve": curve.to_dict() if curve else None,
            "fit_engine": every_row.to_dict() if every_row else None,
        },
    }
    return replace(
        analysis,
        case=replace(case, data_path=Path(str(source)).resolve()),
        data=summary,
        data_sha256=digest,
    )


def _fitter(engine: str, client, paths, layout, split: Split, train_rows: int):
    """The policies fitted on the sample, with ML refitted on every training row when asked."""
    if engine != "lightgbm-dask":
        return fit_policies

    def fit_and_refit(case: Case, sample: Split, spec: FeatureSpec) -> dict:
        return with_every_row_ml(
            fit_policies(case, sample, spec),
            lambda ml: fit_every_row(client, paths, layout, ml, sample, train_rows),
        )

    return fit_and_refit


def _valid_resampler(case: Case, split: Split):
    from advisor.stats.bootstrap import resampler_for

    return resampler_for(split.times(split.valid), case.option("bootstrap_resamples"), case.seed)


def _needed(case: Case) -> dict[str, str]:
    """The columns the case names, by role: every partition must hold them."""
    needed = {case.target: "target"}
    if case.time:
        needed[case.time] = "time"
    for column in case.costs.columns:
        needed.setdefault(column, "cost")
    for column in case.ignore:
        needed.setdefault(column, "ignored")
    return needed


def _time_cuts(client, paths: list[str], layout: Layout) -> tuple[Layout, np.ndarray | None]:
    """The time of the first validation and first test row (60 % and 80 % of the rows in time
    order), from a hash sample of the times; the sample is returned for the blocking."""
    if not layout.time:
        return layout, None
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    rate = min(1.0, TIME_SAMPLE_ROWS / max(rows, 1))
    parts = list(
        completed(
            client, client.map(time_sample, paths, range(len(paths)), layout=layout, rate=rate)
        )
    )
    times = np.sort(np.concatenate(parts)) if parts else np.array([])
    if len(times) < 30:
        raise InputError(
            f"only {len(times)} rows with a time value; at least 30 are needed to split",
            where=paths[0],
        )
    cuts = (times[round(len(times) * 0.6)], times[round(len(times) * 0.8)])
    return replace(layout, cuts=cuts), times


def _count(client, paths, layout, n_classes):
    counts = np.zeros((3, n_classes), dtype=np.int64)
    dropped, digests, spans = 0, {}, {}
    futures = client.map(file_counts, paths, range(len(paths)), layout=layout, n_classes=n_classes)
    for out in completed(client, futures):
        counts += out["counts"]
        dropped += out["dropped"]
        digests[out["sha256"]] = digests.get(out["sha256"], 0) + 1
        for key in ("first", "last", "test_first", "test_last"):
            if key in out:
                pick = min if "first" in key else max
                spans[key] = pick(spans[key], out[key]) if key in spans else out[key]
    if counts.sum() == 0:
        raise InputError("no labelled rows in any partition", where=paths[0])
    combined = hashlib.sha256("".join(sorted(f"{k}{v}" for k, v in digests.items())).encode())
    return counts, dropped, combined.hexdigest(), spans


def _draw(client, paths, layout, keep, limits, case) -> pd.DataFrame:
    futures = client.map(sampled_rows, paths, range(len(paths)), layout=layout, limits=limits)
    frames = [f for f in completed(client, futures) if len(f)]
    candidates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if candidates.empty:
        raise InputError("the fit sample is empty", where=paths[0])
    codes = layout.codes(candidates[case.target], paths[0])
    return take_sample(candidates, keep, codes).drop(columns=[KEY, DRAW])


def _sample_split(case: Case, sample: pd.DataFrame, source: str) -> tuple:
    """The sample validated by the in-memory loader and cut into its three parts."""
    loading = replace(case, frame=sample, data_path=None, ignore=(*case.ignore, PART))
    data = load_dataset(loading)
    dropped = {c: why for c, why in data.time_proxies.items() if c not in data.schema.features}
    if case.rules_path is not None and dropped:
        refuse_date_columns(case.rules_path, dropped)
    part = data.frame[PART].to_numpy()
    frame = data.frame.drop(columns=[PART])
    made = [
        Part(frame.loc[part == p].reset_index(drop=True), data.y[part == p])
        for p in (TRAIN, VALID, TEST)
    ]
    if min(len(p) for p in made) < 10 or len(np.unique(made[0].y)) < 2:
        raise InputError(
            "the fit sample is too small to split (or its training part holds a single class)",
            where=source,
        )
    data = replace(data, frame=frame, source=source)
    split = Split(
        made[0], made[1], made[2], case.time, data.schema.time_unit if case.time else None
    )
    return data, split


def _blocking(times: np.ndarray | None, layout: Layout) -> Blocking:
    """Periods of the time column when the test period has enough of them, else hash buckets."""
    if times is None or layout.cuts is None:
        return Blocking("buckets", buckets=BUCKETS)
    test = times[times >= layout.cuts[1]]
    series = (
        pd.Series(test.view("datetime64[ns]"))
        if np.issubdtype(test.dtype, np.integer)
        else pd.Series(test)
    )
    found = time_blocks(series)
    if found is None:
        return Blocking("buckets", buckets=BUCKETS)
    return Blocking("periods", unit=found[1])


def _split_summary(counts: np.ndarray, layout: Layout, spans: Mapping, fit: FitSample) -> dict:
    names = ("train", "valid", "test")
    if layout.cuts is not None:
        method = f"time-ordered on {layout.time!r}"
    else:
        method = "seeded hash of the row key (stratified in expectation)"
    out: dict = {"method": method}
    sampled = {"train": fit.train_rows, "valid": fit.valid_rows, "test": fit.test_sample_rows}
    for i, name in enumerate(names):
        out[name] = {"rows": int(counts[i].sum()), "sampled": sampled[name]}
    if layout.cuts is not None:
        shown = [
            _shown_time(v, layout) for v in (spans.get("first"), *layout.cuts, spans.get("last"))
        ]
        for i, name in enumerate(names):
            out[name]["from"], out[name]["to"] = shown[i], shown[i + 1]
    return out


def _shown_time(value, layout: Layout) -> str | None:
    if value is None:
        return None
    if isinstance(value, np.integer | int) and layout.time_unit is None:
        return time_text(pd.Timestamp(int(value)))
    return time_text(value)
