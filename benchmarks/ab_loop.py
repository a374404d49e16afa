"""The A/B test from plan to readout, per bundled case: what the plan promises and what the
monitor's readout delivers, over many simulated tests drawn from the case's test split.

For each run folder (`advisor analyze` of a bundled case) it rebuilds the test split, decides
it with the run's control and treatment bundles, and prints:

- the plan: design, units per arm and days (fixed horizon, and the always-valid readout when
  the plan has one), the effect it is sized for;
- the A/A false-positive rate of reading the test after each of 30 daily windows: a null with
  two different policies at equal expected cost (the treatment's costs shifted to the
  control's mean, on the units the design analyses), the share of tests that ever raise a
  difference. "per-window 95%" is how the monitor read the test before the confidence
  sequence (each window's own interval, harm when it lies below zero); "sequence" is the
  always-valid readout;
- achieved against planned power: the share of tests at the planned size, with the effect the
  plan was sized for, that declare the treatment better when read as the monitor reads them.
  A plan without `sequential` (before this readout existed) is read as the monitor then read
  it: the effect over all units, once, with a 95 % interval.

    uv run python benchmarks/ab_loop.py RUN [RUN ...] [--tests 2000] [--seed 0]
    uv run python benchmarks/ab_loop.py --holdout 0.25 credit-scoring [telco-churn ...]

A run that refitted ships the procedure refitted on every labelled row, so its own data holds
no row its bundles never saw. `--holdout F` therefore analyses each named bundled case on all
but a stratified random share F of its labelled rows (refits as the case sets them) and draws
the simulated tests from the held-out rows, decided by the run's bundles: the plan (sized from
the out-of-fold rows) against what `serve` would run, on rows neither saw. The treatment's
costs are shifted so that the held-out effect is the one the plan was sized for (as without
--holdout); the power at the held-out rows' own effect is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

import advisor
from advisor.analysis.sizing import MAX_LOOKS
from advisor.core.case import load_case
from advisor.core.data import Part, load_dataset, split_dataset
from advisor.core.reading import read_frame
from advisor.stats.simulation import arm_sums, simulate_looks

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = 30


def arm_costs(
    run: Path, held: Part | None = None
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """The plan, and each arm's realised cost and where they disagree on the test split (or
    on `held`, the rows a --holdout run never saw)."""
    result = json.loads((run / "result.json").read_text())
    plan = result["experiment"]
    case = load_case(ROOT / "datasets" / f"{result['case']['name']}.yaml")
    test = held if held is not None else split_dataset(load_dataset(case), case.seed).test
    out = []
    for name in (plan["control"], plan["treatment"]):
        policy = advisor.load_policy(run / "policies" / name)
        codes = policy.decide_codes(test.frame)
        out.append((case.costs.realised(test.y, codes, test.frame), codes))
    (c, dc), (t, dt) = out
    return plan, c, t, dc != dt


def holdout_run(name: str, share: float, seed: int, out: Path) -> tuple[Path, Part]:
    """Analyse the bundled case on all but a stratified share of its labelled rows; the run
    folder and the held-out rows."""
    from sklearn.model_selection import train_test_split

    case = load_case(ROOT / "datasets" / f"{name}.yaml")
    raw = read_frame(case.data_path)
    raw = raw[raw[case.target].notna()].reset_index(drop=True)
    kept, held = train_test_split(
        raw, test_size=share, stratify=raw[case.target], random_state=seed
    )
    result = advisor.advise(replace(case, frame=kept.reset_index(drop=True), data_path=None))
    folder = result.save(out)
    data = load_dataset(replace(case, frame=held.reset_index(drop=True), data_path=None))
    part = Part(frame=data.frame, y=data.y)
    refits = result.data["refits"]["plan"]
    print(
        f"\n{name}: analysed {len(kept):,} rows ({refits['method']}, {refits['refits']} refits), "
        f"{len(held):,} held out; plan read the {result.data['experiment'].get('rows')} rows"
    )
    return folder, part


def per_window_alarm(control, treatment, per_window, share, tests, rng) -> float:
    """Share of tests in which some window's own 95 % interval lies below zero (harm)."""
    fired = np.zeros(tests, dtype=bool)
    n_c, n_t = max(2, int(per_window * (1 - share))), max(2, int(per_window * share))
    for _ in range(WINDOWS):
        s_c, ss_c = arm_sums(control, n_c, tests, rng)
        s_t, ss_t = arm_sums(treatment, n_t, tests, rng)
        m_c, m_t = s_c / n_c, s_t / n_t
        v_c = np.maximum(ss_c - n_c * m_c**2, 0) / (n_c - 1)
        v_t = np.maximum(ss_t - n_t * m_t**2, 0) / (n_t - 1)
        se = np.sqrt(v_c / n_c + v_t / n_t)
        fired |= (m_c - m_t) + 1.96 * se < 0
    return float(fired.mean())


def once_confirmed(control, treatment, n_c, n_t, sign, tests, rng) -> float:
    """Share of tests whose one 95 % interval at the end lies on the side of `sign` (+1: the
    treatment saves; −1: the control does)."""
    s_c, ss_c = arm_sums(control, n_c, tests, rng)
    s_t, ss_t = arm_sums(treatment, n_t, tests, rng)
    m_c, m_t = s_c / n_c, s_t / n_t
    v_c = np.maximum(ss_c - n_c * m_c**2, 0) / (n_c - 1)
    v_t = np.maximum(ss_t - n_t * m_t**2, 0) / (n_t - 1)
    half = 1.96 * np.sqrt(v_c / n_c + v_t / n_t)
    return float((sign * (m_c - m_t) - half > 0).mean())


