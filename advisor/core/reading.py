"""Reading a data file: CSV, CSV.gz or Parquet into a frame, every failure a one-line input
error naming the file; and the content hashes that pin a run to its data."""

from __future__ import annotations

import contextlib
import hashlib
import warnings as _warnings
from pathlib import Path

import pandas as pd

from advisor.core.errors import InputError, first_line

# The text pandas reads as a missing cell in a CSV (its defaults): every CSV reader in advisor,
# and the standalone rule module, treat these alike.
NA_TEXT = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def read_frame(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """Read CSV, CSV.gz or Parquet (the first `nrows` rows when given), turning every read
    failure into a one-line InputError."""
    name = path.name.lower()
    sep = None
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            frame = _read_parquet(path) if nrows is None else pd.read_parquet(path).head(nrows)
        elif name.endswith((".csv", ".csv.gz", ".txt", ".tsv", ".tsv.gz")):
            sep = "\t" if ".tsv" in name else ","
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                frame = pd.read_csv(path, sep=sep, low_memory=False, nrows=nrows)
        else:
            raise InputError(
                "unsupported file type; use .csv, .csv.gz or .parquet", where=str(path)
            )
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("no such data file", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("a folder, not a file: expected a data file", where=str(path)) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", where=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text (save the CSV as UTF-8)", where=str(path)) from None
    except Exception as exc:
        first = first_line(exc)
        raise InputError(f"cannot read the data: {first}", where=str(path)) from None
    if frame.empty:
        raise InputError("the data has no rows", where=str(path))
    names = pd.Index(_header(path, sep) if sep else frame.columns)
    dupes = names[names.duplicated()]
    if len(dupes):
        raise InputError(f"column {dupes[0]!r} appears twice", where=str(path))
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file read a few columns at a time, as `pd.read_parquet` reads it (the same
    dtypes), without its peak: reading every column at once holds Arrow's buffers beside the
    frame, about three times the frame at its peak and twice once read. Each group holds at
    most GROUP_BYTES as stored uncompressed (one column when a column is larger), so the peak
    grows by little while Arrow still reads a group's columns on several threads."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    stored_index = {
        c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
    }
    names = [n for n in schema.names if n not in stored_index]
    if len(set(names)) < len(names):
        return pd.read_parquet(path)  # repeated names: read whole, so the check below sees them
    groups = _column_groups(parquet.metadata, names)
    first = pd.read_parquet(path, columns=groups[0]) if groups else None
    columns = {name: first[name] for name in groups[0]} if groups else {}
    for group in groups[1:]:
        part = pd.read_parquet(path, columns=group)
        columns.update((name, part[name]) for name in group)
    return pd.DataFrame(columns, index=None if first is None else first.index, copy=False)


GROUP_BYTES = 64 * 2**20


def _column_groups(metadata, names: list[str]) -> list[list[str]]:
    """`names` in order, cut into runs of at most GROUP_BYTES of stored (uncompressed) data."""
    size = dict.fromkeys(names, 0)
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        for c in range(group.num_columns):
            top = group.column(c).path_in_schema.split(".")[0]  # nested columns count whole
            if top in size:
                size[top] += group.column(c).total_uncompressed_size
    groups: list[list[str]] = []
    held = GROUP_BYTES
    for name in names:
        if held + size[name] > GROUP_BYTES:
            groups.append([])
            held = 0
        groups[-1].append(name)
        held += size[name]
    return groups


def _header(path: Path, sep: str) -> list[str]:
    """A CSV's column names as written (pandas renames a repeated `a` to `a.1`)."""
    row = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    return [str(v) for v in row.iloc[0]]


def read_target_values(frame: pd.DataFrame | None, path: Path | None, target: str) -> list:
    """Sorted distinct target values (for the binary cost shortcut)."""
    data = frame if frame is not None else _read_target(path, target)
    where = str(path) if path else "data"
    if target not in data.columns:
        raise InputError(
            f"no column {target!r}; columns are {preview_columns(data.columns)}", where=where
        )
    values = data[target].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _read_target(path: Path, target: str) -> pd.DataFrame:
    """Just the target column of a data file (a second full read costs seconds on large
    files); the whole file when that fails, so its errors read as for any other read."""
    name = path.name.lower()
    with contextlib.suppress(Exception):  # the full read below reports any problem properly
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path, columns=[target])
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, usecols=[target], low_memory=False)
    return read_frame(path)


def preview_columns(columns, n: int = 12) -> str:
    cols = [str(c) for c in columns]
    return ", ".join(cols[:n]) + (f", ... ({len(cols)} in all)" if len(cols) > n else "")


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash of an in-memory frame (columns, dtypes and values)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
