"""Wall time per stage and peak memory of a full run on each bundled case.

    uv run python benchmarks/pipeline_runs.py [CASE ...]

Each case runs in its own process, so its peak resident memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("telco-churn", "credit-scoring", "car-loans")

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
import advisor
result = advisor.advise(sys.argv[1])
html = result.to_html()
print(json.dumps({
    "seconds": time.perf_counter() - start,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "report_kb": len(html.encode()) / 1024,
    "timings": result.data["timings"],
}))
"""


def main() -> None:
    names = sys.argv[1:] or CASES
    rows = []
    for name in names:
        case = ROOT / "datasets" / f"{name}.yaml"
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(case)], capture_output=True, text=True, check=True
        )
        rows.append((name, json.loads(out.stdout.strip().splitlines()[-1])))
    stages = list(rows[0][1]["timings"])
    print(f"{'case':<16}{'total s':>9}{'peak MB':>9}{'report KB':>11}")
    for name, r in rows:
        print(f"{name:<16}{r['seconds']:>9.1f}{r['peak_mb']:>9.0f}{r['report_kb']:>11.0f}")
    print("\nseconds per stage")
    print(f"{'stage':<13}" + "".join(f"{name:>16}" for name, _ in rows))
    for stage in stages:
        print(f"{stage:<13}" + "".join(f"{r['timings'].get(stage, 0):>16.2f}" for _, r in rows))


if __name__ == "__main__":
    main()
