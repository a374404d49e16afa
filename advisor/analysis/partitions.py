"""A folder of Parquet partitions read on a Dask cluster, one task a file, a row never moved.

Every row has a key (its file's number and its place in the file), and every random choice
is a seeded hash of that key, so a run is reproducible whatever the cluster and the order of
the tasks: which split a row falls in (without a time column), whether it is sampled for the
fit, and which bootstrap bucket it adds to. The workers send back counts, sums and the sampled
rows only; the client never holds the table.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, label_key
from advisor.core.errors import InputError, first_line

TRAIN, VALID, TEST = 0, 1, 2
PART, KEY, DRAW = "__advisor_part", "__advisor_key", "__advisor_draw"
SPLIT_SALT, SAMPLE_SALT, BUCKET_SALT = 1, 2, 3
ROW_BITS = 32  # a row's key: file number << 32 | row number in the file
_MASK = (1 << 64) - 1


def unit_hash(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) per row key: splitmix64 of the key, seed and salt."""
    mix = (seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03) & _MASK
    x = keys.astype(np.uint64) ^ np.uint64(mix)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def parquet_files(source: str | Path) -> list[Path]:
    """The Parquet files of a folder (searched recursively), a glob, or a single file."""
    text = str(source)
    if any(c in text for c in "*?["):
        files = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
    elif Path(text).is_dir():
        files = sorted(Path(text).rglob("*.parquet"))
    elif Path(text).is_file():
        files = [Path(text)]
    else:
        raise InputError("no such folder or file", where=text)
    files = [f for f in files if f.is_file() and f.suffix.lower() in {".parquet", ".pq"}]
    if not files:
        raise InputError("holds no Parquet files (*.parquet)", where=text)
    return files


