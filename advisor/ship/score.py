"""Batch scoring: a bundle's decisions for a CSV, a Parquet file or a folder of Parquet files.

Rows stream through in record batches (memory stays flat on files larger than memory); each
batch is decided by the bundle's own policy (`Policy.decide_batch`, the path every other
caller uses) and written to Parquet through a temporary file that is renamed at the end.
Output columns: the `--id` columns, `decision`, `policy`, `model_version`, `scored_at`, then
what the policy's plugin declares (`advisor.policies.output`): `rule` (the number of the rule
that decided, 0 for the default) and `p_<class>` for a rule list, `p_<class>` and
`expected_cost_<decision>` for ML. A row the policy cannot decide (code -1) gets a null
decision and is counted.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from advisor.artefacts.bundle import read_bundle
from advisor.core.atomic import replacing
from advisor.core.errors import InputError, first_line
from advisor.core.reading import NA_TEXT
from advisor.policies.base import Policy
from advisor.policies.output import decision_columns, output_fields

ARROW = {"string": pa.string(), "long": pa.int64(), "double": pa.float64()}
BATCH_ROWS = 1 << 17
CSV_BLOCK_BYTES = 16 << 20
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Scorer:
    """Turns input record batches into output record batches for one policy and run."""

    policy: Policy
    ids: tuple[str, ...]
    scored_at: datetime
    reasons: int = 0  # reason_1 ... reason_K text columns (`Policy.explain`)
    reasons_method: str = "exact"

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns read: the ids, then what the policy reads."""
        return tuple(dict.fromkeys([*self.ids, *self.policy.input_columns()]))

    @property
    def categories(self) -> tuple[str, ...]:
        """The category columns read, whose values are few and repeated."""
        return tuple(
            e.name
            for e in self.policy.spec.encoders_
            if e.kind == "categorical" and e.name in self.columns
        )

    def schema(self, source: pa.Schema) -> pa.Schema:
        """The output schema, given the input's (which types the id columns)."""
        fields = [source.field(c) for c in self.ids]
        decided = output_fields(self.policy)
        fields += [pa.field(name, ARROW[kind]) for name, kind in decided[:3]]
        fields.append(pa.field("scored_at", pa.timestamp("us", tz="UTC")))
        fields += [pa.field(name, ARROW[kind]) for name, kind in decided[3:]]
        fields += [pa.field(f"reason_{j + 1}", pa.string()) for j in range(self.reasons)]
        taken = [f.name for f in fields[: len(self.ids)]]
        clash = [f.name for f in fields[len(self.ids) :] if f.name in taken]
        if clash:
            raise InputError(f"--id {clash[0]!r} has the name of an output column")
        return pa.schema(fields)

    def conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Category columns as text when the fitted levels are text (a Parquet file may store
        codes as numbers), so that the feature definition meets the values it was fitted on;
        and dictionary-encoded, so each distinct text becomes one Python string, not one a row."""
        arrays = list(batch.columns)
        for e in self.policy.spec.encoders_:
            if e.kind != "categorical" or e.name not in batch.schema.names:
                continue
            i = batch.schema.get_field_index(e.name)
            array = arrays[i]
            encoded = pa.types.is_dictionary(array.type)
            values = array.type.value_type if encoded else array.type
            if not (pa.types.is_string(values) or pa.types.is_large_string(values)):
                if not all(isinstance(v, str) for v in e.levels):
                    continue
                array = (array.cast(values) if encoded else array).cast(pa.string())
                encoded = False
            arrays[i] = array if encoded else array.dictionary_encode()
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def score(self, batch: pa.RecordBatch, schema: pa.Schema) -> tuple[pa.RecordBatch, int]:
        """One output batch and how many of its rows got no decision."""
        frame = self.conform(batch).to_pandas()
        if batch.num_columns == 0:  # a policy that reads no column: pandas would drop the rows
            frame = frame.reindex(range(batch.num_rows))
        decided = self.policy.decide_batch(frame)
        none = np.asarray(decided.codes) < 0
        n = len(none)
        columns = [batch.column(c).cast(schema.field(c).type) for c in self.ids]
        stamp = pa.array(np.full(n, np.datetime64(self.scored_at.replace(tzinfo=None), "us")))
        for name, values in decision_columns(self.policy, decided).items():
            field = schema.field(name)
            if isinstance(values, str):
                columns.append(_repeat(values, n))
            elif name == "decision":
                columns.append(pa.array(values).cast(field.type))
            else:
                mask = none if pa.types.is_integer(field.type) else None
                columns.append(pa.array(values, field.type, mask=mask, from_pandas=True))
            if name == "model_version":
                columns.append(stamp.cast(pa.timestamp("us", tz="UTC")))
        if self.reasons:
            why = self.policy.explain_decided(frame, decided, self.reasons, self.reasons_method)
            columns += reason_columns(why, self.reasons, none)
        return pa.RecordBatch.from_arrays(columns, schema=schema), int(none.sum())


def reason_columns(why, k: int, none: np.ndarray) -> list[pa.Array]:
    """reason_1 ... reason_K as text, null where no decision was made; a rule list's reasons
    decoded from the deciding rule's position (a dictionary), not from a string per row."""
    from advisor.policies.reasons import RuleReasons

    if isinstance(why, RuleReasons):
        codes = pa.array(why.index.astype(np.int32), mask=none)
        first = pa.DictionaryArray.from_arrays(codes, pa.array(why.sentences, pa.string()))
        n = len(none)
        valid = pa.py_buffer(np.packbits(~none, bitorder="little")) if none.any() else None
        zeros = pa.py_buffer(np.zeros(n + 1, dtype=np.int32))
        blank = pa.StringArray.from_buffers(n, zeros, pa.py_buffer(b""), valid)
        return [first.dictionary_decode()] + [blank] * (k - 1)
    text = why.text
    return [pa.array(text[:, j], pa.string(), mask=none) for j in range(k)]


