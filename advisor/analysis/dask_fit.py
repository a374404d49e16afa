"""`--fit-engine lightgbm-dask`: the ML policy refitted on every training row across the workers.

The policies are first fitted on the sample as usual; the sample's early stopping fixes the
number of rounds and the step. Each worker then encodes its files' training rows with the
sample's feature definitions and LightGBM's own Dask interface trains one booster on all of
them in the workers' memory (it holds the rows there: the run refuses, before reading any,
when the workers' memory limits cannot). The probabilities are calibrated on the validation
sample as for the sampled fit, and the model is LightGBM's text model in the bundle, as any
ML policy's. The gain over the sampled fit is the paired difference of their costs on the
validation sample.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.analysis.partitions import TRAIN, Layout
from advisor.core.data import Split
from advisor.core.errors import InputError
from advisor.core.record import Record
from advisor.policies.ml import Calibrator, MLPolicy, should_calibrate
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import Interval

ENGINES = ("sample", "lightgbm-dask")
# bytes a training cell costs a worker while LightGBM fits: the encoded float64 rows, the copy
# lightgbm.dask concatenates them into, the bins and the training state
# (benchmarks/dask_fit_memory.py: 23.3 and 25.7 on two workers of 600,000 rows)
HELD_PER_CELL = 28
# share of a worker's memory limit its peak may reach: below Dask's spill point (60 % managed,
# 70 % of the process), where it would try to move LightGBM's sockets to disk
MEMORY_SHARE = 0.55


@dataclass(frozen=True)
class EveryRowFit(Record):
    """The ML policy fitted on every training row (result.json `data.scale.fit_engine`)."""

    engine: str
    train_rows: int
    rounds: int
    learning_rate: float
    workers: int
    sample_valid_cost: Interval
    valid_cost: Interval
    gain: Interval  # validation cost on every row minus on the sample (negative: it helps)
    why_rounds: str


def training_part(path: str, index: int, layout: Layout, spec) -> tuple[np.ndarray, np.ndarray]:
    """One file's training rows, encoded (float64, column-major) with their class codes."""
    frame, keys, y, times = layout.read(path, index)
    train = layout.parts(keys, times) == TRAIN
    frame = frame.loc[train].reset_index(drop=True)
    return np.asarray(spec.encode(frame), dtype=np.float64), y[train]


def placement(workers: list[str], files: int) -> list[str]:
    """The worker that encodes and holds each file's training rows: round robin."""
    return [workers[i % len(workers)] for i in range(files)]


def check_room(client, rows_per_file: list[int], features: int, encoded: bool = False) -> None:
    """Exit 2 before LightGBM fits when a worker cannot hold its files' training rows: its
    memory now plus `HELD_PER_CELL` bytes a cell (less the float64 cell when `encoded`: the
    rows are already there) must stay within `MEMORY_SHARE` of its limit."""
    info = client.scheduler_info()["workers"]
    workers = sorted(info)
    if not workers or min(w.get("memory_limit") or 0 for w in info.values()) <= 0:
        return
    held = dict.fromkeys(workers, 0)
    for worker, rows in zip(placement(workers, len(rows_per_file)), rows_per_file, strict=True):
        held[worker] += rows
    per_cell = HELD_PER_CELL - (8 if encoded else 0)
    for worker in workers:
        limit = info[worker]["memory_limit"]
        now = info[worker].get("metrics", {}).get("memory", 0)
        need = held[worker] * features * per_cell
        if now + need > limit * MEMORY_SHARE:
            raise InputError(
                f"--fit-engine lightgbm-dask: a worker holding {held[worker]:,} of the "
                f"{sum(held.values()):,} training rows needs about {need / 1024**3:.1f} GiB "
                f"more than its {now / 1024**3:.1f} GiB, over {MEMORY_SHARE:.0%} of its "
                f"{limit / 1024**3:.1f} GiB limit; add workers or memory, or use the sampled fit"
            )


