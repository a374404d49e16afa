"""Rule policies: the learned rule list and the case's expert rule file.

Both read the cleaned features (`FeatureSpec.clean` for a frame, `clean_record` for one
request), so batch and single-request decisions share one feature definition. The learned
list is fitted by `RuleListClassifier`, the same estimator a notebook user calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix
from advisor.core.data import Part
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.policies.base import Batch, Policy, content_version
from advisor.policies.rules.conditions import RuleList
from advisor.policies.rules.parser import load_rules, parse_rules
from advisor.policies.rules.render import (
    to_english,
    to_python,
    to_python_module,
    to_sql,
    to_sql_select,
)


def feature_kinds(spec: FeatureSpec) -> dict[str, str]:
    """Column -> numeric, boolean or categorical, for the parser's type checks."""
    return {e.name: e.kind for e in spec.encoders_}


def rule_proba(rules: RuleList, clean: pd.DataFrame, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of the rows each rule decides (rows: rules, then the default)."""
    from advisor.policies.rules.learner import class_frequencies

    return class_frequencies(rules.match_index(clean), y, len(rules) + 1, n_classes)


class RulesPolicy(Policy):
    """A rule list as a policy; probabilities are the class frequencies of the matched rule.

    Subclasses say where the list comes from (`_rule_list`); fitting sets `rules_`, the class
    frequencies per rule on the training rows (`proba_`) and the content `version`.
    """

    kind = "rules"
    probabilistic = True
    title = "Rule list"

    def _rule_list(self, train: Part, valid: Part) -> tuple[RuleList, np.ndarray | None]:
        raise NotImplementedError

    def fit(self, train: Part, valid: Part) -> RulesPolicy:
        rules, proba = self._rule_list(train, valid)
        if proba is None:
            proba = rule_proba(rules, self.spec.clean(train.frame), train.y, self.costs.n_classes)
        return self._set(rules, proba)

    def _set(self, rules: RuleList, proba: np.ndarray) -> RulesPolicy:
        self.rules_ = rules
        self.proba_ = np.asarray(proba, dtype=float)
        self.codes_ = rules.decision_codes(self.costs.decisions)
        self.version_ = content_version(self.name, str(rules))
        return self

    def match_index(self, frame: pd.DataFrame) -> np.ndarray:
        """The index of the rule that decides each row (`len(rules_)`: the default)."""
        return self.rules_.match_index(self.spec.clean(frame, self.rules_.columns))

    def _batch(self, index: np.ndarray) -> Batch:
        """The decisions of the matched rules (`len(rules_)`: the default), each with its
        number (1 for the first rule, 0 for the default) and class frequencies."""
        number = np.where(index == len(self.rules_), 0, index + 1)
        return Batch(self.codes_[index], proba=self.proba_[index], rule=number)

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return self._batch(self.match_index(frame))

    def decide_record(self, record: Mapping) -> Batch:
        return self._batch(np.array([self.rules_.match_one(self.spec.clean_record(record))]))

    def explain(self, frame: pd.DataFrame, k: int = 3, method: str = "exact"):
        """One reason per row: the rule that decided it, in words, or the default."""
        from advisor.policies.reasons import rule_reasons

        return rule_reasons(self.rules_, self.match_index(frame), k)

    def explain_decided(self, frame: pd.DataFrame, decided: Batch, k: int, method: str = "exact"):
        """The rule that decided, from the batch's rule numbers (0: the default)."""
        from advisor.policies.reasons import rule_reasons

        number = np.asarray(decided.rule)
        return rule_reasons(self.rules_, np.where(number == 0, len(self.rules_), number - 1), k)

    def explain_record(self, record: Mapping, k: int = 3, method: str = "exact"):
        from advisor.policies.reasons import rule_reasons

        index = self.rules_.match_one(self.spec.clean_record(record))
        return rule_reasons(self.rules_, np.array([index]), k)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.proba_[self.match_index(frame)]

    def input_columns(self) -> tuple[str, ...]:
        return self.rules_.columns

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        """The rule file, the same list as SQL and as a standard-library Python module, and
        the class frequencies per rule (the probabilities)."""
        head = (
            f"{self.title} {self.rules_.name!r}, version {self.version}: "
            "the first matching rule decides."
        )
        files = {
            "rules.yaml": str(replace(self.rules_, comment=head)),
            "rules.sql": to_sql_select(self.rules_, head),
            "rules.py": to_python_module(self.rules_, feature_kinds(self.spec), head),
        }
        parameters = {**self.bundle_parameters(), "class_frequencies": self.proba_.tolist()}
        return parameters, files

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> RulesPolicy:
        rules = parse_rules(files["rules.yaml"], "rules.yaml", feature_kinds(spec), costs.decisions)
        policy = cls._unfitted(costs, spec, parameters)
        return policy._set(rules, np.asarray(parameters["class_frequencies"], dtype=float))

    @classmethod
    def _unfitted(cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping) -> RulesPolicy:
        """The policy as constructed before fitting, from a bundle's parameters."""
        names = [n for n in cls.parameter_names() if n not in cls.CONTEXT]
        return cls(costs=costs, spec=spec, **{key: parameters[key] for key in names})

    def describe(self) -> dict:
        n = len(self.rules_)
        conditions = sum(len(r.conditions) for r in self.rules_)
        summary = (
            f"{n} rule{'s' if n != 1 else ''} ({conditions} conditions), first match wins; "
            f"otherwise {self.rules_.default}."
            if n
            else f"No rule: always {self.rules_.default}."
        )
        return {
            "title": self.title,
            "summary": summary,
            "details": {"english": to_english(self.rules_), "rules": str(self.rules_)},
        }

    def report(self, clean: pd.DataFrame, each: np.ndarray) -> dict:
        """Per rule: coverage, rows and cost per decision on the given rows (first match)."""
        index = self.rules_.match_index(clean)
        n = max(len(index), 1)
        realised = each[np.arange(len(index)), self.codes_[index]]
        entries = [(str(r.when), r.english(), r.decision) for r in self.rules_]
        entries.append(("otherwise", self.rules_.default_english(), self.rules_.default))
        rows = []
        for i, (text, english, decision) in enumerate(entries):
            hit = index == i
            count = int(hit.sum())
            rows.append(
                {
                    "text": text,
                    "english": english,
                    "decision": decision,
                    "coverage": count / n,
                    "rows": count,
                    "cost_per_decision": float(realised[hit].mean()) if count else None,
                }
            )
        return {
            "name": self.rules_.name,
            "title": self.title,
            "default": self.rules_.default,
            "rules": rows,
            "english": to_english(self.rules_),
            "python": to_python(self.rules_),
            "sql": to_sql(self.rules_),
            "text": str(self.rules_),
            "version": self.version,
        }


class LearnedRulesPolicy(RulesPolicy):
    """The `rules` policy: a cost-aware rule list learned on the training split by the
    `learner` (a `RuleListClassifier`, default `RuleListClassifier(random_state=0)`), which the
    policy gives the case's costs and feature kinds; the validation split picks its length.

    A bundle records the learner's `max_rules`, `max_conditions` and seed (`random_state`) as
    `learner_params_`; a policy loaded from a bundle decides without the learner."""

    name = "rules"
    title = "Learned rule list"
    # bundle parameter -> the learner's parameter
    LEARNER_FIELDS = (
        ("max_rules", "max_rules"),
        ("max_conditions", "max_conditions"),
        ("seed", "random_state"),
    )

    def __init__(
        self, costs: CostMatrix, spec: FeatureSpec, learner=None, list_name: str = "rules"
    ) -> None:
        self.costs = costs
        self.spec = spec
        self.learner = learner
        self.list_name = list_name

    def bundle_parameters(self) -> dict:
        """The list's name and the learner's settings (as bundles have always held them)."""
        return {**self.learner_params_, "list_name": self.list_name}

    @classmethod
    def _unfitted(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping
    ) -> LearnedRulesPolicy:
        policy = cls(costs, spec, list_name=parameters["list_name"])
        policy.learner_params_ = {key: parameters[key] for key, _ in cls.LEARNER_FIELDS}
        return policy

    def _rule_list(self, train: Part, valid: Part) -> tuple[RuleList, np.ndarray]:
        # scikit-learn is imported only to learn: loading a bundled rule list does not need it.
        from sklearn.base import clone

        from advisor.policies.rules.learner import RuleListClassifier

        costs = self.costs
        # The estimator matches labels to the matrix's classes; class codes are the labels here.
        by_code = replace(costs, classes=tuple(range(costs.n_classes)))
        per_row = {}
        if costs.example_dependent:
            per_row = {
                "sample_costs": costs.cost_of_each_decision(train.y, train.frame),
                "valid_costs": costs.cost_of_each_decision(valid.y, valid.frame),
            }
        learner = self.learner if self.learner is not None else RuleListClassifier(random_state=0)
        clf = clone(learner).set_params(costs=by_code, feature_kinds=feature_kinds(self.spec))
        clf.fit(
            self.spec.clean(train.frame),
            train.y,
            X_valid=self.spec.clean(valid.frame),
            y_valid=valid.y,
            **per_row,
        )
        self.estimator_ = clf
        settings = clf.get_params()
        self.learner_params_ = {key: settings[its] for key, its in self.LEARNER_FIELDS}
        proba = np.zeros((len(clf.rule_proba_), costs.n_classes))
        proba[:, clf.matrix_index_] = clf.rule_proba_
        return replace(clf.rules_, name=self.list_name), proba


class ExpertRulesPolicy(RulesPolicy):
    """The `expert-rules` policy: a hand-written rule file, checked against the schema; a
    bundle carries the file itself as `rules.yaml`."""

    name = "expert-rules"
    title = "Expert rule file"
    CONTEXT = ("costs", "spec", "path")

    def __init__(self, path: str | Path, costs: CostMatrix, spec: FeatureSpec) -> None:
        self.path = path
        self.costs = costs
        self.spec = spec

    @classmethod
    def _unfitted(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping
    ) -> ExpertRulesPolicy:
        return cls("rules.yaml", costs, spec)

    def _rule_list(self, train: Part, valid: Part) -> tuple[RuleList, None]:
        return load_rules(self.path, feature_kinds(self.spec), self.costs.decisions), None


def refuse_date_columns(path: str | Path, dropped: Mapping[str, str]) -> None:
    """Exit 2 when a hand-written rule file reads a column left out because it only encodes the
    date (`dropped`: column -> why): the file is compared with the learned rules and the model
    on the same features, and a rule on such a column meets values in production that its
    author never saw, so the user decides (keep the column for every policy, or drop the
    condition) instead of advisor quietly keeping it for one policy."""
    for number, rule in enumerate(load_rules(path).rules, 1):
        for column in rule.columns:
            if column in dropped:
                raise InputError(
                    f"rule {number} reads column {column!r}, which only encodes the date "
                    f"({dropped[column]}) and is left out of every policy; set "
                    "time_features: keep (or --keep-time-features) to use it, or remove the "
                    "condition",
                    where=str(path),
                )


@dataclass(frozen=True)
class RuleReport:
    """Each rule policy's renderings (English, Python, SQL) and per-rule coverage and cost."""

    lists: Mapping[str, dict]

    def to_dict(self) -> dict:
        return dict(self.lists)


def describe_rule_lists(
    policies: Mapping[str, Policy], test: Part, costs: CostMatrix
) -> RuleReport:
    """Every rule policy's report, with coverage and cost per rule on the test split."""
    each = costs.cost_of_each_decision(test.y, test.frame)
    out = {}
    for name, policy in policies.items():
        if isinstance(policy, RulesPolicy):
            out[name] = policy.report(policy.spec.clean(test.frame), each)
    return RuleReport(out)
