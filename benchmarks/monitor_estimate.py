"""How well the monitor's estimated cost (`advisor.monitor.estimate`: the expected cost of the
logged decisions from the ML bundle's probabilities) predicts the cost the outcomes later show.

car-loans: its test split in time order cut into windows of 2,000 decisions (its inputs drift
over time), and the same rows drawn with weights that favour high or low values of its most
important numeric feature (a covariate shift: the outcome given the inputs unchanged). For each
window: the estimate, its 90 % prediction interval, and the realised cost of the same rows. Prints
the share of windows whose interval covers the realised cost (with its 95 % Clopper-Pearson
interval), the mean absolute error against the offline cost's magnitude, and the mean error (the
bias: calibration).

The monitor corrects the estimate by the run's calibration gap per band of the expected cost
(`--correction bands`, what a bundle holds since the bands were measured), by the single gap
(`gap`: a bundle from before) or not at all (`none`). The windows here are test rows too, so the
correction is cross-fitted: the test split is cut in two (in time order) and each half's windows
are corrected by what the other half measured, with that half's intervals (wider than the
run's, which has twice the rows). The shifted draws are repeated over `--seeds` seeds.

Synthetic covariate shifts that change the cost (`--synthetic`, no run needed): a model that
overstates every risk by a quarter, its gap measured on a separate 5,000-row test split drawn
anew for each of `--seeds` seeds, and windows whose inputs move by -1 to +1 sd (the cost per
decision moves with them, the outcome given the inputs does not); 6 windows per shift and seed.

Targets (issue 24): coverage >= 85 % of the windows, MAE <= 10 % of the offline magnitude, on
windows of at least 1,000 decisions. The default is 2,000: at 1,000 a perfect estimate on
car-loans still misses by about 10 % of the offline cost on average (the `floor` column: the
realised cost's own sampling noise, whose spread shrinks only as 1 / sqrt(window)), so no
estimate can meet the MAE target there.

    uv run python benchmarks/monitor_estimate.py --runs RUNS [--case car-loans] [--size 2000]
        [--correction bands|gap|none] [--seeds 10]
    uv run python benchmarks/monitor_estimate.py --synthetic [--size 2000] [--correction ...]
        [--seeds 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZE = 2000  # decisions per window (the issue asks for at least 1,000)
SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the synthetic inputs' shift, in sd
RESAMPLES = 1000  # the reference rows' bootstrap, for the gap's and the bands' intervals
HEADER = (
    f"{'windows':28} {'n':>5} {'covered':>8} {'95% CI':>13} {'cost':>8} {'MAE':>8} "
    f"{'MAE/offline':>12} {'bias':>8} {'floor':>8}"
)


def references(expected, codes, gap, decisions, resampler, correction: str) -> tuple:
    """The single gap and the bands measured on reference rows, as a bundle holds them; only
    what `correction` asks for."""
    from advisor.analysis.calibration_gap import SEED_OFFSET, calibration_bands
    from advisor.stats.bootstrap import interval

    if correction == "none":
        return None, None
    single = interval(float(gap.mean()), resampler.means(gap, SEED_OFFSET)[:, 0]).to_dict()
    if correction == "gap":
        return single, None
    bands = calibration_bands(
        expected,
        codes,
        gap,
        decisions,
        lambda v, b, k: resampler.banded_means(v, b, k, SEED_OFFSET + 1),
    )
    return single, bands


def judge(estimate: dict, realised: np.ndarray) -> tuple:
    """(covered, error, floor, realised cost) of one window."""
    cost = float(realised.mean())
    # The realised cost's own noise: a perfect estimate misses it by this much on average.
    floor = np.sqrt(2 / np.pi) * realised.std(ddof=1) / np.sqrt(len(realised))
    inside = estimate["prediction"]["low"] <= cost <= estimate["prediction"]["high"]
    return inside, estimate["estimate"] - cost, floor, cost


def line(name: str, found: list, magnitude: float) -> str:
    from scipy import stats

    hits = int(sum(f[0] for f in found))
    ci = stats.binomtest(hits, len(found)).proportion_ci(0.95)
    err = np.array([f[1] for f in found])
    return (
        f"{name:28} {len(found):5d} {hits / len(found):8.1%} "
        f"{f'{ci.low:.1%}-{ci.high:.1%}':>13} {np.mean([f[3] for f in found]):8.2f} "
        f"{np.abs(err).mean():8.2f} {np.abs(err).mean() / magnitude:12.1%} {err.mean():8.2f} "
        f"{np.mean([f[2] for f in found]) / magnitude:8.1%}"
    )


def synthetic(size: int, correction: str, seeds: int) -> None:
    """The synthetic covariate shifts: a call/skip decision on a risk the model overstates by a
    quarter; per seed a fresh reference split and 6 windows per shift."""
    import pandas as pd

    from advisor.core.costs import CostMatrix
    from advisor.monitor.estimate import estimated_cost
    from advisor.stats.bootstrap import Resampler

    costs = CostMatrix.from_mapping(
        {"no": {"skip": 0, "call": 10}, "yes": {"skip": 100, "call": 30}}, ["skip", "call"]
    )

    def rows(rng, n: int, shift: float):
        x = rng.normal(shift, 1.0, n)
        p = 1 / (1 + np.exp(-(x - 1.5)))  # the true risk
        said = np.minimum(1.25 * p, 1.0)  # what the model says
        codes = (said > 0.125).astype(int)  # call when the expected cost of skipping is higher
        y = (rng.random(n) < p).astype(int)
        frame = pd.DataFrame(
            {"decision": np.array(["skip", "call"])[codes], "unit": np.arange(n).astype(str)}
        )
        return np.column_stack([1 - said, said]), costs.realised(y, codes), codes, frame

    found: dict[float, list] = {s: [] for s in SHIFTS}
    magnitudes = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        proba, truth, codes, _ = rows(rng, 5000, 0.0)
        own = costs.expected_costs(proba)[np.arange(len(codes)), codes]
        gap, bands = references(
            own, codes, truth - own, costs.decisions, Resampler(RESAMPLES, seed), correction
        )
        magnitudes.append(abs(truth.mean()))
        for shift in SHIFTS:
            for _ in range(6):
                proba, realised, _, part = rows(rng, size, shift)
                e = estimated_cost(proba, part, costs, None, int(rng.integers(1 << 30)), gap, bands)
                found[shift].append(judge(e, realised))
    magnitude = float(np.mean(magnitudes))
    print(
        f"synthetic: windows of {size:,} decisions; {seeds} seeds; offline cost {magnitude:.2f} "
        f"per decision (mean over the seeds' reference splits); correction: {correction}"
    )
    print(HEADER)
    for shift, rows_found in found.items():
        print(line(f"inputs shifted {shift:+g} sd", rows_found, magnitude))
    print(line("all", [f for rows_found in found.values() for f in rows_found], magnitude))


def main() -> None:
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset
    from advisor.monitor.estimate import estimated_cost
    from advisor.monitor.expectations import read_expectations
    from advisor.stats.bootstrap import resampler_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument(
        "--synthetic", action="store_true", help="the synthetic covariate shifts (no run needed)"
    )
    parser.add_argument("--case", default="car-loans")
    parser.add_argument("--size", type=int, default=SIZE, help="decisions per window")
    parser.add_argument(
        "--correction",
        choices=("bands", "gap", "none"),
        default="bands",
        help="per band of the expected cost (now), the single gap (before), none",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds pooled (20 / 10)")
    args = parser.parse_args()
    size = args.size
    if args.synthetic or args.runs is None:
        synthetic(size, args.correction, args.seeds or 20)
        if args.runs is None:
            return
        print()
    seeds = args.seeds or 10
    run = read_expectations(args.runs / args.case)
    loaded = load_case(ROOT / "datasets" / f"{args.case}.yaml")
    test = split_dataset(load_dataset(loaded), loaded.seed).test.frame.reset_index(drop=True)
    time = run.case.get("time")
    if time:
        test = test.sort_values(time, kind="stable").reset_index(drop=True)
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
    x = frame[feature].fillna(frame[feature].median()).to_numpy(dtype=float)
    z = (x - x.mean()) / x.std()
    halves = np.array_split(np.arange(len(frame)), 2)  # in time order when the case has time
    print(
        f"{args.case}: windows of {size:,} decisions; offline cost {magnitude:,.2f} per "
        f"decision; correction: {args.correction}, cross-fitted (test split cut in two, each "
        f"half judged with what the other measured); shifted draws over {seeds} seeds"
    )
    print(HEADER)
    groups: dict[str, list] = {}
    rng = np.random.default_rng(0)
    for i, judged in enumerate(halves):
        other = halves[1 - i]
        times = frame[time].iloc[other].reset_index(drop=True) if time else None
        reference = references(
            expected[other],
            codes[other],
            realised[other] - expected[other],
            costs.decisions,
            resampler_for(times, RESAMPLES, loaded.seed),
            args.correction,
        )
        windows = [
            (judged[s : s + size], reference) for s in range(0, len(judged) - size + 1, size)
        ]
        groups.setdefault("in time order", []).extend(windows)
        for shift in (1.0, -1.0):
            weight = np.exp(shift * z[judged])
            groups.setdefault(f"{feature} shifted {shift:+g} sd", []).extend(
                (rng.choice(judged, size, replace=False, p=weight / weight.sum()), reference)
                for _ in range(10 * seeds)
            )
    every = []
    for name, windows in groups.items():
        found = []
        for idx, (gap, bands) in windows:
            part = frame.iloc[idx].reset_index(drop=True)
            part["unit"] = [str(i) for i in range(len(idx))]
            e = estimated_cost(
                proba[idx], part, costs, None, int(rng.integers(1 << 30)), gap, bands
            )
            found.append(judge(e, realised[idx]))
        every += found
        print(line(name, found, magnitude))
    print(line("all", every, magnitude))
    print(
        "floor: the mean absolute error a perfect estimate would still have, from the realised "
        "cost's own sampling noise on the window, over the offline magnitude"
    )


if __name__ == "__main__":
    main()