def even_split(rows: int, files: int) -> list[int]:
    """`rows` spread evenly over `files` (the check before the files' rows are counted)."""
    return [rows // files + (i < rows % files) for i in range(files)]


def lightgbm_dask():
    """LightGBM's Dask interface, or exit 2 naming what is missing."""
    try:
        import dask.array  # noqa: F401
        import lightgbm.dask as lgb_dask
    except ImportError as exc:
        raise InputError(
            f"--fit-engine lightgbm-dask needs lightgbm's Dask interface ({exc}): "
            "pip install 'advisor-ship[dask]' 'dask[array,dataframe]'"
        ) from None
    return lgb_dask


def fit_every_row(
    client,
    paths: list[str],
    layout: Layout,
    sample_ml: MLPolicy,
    split: Split,
    train_rows: int,
) -> MLPolicy:
    """`sample_ml` refitted on every training row across the workers, at its step and its
    number of rounds; calibrated on the validation sample. `sample_fit_` keeps the sample's."""
    lgb_dask = lightgbm_dask()
    import dask.array as da
    import lightgbm as lgb

    spec = sample_ml.spec
    features = len(spec.encoders_)
    check_room(client, even_split(train_rows, len(paths)), features)
    workers = placement(sorted(client.scheduler_info()["workers"]), len(paths))
    pinned = [{"workers": [w], "allow_other_workers": False} for w in workers]
    parts = [
        client.submit(training_part, path, i, layout=layout, spec=spec, **where)
        for i, (path, where) in enumerate(zip(paths, pinned, strict=True))
    ]
    pairs = list(zip(parts, pinned, strict=True))
    xs = [client.submit(operator.itemgetter(0), part, **where) for part, where in pairs]
    ys = [client.submit(operator.itemgetter(1), part, **where) for part, where in pairs]
    rows = client.gather([client.submit(len, y, **w) for y, w in zip(ys, pinned, strict=True)])
    del parts, pairs  # each array is then held by one key (Dask counts each key's size)
    check_room(client, rows, features, encoded=True)
    kept = [(x, y, n) for x, y, n in zip(xs, ys, rows, strict=True) if n]
    X = da.concatenate([da.from_delayed(x, (n, features), dtype=np.float64) for x, _, n in kept])
    y = da.concatenate([da.from_delayed(y, (n,), dtype=np.int64) for _, y, n in kept])
    params = {
        k: v
        for k, v in sample_ml._params().items()
        if k not in ("objective", "num_class", "num_threads")
    }
    model = lgb_dask.DaskLGBMClassifier(
        client=client, n_estimators=int(sample_ml.n_trees_), **params
    )
    names = [f"f{i}" for i in range(features)]
    model.fit(X, y, feature_name=names, categorical_feature=list(spec.categorical_indices_))
    policy = copy.copy(sample_ml)
    policy.booster_ = lgb.Booster(model_str=model.booster_.model_to_string())
    policy.n_trees_ = int(sample_ml.n_trees_)
    policy.refined_trees_ = 0
    raw_valid = policy._raw_proba(spec.encode(split.valid.frame, order="F"))
    k = policy.costs.n_classes
    use, losses = should_calibrate(raw_valid, split.valid.y, k, policy.seed)
    policy.calibrator_ = Calibrator(k, policy.seed).fit(raw_valid, split.valid.y) if use else None
    policy.calibration_ = {
        "method": ("platt" if k == 2 else "multinomial") if use else "none",
        **losses,
    }
    policy.sample_fit_ = sample_ml
    policy.train_rows_ = int(sum(rows))
    return policy._set_version()


def gain_over_sample(
    every_row: MLPolicy, split: Split, resampler: Resampler, workers: int
) -> EveryRowFit:
    """The refit's validation cost against the sampled fit's, paired on the validation sample."""
    sample = every_row.sample_fit_
    valid, costs = split.valid, every_row.costs
    each = costs.cost_of_each_decision(valid.y, valid.frame)
    rows = np.arange(len(valid))
    per_row = np.column_stack(
        [each[rows, p.decide_batch(valid.frame).codes] for p in (sample, every_row)]
    )
    reps = resampler.means(np.column_stack([per_row, per_row[:, 1] - per_row[:, 0]]))
    est = [per_row[:, 0].mean(), per_row[:, 1].mean()]
    return EveryRowFit(
        engine="lightgbm-dask",
        train_rows=every_row.train_rows_,
        rounds=every_row.n_trees_,
        learning_rate=float(every_row.learning_rate_),
        workers=workers,
        sample_valid_cost=interval(est[0], reps[:, 0]),
        valid_cost=interval(est[1], reps[:, 1]),
        gain=interval(est[1] - est[0], reps[:, 2]),
        why_rounds=(
            f"{every_row.n_trees_} rounds at a step of {every_row.learning_rate_:g}: where "
            f"early stopping on the validation sample ended the fit on "
            f"{len(split.train):,} sampled rows"
        ),
    )


def with_every_row_ml(fitted: Mapping, refit) -> dict:
    """The fitted policies with ML replaced by its refit on every training row."""
    ml = fitted.get("ml")
    if not isinstance(ml, MLPolicy):
        return dict(fitted)
    return {**fitted, "ml": refit(ml)}
