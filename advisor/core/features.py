"""One feature definition, two callers: the same encoders serve a whole frame and one record.

A FeatureSpec is fitted on the training split and then used by every policy, for batch
decisions (`clean`, `encode`) and for a single request (`clean_record`, `encode_record`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from advisor.core.data import MAX_LEVELS, Schema

BOOLEAN_VALUES = {
    True: 1.0,
    False: 0.0,
    "true": 1.0,
    "false": 0.0,
    "True": 1.0,
    "False": 0.0,
    "TRUE": 1.0,
    "FALSE": 0.0,
}


def _is_missing(value) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float | np.floating) and math.isnan(value))
    )


def _number(value) -> float:
    """One numeric cell as float; anything that does not parse is missing (as pd.to_numeric)."""
    if _is_missing(value) or isinstance(value, bool | np.bool_):
        return float(value) if isinstance(value, bool | np.bool_) else math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class FeatureEncoder:
    """How one column becomes a model input: its kind and, for categories, the level codes."""

    name: str
    kind: str
    levels: tuple = ()

    @property
    def other_code(self) -> float:
        return float(len(self.levels))

    @cached_property
    def codes(self) -> dict:
        """Level -> code; anything else that is not missing gets `other_code`."""
        return {v: float(i) for i, v in enumerate(self.levels)}

    def clean_column(self, series: pd.Series) -> pd.Series:
        """Typed values (floats for numbers and booleans, text or NaN for categories)."""
        if self.kind == "numeric":
            if series.dtype == np.float64:  # already clean: the same values, not a copy
                return series.astype(float)
            return pd.to_numeric(series, errors="coerce").astype(float)
        if self.kind == "boolean":
            return series.map(BOOLEAN_VALUES).astype(float)
        out = series.astype(object)
        return out.where(series.notna(), np.nan)

    def clean_value(self, value):
        if self.kind == "numeric":
            return _number(value)
        if self.kind == "boolean":
            return math.nan if _is_missing(value) else BOOLEAN_VALUES.get(value, math.nan)
        return math.nan if _is_missing(value) else value

    def encode_column(self, series: pd.Series) -> np.ndarray:
        """Model inputs for a raw column: numbers parsed as `clean_column` does; categories and
        booleans through `clean_value` and `encode_value` once per distinct value (so the
        frame and the single record share one definition, at the cost of a factorisation)."""
        if self.kind == "numeric":
            return self.clean_column(series).to_numpy(dtype=float)
        index, uniques = pd.factorize(series, use_na_sentinel=True)
        table = [self.encode_value(self.clean_value(v)) for v in uniques]
        return np.array([*table, math.nan], dtype=float)[index]

    def encode_value(self, cleaned) -> float:
        """The model input for one cleaned cell: the single-record twin of `encode_column`."""
        if self.kind != "categorical":
            return cleaned
        if _is_missing(cleaned):
            return math.nan
        return self.codes.get(cleaned, self.other_code)


class FeatureSpec:
    """Feature definitions fitted on training rows; scikit-learn style (`fit` sets `encoders_`)."""

    def __init__(self, schema: Schema, max_levels: int = MAX_LEVELS) -> None:
        self.schema = schema
        self.max_levels = max_levels

    def fit(self, frame: pd.DataFrame) -> FeatureSpec:
        encoders = []
        for name, kind in self.schema.features.items():
            levels: tuple = ()
            if kind == "categorical":
                counts = frame[name].dropna().value_counts(sort=False)
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
                levels = tuple(v for v, _ in ranked[: self.max_levels])
            encoders.append(FeatureEncoder(name, kind, levels))
        self.encoders_ = tuple(encoders)
        return self

    @property
    def names_(self) -> list[str]:
        return [e.name for e in self.encoders_]

    @property
    def categorical_indices_(self) -> list[int]:
        return [i for i, e in enumerate(self.encoders_) if e.kind == "categorical"]

    def clean(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The feature columns (or only `columns`), typed; what the rules read."""
        wanted = None if columns is None else set(columns)
        return pd.DataFrame(
            {
                e.name: e.clean_column(frame[e.name])
                for e in self.encoders_
                if wanted is None or e.name in wanted
            },
            index=frame.index,
            copy=False,  # a clean column may be the frame's own (copy on write keeps it)
        )

    def clean_record(self, record: Mapping) -> dict:
        return {e.name: e.clean_value(record.get(e.name)) for e in self.encoders_}

    def encode(self, frame: pd.DataFrame, order: str = "C") -> np.ndarray:
        """Model matrix (rows x features), categories as integer codes, missing as NaN;
        row-major, or column-major with `order="F"` (LightGBM reads both, and the column-major
        matrix needs no second copy)."""
        # Filled a column at a time in column order, then made row-major in one blocked copy:
        # writing columns straight into a row-major matrix misses the cache on every cell.
        out = np.empty((len(frame), len(self.encoders_)), dtype=float, order="F")
        for j, e in enumerate(self.encoders_):
            out[:, j] = e.encode_column(frame[e.name])
        return out if order == "F" else np.ascontiguousarray(out)

    def encode_record(self, record: Mapping) -> np.ndarray:
        """The same matrix for one request, without building a DataFrame."""
        row = np.empty((1, len(self.encoders_)), dtype=float)
        for j, e in enumerate(self.encoders_):
            row[0, j] = e.encode_value(e.clean_value(record.get(e.name)))
        return row

    def to_dict(self) -> dict:
        return {
            e.name: {"kind": e.kind, "levels": len(e.levels)} if e.levels else {"kind": e.kind}
            for e in self.encoders_
        }

    def to_data(self) -> dict:
        """The fitted definition as JSON data, every category level included, so that
        `from_data` rebuilds a spec that encodes exactly as this one."""
        return {
            "schema": self.schema.to_dict(),
            "max_levels": self.max_levels,
            "encoders": [
                {"name": e.name, "kind": e.kind, "levels": [_plain_level(v) for v in e.levels]}
                for e in self.encoders_
            ],
        }

    @classmethod
    def from_data(cls, data: Mapping) -> FeatureSpec:
        """The fitted spec that `to_data` wrote."""
        schema = data["schema"]
        spec = cls(
            Schema(
                features=dict(schema["features"]),
                target=schema["target"],
                time=schema.get("time"),
                cost_columns=tuple(schema.get("cost_columns", ())),
            ),
            max_levels=int(data["max_levels"]),
        )
        spec.encoders_ = tuple(
            FeatureEncoder(e["name"], e["kind"], tuple(e["levels"])) for e in data["encoders"]
        )
        return spec


def _plain_level(value):
    """A category level as a JSON value of the same meaning (numpy scalars to Python)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise TypeError(f"a category level of type {type(value).__name__} cannot be written as JSON")