def _field_type(field) -> str:
    """A column's type as partitions may legitimately vary it: a dictionary by its values."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_large_string(kind):
        kind = pa.string()
    return str(kind)


def check_schemas(files: Sequence[Path], needed: Mapping[str, str]) -> dict[str, str]:
    """Every file's columns and types agree with the first's, and each holds the columns the
    case needs (`needed`: column -> role); the common {column: type}."""
    import pyarrow.parquet as pq

    first: dict[str, str] | None = None
    for path in files:
        try:
            schema = pq.read_schema(path)
        except Exception as exc:
            raise InputError(
                f"cannot read as Parquet: {first_line(exc)}", where=str(path)
            ) from None
        columns = {f.name: _field_type(f) for f in schema if not f.name.startswith("__index")}
        for column, role in needed.items():
            if column not in columns:
                raise InputError(
                    f"{role} column {column!r} is missing from this partition", where=str(path)
                )
        if first is None:
            first = columns
            continue
        for name in [*first, *columns]:
            if name not in columns or name not in first:
                where_missing = "this partition" if name not in columns else f"{files[0].name}"
                raise InputError(
                    f"partitions differ: column {name!r} is missing from {where_missing}",
                    where=str(path),
                )
            if columns[name] != first[name]:
                raise InputError(
                    f"partitions differ: column {name!r} is {columns[name]} here but "
                    f"{first[name]} in {files[0].name}",
                    where=str(path),
                )
    return dict(first or {})


@dataclass(frozen=True)
class Layout:
    """What every task needs to place a row: its split, its class and its time."""

    target: str
    classes: Mapping[str, int]  # label key -> class code in the cost matrix
    seed: int
    time: str | None = None
    time_unit: str | None = None
    cuts: tuple | None = None  # time of the first validation row, of the first test row

    def read(self, path: str, index: int, columns: Sequence[str] | None = None):
        """(frame, keys, class codes, ordering times or None) of one file's labelled rows."""
        import pyarrow.parquet as pq

        frame = pq.read_table(path, columns=list(columns) if columns else None).to_pandas()
        keys = (np.uint64(index) << np.uint64(ROW_BITS)) + np.arange(len(frame), dtype=np.uint64)
        keep = frame[self.target].notna().to_numpy()
        times = None
        if self.time:
            from advisor.core.timecolumn import normalise_time

            known = frame[self.time].notna()
            if known.any():
                values, _, _ = normalise_time(frame[self.time], self.time, path, self.time_unit)
                frame[self.time] = values
                known = values.notna()
            keep = keep & known.to_numpy()
        if not keep.all():
            frame, keys = frame.loc[keep].reset_index(drop=True), keys[keep]
        y = self.codes(frame[self.target], path)
        if self.time:
            times = order_values(frame[self.time])
        return frame, keys, y, times

    def codes(self, target: pd.Series, where: str) -> np.ndarray:
        """Each row's class code; a value that is not a class of the cost matrix is an error."""
        codes, uniques = pd.factorize(target)
        lookup = []
        for value in uniques:
            key = label_key(value)
            if key not in self.classes:
                raise InputError(
                    f"target {self.target!r} has value {key!r}, which is not a class of the "
                    f"cost matrix ({list(self.classes)})",
                    where=where,
                )
            lookup.append(self.classes[key])
        return np.asarray(lookup, dtype=np.int64)[codes] if lookup else codes.astype(np.int64)

    def parts(self, keys: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """Train, validation or test per row: by time when there is a time column (the earliest
        60 % train), else by a seeded hash of the key (60/20/20)."""
        if times is not None and self.cuts is not None:
            return (times >= self.cuts[0]).astype(np.int8) + (times >= self.cuts[1])
        u = unit_hash(keys, self.seed, SPLIT_SALT)
        return (u >= 0.6).astype(np.int8) + (u >= 0.8)


def order_values(times: pd.Series) -> np.ndarray:
    """Times as numbers that sort like them: nanoseconds for timestamps, else floats."""
    if pd.api.types.is_datetime64_any_dtype(times):
        return times.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return times.to_numpy(dtype=float)


def time_sample(path: str, index: int, layout: Layout, rate: float) -> np.ndarray:
    """A hash sample of one file's ordering times (for the split's time cut points)."""
    _, keys, _, times = layout.read(path, index, [layout.target, layout.time])
    return times[unit_hash(keys, layout.seed, SAMPLE_SALT) < rate]


def file_counts(path: str, index: int, layout: Layout, n_classes: int) -> dict:
    """Rows by split and class, the rows dropped, and the file's sha256 (the data's hash)."""
    import pyarrow.parquet as pq

    columns = [layout.target, *([layout.time] if layout.time else [])]
    _, keys, y, times = layout.read(path, index, columns)
    parts = layout.parts(keys, times)
    counts = np.bincount(parts * n_classes + y, minlength=3 * n_classes).reshape(3, n_classes)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    rows = pq.ParquetFile(path).metadata.num_rows
    extra = {}
    if times is not None and len(times):
        test = times[parts == TEST]
        extra = {"first": times.min(), "last": times.max()}
        if len(test):
            extra.update(test_first=test.min(), test_last=test.max())
    return {
        "counts": counts,
        "dropped": rows - len(y),
        "sha256": digest.hexdigest(),
        **extra,
    }


def sampled_rows(path: str, index: int, layout: Layout, limits: np.ndarray) -> pd.DataFrame:
    """One file's candidate rows for the fit: those whose hash draw is under their split and
    class's limit (`limits`, splits x classes), with their split, key and draw."""
    frame, keys, y, times = layout.read(path, index)
    parts = layout.parts(keys, times)
    draw = unit_hash(keys, layout.seed, SAMPLE_SALT)
    keep = draw < limits[parts, y]
    out = frame.loc[keep].reset_index(drop=True)
    out[PART], out[KEY], out[DRAW] = parts[keep], keys[keep], draw[keep]
    return out


def draw_limits(counts: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows to keep, hash limit) per split and class: each split's rows shared out in its class
    proportions (stratified), and a limit wide enough that the hash draw under it almost surely
    holds that many rows (six binomial standard deviations over the rate)."""
    total = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)
    keep = np.minimum(np.round(wanted[:, None] * share), counts).astype(np.int64)
    rate = np.divide(keep, counts, out=np.zeros(counts.shape), where=counts > 0)
    spread = np.sqrt(rate * (1 - rate) / np.maximum(counts, 1))
    limits = np.where(
        keep >= counts, 1.0, np.minimum(1.0, rate + 6 * spread + 20 / np.maximum(counts, 1))
    )
    return keep, np.where(keep == 0, 0.0, limits)


def take_sample(
    candidates: pd.DataFrame, keep: np.ndarray, target_codes: np.ndarray
) -> pd.DataFrame:
    """The rows of each split and class with the smallest hash draws (exactly `keep` of them,
    or all there are), in key order."""
    n_classes = keep.shape[1]
    cell = candidates[PART].to_numpy().astype(np.int64) * n_classes + target_codes
    order = np.lexsort((candidates[KEY].to_numpy(), candidates[DRAW].to_numpy(), cell))
    cell_sorted = cell[order]
    starts = np.searchsorted(cell_sorted, np.arange(keep.size))
    rank = np.arange(len(order)) - starts[cell_sorted]
    chosen = order[rank < keep.reshape(-1)[cell_sorted]]
    out = candidates.iloc[np.sort(chosen)]
    return out.sort_values([PART, KEY], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Blocking:
    """How test rows are grouped for the bootstrap: periods of the time column, or hash buckets."""

    kind: str  # "periods" or "buckets"
    unit: str | None = None
    buckets: int = 1000

    def keys(self, keys: np.ndarray, times: np.ndarray | None, seed: int) -> np.ndarray:
        if self.kind == "buckets":
            return np.floor(unit_hash(keys, seed, BUCKET_SALT) * self.buckets).astype(np.int64)
        calendar = dict(_calendar_units())
        if self.unit in calendar:
            stamps = pd.DatetimeIndex(times.view("datetime64[ns]"))
            return pd.PeriodIndex(stamps, freq=calendar[self.unit]).asi8
        width = float(str(self.unit).split()[0])
        return np.floor(times / width).astype(np.int64)


def _calendar_units():
    from advisor.stats.bootstrap import CALENDAR_UNITS

    return CALENDAR_UNITS


def test_statistics(
    path: str,
    index: int,
    layout: Layout,
    policies: Mapping,
    costs: CostMatrix,
    blocking: Blocking,
    watch=None,
) -> dict:
    """One file's test rows scored by every policy, reduced to sufficient statistics: per
    policy the counts and cost totals by class and decision, and the cost sum per bootstrap
    unit (time period or hash bucket), with the rows per unit; and, given a `Watch`
    (`advisor.analysis.partition_stats`), the shadow's and the drift windows' sums."""
    from advisor.core.costs import UNDECIDED

    frame, keys, y, times = layout.read(path, index)
    test = layout.parts(keys, times) == TEST
    if not test.any():
        return {"rows": 0}
    frame, keys, y = frame.loc[test].reset_index(drop=True), keys[test], y[test]
    times = times[test] if times is not None else None
    units, unit_rows = np.unique(blocking.keys(keys, times, layout.seed), return_inverse=True)
    each = costs.cost_of_each_decision(y, frame)
    rows = np.arange(len(y))
    k, d = costs.n_classes, costs.n_decisions
    out = {"rows": len(y), "units": units, "unit_sizes": np.bincount(unit_rows), "policies": {}}
    codes, row_costs, proba = {}, {}, None
    for name, policy in policies.items():
        batch = policy.decide_batch(frame)
        decided = batch.codes
        if (decided == UNDECIDED).any():
            raise ValueError(f"policy {name!r} left test rows undecided")
        per_row = each[rows, decided]
        codes[name], row_costs[name] = decided, per_row
        if watch is not None and name == watch.treatment and policy.probabilistic:
            proba = batch.proba if batch.proba is not None else policy.predict_proba(frame)
        flat = y * d + decided
        out["policies"][name] = {
            "counts": np.bincount(flat, minlength=k * d).reshape(k, d),
            "totals": np.bincount(flat, weights=per_row, minlength=k * d).reshape(k, d),
            "unit_sums": np.bincount(unit_rows, weights=per_row, minlength=len(units)),
        }
    if watch is not None:
        control = policies.get(watch.control) if watch.control else None
        out["watch"] = watch.sums(
            frame, times, codes, row_costs, proba, (units, unit_rows), control
        )
    return out
