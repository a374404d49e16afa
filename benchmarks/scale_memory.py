"""Memory held and peak at the start of each stage of the whole analysis, at 10,000,000 rows ×
30 columns (benchmarks/scale.py's mixed case): where the memory of a large run goes, quickly.

    uv run python benchmarks/scale_memory.py [--rows N] [--keep DIR] [--max-rounds 20]

`advisor.advise` and `Result.save` run in this process, as `advisor analyze` runs them, with
the ML policy capped at `--max-rounds` boosting rounds: the memory of boosting is sized by the
rows (the binned Dataset, gradients, histograms), not by the rounds, and the fit is what takes
the time. The resident and peak resident memory are read from /proc as each stage starts.
`benchmarks/scale.py --huge` measures the same with every round, and the time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from scale_cases import make_case

HUGE = 10_000_000


def memory_mb() -> tuple[float, float]:
    """Resident and peak resident memory of this process now, in MB (from /proc)."""
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=HUGE)
    parser.add_argument("--keep", type=Path, help="folder for the data (kept)")
    parser.add_argument("--max-rounds", type=int, default=20)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="advisor-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / f"mixed-{args.rows}-seed0.parquet"
    if not data_path.exists():
        make_case(args.rows, "mixed", 0).to_parquet(data_path, index=False)
        print(f"wrote {data_path}; measure in a fresh process: run this command again")
        return

    from advisor.api import advise
    from advisor.policies.ml import MLPolicy

    defaults = list(MLPolicy.__init__.__defaults__)
    defaults[3] = args.max_rounds  # seed, learning_rate, num_leaves, max_rounds, ...
    MLPolicy.__init__.__defaults__ = tuple(defaults)
    print(f"{args.rows:,} rows × 30 columns; load average {os.getloadavg()[0]:.1f}")
    print(f"{'s':>7}  {'MB held':>8}  {'MB peak':>8}  stage starting")
    start = time.perf_counter()

    def progress(message: str) -> None:
        held, peak = memory_mb()
        print(
            f"{time.perf_counter() - start:7.0f}  {held:8,.0f}  {peak:8,.0f}  {message}", flush=True
        )

    result = advise(
        data_path,
        target="y",
        costs={"fp": 10.0, "fn": 50.0, "tp": 0, "tn": 0},
        progress=progress,
        seed=0,
    )
    progress("Saving the run folder")
    result.save(folder / "run")
    progress("(end)")
    ml = result.to_dict()["evaluation"]["policies"]["ml"]
    print(f"ML test cost per decision {ml['cost_per_decision']['estimate']:.4f} (at most ", end="")
    print(f"{args.max_rounds} rounds); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
