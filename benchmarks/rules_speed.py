"""Fit time of the rule learner against one default LightGBM fit, on 1,000,000 rows x 30
columns (25 numeric with missing values, 5 categorical as pandas categories).

    uv run python benchmarks/rules_speed.py [--rows N]

The rule learner is fitted as a user would (`RuleListClassifier(costs=...).fit(X, y)`: it
chooses the list and its length by cross-validation, 2 folds at this size, then grows the
chosen list on every row and tidies it); LightGBM is
`LGBMClassifier()` with its defaults (100 trees, 31 leaves, all cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.policies.rules import RuleListClassifier


def make_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """25 numeric columns (5 % missing) and 5 categorical ones; a nonlinear binary target."""
    rng = np.random.default_rng(seed)
    cols = {}
    for j in range(25):
        x = rng.normal(size=n)
        x[rng.random(n) < 0.05] = np.nan
        cols[f"num {j}"] = x
    for j in range(5):
        levels = np.array([f"level-{k}" for k in range(4 + 3 * j)])
        cols[f"cat {j}"] = pd.Categorical(levels[rng.integers(0, len(levels), n)])
    X = pd.DataFrame(cols)
    z = (
        1.5 * (np.nan_to_num(X["num 0"].to_numpy()) > 0.5)
        + 1.0 * (X["cat 0"].to_numpy() == "level-1")
        - 0.8 * np.nan_to_num(X["num 1"].to_numpy())
        + 0.5 * np.nan_to_num(X["num 2"].to_numpy()) * (X["cat 1"].to_numpy() == "level-2")
        - 1.0
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    X, y = make_data(args.rows)
    print(f"{len(X):,} rows x {X.shape[1]} columns, {y.mean():.1%} positive")

    from lightgbm import LGBMClassifier

    start = time.perf_counter()
    LGBMClassifier(verbosity=-1).fit(X, y)
    lgbm = time.perf_counter() - start

    start = time.perf_counter()
    clf = RuleListClassifier(costs={"fp": 1, "fn": 3}, random_state=0).fit(X, y)
    rules = time.perf_counter() - start

    print(f"{'model':<34} {'fit seconds':>11}")
    print(f"{'LightGBM LGBMClassifier() default':<34} {lgbm:11.1f}")
    print(f"{'RuleListClassifier (rules)':<34} {rules:11.1f}")
    print(f"rules / LightGBM: {rules / lgbm:.2f}")
    print(f"\n{len(clf.rules_)} rules:\n{clf.rules_.english()}")


if __name__ == "__main__":
    main()
