"""Which rows the A/B plan reads, and what that changes: per bundled case and seed, the plan
sized from the test split against the plan the run makes from the pooled out-of-fold rows
(when it refitted), both from the same analysis, and the run's recommendation.

Each line: the rows read, the design, the all-units difference (control minus ML per decision),
the trigger rate, the analysed arms' variances, the effect the test is sized on, the days of
traffic, whether that fits within the case's maximum, and the regression adjustment's share of
variance removed.

    uv run python benchmarks/ab_plan_rows.py                        # every bundled case, seed 0
    uv run python benchmarks/ab_plan_rows.py credit-scoring --seeds 0 7
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def line(plan) -> str:
    """One plan in one line."""
    if plan is None:
        return "  no plan"
    trigger = plan.triggered.trigger_rate if plan.triggered else float("nan")
    vr = plan.variance_reduction.variance_reduction if plan.variance_reduction else float("nan")
    return (
        f"  {plan.rows:<38} {plan.design:<9} diff {plan.all_units.difference:+10.3f}  "
        f"trigger {trigger:.3f}  var c/t {plan.control_var:,.1f}/{plan.treatment_var:,.1f}  "
        f"sized on {plan.sized_on.effect:+.3f}  days {plan.days_enrolling}  "
        f"confirmable {plan.confirmable_within_max_days}  variance removed {vr:.3f}"
    )


def compare(path: Path, seed: int) -> None:
    """Analyse the case at `seed`, then plan the test again from the test split alone."""
    from advisor.analysis.experiment import plan_ab_test
    from advisor.analysis.pipeline import analyse
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset

    case = replace(load_case(path), seed=seed)
    start = time.perf_counter()
    analysis = analyse(case)
    seconds = time.perf_counter() - start
    plan = analysis.refits.plan
    print(f"{path.stem} seed {seed}: {plan.method} ({plan.refits} refits), {seconds:.0f} s")
    test = split_dataset(load_dataset(case), case.seed).test
    roles, evaluation = analysis.roles, analysis.evaluation
    treatment = evaluation.policies.get(roles.treatment) if roles.treatment else None
    expected = (
        case.costs.expected_costs(treatment.proba, test.frame)
        if treatment is not None and treatment.proba is not None
        else None
    )
    on_test = plan_ab_test(
        evaluation,
        roles,
        analysis.shadow,
        case.decision,
        alpha=case.option("alpha"),
        power=case.option("power"),
        treatment_share=case.option("treatment_share"),
        max_experiment_days=case.option("max_experiment_days"),
        currency=case.currency,
        seed=case.seed,
        model_expected=expected,
    )
    print(line(on_test.test))
    if analysis.experiment.test is not None and analysis.experiment.test.rows != "test split":
        print(line(analysis.experiment.test))
    rec = analysis.recommendation
    print(f"  recommendation {rec.option}, p_best {rec.p_best:.2f}, stability {rec.stability}")


def main() -> None:
    cases = {p.stem: p for p in sorted((ROOT / "datasets").glob("*.yaml"))}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(cases)} (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(cases))
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(cases)}")
    for name in args.cases or list(cases):
        for seed in args.seeds:
            compare(cases[name], seed)


if __name__ == "__main__":
    main()
