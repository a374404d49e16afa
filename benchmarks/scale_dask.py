"""`advisor analyze --engine dask` on a partitioned data set larger than the workers' memory.

    uv run python benchmarks/scale_dask.py [--rows 50000000] [--rows-per-file 1000000]
        [--workers 4] [--worker-memory 2GB] [--data DIR] [--memory-rows N]

The data: `benchmarks/scale.py`'s generator (30 columns: 25 numeric with 5 % missing, 5
categorical of 20 levels, a non-linear signal; costs 10 per false positive, 50 per false
negative), one seeded file of `--rows-per-file` rows at a time, written once as Parquet
partitions under `--data` (kept between runs). A LocalCluster of `--workers` worker processes,
each limited to `--worker-memory`, is started here; `advisor analyze --engine dask --scheduler`
runs as its own process (the client), as a user would run it. Printed: wall time and peak
memory of the client, each worker's peak memory and limit, the seconds per stage (from
result.json), the rows fitted and scored, and the learning curve.

`--memory-rows N` also analyses the first N rows' files in memory (one Parquet file, the
usual `advisor analyze`) and with Dask (the main run when `--rows` is N), and compares time,
peak memory and the answer; `--memory-only` makes only the in-memory run. `--fit-engine
lightgbm-dask` also refits ML on every training row across the workers and prints its gain
over the sampled fit on the validation sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale_cases import make_case  # noqa: E402  (the 1M-row case's generator)

# Runs a command and prints, as one JSON line, its wall time and the peak memory of its process tree.
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
print(json.dumps({
    "returncode": proc.returncode,
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "stderr": proc.stderr[-2000:],
    "stdout": proc.stdout[-4000:],
}))
"""

COSTS = ["--target", "y", "--cost-fp", "10", "--cost-fn", "50"]


def write_parts(folder: Path, rows: int, per_file: int) -> list[Path]:
    """Seeded partitions of the scale case (file i from seed i), written once."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, start in enumerate(range(0, rows, per_file)):
        path = folder / f"part-{i:05d}.parquet"
        if not path.exists():
            frame = make_case(min(per_file, rows - start), seed=i)
            tmp = path.with_suffix(".tmp")
            frame.to_parquet(tmp, index=False)
            tmp.rename(path)
        files.append(path)
    return files


def measure(cmd: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker_peaks(client) -> dict:
    """Each worker process's peak resident memory (MB) and its limit (MB)."""

    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    peaks = client.run(peak)
    limits = {a: w["memory_limit"] for a, w in client.scheduler_info()["workers"].items()}
    return {a: (peaks[a], limits[a] / 1024**2) for a in peaks}


def analyse(source: Path, out: Path, extra: list[str]) -> tuple[dict, dict]:
    run = measure(
        [sys.executable, "-m", "advisor.cli", "analyze", str(source), *COSTS, *extra,
         "--out", str(out), "-q"]
    )  # fmt: skip
    if run["returncode"] != 0:
        raise SystemExit(f"advisor analyze failed:\n{run['stderr']}")
    name = source.name.split(".")[0]
    return run, json.loads((out / name / "result.json").read_text())


def dask_run(source: Path, out: Path, args, label: str) -> dict:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=args.threads,
            memory_limit=args.worker_memory,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):
        extra = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
        if args.fit_rows:
            extra += ["--fit-rows", str(args.fit_rows)]
        if args.fit_engine:
            extra += ["--fit-engine", args.fit_engine]
        run, result = analyse(source, out / label, extra)
        peaks = worker_peaks(client)
    return {"run": run, "result": result, "workers": peaks}


