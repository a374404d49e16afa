"""Every registered policy kind passes `check_policy`, the protocol's conformance suite, and
no module outside `advisor/policies/` branches on a policy's kind."""

from __future__ import annotations

import ast
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from advisor.artefacts.bundle import reloaded
from advisor.core.costs import CostMatrix
from advisor.core.data import Part, Schema
from advisor.core.features import FeatureSpec
from advisor.policies.base import BaselinePolicy, Policy
from advisor.policies.checks import PolicyCheckError, check_policy
from advisor.policies.estimator import EstimatorPolicy
from advisor.policies.incumbent import IncumbentPolicy
from advisor.policies.ml import MLPolicy
from advisor.policies.registered import RegisteredPolicy
from advisor.policies.registry import PLUGINS
from advisor.policies.rules.learner import RuleListClassifier
from advisor.policies.rules.policy import ExpertRulesPolicy, LearnedRulesPolicy

PACKAGE = Path(__file__).resolve().parent.parent / "advisor"


def small_data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A binary problem with a number, a category and missing values, and a real signal."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    score = (amount > 120).astype(float) + (plan == "pro") + rng.normal(0, 0.6, n)
    y = (score > 1.0).astype(np.int64)
    amount[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"amount": amount, "plan": plan}), y


COSTS = {
    "a matrix": lambda: CostMatrix.binary(0, 1, fp=1.0, fn=5.0),
    # per row: the amount, which is also a feature and sometimes missing (undecidable rows)
    "per row": lambda: CostMatrix.from_mapping(
        {0: {"skip": 0, "call": 10}, 1: {"skip": "0.1 * amount", "call": 3}}, ["skip", "call"]
    ),
}


@pytest.fixture(scope="module", params=sorted(COSTS))
def setting(request, tmp_path_factory):
    frame, y = small_data()
    costs = COSTS[request.param]()
    # today's decisions (the incumbent's column): a data column that is not a feature
    today = np.where(frame["amount"].fillna(0) > 120, costs.decisions[1], costs.decisions[0])
    frame = frame.assign(today=today)
    schema = Schema({"amount": "numeric", "plan": "categorical"}, target="y")
    half = len(y) * 2 // 3
    train, valid = Part(frame.iloc[:half], y[:half]), Part(frame.iloc[half:], y[half:])
    spec = FeatureSpec(schema).fit(train.frame)
    decisions = costs.decisions
    rules = tmp_path_factory.mktemp("expert") / "rules.yaml"
    rules.write_text(
        f"name: expert\nrules:\n  - when: amount > 150\n    decide: {decisions[1]}\n"
        f"  - when: plan == 'pro'\n    decide: {decisions[1]}\ndefault: {decisions[0]}\n"
    )
    return costs, spec, train, valid, rules


FACTORIES = {
    "baseline": lambda costs, spec, rules: BaselinePolicy(costs, spec),
    "rules": lambda costs, spec, rules: LearnedRulesPolicy(
        costs, spec, RuleListClassifier(max_rules=3, random_state=0), list_name="checked"
    ),
    "expert-rules": lambda costs, spec, rules: ExpertRulesPolicy(rules, costs, spec),
    "ml": lambda costs, spec, rules: MLPolicy(costs, spec, max_rounds=40, num_threads=1),
    "incumbent": lambda costs, spec, rules: IncumbentPolicy("today", costs, spec),
    "estimator": lambda costs, spec, rules: EstimatorPolicy(
        "scorecard", notebook_model(), costs, spec
    ),
    "mlflow": lambda costs, spec, rules: RegisteredPolicy(
        "registered", f"mlflow:{saved_pyfunc(rules.parent / 'pyfunc')}", costs, spec
    ),
}


class ClassProbabilities(mlflow.pyfunc.PythonModel):
    """An MLflow pyfunc's model: the notebook pipeline's probabilities, a column per class."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input, params=None):
        p = self.model.predict_proba(model_input[["amount", "plan"]])
        return pd.DataFrame(p, columns=[str(c) for c in self.model.classes_])


def saved_pyfunc(path: Path) -> Path:
    """The notebook pipeline saved as an MLflow pyfunc model folder (once per folder)."""
    if not path.exists():
        mlflow.pyfunc.save_model(path=str(path), python_model=ClassProbabilities(notebook_model()))
    return path


def notebook_model():
    """A scikit-learn pipeline fitted elsewhere, as a notebook would (its own rows)."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, y = small_data(400, seed=7)
    columns = make_column_transformer(
        (SimpleImputer(), ["amount"]),
        (
            make_pipeline(
                SimpleImputer(strategy="constant", fill_value="none"),
                OneHotEncoder(handle_unknown="ignore"),
            ),
            ["plan"],
        ),
    )
    return make_pipeline(columns, LogisticRegression()).fit(frame, y)


