"""How well the monitor's estimated cost (`advisor.monitor.estimate`: the expected cost of the
logged decisions from the ML bundle's probabilities) predicts the cost the outcomes later show.

car-loans: its test split in time order cut into windows of 2,000 decisions (its inputs drift
over time), and the same rows drawn with weights that favour high or low values of its most
important numeric feature (a covariate shift: the outcome given the inputs unchanged). For each
window: the estimate, its 90 % prediction interval, and the realised cost of the same rows. Prints
the share of windows whose interval covers the realised cost, the mean absolute error against
the offline cost's magnitude, and the mean error (the bias: calibration).

The monitor corrects the estimate by the run's calibration gap (realised minus expected cost on
the test split). The windows here are test rows too, so the gap is cross-fitted: the test split
is cut in two (in time order) and each half's windows are corrected by the gap measured on the
other half, with that half's interval (wider than the run's, which has twice the rows).
`--uncorrected` judges the same windows without the correction (the monitor before it).
Synthetic covariate shifts that change the cost (`--synthetic`, no run needed): a model that
overstates every risk by a quarter, its calibration gap measured on a separate 5,000-row test
split, and windows whose inputs move by -1 to +1 sd (the cost per decision moves with them, the
outcome given the inputs does not).

Targets (issue 24): coverage >= 85 % of the windows, MAE <= 10 % of the offline magnitude, on
windows of at least 1,000 decisions. The default is 2,000: at 1,000 a perfect estimate on
car-loans still misses by about 10 % of the offline cost on average (the `floor` column: the
realised cost's own sampling noise, whose spread shrinks only as 1 / sqrt(window)), so no
estimate can meet the MAE target there.

    uv run python benchmarks/monitor_estimate.py --runs RUNS [--case car-loans] [--size 2000]
        [--uncorrected]
    uv run python benchmarks/monitor_estimate.py --synthetic [--size 2000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZE = 2000  # decisions per window (the issue asks for at least 1,000)
SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the synthetic inputs' shift, in sd


def synthetic(size: int, uncorrected: bool) -> None:
    """The synthetic covariate shifts: a call/skip decision on a risk the model overstates by a
    quarter; 30 windows per shift, each judged against its realised cost."""
    import pandas as pd

    from advisor.core.costs import CostMatrix
    from advisor.monitor.estimate import estimated_cost

    costs = CostMatrix.from_mapping(
        {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
    )
    rng = np.random.default_rng(1)

    def rows(n: int, shift: float):
        x = rng.normal(shift, 1.0, n)
        p = 1 / (1 + np.exp(-(x - 1.5)))  # the true risk
        said = np.minimum(1.25 * p, 1.0)  # what the model says
        codes = (said > 0.125).astype(int)  # call when the expected cost of skipping is higher
        y = (rng.random(n) < p).astype(int)
        frame = pd.DataFrame(
            {"decision": np.array(["skip", "call"])[codes], "unit": np.arange(n).astype(str)}
        )
        return np.column_stack([1 - said, said]), costs.realised(y, codes), codes, frame

    proba, truth, codes, _ = rows(5000, 0.0)
    d = truth - costs.expected_costs(proba)[np.arange(len(codes)), codes]
    se = d.std(ddof=1) / np.sqrt(len(d))
    gap = (
        None
        if uncorrected
        else {"estimate": d.mean(), "low": d.mean() - 1.96 * se, "high": d.mean() + 1.96 * se}
    )
    magnitude = abs(truth.mean())
    print(
        f"synthetic: windows of {size:,} decisions; offline cost {magnitude:.2f} per decision; "
        f"correction: {'none' if uncorrected else 'the test split calibration gap'}"
    )
    print(
        f"{'windows':28} {'n':>4} {'covered':>8} {'cost':>8} {'MAE':>8} {'MAE/offline':>12} "
        f"{'bias':>8} {'floor':>8}"
    )
    every = []
    for shift in SHIFTS:
        found = []
        for _ in range(30):
            proba, realised, _, part = rows(size, shift)
            e = estimated_cost(proba, part, costs, None, int(rng.integers(1 << 30)), gap)
            cost = float(realised.mean())
            floor = np.sqrt(2 / np.pi) * realised.std(ddof=1) / np.sqrt(size)
            inside = e["prediction"]["low"] <= cost <= e["prediction"]["high"]
            found.append((inside, e["estimate"] - cost, floor, cost))
        every += found
        err = np.array([f[1] for f in found])
        print(
            f"{f'inputs shifted {shift:+g} sd':28} {len(found):4d} "
            f"{np.mean([f[0] for f in found]):8.1%} {np.mean([f[3] for f in found]):8.2f} "
            f"{np.abs(err).mean():8.2f} {np.abs(err).mean() / magnitude:12.1%} {err.mean():8.2f} "
            f"{np.mean([f[2] for f in found]) / magnitude:8.1%}"
        )
    err = np.array([f[1] for f in every])
    print(
        f"{'all':28} {len(every):4d} {np.mean([f[0] for f in every]):8.1%} {'':8} "
        f"{np.abs(err).mean():8.2f} {np.abs(err).mean() / magnitude:12.1%} {err.mean():8.2f} "
        f"{np.mean([f[2] for f in every]) / magnitude:8.1%}"
    )


def main() -> None:
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset
    from advisor.monitor.estimate import estimated_cost
    from advisor.monitor.expectations import read_expectations

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument(
        "--synthetic", action="store_true", help="the synthetic covariate shifts (no run needed)"
    )
    parser.add_argument("--case", default="car-loans")
    parser.add_argument("--size", type=int, default=SIZE, help="decisions per window")
    parser.add_argument(
        "--uncorrected", action="store_true", help="without the run's calibration gap (before)"
    )
    args = parser.parse_args()
    size = args.size
    if args.synthetic or args.runs is None:
        synthetic(size, args.uncorrected)
        if args.runs is None:
            return
        print()
    run = read_expectations(args.runs / args.case)
    loaded = load_case(ROOT / "datasets" / f"{args.case}.yaml")
    test = split_dataset(load_dataset(loaded), loaded.seed).test.frame.reset_index(drop=True)
    if run.case.get("time"):
        test = test.sort_values(run.case["time"], kind="stable").reset_index(drop=True)
    policy = advisor.load_policy(run.path / "policies" / "ml")
    costs = policy.costs
    codes = policy.decide_codes(test)
    keep = codes >= 0
    test, codes = test[keep].reset_index(drop=True), codes[keep]
    proba = policy.predict_proba(test)
    y = np.array([costs.class_index(v) for v in test[run.target]])
    realised = costs.realised(y, codes, test)
    frame = test.assign(decision=np.array(costs.decisions, dtype=object)[codes])
    magnitude = abs(run.expected("ml")["cost_per_decision"]["estimate"])
    expected = costs.expected_costs(proba, frame)[np.arange(len(frame)), codes]
    feature = next(
        f for f in run.important(set())["model"] if run.reference.binners[f].kind == "numeric"
    )
    rng = np.random.default_rng(0)
    x = frame[feature].fillna(frame[feature].median()).to_numpy(dtype=float)
    z = (x - x.mean()) / x.std()
    halves = np.array_split(np.arange(len(frame)), 2)  # in time order when the case has time
    how = "none" if args.uncorrected else "the other half's calibration gap"
    print(
        f"{args.case}: windows of {size:,} decisions; offline cost {magnitude:,.2f} per "
        f"decision; correction: {how} (test split cut in two, each half judged with the gap "
        "of the other)"
    )
    print(
        f"{'windows':28} {'n':>4} {'covered':>8} {'MAE':>8} {'MAE/offline':>12} {'bias':>8} "
        f"{'floor':>8}"
    )
    groups: dict[str, list] = {}
    for i, judged in enumerate(halves):
        other = halves[1 - i]
        d = realised[other] - expected[other]
        se = d.std(ddof=1) / np.sqrt(len(d))
        gap = None
        if not args.uncorrected:
            gap = {"estimate": d.mean(), "low": d.mean() - 1.96 * se, "high": d.mean() + 1.96 * se}
        windows = [(judged[s : s + size], gap) for s in range(0, len(judged) - size + 1, size)]
        groups.setdefault("in time order", []).extend(windows)
        for shift in (1.0, -1.0):
            weight = np.exp(shift * z[judged])
            groups.setdefault(f"{feature} shifted {shift:+g} sd", []).extend(
                (rng.choice(judged, size, replace=False, p=weight / weight.sum()), gap)
                for _ in range(10)
            )
    every = []
    for name, windows in groups.items():
        rows = []
        for idx, gap in windows:
            part = frame.iloc[idx].reset_index(drop=True)
            part["unit"] = [str(i) for i in range(len(idx))]
            e = estimated_cost(proba[idx], part, costs, None, int(rng.integers(1 << 30)), gap)
            truth = float(realised[idx].mean())
            # The realised cost's own noise: a perfect estimate misses it by this much on average.
            floor = np.sqrt(2 / np.pi) * realised[idx].std(ddof=1) / np.sqrt(len(idx))
            rows.append(
                (
                    e["prediction"]["low"] <= truth <= e["prediction"]["high"],
                    e["estimate"] - truth,
                    floor,
                )
            )
        every += rows
        cover = np.mean([r[0] for r in rows])
        err = np.array([r[1] for r in rows])
        print(
            f"{name:28} {len(rows):4d} {cover:8.1%} {np.abs(err).mean():8.2f} "
            f"{np.abs(err).mean() / magnitude:12.1%} {err.mean():8.2f} "
            f"{np.mean([r[2] for r in rows]) / magnitude:8.1%}"
        )
    err = np.array([r[1] for r in every])
    print(
        f"{'all':28} {len(every):4d} {np.mean([r[0] for r in every]):8.1%} "
        f"{np.abs(err).mean():8.2f} {np.abs(err).mean() / magnitude:12.1%} {err.mean():8.2f} "
        f"{np.mean([r[2] for r in every]) / magnitude:8.1%}"
    )
    print(
        "floor: the mean absolute error a perfect estimate would still have, from the realised "
        "cost's own sampling noise on the window, over the offline magnitude"
    )


if __name__ == "__main__":
    main()
