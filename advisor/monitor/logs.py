"""Reading production: the prediction log and the outcomes that arrive later.

The log is what `advisor serve --log` writes (JSON Lines files `predictions-*.jsonl`, one
object a decision, the input fields under `record`) or the same columns as Parquet or CSV with
the input fields as top-level columns (what `advisor score`'s output joined with its input looks
like). A file or a folder of them. `advisor.monitor.scan` reads them in batches (JSON Lines
streamed by pyarrow a block at a time, a table a file at a time); this module holds what a
batch goes through: the file list, a whole-file JSON reader for what pyarrow cannot stream, the
normalised columns. A last line without its newline (a writer killed mid-line) is skipped and
counted.

Outcomes are a CSV or Parquet file with the key column and the case's target; a missing target
is an outcome not known yet.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, label_key
from advisor.core.errors import InputError
from advisor.core.predictionlog import (
    ARM_FIELDS,
    DECISION_FIELDS,
    SHADOW_FIELDS,
    check_format,
)
from advisor.core.reading import read_frame

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


def log_files(path: Path) -> list[Path]:
    """The log files a path names: the file, or every JSON Lines, Parquet or CSV file in the
    folder (sorted by name, which for `advisor serve`'s files is time order per process)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("no such log file or folder", where=str(path))
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_SUFFIXES))
    if not files:
        raise InputError(
            "no log files in the folder (*.jsonl, *.parquet or *.csv)", where=str(path)
        )
    return files


_SUFFIXES = JSON_SUFFIXES + TABLE_SUFFIXES


def json_lines(path: Path) -> tuple[pd.DataFrame, int]:
    """One JSON Lines file as a frame with `record` spread into columns; a last line without
    its newline is cut off and counted."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read the log: {exc}", where=str(path)) from None
    partial = 0
    if data and not data.endswith(b"\n"):
        data, partial = data[: data.rfind(b"\n") + 1], 1
    if not data.strip():
        return pd.DataFrame(), partial
    try:
        table = pa_json.read_json(pa.BufferReader(data))
        frame = table.flatten().to_pandas()
        frame.columns = [c.removeprefix("record.") for c in frame.columns]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        frame = _json_lines_by_pandas(data, path)
    return frame, partial


def _json_lines_by_pandas(data: bytes, path: Path) -> pd.DataFrame:
    """The slower reader, for files whose fields change type between lines (a number in one
    record, text in the next), which pyarrow refuses; names the first line that is not JSON."""
    import json

    try:
        frame = pd.read_json(io.BytesIO(data), lines=True, dtype=False)
    except ValueError:
        for number, line in enumerate(data.splitlines(), 1):
            try:
                json.loads(line)
            except ValueError as exc:
                raise InputError(f"line {number} is not JSON ({exc})", where=str(path)) from None
        raise InputError("not JSON Lines", where=str(path)) from None
    if "record" in frame:
        records = [r if isinstance(r, dict) else {} for r in frame.pop("record")]
        fields = pd.json_normalize(records)
        fields = fields[[c for c in fields.columns if c not in frame.columns]]
        frame = pd.concat([frame, fields.set_index(frame.index)], axis=1)
    return frame


def table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV log file (empty when it has no rows)."""
    try:
        return read_frame(path)
    except InputError as exc:
        if "no rows" in str(exc):
            return pd.DataFrame()
        raise


def normalised(frame: pd.DataFrame, path: Path, first_row: int = 0) -> pd.DataFrame:
    """`ts` parsed (or `scored_at`, what `advisor score` writes), text columns as text; the
    rows are the file's from `first_row` on (for the row numbers of a bad timestamp)."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if "format" in frame:
        check_format(frame.pop("format").unique(), str(path))
    if "ts" not in frame and "scored_at" in frame:
        frame["ts"] = frame["scored_at"]
    for col in ("ts", "policy", "decision"):
        if col not in frame:
            raise InputError(f"no column {col!r} in the log", where=str(path))
    frame["ts"] = _timestamps(frame["ts"], path, first_row)
    for col in (*DECISION_FIELDS, *ARM_FIELDS, *SHADOW_FIELDS):
        if col in frame:
            frame[col] = key_text(frame[col])
    return frame


def _timestamps(values: pd.Series, path: Path, first_row: int = 0) -> pd.Series:
    """ISO 8601 timestamps as UTC without a zone (a time without an offset is taken as UTC)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        text = values.astype(object)
        stamps = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        bad = stamps.isna() & text.notna() | text.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"column 'ts' row {first_row + row + 1}: {text.iloc[row]!r} is not an ISO 8601 timestamp",
                where=str(path),
            )
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise InputError(f"column 'ts' row {first_row + row + 1}: no timestamp", where=str(path))
    return stamps.astype("datetime64[ns]")


