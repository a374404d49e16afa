"""`advisor score --engine dask`: a folder of Parquet partitions scored on a Dask cluster.

`dask.dataframe` reads the partitions and `map_partitions` runs the same `Scorer` the local
engine runs, on every worker. The workers get the bundle's bytes, not a path, so they need no
shared disk for it; each checks the checksums and rebuilds the policy once. Each scored
partition is written as its own Parquet file into a temporary folder that is renamed to the
output at the end. Requires the `advisor-ship[dask]` extra.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from advisor.artefacts.bundle import META, bundle_bytes, from_bytes
from advisor.core.atomic import replacing
from advisor.core.errors import InputError
from advisor.policies.base import Policy
from advisor.ship.score import (
    Scored,
    Scorer,
    input_kind,
    make_parents,
    open_parquet,
    remove_empty,
)

_POLICIES: dict[str, Policy] = {}


def bundle_policy(files: Mapping[str, bytes]) -> Policy:
    """The bundle's policy, checked and rebuilt once per worker process."""
    key = hashlib.sha256(files[META]).hexdigest()
    if key not in _POLICIES:
        _POLICIES[key] = from_bytes(files).policy
    return _POLICIES[key]


def score_partition(
    frame: pd.DataFrame,
    files: Mapping[str, bytes],
    ids: tuple[str, ...],
    scored_at: datetime,
    schema: pa.Schema,
) -> pd.DataFrame:
    """One partition's output rows (Arrow-backed columns, so types survive to Parquet)."""
    scorer = Scorer(bundle_policy(files), ids, scored_at)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    scored = [scorer.score(batch, schema)[0] for batch in table.to_batches()]
    return pa.Table.from_batches(scored, schema).to_pandas(types_mapper=pd.ArrowDtype)


def write_partition(frame: pd.DataFrame, path: str, schema: pa.Schema) -> tuple[int, int]:
    """Write one scored partition; its rows and how many got no decision."""
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path)
    return table.num_rows, table.column("decision").null_count


def _client(scheduler: str | None):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=30), None
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler: {exc}", where=scheduler) from None
    # Threads, not processes: no worker start-up on one machine; LightGBM releases the GIL.
    cluster = LocalCluster(processes=False, dashboard_address=None)
    return Client(cluster), cluster


def score_with_dask(
    bundle: str | Path,
    source: str | Path,
    output: str | Path,
    ids: Sequence[str] = (),
    *,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> Scored:
    """Score a Parquet file or folder of partitions on Dask into the folder `output` (one
    Parquet file a partition, in input order), written whole or not at all."""
    try:
        import dask
        import dask.dataframe as dd
        from distributed import as_completed
    except ImportError:
        raise InputError(
            "--engine dask needs the dask extra: pip install 'advisor-ship[dask]'"
        ) from None
    files = bundle_bytes(bundle)
    policy = from_bytes(files, bundle).policy
    scorer = Scorer(policy, tuple(dict.fromkeys(ids)), datetime.now(UTC))
    path, output = Path(source), Path(output)
    if output.is_dir() and any(p.suffix != ".parquet" for p in output.iterdir()):
        raise InputError(
            "exists and holds more than Parquet parts; choose another", where=str(output)
        )
    if input_kind(path) == "csv":
        raise InputError(
            "--engine dask reads Parquet (a file or a folder of partitions)", where=str(path)
        )
    opened = open_parquet(path, scorer.columns, 1)
    schema = scorer.schema(opened.schema)
    if on_start:
        on_start(opened.rows)
    frame = dd.read_parquet(str(path), columns=list(scorer.columns))
    meta = schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    scored = frame.map_partitions(
        score_partition, files, scorer.ids, scorer.scored_at, schema, meta=meta
    )
    created = make_parents(output)
    rows = undecided = 0
    try:
        client, cluster = _client(scheduler)
    except BaseException:
        remove_empty(created)
        raise
    try:
        with replacing(output, folder=True) as tmp:
            writes = [
                dask.delayed(write_partition)(part, str(tmp / f"part-{i:05d}.parquet"), schema)
                for i, part in enumerate(scored.to_delayed())
            ]
            for future in as_completed(client.compute(writes)):
                n, none = future.result()
                rows += n
                undecided += none
                if progress:
                    progress(n)
        created = []
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        remove_empty(created)
    return Scored(output, rows, undecided, policy)
