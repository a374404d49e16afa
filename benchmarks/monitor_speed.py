"""Time of `advisor monitor` on a large prediction log: by default 1,000,000 decisions over 30
days of the credit-scoring case (rules in control, ML in a 50 % treatment arm, ML as shadow on
control), written as `advisor serve` writes its log (JSON Lines, 64 MB files), with outcomes
known for 80 % of the rows older than 3 days.

The rows are the case's test rows drawn with replacement (seeded) and decided by the run's own
bundles. Prints the log's size, the time and peak memory of the real command in a fresh process
(best of `--repeat`), and the time of each stage in this process (reading, measuring,
alerts, writing), since the machine may be shared (the load average is printed too).

    uv run python benchmarks/monitor_speed.py [--rows 1000000] [--days 30] [--run RUN] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CASE = "credit-scoring"
FILE_LINES = 200_000


def make_run(folder: Path) -> Path:
    import advisor

    return advisor.advise(ROOT / "datasets" / f"{CASE}.yaml").save(folder)


def make_log(run: Path, rows: int, days: int, folder: Path) -> tuple[Path, Path]:
    """The log files and the outcomes file (Parquet)."""
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset

    case = load_case(ROOT / "datasets" / f"{CASE}.yaml")
    test = split_dataset(load_dataset(case), case.seed).test.frame.reset_index(drop=True)
    rng = np.random.default_rng(0)
    drawn = test.iloc[rng.integers(0, len(test), rows)].reset_index(drop=True)
    seconds = np.sort(rng.uniform(0, days * 86400, rows))
    treated = rng.random(rows) < 0.5
    policies = {n: advisor.load_policy(run / "policies" / n) for n in ("rules", "ml")}
    decided = {n: p.decide(drawn).astype(object) for n, p in policies.items()}
    log = pd.DataFrame(
        {
            "ts": (pd.Timestamp("2026-01-01") + pd.to_timedelta(seconds, unit="s")).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "id": pd.RangeIndex(rows).astype(str),
            "unit": pd.RangeIndex(rows).astype(str),
            "arm": np.where(treated, "treatment", "control"),
            "policy": np.where(treated, "ml", "rules"),
            "model_version": np.where(treated, policies["ml"].version, policies["rules"].version),
            "decision": np.where(treated, decided["ml"], decided["rules"]),
            "shadow_policy": np.where(treated, None, "ml"),
            "shadow_version": np.where(treated, None, policies["ml"].version),
            "shadow_decision": np.where(treated, None, decided["ml"]),
        }
    )
    inputs = list(dict.fromkeys(policies["ml"].input_columns()))
    log["record"] = (
        drawn[inputs].astype(object).where(drawn[inputs].notna(), None).to_dict("records")
    )
    log["latency_ms"] = rng.lognormal(np.log(2.0), 0.4, rows).round(3)
    log = log[log["decision"].notna()]
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, len(log), FILE_LINES)):
        text = log.iloc[start : start + FILE_LINES].to_json(orient="records", lines=True)
        (folder / f"predictions-20260101T000000Z-1-{i + 1:06d}.jsonl").write_text(
            text.rstrip("\n") + "\n"
        )
    old = seconds[log.index] < (days - 3) * 86400
    known = old & (rng.random(len(log)) < 0.8)
    outcomes = pd.DataFrame(
        {"id": log["id"][known], "Status": drawn.loc[log.index[known], "Status"].to_numpy()}
    )
    outcomes.to_parquet(folder.parent / "outcomes.parquet")
    return folder, folder.parent / "outcomes.parquet"


def command_seconds(run: Path, log: Path, outcomes: Path, out: Path) -> tuple[float, int, int]:
    """Wall seconds, exit status and peak memory (bytes) of the command in a fresh process."""
    command = [sys.executable, "-m", "advisor.cli", "monitor", str(run), "--log", str(log)]
    command += ["--outcomes", str(outcomes), "--out", str(out), "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(done.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return wall, done.returncode, peak


def stages(run: Path, log: Path, outcomes: Path) -> dict[str, float]:
    """Seconds per stage of one monitor call in this process."""
    from advisor.monitor import alerts, expectations, logs, windows

    times = {}
    start = time.perf_counter()
    run_ = expectations.read_expectations(run)
    read = logs.read_log(log, run_.costs.decisions)
    times["read log"] = time.perf_counter() - start
    start = time.perf_counter()
    known = logs.read_outcomes(outcomes, "id", run_.target, run_.costs)
    frame, _ = logs.join_outcomes(read.frame, known, "id", str(log))
    times["read and join outcomes"] = time.perf_counter() - start
    from advisor.stats.psi import NoiseLevels

    frame["in_run"] = windows.in_run(frame, run_.bundles)
    important = run_.important(set(run_.bundles["rules"].get("inputs") or ()))
    context = windows.Context(
        run_, set(important["features"]), NoiseLevels(run_.reference.counts, 0), 0.5, 0
    )
    start = time.perf_counter()
    _, _, measured, whole = windows.measure(frame, pd.Timedelta(1, "D"), context)
    times["measure windows"] = time.perf_counter() - start
    start = time.perf_counter()
    alerts.review(measured, whole, run_, important)
    times["alerts"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--run", type=Path, help="A credit-scoring run folder (default: analyse).")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = args.run or make_run(tmp / "runs")
        start = time.perf_counter()
        log, outcomes = make_log(run, args.rows, args.days, tmp / "log")
        size = sum(p.stat().st_size for p in log.iterdir())
        print(
            f"log: {args.rows:,} decisions over {args.days} days, {len(list(log.iterdir()))} "
            f"files, {size / 1e6:,.0f} MB (made in {time.perf_counter() - start:.0f} s)"
        )
        best = min(
            (command_seconds(run, log, outcomes, tmp / "out") for _ in range(args.repeat)),
            key=lambda r: r[0],
        )
        print(
            f"advisor monitor: {best[0]:.1f} s, exit {best[1]}, peak memory {best[2] / 2**20:,.0f} MB "
            f"({args.rows / best[0]:,.0f} rows/s)"
        )
        for stage, seconds in stages(run, log, outcomes).items():
            print(f"  {stage:<24} {seconds:6.1f} s")
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
