"""Which offline figure best predicts the next period, for time-ordered data.

The monitor compares production with the bundle's expected cost and its calibration gap; the
A/B plan sizes its test from per-row variances. With a time column these come from
rolling-origin backtests (`advisor.analysis.crossfit`), and the figure that matters is the one
that best predicts the period after the last one seen. This runs a case's backtests with
`--cuts` periods and, for every period k after the first two, predicts each policy's cost per
decision, its calibration gap and the A/B arms' spread from the periods before k by each
candidate:

- pooled: every earlier period's rows together (what a run without a time column uses);
- latest: period k - 1 alone;
- last two: periods k - 2 and k - 1 together.

The A/B rows compare the arms' spread (sd of the treatment's minus the control's cost per
row), the saving (the control's minus the treatment's cost per decision) and the log of
(sd / saving)^2, to which the test's days are proportional.

For each it prints the mean error (period k minus the prediction, per decision), the mean
absolute error, and z, the error over the standard error of the difference (the prediction's
and period k's own, from block bootstraps within each period): a candidate that predicts the
next period as well as its interval says has |z| near 1 (rms) and 95 % of |z| below 1.96.

    uv run python benchmarks/cost_reference.py [--case car-loans] [--cuts 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
Z95 = stats.norm.ppf(0.975)
CANDIDATES = {"pooled": None, "latest": 1, "last two": 2}  # how many earlier periods (None: all)


def se_of(interval) -> float:
    """A figure's standard error, read off its 95 % interval."""
    return (interval.high - interval.low) / (2 * Z95)


def predict(figures: list, rows: list[int], key: str, k: int, last: int | None) -> tuple:
    """The prediction of period k's `key` from the periods before it: the row-weighted mean of
    the `last` periods before k (all when None) and its standard error (periods independent)."""
    first = 0 if last is None else k - last
    w = np.array(rows[first:k], dtype=float)
    w /= w.sum()
    means = np.array([figures[i][key].estimate for i in range(first, k)])
    ses = np.array([se_of(figures[i][key]) for i in range(first, k)])
    return float(w @ means), float(np.sqrt(np.sum((w * ses) ** 2)))


def spread(block: np.ndarray) -> float:
    """The standard deviation of the treatment's minus the control's cost per row."""
    return float(np.std(block[:, 2] - block[:, 1], ddof=1))


def saving(block: np.ndarray) -> float:
    """The control's minus the treatment's cost per decision (the A/B test's effect)."""
    return float(np.mean(block[:, 1] - block[:, 2]))


def sizing(block: np.ndarray) -> float:
    """(sd / saving)^2: what the A/B test's days are proportional to."""
    return (spread(block) / saving(block)) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="car-loans")
    parser.add_argument("--cuts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    from dataclasses import replace

    from advisor.analysis.crossfit import GAP, RefitPlan, backtest
    from advisor.analysis.pipeline import fit_policies
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset

    started = time.perf_counter()
    case = load_case(ROOT / "datasets" / f"{args.case}.yaml")
    if args.seed is not None:
        case = replace(case, seed=args.seed)
    data = load_dataset(case)
    plan = RefitPlan("rolling-origin backtest", None, None, args.cuts, args.cuts, "benchmark")
    refits = backtest(case, data, lambda s, fs: fit_policies(case, s, fs), {}, plan)
    figures, periods = refits.by_period, refits.periods
    rows = [p.rows for p in periods]
    print(f"{args.case}, seed {case.seed}: {len(periods)} backtest periods")
    keys = [k for k in figures[0] if k not in ("baseline", "control", "treatment")]
    print(
        f"\n{'period':44} {'rows':>6}  " + "  ".join(f"{k:>22}" for k in keys) + "  sd(t-c)  saving"
    )
    for p, f, block in zip(periods, figures, refits.held, strict=True):
        cells = "  ".join(f"{f[k].estimate:10.2f} ± {se_of(f[k]):8.2f}" for k in keys)
        print(f"{p.label:44} {p.rows:6d}  {cells}  {spread(block):7.1f}  {saving(block):6.2f}")
    print("\nleave-last-period-out: period k predicted from the periods before it (k >= 3)")
    print(
        f"{'figure':28} {'candidate':10} {'mean err':>9} {'mean |err|':>10} {'rms z':>6} {'|z|<1.96':>8}"
    )
    for key in keys:
        for name, last in CANDIDATES.items():
            errors, zs = [], []
            for k in range(2, len(periods)):
                estimate, se = predict(figures, rows, key, k, last)
                actual = figures[k][key]
                errors.append(actual.estimate - estimate)
                zs.append(errors[-1] / np.hypot(se, se_of(actual)))
            e, z = np.array(errors), np.array(zs)
            label = key if not key.startswith(GAP) else f"gap {key[len(GAP) :]}"
            print(
                f"{label:28} {name:10} {e.mean():9.2f} {np.abs(e).mean():10.2f} "
                f"{np.sqrt(np.mean(z**2)):6.2f} {np.mean(np.abs(z) < Z95):8.0%}"
            )
    for name, last in CANDIDATES.items():
        sd_errors, saving_errors, days_errors = [], [], []
        for k in range(2, len(periods)):
            first = 0 if last is None else k - last
            earlier, now = np.concatenate(refits.held[first:k]), refits.held[k]
            sd_errors.append(spread(now) - spread(earlier))
            saving_errors.append(saving(now) - saving(earlier))
            days_errors.append(np.log(sizing(now) / sizing(earlier)))
        rows_out = (
            ("A/B sd(t - c)", sd_errors),
            ("A/B saving (c - t)", saving_errors),
            ("A/B log (sd / saving)^2", days_errors),
        )
        for label, e in rows_out:
            e = np.array(e)
            print(f"{label:28} {name:10} {e.mean():9.2f} {np.abs(e).mean():10.2f}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