def test_every_registered_kind_has_a_conformance_run():
    assert sorted(FACTORIES) == sorted(PLUGINS)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_every_registered_policy_passes_check_policy(setting, name: str):
    costs, spec, train, valid, rules = setting
    policy = FACTORIES[name](costs, spec, rules)
    passed = check_policy(policy, train, valid, reloads=[reloaded])
    bundled = "evaluated only: no bundle" if PLUGINS[name].evaluated_only else "bundle round trip"
    assert {"record parity", bundled, "version stable"} <= set(passed)
    assert "fitted attributes end in _" in passed


def test_check_policy_catches_a_record_path_that_disagrees(setting):
    costs, spec, train, valid, _ = setting

    class Contrary(BaselinePolicy):
        def decide_record(self, record):
            one = super().decide_record(record)
            return type(one)(1 - one.codes)

    with pytest.raises(PolicyCheckError, match="record parity"):
        check_policy(Contrary(costs, spec), train, valid)


def test_check_policy_catches_a_version_that_changes_with_each_fit(setting):
    costs, spec, train, valid, _ = setting

    class Restless(BaselinePolicy):
        fits = 0

        def _set(self, code):
            Restless.fits += 1
            super()._set(code)
            self.version_ += f"-{Restless.fits}"
            return self

    with pytest.raises(PolicyCheckError, match=r"bundle round trip|version stable"):
        check_policy(Restless(costs, spec), train, valid)


def test_parameters_come_from_init_as_in_scikit_learn(setting):
    costs, spec, *_ = setting
    ml = MLPolicy(costs, spec, seed=3, num_leaves=7)
    assert list(ml.get_params()) == [
        "costs", "spec", "seed", "learning_rate", "num_leaves", "max_rounds",
        "early_stopping_rounds", "num_threads",
    ]  # fmt: skip
    assert ml.set_params(num_leaves=15).num_leaves == 15
    with pytest.raises(ValueError, match="no parameter 'leaves'"):
        ml.set_params(leaves=3)
    learner = RuleListClassifier(max_rules=2)
    rules = LearnedRulesPolicy(costs, spec, learner)
    assert rules.get_params()["learner"] is learner and "max_rules" not in rules.get_params()


KINDS = {p.kind for p in PLUGINS.values()} | set(PLUGINS)


def kind_branches(tree: ast.AST) -> list[int]:
    """Lines comparing something named `kind` (a name, attribute, key or .get) with a policy
    kind or name: a branch on the policy kind."""

    def names_kind(node: ast.AST) -> bool:
        if isinstance(node, ast.Name | ast.Attribute):
            return (node.id if isinstance(node, ast.Name) else node.attr) == "kind"
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = node.args
            return node.func.attr == "get" and bool(args) and getattr(args[0], "value", 0) == "kind"
        return False

    def is_policy_kind(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in KINDS
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(is_policy_kind(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(names_kind(s) for s in sides) and any(is_policy_kind(s) for s in sides):
                lines.append(node.lineno)
    return lines


def test_no_branch_on_the_policy_kind_outside_the_policies_package():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "policies") in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(PACKAGE)}:{line}" for line in kind_branches(tree)]
    assert found == []


def test_the_kind_branch_finder_sees_each_form():
    code = (
        "if policy.kind == 'ml': pass\n"
        "if meta['kind'] != 'rules': pass\n"
        "if b.get('kind') == 'rules': pass\n"
        "if kind in ('ml', 'baseline'): pass\n"
        "if e.kind == 'categorical': pass\n"
    )
    assert kind_branches(ast.parse(code)) == [1, 2, 3, 4]


def test_a_policy_subclass_is_still_a_policy():
    assert issubclass(MLPolicy, Policy)