def _repeat(text: str, n: int) -> pa.Array:
    """`text` n times as a string array, built from its buffers (a `take` of one value costs
    more than deciding the rows)."""
    data = text.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data * n)
        )
    return pa.array([text], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32)))


@dataclass(frozen=True)
class Source:
    """An input opened for streaming: its schema, its batches and its row count if known."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    rows: int | None


def input_kind(path: Path) -> str:
    """parquet, csv or folder; anything else is bad input."""
    name = path.name.lower()
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError("no such input file or folder", where=str(path))
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise InputError(
        "unsupported input; use .csv, .csv.gz, .parquet or a folder of Parquet files",
        where=str(path),
    )


def _check_columns(names: Sequence[str], needed: Sequence[str], where: str) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        preview = ", ".join(list(names)[:12]) + (", ..." if len(names) > 12 else "")
        raise InputError(
            f"no column {missing[0]!r}, which the policy reads; columns are {preview}", where=where
        )


def open_parquet(
    path: Path, columns: Sequence[str], batch_rows: int, categories: Sequence[str] = ()
) -> Source:
    """A Parquet file or a folder of Parquet files (hive-style partitions allowed), in order;
    the `categories` columns read dictionary-encoded, as the file stores them."""
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": list(categories)})
    try:
        data = ds.dataset(path, format=fmt, partitioning="hive" if path.is_dir() else None)
        _check_columns(data.schema.names, columns, str(path))
        rows = data.count_rows()
        batches = data.to_batches(columns=list(columns), batch_size=batch_rows)
    except InputError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet: {first_line(exc)}", where=str(path)) from None
    schema = data.schema
    return Source(pa.schema([schema.field(c) for c in columns]), batches, rows)


def csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"cannot read the CSV header: {first_line(exc)}", where=str(path)
        ) from None


def open_csv(path: Path, policy: Policy, columns: Sequence[str], lenient: bool) -> Source:
    """A CSV (optionally gzipped) read as advisor reads CSV: pandas' missing-value text, numbers
    as floats, categories as text. `lenient` reads numbers and ids as text (a stray word in a
    number column then reads as missing, as in `pd.to_numeric(errors="coerce")`)."""
    import pyarrow.csv as pacsv

    header = csv_header(path)
    if not header:
        raise InputError("the file is empty", where=str(path))
    _check_columns(header, columns, str(path))
    types: dict[str, pa.DataType] = {}
    for e in policy.spec.encoders_:
        if e.name not in columns:
            continue
        if e.kind == "numeric":
            types[e.name] = pa.string() if lenient else pa.float64()
        elif e.kind == "boolean" or all(isinstance(v, str) for v in e.levels):
            types[e.name] = pa.string()
    for c in policy.costs.columns:
        types[c] = pa.string() if lenient else pa.float64()
    if lenient:
        types.update({c: pa.string() for c in columns if c not in types})
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(columns),
            column_types=types,
            null_values=list(NA_TEXT),
            strings_can_be_null=True,
        ),
    )
    return Source(reader.schema, iter(reader), None)


@dataclass(frozen=True)
class Scored:
    """What a scoring run did."""

    output: Path
    rows: int
    undecided: int
    policy: Policy


def write_parquet(
    path: Path, scorer: Scorer, source: Source, progress: Progress | None
) -> tuple[int, int]:
    """Score every batch of `source` into the Parquet file `path`."""
    import pyarrow.parquet as pq

    schema = scorer.schema(source.schema)
    rows = undecided = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in source.batches:
            out, none = scorer.score(batch, schema)
            writer.write_batch(out)
            rows += out.num_rows
            undecided += none
            if progress:
                progress(out.num_rows)
    return rows, undecided


def score(
    bundle: str | Path,
    source: str | Path,
    output: str | Path,
    ids: Sequence[str] = (),
    *,
    progress: Progress | None = None,
    on_start: Callable[[int | None], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    reasons: int = 0,
    reasons_method: str = "exact",
) -> Scored:
    """Decide every row of `source` with the bundle's policy into the Parquet file `output`
    (written atomically), with `reasons` reason columns. `on_start` hears the row count when
    it is known."""
    policy = read_bundle(bundle).policy
    scorer = Scorer(policy, tuple(dict.fromkeys(ids)), datetime.now(UTC), reasons, reasons_method)
    path, output = Path(source), Path(output)
    if output.is_dir():
        raise InputError("is a folder; give a .parquet file to write", where=str(output))
    kind = input_kind(path)
    created = make_parents(output)
    try:
        with replacing(output) as tmp:
            for lenient in (False, True):
                try:
                    if kind == "csv":
                        opened = open_csv(path, policy, scorer.columns, lenient)
                    else:
                        opened = open_parquet(path, scorer.columns, batch_rows, scorer.categories)
                    if on_start:
                        on_start(opened.rows)
                    rows, undecided = write_parquet(tmp, scorer, opened, progress)
                    break
                except pa.ArrowInvalid as exc:
                    if kind == "csv" and not lenient:
                        continue
                    raise InputError(
                        f"cannot read the data: {first_line(exc)}", where=str(path)
                    ) from None
    except BaseException:
        remove_empty(created)
        raise
    return Scored(output, rows, undecided, policy)


def make_parents(output: Path) -> list[Path]:
    """Create the output's missing parent folders; the ones created, deepest first."""
    missing = [p for p in output.absolute().parents if not p.exists()]
    output.parent.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty(folders: Sequence[Path]) -> None:
    """Remove folders a failed run created, when still empty (deepest first)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
