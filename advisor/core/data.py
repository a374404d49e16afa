"""Load and validate a case's data: types, warnings, the data hash, and the seeded split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, label_key
from advisor.core.errors import InputError
from advisor.core.incumbent import check_incumbent
from advisor.core.reading import file_sha256, frame_sha256, preview_columns, read_frame
from advisor.core.timecolumn import normalise_time, time_text
from advisor.core.timeproxy import time_proxies

KINDS = ("numeric", "boolean", "categorical", "datetime")
_BOOL_TEXT = {"true", "false"}
MAX_LEVELS = 255
MAX_CLASSES = 20  # more distinct target values than this, none of them classes: not a label
LEAK_ROWS = 200_000  # rows the leak check reads at most (a seeded sample)


@dataclass(frozen=True)
class Schema:
    """The kind of every feature column, plus the roles of the other columns."""

    features: dict[str, str]
    target: str
    time: str | None = None
    cost_columns: tuple[str, ...] = ()
    time_unit: str | None = None  # None: timestamps (tz-naive UTC); else the numeric unit

    def to_dict(self) -> dict:
        return {
            "features": dict(self.features),
            "target": self.target,
            "time": self.time,
            "time_unit": self.time_unit,
            "cost_columns": list(self.cost_columns),
        }


@dataclass(frozen=True)
class Dataset:
    """The validated frame: features, target codes (index into the cost matrix classes), hash."""

    frame: pd.DataFrame
    y: np.ndarray
    schema: Schema
    sha256: str
    classes: tuple = ()
    warnings: list[str] = field(default_factory=list)
    time_proxies: dict[str, str] = field(default_factory=dict)  # column -> why it encodes time
    dropped_rows: int = 0
    source: str = "data"
    skipped: int = 0  # rows the incumbent left undecided, left out (incumbent_missing: skip)  # the data file (or "data" for a frame), for error messages

    def without_rows(self) -> Dataset:
        """The same data set with an empty frame (its columns kept): once the rows are split
        and nothing refits on the whole frame, the split alone holds them, not twice."""
        return replace(self, frame=self.frame.iloc[:0].copy())

    def summary(self, costs: CostMatrix) -> dict:
        counts = np.bincount(self.y, minlength=costs.n_classes)
        return {
            "rows": len(self.y),
            "columns": len(self.frame.columns),
            "features": len(self.schema.features),
            "feature_kinds": {k: sum(v == k for v in self.schema.features.values()) for k in KINDS},
            "class_counts": {str(c): int(n) for c, n in zip(costs.classes, counts, strict=True)},
            "dropped_rows": self.dropped_rows,
            "sha256": self.sha256,
            "schema": self.schema.to_dict(),
            "warnings": list(self.warnings),
            "time_proxies": [
                {"column": c, "reason": why, "used": c in self.schema.features}
                for c, why in self.time_proxies.items()
            ],
        }


@dataclass(frozen=True)
class Part:
    """One split of the data: the rows and their class codes."""

    frame: pd.DataFrame
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    train: Part
    valid: Part
    test: Part
    ordered_by: str | None
    time_unit: str | None = None

    def times(self, part: Part) -> pd.Series | None:
        """The time column of one part, or None when the split is not ordered by time."""
        return part.frame[self.ordered_by] if self.ordered_by else None

    def summary(self) -> dict:
        out = {
            "method": f"time-ordered on {self.ordered_by!r}"
            if self.ordered_by
            else "stratified random"
        }
        for name in ("train", "valid", "test"):
            part = getattr(self, name)
            out[name] = {"rows": len(part)}
            if self.ordered_by:
                t = part.frame[self.ordered_by]
                out[name]["from"], out[name]["to"] = time_text(t.min()), time_text(t.max())
        return out


def infer_kind(series: pd.Series) -> str:
    """numeric, boolean, categorical or datetime, from the dtype and (for text) the values."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    values = series.dropna()
    if len(values) == 0:
        return "categorical"
    distinct = values.unique()
    if len(distinct) <= 2 and {str(v).strip().lower() for v in distinct} <= _BOOL_TEXT:
        return "boolean"
    sample = values.iloc[:: max(1, len(values) // 500)].astype(str)
    if sample.str.match(r"^\d{4}-\d{2}-\d{2}").mean() > 0.95:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed", utc=True)
        if parsed.notna().mean() > 0.95:
            return "datetime"
    return "categorical"


def load_dataset(case) -> Dataset:
    """Read the case's data, check every column it names, infer feature kinds, and warn."""
    where = str(case.data_path) if case.data_path else "data"
    frame = case.frame.copy() if case.frame is not None else read_frame(case.data_path)
    if case.frame is not None:
        if frame.empty:
            raise InputError("the data frame has no rows", where=where)
        frame.columns = [str(c) for c in frame.columns]
    costs: CostMatrix = case.costs
    warnings: list[str] = []

    def need(column: str, role: str) -> None:
        if column not in frame.columns:
            raise InputError(
                f"{role} column {column!r} is not in the data; columns are {preview_columns(frame.columns)}",
                where=where,
            )

    need(case.target, "target")
    if case.time:
        need(case.time, "time")
    for col in case.ignore:
        need(col, "ignored")
    for col in costs.columns:
        if col not in frame.columns:
            cell = next(
                f"costs.matrix.{c}.{d}"
                for c, row in zip(costs.classes, costs.cells, strict=True)
                for d, cost in zip(costs.decisions, row, strict=True)
                if cost.column == col
            )
            raise InputError(
                f"names column {col!r}, which is not in the data ({where}); columns are "
                f"{preview_columns(frame.columns)}",
                where=f"{case.source}: {cell}" if case.source else cell,
            )

    missing_target = frame[case.target].isna()
    dropped = int(missing_target.sum())
    if dropped:
        frame = frame.loc[~missing_target]
        warnings.append(f"{dropped} rows with a missing target {case.target!r} were dropped.")
    if frame.empty:
        raise InputError(f"every row has a missing target {case.target!r}", where=where)

    incumbent, undecided = case.incumbent, 0
    if incumbent is not None:
        decided, undecided = check_incumbent(frame, incumbent, costs.decisions, where)
        if undecided:
            frame = frame.loc[decided]
            dropped += undecided
            warnings.append(
                f"{undecided} rows where the incumbent {incumbent.column!r} decided nothing were "
                "left out (incumbent_missing: skip): every policy is compared on the rows it decided."
            )

    y = _target_codes(frame[case.target], case.target, costs, where)
    present = np.unique(y)
    absent = [str(costs.classes[k]) for k in range(costs.n_classes) if k not in present]
    if absent:
        warnings.append(f"Class {absent[0]!r} of the cost matrix never occurs in the data.")

    for col in costs.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            raise InputError(
                f"cost column {col!r} holds a non-number {frame[col][bad].iloc[0]!r}", where=where
            )
        if values.isna().any():
            raise InputError(
                f"cost column {col!r} has {int(values.isna().sum())} missing values; costs must be "
                "known for every row",
                where=where,
            )
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise InputError(f"cost column {col!r} holds an infinite value", where=where)

    time_unit = None
    if case.time:
        values, time_unit, notes = normalise_time(
            frame[case.time], case.time, where, case.time_unit
        )
        frame = frame.assign(**{case.time: values})
        warnings.extend(notes)
        bad_time = frame[case.time].isna()
        if bad_time.any():
            warnings.append(f"{int(bad_time.sum())} rows with a missing time were dropped.")
            keep = ~bad_time.to_numpy()
            frame, y = frame.loc[keep], y[keep]
            dropped += int(bad_time.sum())

    roles = {case.target, *case.ignore, *([case.time] if case.time else [])}
    if incumbent is not None:
        roles.add(incumbent.column)  # today's decisions are never a feature
    features: dict[str, str] = {}
    for col in frame.columns:
        if col in roles:
            continue
        kind = infer_kind(frame[col])
        if kind == "datetime":
            warnings.append(f"Column {col!r} holds dates; it is not used as a feature.")
            continue
        if frame[col].isna().all():
            warnings.append(f"Column {col!r} is empty; it is not used as a feature.")
            continue
        if _looks_like_id(frame[col], kind):
            warnings.append(
                f"Column {col!r} looks like an identifier (a different value on almost every row); "
                "it is not used as a feature. List it under 'ignore' to silence this."
            )
            continue
        features[col] = kind
    proxies: dict[str, str] = {}
    if case.time and features:
        proxies = time_proxies(frame, features, case.time, time_unit)
        keep = case.time_features == "keep"
        for col, why in proxies.items():
            if keep:
                warnings.append(
                    f"Column {col!r} only encodes the date ({why}); it is kept as a feature "
                    "(time_features: keep), so the model may learn periods it will not see again."
                )
            else:
                warnings.append(
                    f"Column {col!r} only encodes the date ({why}): later periods bring values "
                    "the training rows never had, so it is left out of the rules and the model. "
                    "Set time_features: keep (or --keep-time-features) to use it."
                )
                del features[col]
    if not features:
        raise InputError("no usable feature columns remain", where=where)
    frame = frame.reset_index(drop=True)
    warnings.extend(_leak_warnings(frame, y, features, case.target))
    sha = frame_sha256(case.frame) if case.frame is not None else file_sha256(case.data_path)
    schema = Schema(
        features=features,
        target=case.target,
        time=case.time,
        cost_columns=costs.columns,
        time_unit=time_unit,
    )
    return Dataset(
        frame=frame,
        y=y,
        schema=schema,
        sha256=sha,
        classes=costs.classes,
        warnings=warnings,
        time_proxies=proxies,
        dropped_rows=dropped,
        source=where,
        skipped=undecided,
    )


def _target_codes(target: pd.Series, name: str, costs: CostMatrix, where: str) -> np.ndarray:
    """Each row's class code in the cost matrix; a target that is not a few classes is an error."""
    key_to_code = {label_key(c): i for i, c in enumerate(costs.classes)}
    codes, uniques = pd.factorize(target)
    keys = [label_key(v) for v in uniques]
    unknown = [k for k in keys if k not in key_to_code]
    if len(unknown) > MAX_CLASSES:
        what = (
            f"holds {len(uniques):,} different numbers (a measurement, not classes?)"
            if pd.api.types.is_numeric_dtype(target)
            else f"has {len(uniques):,} different values (an identifier?)"
        )
        raise InputError(
            f"target {name!r} {what}; the target must hold the classes of the cost matrix "
            f"({[str(c) for c in costs.classes]})",
            where=where,
        )
    if unknown:
        hint = ""
        if any(isinstance(c, bool) for c in costs.classes):
            hint = "; YAML reads unquoted yes/no/on/off as true/false, so quote the class names"
        raise InputError(
            f"target {name!r} has value {sorted(unknown)[0]!r}, which is not a class of the cost "
            f"matrix ({[str(c) for c in costs.classes]}){hint}",
            where=where,
        )
    y = np.array([key_to_code[k] for k in keys], dtype=np.int64)[codes]
    present = np.unique(y)
    if len(present) < 2:
        raise InputError(
            f"target {name!r} has a single class ({costs.classes[present[0]]!r}); "
            "at least two are needed",
            where=where,
        )
    return y


def _looks_like_id(series: pd.Series, kind: str) -> bool:
    if kind == "numeric" and not pd.api.types.is_integer_dtype(series):
        return False  # measurements, not identifiers: no need to count their values
    n = int(series.notna().sum())
    if n < 50:
        return False
    distinct = series.nunique(dropna=True)
    if kind == "categorical":
        return distinct / n > 0.9
    if kind == "numeric" and pd.api.types.is_integer_dtype(series) and distinct == n:
        return (series.max() - series.min() + 1) <= 1.1 * n
    return False


def _leak_warnings(frame: pd.DataFrame, y: np.ndarray, features: dict, target: str) -> list[str]:
    """Warn when one feature alone predicts the target almost perfectly (known at decision time?).

    Above LEAK_ROWS rows the check runs on a seeded sample of that many: a near-perfect
    predictor is one on any large sample."""
    out = []
    rows = None
    if len(y) > LEAK_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(y), LEAK_ROWS, replace=False))
        y = y[rows]
    base = np.bincount(y).max() / len(y)
    if base > 0.97:
        return out
    classes = int(y.max()) + 1
    sampled = "" if rows is None else f" (on a seeded sample of {LEAK_ROWS:,} rows)"
    for col, kind in features.items():
        s = frame[col] if rows is None else frame[col].iloc[rows]
        if kind == "numeric":
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            known = ~np.isnan(x)
            if not known.any():
                continue
            edges = np.unique(np.quantile(x[known], np.linspace(0, 1, 21)[1:-1]))
            groups = np.where(known, np.searchsorted(edges, x, side="right"), -1)
        else:
            groups = pd.factorize(s, use_na_sentinel=True)[0]
            if groups.max() > 1000:
                continue
        cells = (groups + 1) * classes + y
        table = np.bincount(cells, minlength=(groups.max() + 2) * classes).reshape(-1, classes)
        accuracy = table.max(axis=1).sum() / len(y)
        if accuracy >= 0.99:
            out.append(
                f"Column {col!r} alone predicts {target!r} with {accuracy:.1%} accuracy{sampled}: check "
                "that it is known at decision time (a leak would flatter every policy)."
            )
    return out


