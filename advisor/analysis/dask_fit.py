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
HELD_PER_CELL = 8 * 3  # a float64 cell, its copy while LightGBM bins it, and the bins' share
# share of the memory limits: below Dask's spill point (60 %), leaving the workers' own use
MEMORY_SHARE = 0.3


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


def check_room(client, train_rows: int, features: int) -> None:
    """Exit 2 before reading any rows when the workers cannot hold every training row."""
    workers = client.scheduler_info()["workers"].values()
    limits = [w.get("memory_limit") or 0 for w in workers]
    need = train_rows * features * HELD_PER_CELL
    if not limits or min(limits) <= 0:
        return
    room = sum(limits) * MEMORY_SHARE
    if need > room:
        raise InputError(
            f"--fit-engine lightgbm-dask: the {train_rows:,} training rows need about "
            f"{need / 1024**3:.1f} GiB across the workers, and {len(limits)} workers with "
            f"{sum(limits) / 1024**3:.1f} GiB of memory limits can give it "
            f"{room / 1024**3:.1f} GiB; add workers or memory, or use the sampled fit"
        )


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
    check_room(client, train_rows, features)
    parts = client.map(training_part, paths, range(len(paths)), layout=layout, spec=spec)
    rows = client.gather(client.map(lambda p: len(p[1]), parts))
    xs, ys = [], []
    for part, n in zip(parts, rows, strict=True):
        if n == 0:
            continue
        x = client.submit(lambda p: p[0], part)
        y = client.submit(lambda p: p[1], part)
        xs.append(da.from_delayed(x, shape=(n, features), dtype=np.float64))
        ys.append(da.from_delayed(y, shape=(n,), dtype=np.int64))
    X, y = da.concatenate(xs).persist(), da.concatenate(ys).persist()
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
