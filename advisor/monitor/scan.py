"""The prediction log read in batches, in bounded memory: one pass over the files keeps, per
decision, only what the measures read (a few bytes a column) and, per window, what the input
features contribute (drift bin counts); the features themselves are never all in memory.

Each batch (a block of JSON Lines, a few tens of thousands of decisions) is checked, joined
with its outcomes and reduced to:

- the *light* columns: `ts`, the decision fields as category codes (the policy, version, arm,
  decision and shadow names are few), the unit as a 64-bit hash of its text (what the bootstrap
  and the test group by; two of ten million units share a hash with probability about 3e-6),
  the outcome's class code, latency, the error flag, the cost columns the matrix reads;
- per ML bundle of the run, each decided row's expected cost of its decision and its variance
  (`advisor.monitor.estimate.row_costs`), the estimated cost's and the arrival test's input;
- per window and logged feature, the rows in each training bin (drift is a function of them).

The outcomes are held as a hash index of their keys (16 bytes an outcome), so the join needs
neither side whole. What stays is about 80 bytes a decision (ten million decisions: 0.8 GB),
and every measure reads its own columns of it exactly as it read the whole log.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.artefacts.bundle import decides_by_expected_cost
from advisor.core.errors import InputError
from advisor.core.predictionlog import ARM_FIELDS, ARMS, CONTROL
from advisor.monitor import logs
from advisor.monitor.estimate import row_costs
from advisor.monitor.expectations import Expectations

BATCH_BYTES = 16 * 2**20  # JSON Lines read per block: ~20k decisions, ~40 MB while parsed
TABLE_ROWS = 50_000  # rows of a Parquet or CSV table digested at a time
TEXT = ("policy", "model_version", "arm", "decision", "shadow_policy", "shadow_decision")
TEXT_COLUMNS = (*TEXT, *ARM_FIELDS)
DECISION_COLUMNS = ("decision", "shadow_decision", *ARM_FIELDS)
# Given to the measures as categoricals (a byte a row, not a pointer to a text): what they do
# with these (grouping, counting, comparing with text) gives the same as with the text.
KEPT_CATEGORICAL = ("policy", "decision", "arm", "shadow_policy", "shadow_decision")


@dataclass
class Scan:
    """The whole log as the measures read it (time order), and what each window's inputs
    contributed. `light` holds category columns; `rows()` gives them as text."""

    light: pd.DataFrame
    source: str
    files: int
    partial_lines: int
    columns: set[str]
    joined: dict
    drift_counts: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    drift_rows: dict[int, int] = field(default_factory=dict)

    def rows(self, columns=None, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """The light columns (all, or those named that the log has) of rows start..stop, as the
        measures read a log frame: the category columns as text (missing as NaN), except the
        policy, decision, arm and shadow fields, kept categorical (`KEPT_CATEGORICAL`)."""
        part = self.light.iloc[start:stop]
        names = [c for c in (part.columns if columns is None else columns) if c in part]
        out = {}
        for name in names:
            col = part[name]
            if isinstance(col.dtype, pd.CategoricalDtype) and name not in KEPT_CATEGORICAL:
                col = col.astype(object)
            out[name] = col.reset_index(drop=True)
        return pd.DataFrame(out, index=pd.RangeIndex(len(part)), copy=False)

    def in_run(self, bundles: Mapping[str, Mapping]) -> np.ndarray:
        """Rows decided by a policy of the run at the version the run holds, read off the
        category codes (no text column built)."""
        policy = self.light["policy"].cat
        wanted = [bundles[p]["version"] if p in bundles else None for p in policy.categories]
        if "model_version" not in self.light:
            return np.array([w is not None for w in wanted] + [False])[policy.codes]
        version = self.light["model_version"].cat
        table = np.zeros((len(wanted) + 1, len(version.categories) + 1), dtype=bool)
        for i, w in enumerate(wanted):
            for j, v in enumerate(version.categories):
                table[i, j] = w is not None and v == w
        return table[policy.codes, version.codes]

    def drift(self, window: int | None) -> tuple[dict[str, np.ndarray], int]:
        """Each logged feature's bin counts and the rows counted: one window (its number since
        1970 in window widths) or, for None, the whole log."""
        if window is not None:
            return self.drift_counts.get(window, {}), self.drift_rows.get(window, 0)
        total: dict[str, np.ndarray] = {}
        for counts in self.drift_counts.values():
            for name, c in counts.items():
                total[name] = total[name] + c if name in total else c.copy()
        return total, sum(self.drift_rows.values())


class _Codes:
    """Text values to small integer codes shared by every batch (-1: missing)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def encode(self, values: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        table = np.array([self.values.setdefault(str(v), len(self.values)) for v in uniques])
        return np.append(table, -1).astype(np.int32)[codes]

    def categorical(self, codes: np.ndarray) -> pd.Categorical:
        """The codes as a categorical whose categories are in text order (so grouping by it
        orders groups as grouping the text does)."""
        found = pd.Categorical.from_codes(codes, categories=list(self.values))
        return found.reorder_categories(sorted(self.values))


def unit_hash(values: pd.Series):
    """The units as hashes: a nullable column when some are missing."""
    hashed, missing = logs.key_hashes(values)
    if not missing.any():
        return hashed
    units = pd.array(hashed, dtype="UInt64")
    units[missing] = pd.NA
    return units


class _Reader:
    """One pass over the log: batches in, light pieces and drift counts out."""

    def __init__(
        self,
        run: Expectations,
        outcomes: logs.Outcomes | None,
        key: str,
        width: pd.Timedelta,
        where: str,
    ) -> None:
        self.run, self.key, self.where, self.step = run, key, where, width.value
        self.known = set(run.costs.decisions)
        self.codes = {name: _Codes() for name in TEXT_COLUMNS}
        self.pieces: list[dict] = []
        self.columns: set[str] = set()
        self.seen_rows = 0
        self.drift_counts: dict[int, dict[str, np.ndarray]] = {}
        self.drift_rows: dict[int, int] = {}
        self.cleaned: set[str] = set()
        self.outcomes = outcomes
        if outcomes is not None:
            self.used = np.zeros(len(outcomes), dtype=bool)
        self.models: dict = {}
        ml = sorted(n for n, meta in run.bundles.items() if decides_by_expected_cost(meta))
        self.ml = ml
        self.features = list(run.reference.binners) if run.reference is not None else []

    def _model(self, name: str):
        from advisor.artefacts.bundle import load_policy
        from advisor.artefacts.run import POLICIES

        if name not in self.models:
            self.models[name] = load_policy(self.run.path / POLICIES / name)
        return self.models[name]

    def digest(self, frame: pd.DataFrame, path: Path, first_row: int) -> None:
        """One batch of raw rows (a file's rows from `first_row`): checked and reduced."""
        if frame.empty:
            return
        frame = logs.normalised(frame, path, first_row)
        self.columns |= set(frame.columns)
        for col in DECISION_COLUMNS:
            if col in frame:
                unknown = sorted(
                    str(v) for v in frame[col].dropna().unique() if v not in self.known
                )
                if unknown:
                    raise InputError(
                        f"column {col!r} holds {unknown[0]!r}, not a decision of this run "
                        f"({', '.join(self.run.costs.decisions)})",
                        where=self.where,
                    )
        arm = frame["arm"].fillna(CONTROL) if "arm" in frame else pd.Series(CONTROL, frame.index)
        arms = sorted(set(arm.unique()) - set(ARMS))
        if arms:
            raise InputError(
                f"column 'arm' holds {arms[0]!r}, not control or treatment", where=self.where
            )
        frame["arm"] = arm
        n = len(frame)
        piece: dict = {"ts": frame["ts"].to_numpy().astype("datetime64[ns]")}
        for name in TEXT_COLUMNS:
            if name in frame:
                piece[name] = self.codes[name].encode(frame[name])
        if "unit" in frame:
            unit = frame["unit"].fillna(frame["id"]) if "id" in frame else frame["unit"]
            piece["unit"] = unit_hash(unit)
        elif "id" in frame:
            piece["unit"] = unit_hash(frame["id"])
        piece["outcome"] = self._outcomes(frame)
        if "latency_ms" in frame:
            piece["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(
                dtype=float
            )
        if "request_records" in frame:
            piece["request_records"] = pd.to_numeric(  # counts: exact in float32
                frame["request_records"], errors="coerce"
            ).to_numpy(dtype=np.float32)
        if "error" in frame:
            error = frame["error"]
            piece["error"] = (error.notna() & (error.astype(str).str.strip() != "")).to_numpy()
        for col in self.run.costs.columns:
            if col in frame:
                piece[col] = frame[col].to_numpy()
        piece.update(self._expected(frame))
        self._drift(frame, piece["ts"].astype(np.int64) // self.step)
        self.pieces.append(piece)
        self.seen_rows += n

    def _outcomes(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's outcome class code (-1: not known yet)."""
        if self.outcomes is None or self.key not in frame:
            return np.full(len(frame), -1, dtype=np.int8)
        hashed, missing = logs.key_hashes(frame[self.key])
        at = self.outcomes.find(hashed, missing)
        self.used[at[at >= 0]] = True
        return np.where(at >= 0, self.outcomes.outcome[np.maximum(at, 0)], -1).astype(np.int8)

    def _expected(self, frame: pd.DataFrame) -> dict:
        """Each decided row's expected cost of its decision and its variance under an ML bundle
        of the run: `est_mean`/`est_var` under its own policy's bundle (ML policies), `risk`
        under the first ML bundle (every policy: the arrival test's predicted cost)."""
        if not self.ml:
            return {}
        n = len(frame)
        out = {name: np.full(n, np.nan) for name in ("est_mean", "est_var", "risk")}
        policy = frame["policy"].to_numpy(dtype=object)
        decided = frame["decision"].notna().to_numpy() & np.isin(policy, list(self.run.bundles))
        for name in self.ml:
            rows = decided & (policy == name)
            if name == self.ml[0] and self.outcomes is not None:
                rows = decided
            if not rows.any():
                continue
            model = self._model(name)
            pos = np.flatnonzero(rows)
            part = frame.iloc[pos]
            absent = [c for c in model.input_columns() if c not in part]
            if absent:
                part = part.assign(**dict.fromkeys(absent, None))
            mean, variance = row_costs(model.predict_proba(part), part, self.run.costs)
            # Without every input logged the expected cost of the policy's own decisions is
            # not theirs: no estimate and no paired cost test for it.
            own = (policy[pos] == name) & (not absent)
            out["est_mean"][pos[own]] = mean[own]
            out["est_var"][pos[own]] = variance[own]
            if name == self.ml[0]:
                out["risk"][pos] = mean
        return out

    def _drift(self, frame: pd.DataFrame, window: np.ndarray) -> None:
        present = [f for f in self.features if f in frame]
        clean = self.run.spec.clean(frame, columns=present) if present else pd.DataFrame()
        self.cleaned |= set(clean.columns)
        missing = pd.Series(np.nan, index=frame.index)
        for w in np.unique(window).tolist():
            rows = window == w
            self.drift_rows[w] = self.drift_rows.get(w, 0) + int(rows.sum())
            counts = self.drift_counts.setdefault(w, {})
            for name in self.features:
                binner = self.run.reference.binners[name]
                own = binner.counts(clean.get(name, missing)[rows])
                counts[name] = counts[name] + own if name in counts else own

    def finish(self, source: Path, files: int, partial: int) -> Scan:
        """The light frame in time order (a stable sort, as the whole log's) and the join."""
        if not self.pieces:
            raise InputError("the log has no rows", where=str(source))
        names = list(dict.fromkeys(k for p in self.pieces for k in p))
        total = sum(len(p["ts"]) for p in self.pieces)
        light = {}
        for name in names:
            parts = [p[name] if name in p else _absent(name, len(p["ts"])) for p in self.pieces]
            if name in TEXT_COLUMNS:
                light[name] = self.codes[name].categorical(np.concatenate(parts))
            elif name == "unit":
                light[name] = pd.array(np.concatenate([_nullable(p) for p in parts]))
            else:
                light[name] = _concat(parts)
            for p in self.pieces:
                p.pop(name, None)
            # The batches' pieces of this column lie in the C heap: hand them back before the
            # next column is joined, so the join peaks at the batches, not at batches + log.
            del parts
            give_back_memory()
        self.pieces.clear()
        frame = pd.DataFrame(light, index=pd.RangeIndex(total), copy=False)
        del light
        if "arm" not in frame:
            frame["arm"] = pd.Categorical.from_codes(np.zeros(total, np.int8), [CONTROL])
        if "unit" not in frame:
            frame["unit"] = pd.array(np.arange(total, dtype=np.uint64), dtype="UInt64")
        if not frame["ts"].is_monotonic_increasing:
            frame = frame.sort_values("ts", kind="stable", ignore_index=True)
        give_back_memory()
        self._check_columns(source)
        for counts in self.drift_counts.values():
            for name in [n for n in counts if n not in self.cleaned]:
                counts.pop(name)
        inputs = self._model(self.ml[0]).input_columns() if self.ml else ()
        if "risk" in frame and any(c not in self.columns for c in inputs):
            frame = frame.drop(columns="risk")
        joined = {"given": False}
        if self.outcomes is not None:
            matched = int((frame["outcome"] >= 0).sum())
            joined = {
                "given": True,
                "key": self.key,
                "rows": len(self.outcomes),
                "matched_log_rows": matched,
                "unmatched_outcomes": len(self.outcomes) - int(self.used.sum()),
            }
        return Scan(
            frame,
            str(source),
            files,
            partial,
            self.columns | set(frame.columns),
            joined,
            self.drift_counts,
            self.drift_rows,
        )

    def _check_columns(self, source: Path) -> None:
        if self.outcomes is None:
            return
        missing = [c for c in self.run.costs.columns if c not in self.columns]
        if missing:
            raise InputError(
                f"no column {missing[0]!r} in the log: the costs depend on it", where=str(source)
            )
        if self.key not in self.columns:
            raise InputError(f"no column {self.key!r} (the --key) in the log", where=str(source))


def give_back_memory() -> None:
    """Hand the memory a batch freed back to the system: pyarrow's pool and, under glibc, the
    C heap's free pages (`malloc_trim`). Without it the heap keeps what the batches' parsing
    freed, and the process' peak grows with the log, not with a batch."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


MMAP_THRESHOLD = 4 * 2**20  # bytes: larger blocks are mapped apart and unmapped when freed


@functools.cache
def hand_back_large_blocks() -> None:
    """Under glibc, serve every block above MMAP_THRESHOLD by its own mapping, returned to the
    system as soon as it is freed. By default the threshold rises to 32 MB as large blocks are
    freed, and the C heap then keeps what the measures' transient arrays (a few to 32 MB at ten
    million rows) freed until the next `give_back_memory`: peaks of several hundred MB."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD


@functools.cache
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def _absent(name: str, n: int) -> np.ndarray:
    if name in TEXT_COLUMNS:
        return np.full(n, -1, dtype=np.int32)
    if name == "error":
        return np.zeros(n, dtype=bool)
    return np.full(n, np.nan)


def _nullable(values) -> pd.arrays.IntegerArray:
    if isinstance(values, np.ndarray) and values.dtype == np.uint64:
        return pd.array(values, dtype="UInt64")
    if isinstance(values, np.ndarray):  # absent: every unit missing
        return pd.array([None] * len(values), dtype="UInt64")
    return values


def _concat(parts: list) -> np.ndarray:
    if all(p.dtype.kind in "fiubM" for p in parts):
        return np.concatenate(parts)
    return np.concatenate([np.asarray(p, dtype=object) for p in parts])


def scan_log(
    path: str | Path,
    run: Expectations,
    width: pd.Timedelta,
    outcomes: logs.Outcomes | None = None,
    key: str = "id",
    batch_bytes: int = BATCH_BYTES,
) -> Scan:
    """Every row of the log, checked (a timestamp that parses on every row, a policy and a
    decision the run knows) and reduced batch by batch; `outcomes` joined on `key`."""
    path = Path(path)
    files = logs.log_files(path)
    hand_back_large_blocks()
    reader = _Reader(run, outcomes, key, width, str(path))
    partial = 0
    for file in files:
        if file.name.lower().endswith(logs.JSON_SUFFIXES):
            partial += _read_json(file, reader, batch_bytes)
        else:
            table = logs.table(file)
            for start in range(0, len(table), TABLE_ROWS):
                reader.digest(table.iloc[start : start + TABLE_ROWS].copy(), file, start)
    return reader.finish(path, len(files), partial)


def _read_json(path: Path, reader: _Reader, batch_bytes: int) -> int:
    """A JSON Lines file through `reader` in blocks; a file pyarrow cannot stream (fields that
    change type between lines, a line that is not JSON, gzip) is read whole the slower way.
    Returns 1 when its last line was cut off (skipped), else 0."""
    import pyarrow as pa

    if path.name.lower().endswith(".gz"):
        return _read_whole(path, reader)
    end, partial = _whole_lines(path)
    if end == 0:
        return partial
    mark = (len(reader.pieces), reader.seen_rows, dict(reader.drift_rows))
    counts = {w: dict(c) for w, c in reader.drift_counts.items()}
    used = None if reader.outcomes is None else reader.used.copy()
    try:
        first = 0
        for frame in _json_batches(path, end, batch_bytes):
            reader.digest(frame, path, first)
            first += len(frame)
            del frame
            give_back_memory()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        del reader.pieces[mark[0] :]
        reader.seen_rows, reader.drift_rows, reader.drift_counts = mark[1], mark[2], counts
        if used is not None:
            reader.used = used
        return _read_whole(path, reader)
    return partial


def _read_whole(path: Path, reader: _Reader) -> int:
    frame, partial = logs.json_lines(path)
    for start in range(0, len(frame), TABLE_ROWS):
        reader.digest(frame.iloc[start : start + TABLE_ROWS].copy(), path, start)
    return partial


def _whole_lines(path: Path) -> tuple[int, int]:
    """The bytes up to the file's last newline, and 1 if a cut-off line follows them."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            end = size
            while end > 0:
                start = max(end - 65536, 0)
                f.seek(start)
                chunk = f.read(end - start)
                at = chunk.rfind(b"\n")
                if at >= 0:
                    last = start + at + 1
                    return last, int(last < size)
                end = start
    except OSError as exc:
        raise InputError(f"cannot read the log: {exc}", where=str(path)) from None
    return 0, int(size > 0)


class _Capped(io.RawIOBase):
    """The first `limit` bytes of a binary file."""

    def __init__(self, file, limit: int) -> None:
        self.file, self.left = file, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[: self.left]
        n = self.file.readinto(view)
        self.left -= n or 0
        return n or 0


def _json_batches(path: Path, end: int, batch_bytes: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.json as pa_json

    options = pa_json.ReadOptions(block_size=batch_bytes)
    with path.open("rb") as raw:
        stream = pa_json.open_json(_Capped(raw, end), read_options=options)
        for batch in stream:
            if batch.num_rows == 0:
                continue
            frame = pa.Table.from_batches([batch]).flatten().to_pandas()
            frame.columns = [c.removeprefix("record.") for c in frame.columns]
            yield frame