def key_text(values: pd.Series) -> pd.Series:
    """Identifiers and labels as text, the same whether a file stored 7, 7.0 or "7"; missing
    stays missing."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_numeric_dtype(values):
        x = values.to_numpy(dtype=float)
        whole = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < 2**53)
        text = np.where(whole, np.where(whole, x, 0).astype(np.int64).astype(str), x.astype(str))
        return pd.Series(text, index=values.index, dtype=object).where(values.notna(), None)
    return values.astype(str).astype(object).where(values.notna(), None)


HASH_ROWS = 1_000_000


def key_hashes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each key's text (`key_text`) as a 64-bit hash (equal text, equal hash; ten million keys
    collide with probability about 3e-6), and where it is missing; a million at a time, so a
    column of Python strings is never held whole."""
    hashed = np.zeros(len(values), dtype=np.uint64)
    missing = np.zeros(len(values), dtype=bool)
    for start in range(0, len(values), HASH_ROWS):
        text = key_text(values.iloc[start : start + HASH_ROWS]).to_numpy(dtype=object)
        gone = pd.isna(text)
        stop = start + len(text)
        hashed[start:stop] = pd.util.hash_array(np.where(gone, "", text), categorize=False)
        missing[start:stop] = gone
    return hashed, missing


OUTCOME_ROWS = 250_000  # outcome rows hashed at a time


@dataclass(frozen=True)
class Outcomes:
    """The outcomes known so far as the join needs them: each key's hash (`key_hashes`), sorted
    and distinct, and its outcome's class code, 9 bytes an outcome (ten million: 90 MB)."""

    keys: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, hashed: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Each hash's position among the keys, -1 where it has none (or is missing)."""
        at = np.searchsorted(self.keys, hashed)
        inside = np.minimum(at, max(len(self.keys) - 1, 0))
        hit = (at < len(self.keys)) & ~missing
        if len(self.keys):
            hit &= self.keys[inside] == hashed
        return np.where(hit, at, -1)


def read_outcomes(path: str | Path, key: str, target: str, costs: CostMatrix) -> Outcomes:
    """The key (the hash of its text, `key_hashes`: the join needs no key text in memory) and
    the outcome (the class code in the cost matrix) of every row whose outcome is known, read in
    batches of OUTCOME_ROWS; a key given twice with different outcomes is refused."""
    path = Path(path)
    if path.is_dir():
        raise InputError("a folder, not a file: expected a CSV or Parquet file", where=str(path))
    classes = {label_key(c): i for i, c in enumerate(costs.classes)}
    keys, outcomes = [], []
    for chunk in _outcome_chunks(path, key, target):
        known = chunk.dropna()
        codes, uniques = pd.factorize(known[target])
        labels = [label_key(v) for v in uniques]
        unknown = [v for v, k in zip(uniques, labels, strict=True) if k not in classes]
        if unknown:
            raise InputError(
                f"column {target!r} holds {unknown[0]!r}, not a class of the case "
                f"({', '.join(str(c) for c in costs.classes)})",
                where=str(path),
            )
        table = np.array([classes[k] for k in labels] + [-1], dtype=np.int8)
        outcomes.append(table[codes])
        keys.append(key_hashes(known[key])[0])
    keys, outcome = np.concatenate(keys), np.concatenate(outcomes)
    del outcomes
    order = np.lexsort((outcome, keys))
    keys, outcome = keys[order], outcome[order]
    del order
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    differ = ~first[1:] & (outcome[1:] != outcome[:-1])
    if differ.any():
        text = _first_key_of(path, key, target, keys[1:][differ])
        raise InputError(
            f"key {text!r} in column {key!r} has two different outcomes", where=str(path)
        )
    return Outcomes(keys[first], outcome[first])


def _outcome_chunks(path: Path, key: str, target: str):
    """The key and target columns of the outcomes file, OUTCOME_ROWS at a time: a Parquet
    file streamed a batch at a time, anything else read whole by `read_frame` (its checks and
    messages) and cut."""
    for col, what in ((key, "the key (--key)"), (target, "the case's target")):
        if col not in _outcome_columns(path):
            raise InputError(f"no column {col!r}, {what}", where=str(path))
    if _streamable(path):
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as file:
            for batch in file.iter_batches(OUTCOME_ROWS, columns=[key, target]):
                yield batch.to_pandas()
        return
    frame = read_frame(path)[[key, target]]
    for start in range(0, len(frame), OUTCOME_ROWS):
        yield frame.iloc[start : start + OUTCOME_ROWS]


def _streamable(path: Path) -> bool:
    """A Parquet file with rows whose schema pyarrow reads (anything else goes through
    `read_frame`, which names what is wrong)."""
    if not path.name.lower().endswith((".parquet", ".pq")):
        return False
    try:
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        names = pq.read_schema(path).names
    except Exception:
        return False
    return meta.num_rows > 0 and len(set(names)) == len(names)


def _outcome_columns(path: Path) -> list[str]:
    if _streamable(path):
        import pyarrow.parquet as pq

        return [str(c) for c in pq.read_schema(path).names]
    return list(read_frame(path, nrows=1).columns) if _is_csv(path) else list(read_frame(path))


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz", ".txt", ".tsv", ".tsv.gz"))


def _first_key_of(path: Path, key: str, target: str, hashes: np.ndarray) -> str:
    """The key text of the first row (in file order) whose hash is among `hashes`."""
    for chunk in _outcome_chunks(path, key, target):
        known = chunk.dropna()
        hit = np.flatnonzero(np.isin(key_hashes(known[key])[0], hashes))
        if len(hit):
            return key_text(known[key].iloc[[int(hit[0])]]).iloc[0]
    return ""
