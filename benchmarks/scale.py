"""How long `advisor analyze` takes at 100,000, 1,000,000 and (with --huge) 10,000,000 rows,
against the fit a data scientist would write by hand on the same rows.

    uv run python benchmarks/scale.py [--rows 100000 1000000] [--huge] [--keep DIR]

The case: 30 columns (25 numeric with 5 % missing, 5 categorical with 20 levels), a
non-linear signal, binary costs 10 (false positive) and 50 (false negative). It is written
once per size as Parquet, then:

- `advisor analyze` runs in its own process, as a user would run it; its wall time and peak
  memory are measured from outside, its stage times read from result.json;
- the hand fit runs in its own process: read the Parquet, a 60/20/20 split, LightGBM with
  learning rate 0.05 and early stopping after 100 rounds on the 20 % validation split, and
  the test log loss.

The ratio analyze / hand fit is the price of the analysis. The last columns compare the ML
model's test log loss with the hand fit's.
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
SIZES = (100_000, 1_000_000)
HUGE = 10_000_000

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

HAND_FIT = """
import json, sys, time
start = time.perf_counter()
import lightgbm as lgb
import numpy as np
import pandas as pd
frame = pd.read_parquet(sys.argv[1])
y = frame.pop("y").to_numpy()
for c in frame.columns:
    if frame[c].dtype == object:
        frame[c] = frame[c].astype("category")
rng = np.random.default_rng(0)
order = rng.permutation(len(frame))
a, b = int(0.6 * len(frame)), int(0.8 * len(frame))
train, valid, test = order[:a], order[a:b], order[b:]
dtrain = lgb.Dataset(frame.iloc[train], y[train])
dvalid = lgb.Dataset(frame.iloc[valid], y[valid], reference=dtrain)
booster = lgb.train(
    {"objective": "binary", "learning_rate": 0.05, "verbosity": -1, "num_threads": 2},
    dtrain,
    num_boost_round=5000,
    valid_sets=[dvalid],
    callbacks=[lgb.early_stopping(100, verbose=False)],
)
p = np.clip(booster.predict(frame.iloc[test], num_iteration=booster.best_iteration), 1e-12, 1 - 1e-12)
log_loss = float(-np.mean(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
print(json.dumps({"seconds": time.perf_counter() - start, "log_loss": log_loss,
                  "trees": booster.best_iteration}))
"""


def make_case(n: int, seed: int = 0) -> pd.DataFrame:
    """25 numeric columns (5 % missing), 5 categorical ones of 20 levels, a non-linear target."""
    rng = np.random.default_rng(seed)
    cols: dict = {}
    for j in range(25):
        x = rng.normal(size=n).astype(np.float64)
        x[rng.random(n) < 0.05] = np.nan
        cols[f"num_{j}"] = x
    levels = np.array([f"level-{k:02d}" for k in range(20)])
    codes = [rng.integers(0, 20, n) for _ in range(5)]
    for j in range(5):
        cols[f"cat_{j}"] = pd.Categorical.from_codes(codes[j], categories=levels)
    x0, x1, x2, x3 = (np.nan_to_num(cols[f"num_{j}"]) for j in range(4))
    z = (
        1.2 * (x0 > 0.5)
        - 0.8 * x1
        + 0.6 * np.sin(2 * x2)
        + 0.5 * x2 * x3
        + 0.9 * (codes[0] < 4)
        - 0.7 * ((codes[1] % 5) == 0) * (x0 > 0)
        - 1.3
    )
    cols["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    return pd.DataFrame(cols)


def measure(cmd: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_size(n: int, folder: Path) -> dict:
    data = folder / f"scale-{n}.parquet"
    if not data.exists():
        make_case(n).to_parquet(data, index=False)
    out = folder / f"run-{n}"
    analyze = measure(
        [
            sys.executable,
            "-m",
            "advisor.cli",
            "analyze",
            str(data),
            "--target",
            "y",
            "--cost-fp",
            "10",
            "--cost-fn",
            "50",
            "--out",
            str(out),
            "-q",
        ]
    )
    if analyze["returncode"] != 0:
        raise SystemExit(f"advisor analyze failed at {n:,} rows:\n{analyze['stderr']}")
    result = json.loads((out / data.stem / "result.json").read_text())
    hand = subprocess.run(
        [sys.executable, "-c", HAND_FIT, str(data)], capture_output=True, text=True, check=True
    )
    reference = json.loads(hand.stdout.strip().splitlines()[-1])
    ml = result["evaluation"]["policies"]["ml"]["metrics"]["log_loss"]["estimate"]
    return {
        "rows": n,
        "analyze_s": analyze["seconds"],
        "peak_mb": analyze["peak_mb"],
        "reference_s": reference["seconds"],
        "ratio": analyze["seconds"] / reference["seconds"],
        "ml_log_loss": ml,
        "reference_log_loss": reference["log_loss"],
        "stages": result["timings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--huge", action="store_true", help=f"also run {HUGE:,} rows")
    parser.add_argument("--keep", type=Path, help="folder for the data and runs (kept)")
    args = parser.parse_args()
    sizes = list(args.rows) + ([HUGE] if args.huge else [])
    folder = args.keep or Path(tempfile.mkdtemp(prefix="advisor-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"data and runs in {folder}; load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    for n in sizes:
        start = time.perf_counter()
        rows.append(run_size(n, folder))
        print(f"  {n:,} rows done in {time.perf_counter() - start:,.0f} s", flush=True)
    print(
        f"\n{'rows':>12}{'analyze s':>11}{'hand fit s':>12}{'ratio':>7}{'peak MB':>9}"
        f"{'ML log loss':>13}{'hand log loss':>15}{'diff':>8}"
    )
    for r in rows:
        diff = r["ml_log_loss"] / r["reference_log_loss"] - 1
        print(
            f"{r['rows']:>12,}{r['analyze_s']:>11.1f}{r['reference_s']:>12.1f}{r['ratio']:>7.2f}"
            f"{r['peak_mb']:>9,.0f}{r['ml_log_loss']:>13.5f}{r['reference_log_loss']:>15.5f}"
            f"{diff:>+8.2%}"
        )
    stages = list(rows[0]["stages"])
    print("\nseconds per stage")
    print(f"{'stage':<13}" + "".join(f"{r['rows']:>14,}" for r in rows))
    for stage in stages:
        print(f"{stage:<13}" + "".join(f"{r['stages'].get(stage, 0):>14.1f}" for r in rows))
    print(
        f"\nload average {os.getloadavg()[0]:.2f} at the end (other work on the machine slows both)"
    )


if __name__ == "__main__":
    main()
