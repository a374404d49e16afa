"""Throughput of `advisor score` at 1,000,000 rows, for the rule-list and the ML bundle of a
bundled case (targets: 1,000,000 rows/s for rules, 200,000 rows/s for ML).

The rows are the case's data resampled with replacement (seeded) to 1,000,000, written once to
Parquet and to CSV. Each figure is the best of `--repeat` runs of the real command in a fresh
process (`advisor score BUNDLE INPUT -o OUT`), after one untimed run: "command" includes
starting Python and importing the libraries, "scoring" is the time the command reports for loading the bundle,
reading, deciding and writing; "CPU s" is the command's user + system time (all threads),
which a busy machine inflates less than the wall time; "warm" is the same call in one process
after a first run (no start-up, the bundle already read once). Also prints the bundle sizes,
the peak memory and the load average, since the machine may be shared.

The commands run with Python's bytecode cache on, as in any installed environment: an
environment that sets PYTHONDONTWRITEBYTECODE recompiles every imported module on each start
(about 2.5 s more per ML command on this machine), so the variable is removed for them, and
the untimed first run fills the cache.

With `--reasons K` it measures reason codes instead (`advisor score --reasons K`): the time to
build the exact TreeSHAP tables and to read them from their disk cache, the ML bundle's
`Policy.explain` in this process on `--ml-rows` rows by exact TreeSHAP from the tables
("exact", also on one thread), by LightGBM's own TreeSHAP ("lightgbm") and by the per-tree
path attribution ("paths"), how often "exact" and "paths" give LightGBM's top-K features (as a
set, and in order), then `score` with reasons, rules at `--rows` and ML at `--ml-rows`, warm in
this process and as the command in a fresh process, for ML both with the tables built in each
process ("cold": the cache off) and read from the cache ("cached": a folder of the run's own,
filled by the first build) (targets: rules 500,000 rows/s at 1M rows; ML 20,000 rows/s).

    uv run python benchmarks/score_speed.py [--case telco-churn] [--rows 1000000] [--repeat 3]
    uv run python benchmarks/score_speed.py --reasons 3 [--ml-rows 100000] [--explain-rows N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_score(
    bundle: Path, source: Path, out: Path, extra: tuple[str, ...] = ()
) -> tuple[float, float, float, int]:
    """Wall seconds of the command, the scoring seconds it reports, the CPU seconds it used
    (user + system, all threads) and its peak memory in bytes."""
    command = [sys.executable, "-m", "advisor.cli", "score", str(bundle), str(source)]
    command += ["-o", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reported = re.search(r"rows in ([0-9.]+) s", done.stderr)
    scoring = float(reported.group(1)) if reported else float("nan")
    return wall, scoring, cpu, after.ru_maxrss * 1024


def warm_seconds(bundle: Path, source: Path, out: Path, repeat: int) -> float:
    """Best time of `advisor.ship.score.score` in this process after one untimed run: the cost
    per row once Python, the libraries and the bundle are loaded."""
    from advisor.ship.score import score

    score(bundle, source, out)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        score(bundle, source, out)
        best = min(best, time.perf_counter() - start)
    return best


def best_of(repeat: int, fn) -> float:
    """Best wall seconds of `repeat` calls after one untimed call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def table_cache(setting: str):
    """The TreeSHAP tables' disk cache for this process and the commands it starts: a folder,
    or "off" (every process builds the tables: the cold figure)."""
    before = os.environ.get("ADVISOR_CACHE_DIR")
    os.environ["ADVISOR_CACHE_DIR"] = setting
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ADVISOR_CACHE_DIR")
        else:
            os.environ["ADVISOR_CACHE_DIR"] = before


