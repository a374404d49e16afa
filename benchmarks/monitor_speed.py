"""Time and peak memory of `advisor monitor` on large prediction logs: by default 1,000,000 and
10,000,000 decisions over 30 days of the credit-scoring case (rules in control, ML in a 50 %
treatment arm, ML as shadow on control), written as `advisor serve` writes its log (JSON Lines,
200,000-line files), with outcomes known for 80 % of the rows older than 3 days.

The rows are the case's test rows drawn with replacement (seeded) and decided by the run's own
bundles. Each log is written once, a file at a time (`--cache FOLDER`, by default
/tmp/advisor-monitor-speed, keeps them and the analysed run for the next
run). Prints each log's size, the time and peak resident memory of the real command in a fresh
process (best of `--repeat`), the time of each stage in this process for the smallest size
(reading, measuring, alerts), and the load average, since the machine may be shared. The 10M
log is about 5 GB and the 10M run may hold over 3 GB: on a shared machine wrap it in a lock.

    uv run python benchmarks/monitor_speed.py [--sizes 1000000 10000000] [--days 30] [--run RUN]
        [--cache FOLDER] [--repeat 1]
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CASE = "credit-scoring"
FILE_LINES = 200_000


def make_run(folder: Path) -> Path:
    import advisor

    return advisor.advise(ROOT / "datasets" / f"{CASE}.yaml").save(folder)


def make_log(run: Path, rows: int, days: int, folder: Path) -> tuple[Path, Path]:
    """The log files and the outcomes file (Parquet), written a file at a time (the case's test
    rows are decided once, and each row's line after its id is built once per arm; a drawn row
    takes its arm's text), so ten million lines take minutes, not hours."""
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset
    from advisor.core.predictionlog import FORMAT

    outcomes = folder.parent / "outcomes.parquet"
    if outcomes.exists():
        return folder, outcomes
    case = load_case(ROOT / "datasets" / f"{CASE}.yaml")
    test = split_dataset(load_dataset(case), case.seed).test.frame.reset_index(drop=True)
    policies = {n: advisor.load_policy(run / "policies" / n) for n in ("rules", "ml")}
    decided = {n: p.decide(test).astype(object) for n, p in policies.items()}
    inputs = list(dict.fromkeys(policies["ml"].input_columns()))
    records = test[inputs].astype(object).where(test[inputs].notna(), None).to_dict("records")
    texts = [json.dumps(r, separators=(",", ":")) for r in records]
    version = {n: p.version for n, p in policies.items()}
    tails = {arm: _tails(arm, decided, version, texts) for arm in ("control", "treatment")}
    rng = np.random.default_rng(0)
    seconds = np.sort(rng.uniform(0, days * 86400, rows))
    folder.mkdir(parents=True, exist_ok=True)
    known_ids, known_status = [], []
    for i, start in enumerate(range(0, rows, FILE_LINES)):
        n = min(FILE_LINES, rows - start)
        drawn = rng.integers(0, len(test), n)
        treated = rng.random(n) < 0.5
        at = seconds[start : start + n]
        moments = np.datetime64("2026-01-01", "ns") + pd.to_timedelta(at, unit="s").to_numpy()
        stamps = np.datetime_as_string(moments.astype("datetime64[us]"), unit="us")
        latency = rng.lognormal(np.log(2.0), 0.4, n)
        tail = np.where(treated, tails["treatment"][drawn], tails["control"][drawn])
        keep = np.array([t is not None for t in tail])
        head = f'{{"format":"{FORMAT}","ts":"'
        lines = [
            f'{head}{s}Z","id":"{k}","unit":"{k}",{t}{x:.3f},"request_records":1}}\n'
            for s, k, t, x in zip(
                stamps[keep],
                np.arange(start, start + n)[keep].tolist(),
                tail[keep],
                latency[keep],
                strict=True,
            )
        ]
        (folder / f"predictions-20260101T000000Z-1-{i + 1:06d}.jsonl").write_text("".join(lines))
        known = keep & (at < (days - 3) * 86400) & (rng.random(n) < 0.8)
        known_ids.append(np.arange(start, start + n)[known].astype(str))
        known_status.append(test["Status"].to_numpy()[drawn[known]])
    pd.DataFrame(
        {"id": np.concatenate(known_ids), "Status": np.concatenate(known_status)}
    ).to_parquet(outcomes)
    return folder, outcomes


def _tails(arm: str, decided: dict, version: dict, texts: list[str]) -> np.ndarray:
    """Each test row's line from `"arm"` to `"latency_ms":` in `arm` (None: no decision)."""
    policy = "ml" if arm == "treatment" else "rules"
    out = np.empty(len(texts), dtype=object)
    for row, text in enumerate(texts):
        decision = decided[policy][row]
        if decision is None:
            continue
        shadow = (
            ',"shadow_policy":null,"shadow_version":null,"shadow_decision":null'
            if arm == "treatment"
            else f',"shadow_policy":"ml","shadow_version":"{version["ml"]}",'
            f'"shadow_decision":{json.dumps(decided["ml"][row])}'
        )
        out[row] = (
            f'"arm":"{arm}","policy":"{policy}","model_version":"{version[policy]}",'
            f'"decision":"{decision}"{shadow},"record":{text},"latency_ms":'
        )
    return out


PEAK = (
    "import resource, sys\n"
    "from advisor.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
    "    print(f'peak-rss {peak}', file=sys.stderr)\n"
)


def command_seconds(run: Path, log: Path, outcomes: Path, out: Path) -> tuple[float, int, int]:
    """Wall seconds, exit status and peak resident memory (bytes) of the command in a fresh
    process (the process reports its own peak as it exits)."""
    command = [sys.executable, "-c", PEAK, "monitor", str(run), "--log", str(log)]
    command += ["--outcomes", str(outcomes), "--out", str(out), "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(done.stderr)
    peak = int(done.stderr.rsplit("peak-rss ", 1)[1].split()[0])
    return wall, done.returncode, peak


def stages(run: Path, log: Path, outcomes: Path) -> dict[str, float]:
    """Seconds per stage of one monitor call in this process."""
    from advisor.monitor import alerts, expectations, logs, scan, windows
    from advisor.stats.psi import NoiseLevels

    times = {}
    width = pd.Timedelta(1, "D")
    start = time.perf_counter()
    run_ = expectations.read_expectations(run)
    known = logs.read_outcomes(outcomes, "id", run_.target, run_.costs)
    times["read outcomes"] = time.perf_counter() - start
    start = time.perf_counter()
    read = scan.scan_log(log, run_, width, known, "id")
    read.light["in_run"] = read.in_run(run_.bundles)
    times["read and join the log"] = time.perf_counter() - start
    important = run_.important(set(run_.bundles["rules"].get("inputs") or ()))
    context = windows.Context(
        run_, set(important["features"]), NoiseLevels(run_.reference.counts, 0), 0.5, 0
    )
    start = time.perf_counter()
    _, _, measured, whole = windows.measure(read, width, context)
    times["measure windows"] = time.perf_counter() - start
    start = time.perf_counter()
    alerts.review(measured, whole, run_, important)
    times["alerts"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--run", type=Path, help="A credit-scoring run folder (default: analyse).")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "advisor-monitor-speed",
        help="Keep the logs and the run here (reused when present; default under /tmp).",
    )
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = args.cache
        kept = cache / "runs" / CASE
        run = args.run or (kept if (kept / "result.json").exists() else make_run(cache / "runs"))
        for index, rows in enumerate(sorted(args.sizes)):
            start = time.perf_counter()
            log, outcomes = make_log(run, rows, args.days, cache / f"log-{rows}" / "log")
            size = sum(p.stat().st_size for p in log.iterdir())
            print(
                f"log: {rows:,} decisions over {args.days} days, {len(list(log.iterdir()))} "
                f"files, {size / 1e6:,.0f} MB (ready in {time.perf_counter() - start:.0f} s)"
            )
            best = min(
                (command_seconds(run, log, outcomes, tmp / "out") for _ in range(args.repeat)),
                key=lambda r: r[0],
            )
            print(
                f"advisor monitor: {best[0]:.1f} s, exit {best[1]}, peak memory "
                f"{best[2] / 2**20:,.0f} MB ({best[2] / rows:,.0f} bytes per decision, "
                f"{rows / best[0]:,.0f} rows/s)"
            )
            if index == 0:
                for stage, seconds in stages(run, log, outcomes).items():
                    print(f"  {stage:<24} {seconds:6.1f} s")
        print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
