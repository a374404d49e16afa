"""Exact TreeSHAP from per-leaf tables against LightGBM's own, on every bundled case's ML
bundle: the table build time, `Policy.explain` speed by each method, the largest difference in
any contribution, and how often the top-K reasons agree (as a set and in order), also for the
per-tree path attribution.

The rows are each case's data resampled with replacement (seeded) to `--rows`. Run it at
real-time priority on a shared machine for speed figures (see the README).

    uv run python benchmarks/reasons_agreement.py [--rows 20000] [--reasons 3] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_speed import best_of  # one timing rule for both benchmarks

ROOT = Path(__file__).resolve().parent.parent
CASES = ("telco-churn", "credit-scoring", "car-loans")


def agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """Share of rows with the same top-K features as a set, and in the same order."""
    as_set = np.mean(
        [set(a) == set(b) for a, b in zip(reference.tolist(), other.tolist(), strict=True)]
    )
    return float(as_set), float((reference == other).all(axis=1).mean())


def measure(case: str, args, tmp: Path) -> None:
    """Print one case's figures."""
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset

    k = args.reasons
    result = advisor.advise(ROOT / "datasets" / f"{case}.yaml")
    folder = result.save(tmp / case)
    ml = advisor.load_policy(folder / "policies" / result.data["roles"]["treatment"])
    ml.num_threads = args.threads or ml.num_threads
    frame = load_dataset(load_case(ROOT / "datasets" / f"{case}.yaml")).frame
    rng = np.random.default_rng(0)
    rows = frame.iloc[rng.integers(0, len(frame), args.rows)].reset_index(drop=True)
    start = time.perf_counter()
    ml.explain(rows.iloc[:1], k, "exact")
    built = time.perf_counter() - start
    print(
        f"{case}: {ml.n_trees_} trees, {len(ml.spec.names_)} features, {ml.num_threads} "
        f"threads; tables {built:.2f} s"
    )
    got, speed = {}, {}
    for method in ("exact", "lightgbm", "paths"):
        seconds = best_of(args.repeat, lambda m=method: got.__setitem__(m, ml.explain(rows, k, m)))
        speed[method] = args.rows / seconds
    X = ml.spec.encode(rows)
    exact, lightgbm = (ml.raw_contributions(X, m)[0] for m in ("exact", "lightgbm"))
    print(
        f"  explain rows/s: exact {speed['exact']:,.0f}, lightgbm {speed['lightgbm']:,.0f}, "
        f"paths {speed['paths']:,.0f}; largest contribution difference "
        f"{np.abs(exact - lightgbm).max():.1e}"
    )
    one = []
    for i in range(args.single):  # the service's path: one record at a time, on one thread
        start = time.perf_counter()
        ml.explain(rows.iloc[i : i + 1], k, "exact")
        one.append(time.perf_counter() - start)
    if one:
        print(f"  exact, one record: median {np.median(one) * 1e3:.2f} ms of {len(one)} rows")
    for method in ("exact", "paths"):
        as_set, ordered = agreement(got["lightgbm"].feature, got[method].feature)
        print(
            f"  {method}: LightGBM's top-{k} on {as_set:.1%} of rows as a set, "
            f"{ordered:.1%} in order"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reasons", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--single", type=int, default=300, help="Rows explained one by one.")
    parser.add_argument("--threads", type=int, default=0, help="Threads (default: the bundle's).")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            measure(case, args, Path(tmp))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