def reasons_figures(folder: Path, bundles: dict, inputs: dict, rows, args, tmp: Path) -> None:
    """Reason codes: explain speed by method, top-K agreement with LightGBM's TreeSHAP, and
    `score --reasons` speed (warm in this process, and the command in a fresh one), with the
    TreeSHAP tables built in each process (cache off, "cold") and read from the disk cache."""
    import advisor
    from advisor.ship.score import score

    k, n_ml = args.reasons, min(args.ml_rows, len(rows))
    cache = str(tmp / "table-cache")  # empty: the first build is timed
    ml = advisor.load_policy(folder / "policies" / bundles["ml"])
    sample = rows.iloc[:n_ml]
    n_explain = min(args.explain_rows or n_ml, n_ml)
    explained = sample.iloc[:n_explain]
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with table_cache(cache):
        start = time.perf_counter()
        ml.explain(sample.iloc[:1], k, "exact")
        built = time.perf_counter() - start
        tables = ml.booster_._advisor_leaf_tables[1]
        del ml.booster_._advisor_leaf_tables  # as in a new process
        start = time.perf_counter()
        ml.explain(sample.iloc[:1], k, "exact")
        read = time.perf_counter() - start
    print(
        f"exact TreeSHAP tables ({tables.table.nbytes / 1e6:,.0f} MB, {len(tables.offset)} "
        f"subtrees): built and cached in {built:.2f} s, read from the cache in {read:.2f} s"
    )
    print(f"ML explain, k={k}, {n_explain:,} rows, in process (best of {args.repeat}):")
    got = {}
    for method in ("exact", "lightgbm", "paths"):
        seconds = best_of(
            args.repeat, lambda m=method: got.__setitem__(m, ml.explain(explained, k, m))
        )
        print(f"  {method:<9} {seconds:8.2f} s {n_explain / seconds:>11,.0f} rows/s")
    threads, ml.num_threads = ml.num_threads, 1
    seconds = best_of(args.repeat, lambda: ml.explain(explained, k, "exact"))
    ml.num_threads = threads
    print(f"  exact on 1 thread {seconds:8.2f} s {n_explain / seconds:>11,.0f} rows/s")
    reference = got["lightgbm"].feature
    for method in ("exact", "paths"):
        mine = got[method].feature
        ordered = (reference == mine).all(axis=1).mean()
        as_set = np.mean(
            [set(a) == set(b) for a, b in zip(reference.tolist(), mine.tolist(), strict=True)]
        )
        top1 = (reference[:, 0] == mine[:, 0]).mean()
        print(
            f"  {method} against LightGBM's TreeSHAP: same top-{k} features on {as_set:.1%} of "
            f"rows as a set, {ordered:.1%} in order; same first reason on {top1:.1%}"
        )
    ml_input = tmp / "ml_rows.parquet"
    sample.to_parquet(ml_input, index=False)
    runs = [
        ("rules", "", inputs["parquet"], len(rows)),
        ("ml", "cold", ml_input, n_ml),
        ("ml", "cached", ml_input, n_ml),
    ]
    print(f"score --reasons {k} (warm, best of {args.repeat}):")
    for kind, tables_from, source, n in runs:
        bundle = folder / "policies" / bundles[kind]
        with table_cache(cache if tables_from == "cached" else "off"):
            seconds = best_of(
                args.repeat,
                lambda b=bundle, s=source: score(b, s, tmp / "why.parquet", reasons=k),
            )
        plain = best_of(args.repeat, lambda b=bundle, s=source: score(b, s, tmp / "plain.parquet"))
        print(
            f"  {kind:<6}{tables_from:<7}{n:>10,} rows {seconds:8.2f} s {n / seconds:>11,.0f} "
            f"rows/s (without reasons {n / plain:,.0f} rows/s)"
        )
    print(f"advisor score --reasons {k} command (fresh process, best of {args.repeat}):")
    for kind, tables_from, source, n in runs:
        bundle = folder / "policies" / bundles[kind]
        extra = ("--reasons", str(k))
        with table_cache(cache if tables_from == "cached" else "off"):
            run_score(bundle, source, tmp / "cmd.parquet", extra)
            timed = [
                run_score(bundle, source, tmp / "cmd.parquet", extra) for _ in range(args.repeat)
            ]
        wall, scoring = min(r[0] for r in timed), min(r[1] for r in timed)
        print(
            f"  {kind:<6}{tables_from:<7}{n:>10,} rows: command {wall:6.2f} s "
            f"{n / wall:>11,.0f} rows/s; scoring {scoring:6.2f} s {n / scoring:>11,.0f} rows/s"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="telco-churn")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reasons", type=int, default=0, help="Measure reason codes (K).")
    parser.add_argument("--ml-rows", type=int, default=100_000)
    parser.add_argument(
        "--explain-rows",
        type=int,
        default=0,
        help="Rows for the in-process explain comparison (default: --ml-rows; LightGBM's "
        "TreeSHAP takes minutes on 200,000 rows).",
    )
    args = parser.parse_args()

    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"Analysing {args.case} to get its bundles ...", flush=True)
        result = advisor.advise(ROOT / "datasets" / f"{args.case}.yaml")
        folder = result.save(tmp / "runs")
        case = load_case(ROOT / "datasets" / f"{args.case}.yaml")
        frame = load_dataset(case).frame
        rng = np.random.default_rng(0)
        rows = frame.iloc[rng.integers(0, len(frame), args.rows)].reset_index(drop=True)
        inputs = {"parquet": tmp / "rows.parquet", "csv": tmp / "rows.csv"}
        rows.to_parquet(inputs["parquet"], index=False)
        rows.to_csv(inputs["csv"], index=False)
        print(
            f"{args.rows:,} rows x {len(frame.columns)} columns resampled from {len(frame):,}; "
            f"Parquet {inputs['parquet'].stat().st_size / 1e6:.1f} MB, "
            f"CSV {inputs['csv'].stat().st_size / 1e6:.1f} MB\n"
        )
        roles = result.data["roles"]
        bundles = {"rules": roles["control"], "ml": roles["treatment"]}
        if args.reasons:
            reasons_figures(folder, bundles, inputs, rows, args, tmp)
            return
        for kind, name in bundles.items():
            bundle = folder / "policies" / name
            model = " + ".join(
                f"{p.name} {p.stat().st_size / 1e3:,.0f} kB"
                for p in sorted(bundle.iterdir())
                if p.suffix in (".txt", ".yaml")
            )
            print(f"{kind} bundle {name!r}: {folder_bytes(bundle) / 1e3:,.0f} kB ({model})")
        print()
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        header = f"{'bundle':<8}{'input':<9}{'command s':>10}{'rows/s':>11}"
        header += f"{'scoring s':>11}{'rows/s':>11}{'CPU s':>8}{'peak MB':>9}"
        print(header + f"{'warm s':>8}{'rows/s':>11}")
        for kind, name in bundles.items():
            bundle = folder / "policies" / name
            for fmt, source in inputs.items():
                run_score(bundle, source, tmp / "out.parquet")
                runs = [run_score(bundle, source, tmp / "out.parquet") for _ in range(args.repeat)]
                wall, scoring, cpu = (min(r[i] for r in runs) for i in range(3))
                peak = max(r[3] for r in runs)
                warm = warm_seconds(bundle, source, tmp / "warm.parquet", args.repeat)
                print(
                    f"{kind:<8}{fmt:<9}{wall:>10.2f}{args.rows / wall:>11,.0f}"
                    f"{scoring:>11.2f}{args.rows / scoring:>11,.0f}{cpu:>8.2f}{peak / 1e6:>9,.0f}"
                    f"{warm:>8.2f}{args.rows / warm:>11,.0f}"
                )
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
