"""How long `advisor analyze` takes and how much memory it holds at 100,000 and 1,000,000 rows
(and with --huge 10,000,000), and how good its model is, against the fit a data scientist would
write by hand on the same rows.

    uv run python benchmarks/scale.py [--rows 100000 1000000] [--generators mixed smooth ...]
                                      [--seeds 0 1 2] [--repeats R] [--huge] [--keep DIR]

Each generator of `scale_cases.py` (mixed, smooth, interactions, weak, rare: 30 columns, a
different signal each) is written once per size and seed as Parquet; costs are 10 per false
positive and 50 per false negative. Then, for each (after reading the file once, untimed, so
that both sides find it in the page cache):

- `advisor analyze` runs in its own process, as a user would run it. Its wall time and peak
  memory are measured from outside; at each progress line (the start of a stage) the process's
  resident and peak memory are read from /proc, which gives the memory each stage leaves held
  and the peak so far;
- the hand fit runs in its own process on advisor's split of the same rows (`HAND_FIT`):
  LightGBM at learning rate 0.05, early stopping after 100 rounds on the validation part, and
  the cost per decision at the threshold cheapest on the validation part;
- the ML policy advisor shipped (its bundle) decides the same test rows; the difference of
  the two costs per decision (advisor minus hand fit) gets a paired 95 % bootstrap interval.
  "No worse" means its lower end is at most 0: the test rows do not show the hand fit cheaper.
  The same model's test cost at the threshold cheapest on validation (as the hand fit decides)
  is printed beside it, to tell the model from the way it decides.

The summary gives, per generator and size, the median over the seeds of: the time ratio
analyze / hand fit, the peak memory, the ML model's test log loss against the hand fit's, and
its test cost per decision against the hand fit's. Log loss and cost do not depend on the
machine's load; the times do, so the load average is printed at the start and the end.
With --repeats R both sides run R times in turn on each file and each side's seconds are the
median of its runs (the hand fit is then measured afresh, not read from a kept folder).
With --huge the mixed generator also runs at 10,000,000 rows (seed 0; several GB at peak: run
it when nothing else large runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scale_cases import HAND_FIT, MODEL_ONLY, SHIPPED_COSTS, SIGNALS, make_case

SIZES = (100_000, 1_000_000)
HUGE = 10_000_000
COST_FP, COST_FN = 10.0, 50.0


# Both sides run with Python's compiled bytecode, as an installed tool does after its first
# command: without it (PYTHONDONTWRITEBYTECODE set) every run recompiles what it imports, and
# advisor imports more than the hand fit. `warm_up` writes the bytecode before any timing.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def warm_up(folder: Path) -> None:
    """One small analysis and hand fit, untimed, so every module both import is compiled."""
    data = folder / "warm-up.parquet"
    make_case(3000, "mixed", 0).to_parquet(data, index=False)
    run_analyze(data, folder / "run-warm-up", 0)
    run_script(HAND_FIT, data, 0)


def _memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident and peak resident memory now, in MB (from /proc)."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_analyze(data: Path, out: Path, seed: int, live: bool = False) -> dict:
    """`advisor analyze` in its own process: wall time, peak memory, memory at each stage
    (`live`: also printed as each stage starts, for runs long enough to watch)."""
    cmd = [sys.executable, "-m", "advisor.cli", "analyze", str(data), "--target", "y"]
    cmd += ["--cost-fp", str(COST_FP), "--cost-fn", str(COST_FN), "--seed", str(seed)]
    cmd += ["--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=CHILD_ENV
    )
    marks, other = [], []
    for line in proc.stderr:
        if line.startswith("· "):
            with contextlib.suppress(FileNotFoundError, KeyError):  # the process has ended
                marks.append((line[2:].strip(), *_memory_mb(proc.pid)))
                if live:
                    name, held, peak = marks[-1]
                    print(
                        f"    {time.perf_counter() - start:7.0f} s  held {held:7,.0f} MB, "
                        f"peak so far {peak:7,.0f} MB  · {name}",
                        flush=True,
                    )
        else:
            other.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"advisor analyze failed on {data.name}:\n{''.join(other)[-2000:]}")
    peak = usage.ru_maxrss / 1024
    if live:
        print(f"    {seconds:7.0f} s  ended; peak {peak:7,.0f} MB", flush=True)
    result = json.loads((out / data.stem / "result.json").read_text())
    stages = list(result["timings"])
    memory = {}
    for k, stage in enumerate(stages):
        after = marks[k + 1] if k + 1 < len(marks) else (None, None, peak)
        memory[stage] = {"held_mb": after[1], "peak_mb": after[2]}
    ml = result["evaluation"]["policies"]["ml"]
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "stages": result["timings"],
        "memory": memory,
        "log_loss": ml["metrics"]["log_loss"]["estimate"],
        "cost": ml["cost_per_decision"]["estimate"],
    }


def run_script(script: str, data: Path, seed: int, *extra: str) -> dict | None:
    """One of `scale_cases`' scripts in its own process; its closing JSON line, if any."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(data), str(seed), str(COST_FP), str(COST_FN), *extra],
        capture_output=True,
        text=True,
        check=True,
        env=CHILD_ENV,
    )
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def _realtime() -> bool:
    """Whether this process runs at real-time priority (`chrt -f`), so its times are quiet."""
    return os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)