def bench(run: Path, tests: int, seed: int, held: Part | None = None) -> None:
    plan, control, treatment, disagree = arm_costs(run, held)
    rng = np.random.default_rng(seed)
    share, alpha = plan["treatment_share"], plan.get("alpha", 0.05)
    design = plan["design"]
    analysed = disagree if design == "triggered" else np.ones_like(disagree)
    c, t = control[analysed], treatment[analysed]
    rate = float(analysed.mean())
    per_day = plan["volume_per_day"] * rate
    null_t = t - t.mean() + c.mean()
    seq = plan.get("sequential")
    # The plan's own power at its size (when the size is out of reach, it simulated 90 days).
    planned = (
        plan["analytical_power"] if plan["simulated_at"] == "planned size" else plan["target_power"]
    )
    sign = 1.0 if plan["difference"] >= 0 else -1.0  # the side the plan sizes a test for
    print(
        f"\n{run.name}: design {design}, {rate:.1%} of units analysed, "
        f"{plan['volume_per_day']:,.0f} decisions a day, label delay {plan['label_delay_days']:g} days"
    )
    sized = (plan.get("sized_on") or {}).get("effect", plan["difference"])
    print(
        f"  effect per analysed unit: estimate {plan['difference']:,.3f}, sized for {sized:,.3f}"
        + (f" ({plan['sized_on']['basis']})" if plan.get("sized_on") else " (point estimate)")
    )
    print(
        f"  fixed horizon: {plan['n_per_arm']} per arm, {plan['n_analysed_per_arm']} analysed, "
        f"{plan['days_enrolling']} days of traffic, {plan['days_needed']} days in all; "
        f"planned power {planned:.3f}"
    )
    if seq:
        print(
            f"  sequential:    {seq['n_per_arm']} per arm, {seq['n_analysed_per_arm']} analysed, "
            f"{seq['days_enrolling']} days of traffic, {seq['days_needed']} days in all"
        )
    # A/A: 30 daily windows at the case's volume, read after each.
    aa_window = per_window_alarm(c, null_t, per_day, share, tests, rng)
    looks = np.arange(1, WINDOWS + 1) * per_day * (1 - share)
    tuning = seq["tuning"] if seq and seq.get("tuning") else 2 * looks[-1] / (1 - share)
    aa_seq = simulate_looks(
        c, null_t, looks, share=share, tuning=tuning, alpha=alpha, simulations=tests, seed=seed + 1
    )
    bound = stats.binom.ppf(0.99, tests, alpha) / tests
    print(
        f"  A/A over {tests:,} tests x {WINDOWS} daily windows (alpha {alpha:g}; one-sided 99% "
        f"bound {bound:.3f}): per-window 95% 'worse' {aa_window:.3f}; sequence ever "
        f"{aa_seq['ever_rate']:.3f} (worse {aa_seq['worse_rate']:.3f})"
    )
    # Power: the effect the plan was sized for, read as the monitor reads it (held-out rows:
    # their own effect moved to the sized one, since the plan's estimate is not theirs).
    own = float(c.mean() - t.mean()) if held is not None else plan["difference"]
    if held is not None:
        print(
            f"  held-out effect per analysed unit {own:,.3f} (the plan's {plan['difference']:,.3f})"
        )
    if seq:
        sized_t = t + (own - sized)
        n_seq = seq["n_analysed_per_arm"]
        days = max(1, math.ceil(n_seq / (per_day * (1 - share))))
        seq_looks = np.minimum(np.arange(1, days + 1) * per_day * (1 - share), n_seq)
        seq_looks[-1] = n_seq
        if len(seq_looks) > MAX_LOOKS:  # as the plan: at most MAX_LOOKS evenly spread looks
            seq_looks = seq_looks[np.linspace(0, len(seq_looks) - 1, MAX_LOOKS).round().astype(int)]
        got = simulate_looks(
            c,
            sized_t,
            seq_looks,
            share=share,
            tuning=seq["tuning"],
            alpha=alpha,
            simulations=tests,
            seed=seed + 2,
        )
        n_fix = plan["n_analysed_per_arm"]
        n_t = math.ceil(n_fix * share / (1 - share))
        fixed = once_confirmed(c, sized_t, n_fix, n_t, sign, tests, rng)
        print(
            f"  power: fixed horizon at its size {fixed:.3f} (planned {planned:.3f}); "
            f"sequence read daily ({len(seq_looks)} looks) "
            f"{got['better_rate' if sign > 0 else 'worse_rate']:.3f} "
            f"(planned {plan['target_power']:.3f})"
        )
        if held is not None:
            at_own = once_confirmed(c, t, n_fix, n_t, sign, tests, rng)
            print(f"  power at the held-out rows' own effect, fixed horizon: {at_own:.3f}")
    else:  # the monitor before: every unit, once, at the plan's enrolled size
        n_c = plan["n_per_arm"]
        n_t = math.ceil(n_c * share / (1 - share))
        got = once_confirmed(control, treatment, n_c, n_t, sign, tests, rng)
        print(f"  power: read over all units at the planned size {got:.3f} (planned {planned:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders, or bundled cases with --holdout")
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=None, help="share of rows held out")
    args = parser.parse_args()
    if args.holdout is None:
        for run in args.runs:
            bench(Path(run), args.tests, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="advisor-ab-loop-") as tmp:
        for name in args.runs:
            folder, held = holdout_run(name, args.holdout, args.seed, Path(tmp))
            bench(folder, args.tests, args.seed, held)


if __name__ == "__main__":
    main()