def show_dask(label: str, rows: int, files: int, d: dict) -> None:
    run, result = d["run"], d["result"]
    fit = result["data"]["scale"]["fit"]
    print(f"\n== {label}: {rows:,} rows in {files} Parquet files ==")
    print(f"client: {run['seconds']:,.0f} s wall, peak {run['peak_mb']:,.0f} MB")
    for address, (peak, limit) in sorted(d["workers"].items()):
        print(f"worker {address}: peak {peak:,.0f} MB of a {limit:,.0f} MB limit")
    print(
        f"rows: fitted on {fit['train_rows']:,} of {fit['train_available']:,} training rows "
        f"(validation sample {fit['valid_rows']:,} of {fit['valid_available']:,}); "
        f"scored every test row: {fit['test_rows_scored']:,}"
    )
    print(f"why that many: {fit['why']}")
    print("seconds per stage: " + ", ".join(f"{k} {v:,.1f}" for k, v in result["timings"].items()))
    curve = result["data"]["scale"]["learning_curve"]
    if curve:
        print(
            f"{'training rows':>14}{'ML valid cost (95% CI)':>30}{'rules valid cost (95% CI)':>30}"
        )
        for p in curve["points"]:
            ml, ru = p["ml"], p["rules"]
            print(
                f"{p['rows']:>14,}{ml['estimate']:>12.4f} ({ml['low']:.4f}-{ml['high']:.4f})"
                f"{ru['estimate']:>12.4f} ({ru['low']:.4f}-{ru['high']:.4f})"
            )
        print(curve["verdict"])
    every_row = result["data"]["scale"].get("fit_engine")
    if every_row:
        v, s, g = every_row["valid_cost"], every_row["sample_valid_cost"], every_row["gain"]
        print(
            f"lightgbm-dask: ML refitted on {every_row['train_rows']:,} training rows across "
            f"{every_row['workers']} workers ({every_row['why_rounds']}); validation cost "
            f"{v['estimate']:.4f} ({v['low']:.4f}-{v['high']:.4f}) against the sampled fit's "
            f"{s['estimate']:.4f} ({s['low']:.4f}-{s['high']:.4f}): gain {g['estimate']:+.4f} "
            f"({g['low']:+.4f} to {g['high']:+.4f}, paired)"
        )
    print_answer(result)


def print_answer(result: dict) -> None:
    rec = result["recommendation"]
    costs = {name: p["cost_per_decision"] for name, p in result["evaluation"]["policies"].items()}
    shown = ", ".join(
        f"{n} {c['estimate']:.4f} ({c['low']:.4f}-{c['high']:.4f})" for n, c in costs.items()
    )
    print(f"answer: {rec['option']}; test cost per decision: {shown}")


def combine(files: list[Path], path: Path) -> None:
    """The partitions as one Parquet file (the in-memory run's input), written once."""
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, pq.read_schema(files[0])) as writer:
        for f in files:
            writer.write_table(pq.read_table(f).cast(pq.read_schema(files[0])))
    tmp.rename(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--worker-memory", default="2GB")
    parser.add_argument("--fit-rows", type=int, help="default: from the workers' memory")
    parser.add_argument("--fit-engine", choices=["sample", "lightgbm-dask"])
    parser.add_argument("--data", type=Path, help="folder for the partitions (kept)")
    parser.add_argument("--memory-rows", type=int, help="also compare in memory at N rows")
    parser.add_argument(
        "--memory-only", action="store_true", help="only the in-memory run at --memory-rows"
    )
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="advisor-scale-dask-"))
    print(f"data in {folder}; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    start = time.perf_counter()
    parts = folder / f"parts-{args.rows}"
    files = write_parts(parts, args.rows, args.rows_per_file)
    size = sum(f.stat().st_size for f in files) / 1e9
    table_gb = args.rows * 30 * 8 / 1e9
    print(
        f"{len(files)} files, {size:.1f} GB on disk, about {table_gb:.0f} GB in memory as "
        f"float64; written in {time.perf_counter() - start:,.0f} s",
        flush=True,
    )
    runs = folder / "runs"
    if not args.memory_only:
        show_dask("dask", args.rows, len(files), dask_run(parts, runs, args, "dask"))
    if args.memory_rows:
        n_files = -(-args.memory_rows // args.rows_per_file)
        subset = folder / f"memory-{args.memory_rows}"
        subset.mkdir(exist_ok=True)
        for f in files[:n_files]:
            link = subset / f.name
            if not link.exists():
                link.symlink_to(f)
        whole = folder / f"whole-{args.memory_rows}.parquet"
        combine(files[:n_files], whole)
        if not args.memory_only and n_files < len(files):
            on_dask = dask_run(subset, runs, args, "dask-subset")
            show_dask("dask", args.memory_rows, n_files, on_dask)
        run, result = analyse(whole, runs / "memory", [])
        print(f"\n== in memory: {args.memory_rows:,} rows in one file ==")
        print(f"wall {run['seconds']:,.0f} s, peak {run['peak_mb']:,.0f} MB")
        print(
            "seconds per stage: " + ", ".join(f"{k} {v:,.1f}" for k, v in result["timings"].items())
        )
        print_answer(result)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (other work slows every figure)")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