def split_dataset(data: Dataset, seed: int) -> Split:
    """60/20/20: time-ordered when the case has a time column, else stratified and seeded."""
    parts = split_rows(data, seed)
    made = [Part(frame=data.frame.iloc[p].reset_index(drop=True), y=data.y[p]) for p in parts]
    return _split(made, data)


def split_releasing(data: Dataset, seed: int) -> tuple[Dataset, Split]:
    """`split_dataset` and the data set without its rows (`Dataset.without_rows`), for a run
    that reads the whole frame no more: the parts are taken a column at a time, each column
    dropped from `data.frame` once taken, so the rows are held about once while they are
    split, not twice. `data.frame` is emptied: use the data set returned."""
    parts = split_rows(data, seed)
    rowless = data.without_rows()
    columns: list[dict] = [{} for _ in parts]
    for name in list(data.frame.columns):
        column = data.frame.pop(name)
        for taken, p in zip(columns, parts, strict=True):
            taken[name] = column.iloc[p].reset_index(drop=True)
        del column
        _return_arrow_memory()
    made = [
        Part(frame=pd.DataFrame(taken, copy=False), y=data.y[p])
        for taken, p in zip(columns, parts, strict=True)
    ]
    return rowless, _split(made, data)


def _return_arrow_memory() -> None:
    """Give back the pages Arrow's allocator keeps once its buffers are freed: the columns of a
    frame read from Parquet are Arrow's, and without this the memory they held stays with
    the process after they are let go."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def split_rows(data: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of train, validation and test (60/20/20), checked: time-ordered when the
    case has a time column, else stratified and seeded."""
    n = len(data.y)
    if n < 30:
        raise InputError(
            f"only {n} labelled rows; at least 30 are needed to split and evaluate",
            where=data.source,
        )
    time = data.schema.time
    if time:
        order = np.argsort(data.frame[time].to_numpy(), kind="stable")
        a, b = round(n * 0.6), round(n * 0.8)
        parts = (order[:a], order[a:b], order[b:])
    else:
        from sklearn.model_selection import train_test_split

        counts = np.bincount(data.y)
        small = [(k, c) for k, c in enumerate(counts) if 0 < c < 5]
        if small:
            label = data.classes[small[0][0]] if data.classes else small[0][0]
            raise InputError(
                f"class {str(label)!r} has only {small[0][1]} rows; each class needs at least 5 "
                "to be split into train, validation and test",
                where=f"{data.source}: column {data.schema.target!r}",
            )
        idx = np.arange(n)
        train, rest = train_test_split(idx, test_size=0.4, stratify=data.y, random_state=seed)
        valid, test = train_test_split(
            rest, test_size=0.5, stratify=data.y[rest], random_state=seed
        )
        parts = (np.sort(train), np.sort(valid), np.sort(test))
    if len(np.unique(data.y[parts[0]])) < 2:
        which = (
            "the training split (the earliest 60% of rows by time)"
            if time
            else "the training split"
        )
        raise InputError(
            f"{which} holds a single class; the data cannot be learned from", where=data.source
        )
    return parts


def _split(made: list[Part], data: Dataset) -> Split:
    time = data.schema.time
    return Split(
        train=made[0],
        valid=made[1],
        test=made[2],
        ordered_by=time,
        time_unit=data.schema.time_unit if time else None,
    )