def hand_fit(data: Path, seed: int, fresh: bool = False) -> dict:
    """The hand fit's figures on this file, kept beside it: they do not depend on advisor's
    code, so later runs on a kept folder reuse them, unless `fresh`, or this run is at
    real-time priority and the kept times were not (delete the file to measure again)."""
    kept, costs = data.with_suffix(".hand.json"), data.with_suffix(".hand-costs.npy")
    if kept.exists() and costs.exists() and not fresh:
        hand = json.loads(kept.read_text())
        if hand.get("realtime") or not _realtime():
            return hand
    hand = run_script(HAND_FIT, data, seed, str(costs)) | {"realtime": _realtime()}
    kept.write_text(json.dumps(hand))
    return hand


def timed_in_turn(data: Path, out: Path, seed: int, repeats: int) -> tuple[dict, dict]:
    """Both sides `repeats` times in turn (analysis, hand fit, analysis, ...), each side's
    seconds the median of its runs (`seconds_each` keeps them all). The same code on the same
    rows has varied by a third between runs on this kind of machine (a shared virtual one);
    runs in turn meet the same conditions, and the median sets aside one slow run."""
    analyses, hands = [], []
    for _ in range(repeats):
        analyses.append(run_analyze(data, out, seed))
        hands.append(hand_fit(data, seed, fresh=True))
    times = {
        "analyze": [a["seconds"] for a in analyses],
        "hand": [h["seconds"] for h in hands],
    }
    analyze = analyses[0] | {
        "seconds": statistics.median(times["analyze"]),
        "seconds_each": times["analyze"],
    }
    hand = hands[0] | {"seconds": statistics.median(times["hand"]), "seconds_each": times["hand"]}
    return analyze, hand


def paired_cost(data: Path, seed: int, bundle: Path) -> dict:
    """Advisor's shipped ML policy minus the hand fit, cost per decision on the same test rows:
    the mean difference with its paired 95 % bootstrap interval (the same resampled rows for
    both). "No worse" means the interval's lower end is at most 0: the test rows do not show
    the hand fit cheaper."""
    from advisor.stats.bootstrap import Resampler, interval

    mine = data.with_name(f"{bundle.parent.parent.name}-ml-costs.npy")
    tuned = run_script(SHIPPED_COSTS, data, seed, str(bundle), str(mine))
    diff = np.load(mine) - np.load(data.with_suffix(".hand-costs.npy"))
    found = interval(float(diff.mean()), Resampler(2000, seed).means(diff)[:, 0])
    return {"diff": found.estimate, "low": found.low, "high": found.high} | tuned


