"""What `--fit-engine lightgbm-dask` holds on each worker, per training row it fits.

    uv run python benchmarks/dask_fit_memory.py [--rows 2000000] [--rows-per-file 500000]
        [--workers 2] [--worker-memory 4GB] [--data DIR]

`advisor.advise_partitioned(..., fit_engine="lightgbm-dask")` runs in this process (the client)
on a LocalCluster of `--workers` processes (one thread each) over `benchmarks/scale_dask.py`'s
partitions. Around the refit, each worker's resident memory is read and its peak reset
(/proc/self/clear_refs): before the refit, once the encoded training rows are held (just
before `DaskLGBMClassifier.fit`), and the peak during that fit. Printed per worker: the training
rows it held (files dealt round robin, as the refit deals them) and the bytes a row (and a
cell) above its memory before the refit, at both points; the spill count and the "Failed to serialize" lines in the workers' logs. Give a
memory limit the fit stays well under (the default), so that spilling does not move the
figures; with a tight limit it shows what the workers do then. The analysis ends once the
refit is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale_dask import write_parts  # noqa: E402


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


class Measured(Exception):
    """Raised once the refit is measured, to end the analysis there."""


def mark() -> tuple[float, float]:
    """This process's resident MB now and its peak since the last mark; resets the peak."""
    now, peak = _status("VmRSS"), _status("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")
    return now, peak


def spilled(dask_worker) -> int:
    """Keys this worker has spilled to disk and still holds there."""
    return len(getattr(dask_worker.data, "slow", {}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rows-per-file", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="4GB")
    parser.add_argument("--fit-rows", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="folder for the partitions (kept)")
    args = parser.parse_args()

    import lightgbm.dask as lgb_dask
    from distributed import Client, LocalCluster

    import advisor
    from advisor.analysis import partitioned
    from advisor.analysis.dask_fit import placement

    folder = args.data or Path(tempfile.mkdtemp(prefix="advisor-dask-fit-"))
    parts = folder / f"parts-{args.rows}-{args.rows_per_file}"
    write_parts(parts, args.rows, args.rows_per_file)
    print(f"data in {parts}; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    marks: dict[str, dict] = {}
    held: dict[str, int] = {}
    fitted: dict[str, int] = {}
    real_refit, real_fit = partitioned.fit_every_row, lgb_dask.DaskLGBMClassifier.fit

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            memory_limit=args.worker_memory,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):

        def refit(client, *a, **k):
            marks["before"] = client.run(mark)
            return real_refit(client, *a, **k)

        def fit(self, X, y, **k):
            workers = placement(sorted(client.scheduler_info()["workers"]), len(X.chunks[0]))
            for worker, rows in zip(workers, X.chunks[0], strict=True):
                held[worker] = held.get(worker, 0) + rows
            marks["persisted"] = client.run(mark)
            real_fit(self, X, y, **k)
            marks["fit"] = client.run(mark)
            fitted.update(features=X.shape[1], rounds=self.n_estimators)
            raise Measured  # the rest of the analysis does not change the figures

        partitioned.fit_every_row = refit
        lgb_dask.DaskLGBMClassifier.fit = fit
        with contextlib.suppress(Measured):
            advisor.advise_partitioned(
                parts,
                target="y",
                costs={"fp": 10, "fn": 50},
                scheduler=cluster.scheduler_address,
                fit_rows=args.fit_rows,
                fit_engine="lightgbm-dask",
                bootstrap_resamples=200,
            )
        spills = client.run(spilled)
        logs = client.get_worker_logs()
        limits = {a: w["memory_limit"] for a, w in client.scheduler_info()["workers"].items()}

    features = fitted["features"]
    print(
        f"refit on {sum(held.values()):,} training rows, {features} features, "
        f"{fitted['rounds']} rounds, {args.workers} workers of {args.worker_memory}"
    )
    print(
        f"{'worker':>24}{'rows':>10}{'limit':>8}{'before':>8}{'encoding':>10}{'persisted':>11}"
        f"{'fitting':>9}{'B/row held':>12}{'B/row peak':>12}{'B/cell peak':>13}"
        f"{'spilled':>9}{'unpicklable':>13}"
    )
    for worker in sorted(marks["before"]):
        before = marks["before"][worker][0]
        (persisted, encoding), peak = marks["persisted"][worker], marks["fit"][worker][1]
        rows = max(held.get(worker, 0), 1)
        per_row = (peak - before) * 1024**2 / rows
        failed = sum("Failed to serialize" in msg for _, msg in logs.get(worker, []))
        print(
            f"{worker:>24}{rows:>10,}{limits[worker] / 1024**2:>8,.0f}{before:>8,.0f}"
            f"{encoding:>10,.0f}{persisted:>11,.0f}{peak:>9,.0f}"
            f"{(persisted - before) * 1024**2 / rows:>12,.0f}{per_row:>12,.0f}"
            f"{per_row / features:>13.1f}{spills[worker]:>9}{failed:>13}"
        )
    print(
        "MB resident: before the refit, peak while encoding the training rows, once they are "
        "persisted, peak during DaskLGBMClassifier.fit; B/row: above 'before', per row held"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
