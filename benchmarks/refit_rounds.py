"""How LightGBM's early-stopped number of rounds grows with the training rows: the figure behind
the rule that scales the refits' rounds to the model that ships (`advisor.analysis.shipping`).

Per bundled case (and a synthetic one), a fifth of the rows is held out as the validation set
that stops the boosting; MLPolicy (step 0.05, as every fit below 200,000 rows) is trained on
a quarter, a half, three quarters and all of the other rows, at several seeds (each its own
draw of rows). It prints the median number of trees per size, and the exponent b of
trees ~ rows^b fitted by least squares on the logs of every fit.

    uv run python benchmarks/refit_rounds.py [CASE ...] [--seeds 4] [--rows 40000]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from advisor.core.case import load_case
from advisor.core.data import Part, load_dataset
from advisor.core.features import FeatureSpec
from advisor.policies.ml import MLPolicy

ROOT = Path(__file__).resolve().parent.parent
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def rows(part: Part, index: np.ndarray) -> Part:
    return Part(frame=part.frame.iloc[index].reset_index(drop=True), y=part.y[index])


def trees_by_size(name: str, seeds: int, most: int) -> tuple[list[int], np.ndarray]:
    """Rows of each training size, and trees (seeds x sizes) early-stopped on the held fifth."""
    case = load_case(ROOT / "datasets" / f"{name}.yaml")
    data = load_dataset(case)
    whole = Part(frame=data.frame, y=data.y)
    n = min(len(whole), most)
    sizes, out = [], np.zeros((seeds, len(FRACTIONS)), dtype=int)
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(whole))[:n]
        valid = rows(whole, order[: n // 5])
        pool = order[n // 5 :]
        spec = FeatureSpec(data.schema).fit(rows(whole, pool).frame)
        sizes = []
        for j, f in enumerate(FRACTIONS):
            train = rows(whole, pool[: round(f * len(pool))])
            model = MLPolicy(replace(case.costs), spec, seed=seed, learning_rate=0.05)
            out[seed, j] = model.fit(train, valid).n_trees_
            sizes.append(len(train))
    return sizes, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["telco-churn", "credit-scoring", "car-loans"])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rows", type=int, default=40_000, help="at most this many rows a case")
    args = parser.parse_args()
    print(f"{'case':<16}{'rows':>36}{'median trees':>40}{'b':>7}")
    for name in args.cases:
        sizes, trees = trees_by_size(name, args.seeds, args.rows)
        x = np.log(np.repeat([sizes], len(trees), axis=0)).ravel()
        b = np.polyfit(x, np.log(np.maximum(trees, 1)).ravel(), 1)[0]
        med = [int(np.median(trees[:, j])) for j in range(len(sizes))]
        print(f"{name:<16}{sizes!s:>36}{med!s:>40}{b:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