# Writes one generator's file (if missing) and prints its path, in a process of its own.
WRITE_CASE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from scale_cases import case_file
print(case_file(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


def written_case(folder: Path, generator: str, n: int, seed: int) -> Path:
    """The generator's file, written by a process of its own: this one never holds the rows.
    A process started from this one begins with this one's high-water memory as its own peak
    (Linux carries it across fork and exec), so generating 10M rows here had reported the
    10M analysis at 6.4 GB where /proc saw it peak at 4.3."""
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", WRITE_CASE, here, str(folder), generator, str(n), str(seed)],
        capture_output=True,
        text=True,
        check=True,
        env=CHILD_ENV,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def read_once(data: Path) -> None:
    """Read the file through once, untimed, so that both sides read it from the page cache:
    the analysis runs first and would otherwise pay alone for a file the disk had to deliver
    (loads of 3 to 5 s against 1 s were seen on files not read for an hour)."""
    with open(data, "rb") as fh:
        while fh.read(1 << 24):
            pass


def run_one(
    generator: str, n: int, seed: int, folder: Path, model_only: bool, repeats: int = 1
) -> dict:
    data = written_case(folder, generator, n, seed)
    read_once(data)
    out = folder / f"run-{generator}-{n}-seed{seed}"
    if model_only:
        analyze = run_script(MODEL_ONLY, data, seed)
        analyze |= {"peak_mb": float("nan"), "stages": {}, "memory": {}}
        hand = hand_fit(data, seed)
    elif repeats > 1:
        analyze, hand = timed_in_turn(data, out, seed, repeats)
    else:
        analyze = run_analyze(data, out, seed, n >= HUGE)
        hand = hand_fit(data, seed)
    paired = dict.fromkeys(("diff", "low", "high", "tuned_cost"), float("nan"))
    if not model_only:
        bundle = out / data.stem / "policies" / "ml"
        paired = paired_cost(data, seed, bundle)
    row = {
        "generator": generator,
        "rows": n,
        "seed": seed,
        "analyze_s": analyze["seconds"],
        "hand_s": hand["seconds"],
        "ratio": analyze["seconds"] / hand["seconds"],
        "peak_mb": analyze["peak_mb"],
        "ml_log_loss": analyze["log_loss"],
        "hand_log_loss": hand["log_loss"],
        "log_loss_diff": analyze["log_loss"] / hand["log_loss"] - 1,
        "ml_cost": analyze["cost"],
        "hand_cost": hand["cost"],
        "paired": paired,
        "cost_diff": paired["diff"],
        "stages": analyze["stages"],
        "memory": analyze["memory"],
    }
    trees = (
        f", trees {analyze['trees']} (+{analyze['refined_trees']} refined)" if model_only else ""
    )
    each = ""
    if "seconds_each" in analyze:
        runs = " / ".join(
            f"{a:.1f} and {h:.1f}"
            for a, h in zip(analyze["seconds_each"], hand["seconds_each"], strict=True)
        )
        each = f" (median of runs in turn: {runs})"
    print(
        f"  {generator:<13}{n:>12,} seed {seed}: analyze {row['analyze_s']:.1f} s, hand fit "
        f"{row['hand_s']:.1f} s{each}, log loss {row['log_loss_diff']:+.2%}, cost "
        f"{row['ml_cost']:.4f} vs {row['hand_cost']:.4f} (paired {paired['diff']:+.4f}, "
        f"{paired['low']:+.4f} to {paired['high']:+.4f}; at a tuned threshold "
        f"{paired['tuned_cost']:.4f}), peak {row['peak_mb']:,.0f} MB{trees}",
        flush=True,
    )
    return row


def print_summary(rows: list[dict]) -> None:
    print(
        f"\nmedians over seeds\n{'generator':<13}{'rows':>12}{'seeds':>6}{'analyze s':>10}"
        f"{'hand s':>8}{'ratio':>7}{'peak MB':>9}{'ML log loss':>12}{'hand':>9}{'diff':>8}"
        f"{'ML cost':>9}{'hand':>9}{'paired':>9}{'no worse':>10}"
    )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["generator"], r["rows"]), []).append(r)
    for (generator, n), group in groups.items():

        def med(key: str, group: list[dict] = group) -> float:
            return statistics.median(r[key] for r in group)

        print(
            f"{generator:<13}{n:>12,}{len(group):>6}{med('analyze_s'):>10.1f}{med('hand_s'):>8.1f}"
            f"{med('ratio'):>7.2f}{med('peak_mb'):>9,.0f}{med('ml_log_loss'):>12.5f}"
            f"{med('hand_log_loss'):>9.5f}{med('log_loss_diff'):>+8.2%}{med('ml_cost'):>9.4f}"
            f"{med('hand_cost'):>9.4f}{med('cost_diff'):>+9.4f}"
            f"{f'{no_worse(group)}/{len(group)}':>10}"
        )
    print(
        "paired: advisor's ML policy minus the hand fit, cost per decision on the same test rows; "
        "no worse: seeds whose paired 95 % interval has its lower end at or below 0"
    )


def no_worse(group: list[dict]) -> int:
    """Runs whose paired interval (advisor minus hand fit) does not show the hand fit cheaper."""
    return sum(r["paired"]["low"] <= 0 for r in group)


def print_stages(rows: list[dict]) -> None:
    """Seconds, memory held after, and peak memory so far, per stage, for each generator and
    size at the first seed."""
    firsts = [r for r in rows if r["seed"] == rows[0]["seed"]]
    stages = list(firsts[0]["stages"])
    label = "".join(f"{r['generator']} {r['rows']:,}".rjust(24) for r in firsts)
    print(
        f"\nper stage, seed {rows[0]['seed']} (seconds / MB held after / MB peak so far)\n"
        f"{'stage':<13}{label}"
    )
    for stage in stages:
        cells = []
        for r in firsts:
            mem = r["memory"].get(stage, {})
            held = mem.get("held_mb")
            cells.append(
                f"{r['stages'].get(stage, 0):>8.1f}"
                f"{(f'{held:,.0f}' if held is not None else '-'):>8}"
                f"{mem.get('peak_mb', 0):>8,.0f}"
            )
        print(f"{stage:<13}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--generators", nargs="*", default=list(SIGNALS), choices=list(SIGNALS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--huge", action="store_true", help=f"also run {HUGE:,} rows (mixed)")
    parser.add_argument("--keep", type=Path, help="folder for the data and runs (kept)")
    parser.add_argument(
        "--model-only",
        action="store_true",
        help="fit only advisor's ML policy (log loss and cost; the seconds are the fit's alone)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run both sides this many times in turn and take each side's median seconds",
    )
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="advisor-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"data and runs in {folder}; load average {os.getloadavg()[0]:.2f} at start")
    warm_up(folder)
    runs = [(g, n, s) for n in args.rows for g in args.generators for s in args.seeds]
    runs += [("mixed", HUGE, args.seeds[0])] if args.huge else []
    rows = [run_one(g, n, s, folder, args.model_only, args.repeats) for g, n, s in runs]
    print_summary(rows)
    if not args.model_only:
        print_stages(rows)
    print(
        f"\nload average {os.getloadavg()[0]:.2f} at the end (other work on the machine slows both)"
    )


if __name__ == "__main__":
    main()
