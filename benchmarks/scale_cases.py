"""The synthetic cases of `benchmarks/scale.py` and the hand fit they are compared with.

Every case has 30 columns: 25 numeric (5 % missing) and 5 categorical of 20 levels, and a
binary target `y` drawn from a logistic model of a different signal per generator:

- mixed: thresholds, a sine, one product, category effects (the original benchmark case);
- smooth: smooth monotone and U-shaped curves of eight columns, additive;
- interactions: products of pairs and a three-way threshold interaction, category by number;
- weak: every one of the 30 columns adds a small effect, none dominates;
- rare: the mixed signal shifted to about 5 % positives.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = np.array([f"level-{k:02d}" for k in range(20)])


def _columns(n: int, rng: np.random.Generator) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """The 30 feature columns, plus the numbers without gaps and the category codes."""
    cols: dict = {}
    filled = []
    for j in range(25):
        x = rng.normal(size=n)
        filled.append(x.copy())
        x[rng.random(n) < 0.05] = np.nan
        cols[f"num_{j}"] = x
    codes = [rng.integers(0, 20, n) for _ in range(5)]
    for j in range(5):
        cols[f"cat_{j}"] = pd.Categorical.from_codes(codes[j], categories=LEVELS)
    # Missing cells carry no signal: the target reads them as 0, as the original case did.
    x = [np.where(np.isnan(cols[f"num_{j}"]), 0.0, filled[j]) for j in range(25)]
    return cols, x, codes


def _mixed(x: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return (
        1.2 * (x[0] > 0.5)
        - 0.8 * x[1]
        + 0.6 * np.sin(2 * x[2])
        + 0.5 * x[2] * x[3]
        + 0.9 * (codes[0] < 4)
        - 0.7 * ((codes[1] % 5) == 0) * (x[0] > 0)
        - 1.3
    )


def _smooth(x: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    offsets = np.linspace(-0.6, 0.6, 20)
    return (
        0.9 * np.tanh(1.5 * x[0])
        - 0.6 * x[1]
        + 0.4 * (x[2] ** 2 - 1)
        + 0.5 * np.log1p(np.exp(2 * x[3])) / 2
        - 0.4 * np.cos(x[4])
        + 0.3 * x[5] * np.abs(x[5])
        + 0.35 * np.arctan(3 * x[6])
        - 0.25 * x[7]
        + offsets[codes[0]]
        - 1.0
    )


def _interactions(
    x: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    level_slope = np.linspace(-1.0, 1.0, 20)
    return (
        0.9 * x[0] * x[1]
        - 0.7 * x[2] * x[3]
        + 1.1 * (x[4] > 0) * (x[5] > 0) * (x[6] > -0.5)
        + 0.6 * np.sin(x[7] * x[8])
        + 0.5 * level_slope[codes[0]] * x[9]
        + 0.6 * ((codes[1] + codes[2]) % 3 == 0)
        - 1.2
    )


def _weak(x: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    signal_rng = np.random.default_rng(1234)  # the same effects for every data seed
    betas = signal_rng.uniform(0.08, 0.2, 25) * signal_rng.choice([-1, 1], 25)
    z = sum(b * (np.tanh(v) if j % 2 else v) for j, (b, v) in enumerate(zip(betas, x, strict=True)))
    for c in codes:
        z = z + signal_rng.normal(0, 0.15, 20)[c]
    return z - 1.0


def _rare(x: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return _mixed(x, codes, rng) - 2.4


SIGNALS = {
    "mixed": _mixed,
    "smooth": _smooth,
    "interactions": _interactions,
    "weak": _weak,
    "rare": _rare,
}


def make_case(n: int, generator: str = "mixed", seed: int = 0) -> pd.DataFrame:
    """n rows of one generator's case, seeded."""
    rng = np.random.default_rng(seed)
    cols, x, codes = _columns(n, rng)
    z = SIGNALS[generator](x, codes, rng)
    cols["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    return pd.DataFrame(cols)


def case_file(folder: Path, generator: str, n: int, seed: int) -> Path:
    """The generator's Parquet file, written once (atomically, so a parallel run never reads
    half a file)."""
    data = folder / f"{generator}-{n}-seed{seed}.parquet"
    if not data.exists():
        part = data.with_suffix(f".{os.getpid()}.part")
        make_case(n, generator, seed).to_parquet(part, index=False)
        part.rename(data)
    return data


# The hand fit, run in its own process: read the Parquet, advisor's 60/20/20 stratified split
# (the same rows in each part), LightGBM at learning rate 0.05 with early stopping after 100
# rounds on the validation part; the test log loss, and the cost per decision at the threshold
# that is cheapest on the validation part (costs 10 per false positive, 50 per false negative).
# With a fifth argument it saves each test row's cost there (after the timed part).
HAND_FIT = """
import json, sys, time
start = time.perf_counter()
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
frame = pd.read_parquet(sys.argv[1])
seed = int(sys.argv[2])
cost_fp, cost_fn = float(sys.argv[3]), float(sys.argv[4])
y = frame.pop("y").to_numpy()
for c in frame.columns:
    if frame[c].dtype == object:
        frame[c] = frame[c].astype("category")
idx = np.arange(len(frame))
train, rest = train_test_split(idx, test_size=0.4, stratify=y, random_state=seed)
valid, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=seed)
train, valid, test = np.sort(train), np.sort(valid), np.sort(test)
dtrain = lgb.Dataset(frame.iloc[train], y[train])
dvalid = lgb.Dataset(frame.iloc[valid], y[valid], reference=dtrain)
booster = lgb.train(
    {"objective": "binary", "learning_rate": 0.05, "verbosity": -1, "num_threads": 2},
    dtrain,
    num_boost_round=5000,
    valid_sets=[dvalid],
    callbacks=[lgb.early_stopping(100, verbose=False)],
)
def proba(rows):
    p = booster.predict(frame.iloc[rows], num_iteration=booster.best_iteration)
    return np.clip(p, 1e-12, 1 - 1e-12)
p = proba(test)
log_loss = float(-np.mean(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
seconds = time.perf_counter() - start
def cost(p, y, t):
    act = p >= t
    return (cost_fp * (act & (y == 0)) + cost_fn * (~act & (y == 1))).mean()
pv = proba(valid)
grid = np.unique(np.quantile(pv, np.linspace(0, 1, 1001)))
best = grid[int(np.argmin([cost(pv, y[valid], t) for t in grid]))]
if len(sys.argv) > 5:  # each test row's cost at that threshold, for a paired comparison
    act = p >= best
    np.save(sys.argv[5], cost_fp * (act & (y[test] == 0)) + cost_fn * (~act & (y[test] == 1)))
print(json.dumps({"seconds": seconds, "log_loss": log_loss, "trees": booster.best_iteration,
                  "threshold": float(best), "cost": float(cost(p, y[test], best))}))
"""


# advisor's ML policy alone, run in its own process on the path `advisor analyze` takes (the
# case, the data checks, the split, the features, the fit): its test log loss and its test
# cost per decision (decisions by minimum expected cost), equal to what the full analysis
# reports for the ML policy, and the fit's seconds. For measuring the model's quality quickly.
MODEL_ONLY = """
import json, sys, time
import numpy as np
from advisor.core.case import resolve_case
from advisor.core.data import load_dataset, split_dataset
from advisor.core.features import FeatureSpec
from advisor.policies.ml import MLPolicy, log_loss
path, seed, cost_fp, cost_fn = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
case = resolve_case(path, target="y", costs={"fp": cost_fp, "fn": cost_fn, "tp": 0.0, "tn": 0.0},
                    seed=seed)
data = load_dataset(case)
split = split_dataset(data, seed)
spec = FeatureSpec(data.schema).fit(split.train.frame)
start = time.perf_counter()
policy = MLPolicy(case.costs, spec, seed=seed).fit(split.train, split.valid)
seconds = time.perf_counter() - start
batch = policy.decide_batch(split.test.frame)
cost = case.costs.realised(split.test.y, batch.codes, split.test.frame).mean()
print(json.dumps({"seconds": seconds, "log_loss": log_loss(split.test.y, batch.proba),
                  "cost": float(cost), "trees": policy.n_trees_,
                  "refined_trees": getattr(policy, "refined_trees_", 0)}))
"""


# The ML policy `advisor analyze` shipped (its bundle), on the same test rows: each row's
# realised cost, saved for the paired comparison with the hand fit (arguments as the hand
# fit's, then the bundle folder and where to save); and, to tell the model from the way it
# decides, the test cost of its probabilities at the threshold cheapest on the validation part.
SHIPPED_COSTS = """
import json, sys
import numpy as np
from advisor.artefacts.bundle import load_policy
from advisor.core.case import resolve_case
from advisor.core.data import load_dataset, split_dataset
path, seed, cost_fp, cost_fn = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
bundle, out = sys.argv[5], sys.argv[6]
case = resolve_case(path, target="y", costs={"fp": cost_fp, "fn": cost_fn, "tp": 0.0, "tn": 0.0},
                    seed=seed)
data = load_dataset(case)
split = split_dataset(data, seed)
test, valid = split.test, split.valid
policy = load_policy(bundle)
batch = policy.decide_batch(test.frame)
np.save(out, case.costs.realised(test.y, batch.codes, test.frame))
# The same model deciding at the threshold cheapest on the validation part, as the hand fit does
def cost(p, y, t):
    act = p >= t
    return (cost_fp * (act & (y == 0)) + cost_fn * (~act & (y == 1))).mean()
pv = policy.predict_proba(valid.frame)[:, 1]
grid = np.unique(np.quantile(pv, np.linspace(0, 1, 1001)))
best = grid[int(np.argmin([cost(pv, valid.y, t) for t in grid]))]
print(json.dumps({"tuned_threshold": float(best),
                  "tuned_cost": float(cost(batch.proba[:, 1], test.y, best))}))
"""
