"""The cost-aware rule-list learner and its scikit-learn face."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.core.costs import CostMatrix
from advisor.policies.rules import RuleListClassifier, parse_rules
from advisor.policies.rules.learner import nice_threshold
from advisor.policies.rules.render import to_python


def churn_like(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n).astype(float)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.5, 0.3, 0.2])
    charges = rng.uniform(20, 120, n)
    charges[rng.random(n) < 0.05] = np.nan
    risk = (contract == "Month-to-month") & (tenure < 12)
    risk |= (contract == "Month-to-month") & (np.nan_to_num(charges) > 90)
    y = np.where(rng.random(n) < np.where(risk, 0.7, 0.1), "Yes", "No")
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "contract contract": contract,
            "charges": charges,
            "noise": rng.normal(size=n),
        }
    )
    frame["contract contract"] = frame["contract contract"].astype("category")
    return frame, y


def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(RuleListClassifier(random_state=0), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def test_learns_the_cost_sensitive_structure_from_a_dataframe():
    X, y = churn_like()
    clf = RuleListClassifier(costs={"fp": 100, "fn": 300}, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["No", "Yes"]
    assert 1 <= len(clf.rules_) <= 8
    assert all(len(r.conditions) <= 3 for r in clf.rules_)
    assert "contract contract" in clf.rules_.columns
    decided = clf.decide(X)
    yes = y == "Yes"
    cost = np.where(decided == "Yes", np.where(yes, 0, 100), np.where(yes, 300, 0)).mean()
    always = min(300 * yes.mean(), 100 * (~yes).mean())
    assert cost < always * 0.8
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1)


def test_rule_file_round_trip_gives_identical_decisions():
    X, y = churn_like(seed=1)
    clf = RuleListClassifier(costs={"fp": 100, "fn": 300}, random_state=0).fit(X, y)
    reread = parse_rules(str(clf.rules_))
    assert reread == clf.rules_
    assert (reread.decide(X) == clf.rules_.decide(X)).all()
    namespace: dict = {}
    exec(to_python(clf.rules_), namespace)  # the rendering is meant to be executed
    assert [namespace["decide"](r) for r in X.to_dict("records")] == clf.decide(X).tolist()


def test_multiclass_with_decisions_that_differ_from_classes_and_example_dependent_costs():
    rng = np.random.default_rng(3)
    n = 4000
    amount = rng.uniform(100, 5000, n)
    records = rng.choice(["yes", "no"], n, p=[0.2, 0.8])
    income = rng.normal(100, 30, n)
    income[rng.random(n) < 0.1] = np.nan
    p_bad = np.where(records == "yes", 0.6, 0.15)
    y = np.where(rng.random(n) < p_bad, "bad", "good")
    X = pd.DataFrame({"Amount": amount, "Records": records, "Income": income})
    costs = CostMatrix.from_mapping(
        {
            "good": {"approve": "-0.08 * Amount", "decline": 0, "review": "-0.08 * Amount + 25"},
            "bad": {"approve": "0.5 * Amount", "decline": 0, "review": 25},
        },
        ["approve", "decline", "review"],
    )
    clf = RuleListClassifier(costs=costs, random_state=0).fit(X, y)
    assert set(clf.decide(X)) <= {"approve", "decline", "review"}
    assert set(clf.predict(X)) <= {"bad", "good"}
    realised = costs.realised(
        np.array([costs.class_index(v) for v in y]),
        clf.rules_.decision_codes(costs.decisions)[clf.rules_.match_index(X)],
        X,
    )
    baseline = (
        costs.cost_of_each_decision(np.array([costs.class_index(v) for v in y]), X)
        .sum(axis=0)
        .min()
    )
    assert realised.sum() < baseline


def test_three_classes_zero_one_loss_and_explicit_validation():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(900, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    clf = RuleListClassifier(random_state=0).fit(X[:600], y[:600], X_valid=X[600:], y_valid=y[600:])
    assert (clf.predict(X[600:]) == y[600:]).mean() > 0.9
    assert set(clf.rules_.columns) <= {"x0", "x1", "x2"}


def test_max_rules_and_conditions_are_respected():
    X, y = churn_like(seed=2)
    clf = RuleListClassifier(max_rules=2, max_conditions=1, random_state=0).fit(X, y)
    assert len(clf.rules_) <= 2
    assert all(len(r.conditions) == 1 for r in clf.rules_)


def test_nice_thresholds():
    assert nice_threshold(11.0, 12.0) == 12
    assert nice_threshold(70.34, 70.61) == 70.4
    assert nice_threshold(39811.0, 40950.0) == 40000
    assert 0.123 < nice_threshold(0.123, 0.1231) <= 0.1231


@pytest.mark.parametrize("bad", [{"fp": 1}, "nope"])
def test_bad_costs_are_rejected(bad):
    X, y = churn_like(n=200)
    with pytest.raises((ValueError, TypeError)):
        RuleListClassifier(costs=bad).fit(X, y)


def test_large_data_counts_on_threads_with_the_same_result(monkeypatch):
    """Above PARALLEL_ROWS binning and counting run on two threads; the rules must not change."""
    import advisor.policies.rules.binning as binning
    import advisor.policies.rules.search as search

    rng = np.random.default_rng(4)
    n = 150_000
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(size=n),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], n)),
        }
    )
    X.loc[rng.random(n) < 0.05, "a"] = np.nan
    y = ((X["a"].fillna(0) > 0.3) & (X["c"] != "z")) ^ (rng.random(n) < 0.05)
    threaded = RuleListClassifier(costs={"fp": 1, "fn": 2}, random_state=0).fit(X, y)
    monkeypatch.setattr(binning, "PARALLEL_ROWS", 10**9)
    monkeypatch.setattr(search, "PARALLEL_ROWS", 10**9)
    serial = RuleListClassifier(costs={"fp": 1, "fn": 2}, random_state=0).fit(X, y)
    assert threaded.rules_ == serial.rules_
    assert threaded.rules_.rules  # it found the structure, not just a default


def test_the_constant_decision_is_kept_when_no_rule_beats_it_by_more_than_noise():
    rng = np.random.default_rng(7)
    n = 3000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["u", "v", "w"], n)})
    y = rng.random(n) < 0.3  # unrelated to the features
    for seed in range(5):
        clf = RuleListClassifier(costs={"fp": 1, "fn": 2}, random_state=seed).fit(X, y)
        assert len(clf.rules_) == 0
        assert clf.rules_.default == "False"  # 0.7 * 1 > 0.3 * 2: flag no one


def test_validation_rows_choose_the_length_when_given():
    X, y = churn_like(n=4000, seed=5)
    costs = {"fp": 100, "fn": 300}
    learned = RuleListClassifier(costs=costs, random_state=0).fit(X, y)
    assert len(learned.rules_) >= 1
    shuffled = np.random.default_rng(0).permutation(y[3000:])
    blind = RuleListClassifier(costs=costs, random_state=0).fit(
        X[:3000], y[:3000], X_valid=X[3000:], y_valid=shuffled
    )
    assert len(blind.rules_) == 0


def test_lists_from_other_random_states_cost_nearly_the_same():
    X, y = churn_like(n=6000, seed=8)
    test_X, test_y = churn_like(n=20000, seed=9)
    yes = test_y == "Yes"
    costs = []
    for seed in range(5):
        clf = RuleListClassifier(costs={"fp": 100, "fn": 300}, random_state=seed).fit(X, y)
        decided = clf.decide(test_X) == "Yes"
        costs.append(np.where(decided, np.where(yes, 0, 100), np.where(yes, 300, 0)).mean())
    assert max(costs) - min(costs) < 0.03 * np.mean(costs)


def test_folds_are_stratified_and_fewer_on_large_data():
    from advisor.policies.rules.learner import fold_count
    from advisor.policies.rules.selection import stratified_folds

    y = np.repeat([0, 1, 2], [500, 101, 37])
    folds = stratified_folds(y, 5, 0)
    per_class = np.array([np.bincount(folds[y == k], minlength=5) for k in range(3)])
    assert (per_class.max(axis=1) - per_class.min(axis=1) <= 1).all()
    assert (stratified_folds(y, 5, 0) == folds).all()
    assert fold_count(5, 10_000) == 5
    assert fold_count(5, 250_000) == 4
    assert fold_count(5, 1_000_000) == 2
