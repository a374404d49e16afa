"""How long the refine phase of `advisor.policies.boosting.boost` needs to wait: the evidence
behind its patience.

For each generator of `scale_cases.py` and seed, advisor's ML fit runs as `advisor analyze`
runs it (split, features, the large step with early stopping), then the refine phase at 0.05
goes on for a fixed number of rounds, recording the validation log loss after every round
and the seconds each round takes. From that one curve it prints, for each patience, the
round it would stop at, the round it would keep, and the kept model's validation and test log
loss against the longest wait's: a patience that keeps the same model spends its rounds for
nothing.

    uv run python benchmarks/refine_patience.py [--rows 1000000] [--generators ...]
                                                [--seeds 0 1 2] [--rounds 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scale_cases import SIGNALS, case_file

from advisor.core.case import resolve_case
from advisor.core.data import load_dataset, split_dataset
from advisor.core.features import FeatureSpec
from advisor.policies.boosting import REFINE_RATE, patience_for
from advisor.policies.ml import MLPolicy, log_loss

PATIENCES = (10, 20, 30, 50, 100)


def refine_curve(path: Path, seed: int, rounds: int) -> dict:
    """The refine phase run for `rounds` rounds: validation and test log loss after each."""
    import lightgbm as lgb

    case = resolve_case(
        str(path), target="y", costs={"fp": 10.0, "fn": 50.0, "tp": 0.0, "tn": 0.0}, seed=seed
    )
    data = load_dataset(case)
    split = split_dataset(data, seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    policy = MLPolicy(case.costs, spec, seed=seed)
    policy.learning_rate_ = rate = 0.15 if len(split.train.y) > 500_000 else 0.1
    params = policy._params()
    names = [f"f{i}" for i in range(len(spec.encoders_))]
    cats = spec.categorical_indices_
    train_set = lgb.Dataset(
        spec.encode(split.train.frame, order="F"),
        split.train.y,
        feature_name=names,
        categorical_feature=cats,
        params=params,
    ).construct()
    Xv = spec.encode(split.valid.frame, order="F")
    valid_set = lgb.Dataset(
        Xv, split.valid.y, reference=train_set, categorical_feature=cats, params=params
    ).construct()
    start = time.perf_counter()
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=2000,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(patience_for(rate, 100), verbose=False)],
        keep_training_booster=True,
    )
    first_seconds = time.perf_counter() - start
    first = int(booster.best_iteration)
    while booster.current_iteration() > first:
        booster.rollback_one_iter()
    booster.reset_parameter({"learning_rate": REFINE_RATE})
    losses = [float(booster.eval_valid()[0][2])]
    start = time.perf_counter()
    for _ in range(rounds):
        if booster.update():
            break
        losses.append(float(booster.eval_valid()[0][2]))
    per_round = (time.perf_counter() - start) / max(len(losses) - 1, 1)
    Xt = spec.encode(split.test.frame)
    raw = booster.predict(Xt, raw_score=True, start_iteration=0, num_iteration=first)
    test = [raw.copy()]
    for k in range(1, len(losses)):  # each refine tree's raw score, added one at a time
        raw = raw + booster.predict(
            Xt, raw_score=True, start_iteration=first + k - 1, num_iteration=1
        )
        test.append(raw)
    y = split.test.y
    test_losses = [
        log_loss(y, np.column_stack([1 / (1 + np.exp(r)), 1 / (1 + np.exp(-r))])) for r in test
    ]
    return {
        "first": first,
        "first_seconds": first_seconds,
        "per_round": per_round,
        "valid": np.array(losses),
        "test": np.array(test_losses),
    }


def stop_with(valid: np.ndarray, patience: int) -> tuple[int, int]:
    """(rounds run, best round kept) of the refine phase with this patience on this curve."""
    best, best_loss = 0, valid[0]
    for k in range(1, len(valid)):
        if valid[k] < best_loss:
            best, best_loss = k, valid[k]
        elif k - best >= patience:
            return k, best
    return len(valid) - 1, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--generators", nargs="*", default=list(SIGNALS), choices=list(SIGNALS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=200, help="refine rounds recorded")
    parser.add_argument("--keep", type=Path, help="folder for the data (kept)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="advisor-refine-"))
    folder.mkdir(parents=True, exist_ok=True)
    head = "".join(f"{f'p={p}':>26}" for p in PATIENCES)
    print(
        f"per run: first-phase trees, s/refine round; per patience: rounds run/kept, "
        f"test log loss against the longest wait's\n{'case':<22}{'first':>6}{'s/rnd':>7}{head}"
    )
    for generator in args.generators:
        for seed in args.seeds:
            curve = refine_curve(case_file(folder, generator, args.rows, seed), seed, args.rounds)
            longest = stop_with(curve["valid"], max(PATIENCES))[1]
            cells = []
            for p in PATIENCES:
                ran, kept = stop_with(curve["valid"], p)
                diff = curve["test"][kept] / curve["test"][longest] - 1
                cells.append(f"{ran:>4}/{kept:<4}{diff:>+9.4%}{'':>8}")
            print(
                f"{generator + ' seed ' + str(seed):<22}{curve['first']:>6}"
                f"{curve['per_round']:>7.3f}" + "".join(f"{c:>26}" for c in cells),
                flush=True,
            )


if __name__ == "__main__":
    main()
