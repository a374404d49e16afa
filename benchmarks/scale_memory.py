"""Memory held and peak after each stage of the analysis up to the model's fit, at 10,000,000
rows × 30 columns (benchmarks/scale.py's mixed case): where the memory of a large run goes,
quickly (the ML policy boosts only a few rounds, which costs no more memory than many).

    uv run python benchmarks/scale_memory.py [--rows N] [--keep DIR]

The stages are the pipeline's, called as `advisor.analysis.pipeline.analyse` calls them: read
and check the data, split it (a column at a time, each column of the whole frame let go once
taken), fit the feature definitions and the training reference, and fit the ML policy
(LightGBM's binned Dataset from the encoded columns, boosting). `benchmarks/scale.py` gives
the memory of every stage of the whole analysis, at more cost.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="advisor-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / f"mixed-{args.rows}-seed0.parquet"
    if not data_path.exists():
        make_case(args.rows, "mixed", 0).to_parquet(data_path, index=False)
        print(f"wrote {data_path}; measure in a fresh process: run this command again")
        return

    from advisor.core.case import resolve_case
    from advisor.core.data import load_dataset, split_releasing
    from advisor.core.features import FeatureSpec
    from advisor.policies.ml import MLPolicy
    from advisor.stats.psi import training_reference

    rows = [("imports", 0.0, *memory_mb())]

    def stage(name: str, start: float) -> None:
        rows.append((name, time.perf_counter() - start, *memory_mb()))

    case = resolve_case(data_path, target="y", costs={"fp": 10.0, "fn": 50.0, "tp": 0, "tn": 0})
    start = time.perf_counter()
    data = load_dataset(case)
    stage("load", start)
    start = time.perf_counter()
    data, split = split_releasing(data, case.seed)
    schema = data.schema
    del data
    stage("split", start)
    start = time.perf_counter()
    spec = FeatureSpec(schema).fit(split.train.frame)
    reference = training_reference(spec, split.train.frame)
    stage("features", start)
    start = time.perf_counter()
    MLPolicy(case.costs, spec, seed=case.seed, max_rounds=20).fit(split.train, split.valid)
    stage("ml fit", start)
    del reference
    print(f"{args.rows:,} rows × 30 columns\n{'stage':<10}{'s':>8}{'MB held':>10}{'MB peak':>10}")
    for name, seconds, held, peak in rows:
        print(f"{name:<10}{seconds:>8.1f}{held:>10,.0f}{peak:>10,.0f}")


if __name__ == "__main__":
    main()
