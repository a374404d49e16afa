"""How long `advisor --help` takes beside a bare Python start (target: within 0.2 s).

    uv run python benchmarks/startup.py [--runs 21]

Each command runs `--runs` times in a fresh process; the median and the fastest are printed.
The command line imports only click and advisor's own small modules; scikit-learn, LightGBM,
pandas, MLflow, FastAPI and Dask load inside the commands that use them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ADVISOR = Path(sys.executable).with_name("advisor")


def seconds(command: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    bare = seconds([sys.executable, "-c", "pass"], runs)
    help_ = seconds([str(ADVISOR), "--help"], runs)
    print(f"load average {os.getloadavg()[0]:.2f}; {runs} runs each, median (fastest)")
    print(f"python -c pass   {bare[0]:.3f} s ({bare[1]:.3f})")
    print(f"advisor --help   {help_[0]:.3f} s ({help_[1]:.3f})")
    extra = help_[0] - bare[0]
    print(
        f"difference       {extra:.3f} s: {'within' if extra <= 0.2 else 'over'} the 0.2 s target"
    )


if __name__ == "__main__":
    main()
