"""Rule policies in the pipeline: the learned rule list and the case's expert rule file.

Both read the cleaned features (`FeatureSpec.clean` for a frame, `clean_record` for one
request), so batch and single-request decisions share one feature definition.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.costs import CostMatrix
from advisor.features import FeatureSpec
from advisor.policy import Policy, content_version
from advisor.rules.conditions import RuleList
from advisor.rules.learner import class_frequencies, learn_rules
from advisor.rules.parser import load_rules
from advisor.rules.render import to_english, to_python, to_sql


def feature_kinds(spec: FeatureSpec) -> dict[str, str]:
    """Column -> numeric, boolean or categorical, for the parser's type checks."""
    return {e.name: e.kind for e in spec.encoders_}


def rule_proba(rules: RuleList, clean: pd.DataFrame, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of the rows each rule decides (rows: rules, then the default)."""
    return class_frequencies(rules.match_index(clean), y, len(rules) + 1, n_classes)


class RulesPolicy(Policy):
    """A rule list as a policy; probabilities are the class frequencies of the matched rule."""

    probabilistic = True

    def __init__(
        self,
        name: str,
        rules: RuleList,
        costs: CostMatrix,
        spec: FeatureSpec,
        proba: np.ndarray,
        title: str = "Rule list",
    ) -> None:
        self.name = name
        self.rules_ = rules
        self.costs = costs
        self.spec = spec
        self.proba_ = np.asarray(proba, dtype=float)
        self.title = title
        self.codes_ = rules.decision_codes(costs.decisions)
        self.version = content_version(name, str(rules))

    def decide_codes(self, frame: pd.DataFrame) -> np.ndarray:
        return self.codes_[self.rules_.match_index(self.spec.clean(frame))]

    def decide_one_code(self, record: Mapping) -> int:
        return int(self.codes_[self.rules_.match_one(self.spec.clean_record(record))])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.proba_[self.rules_.match_index(self.spec.clean(frame))]

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
        rows = []
        from advisor.rules.render import default_english, rule_english

        entries = [(str(r.when), rule_english(r), r.decision) for r in self.rules_]
        entries.append(("otherwise", default_english(self.rules_), self.rules_.default))
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


def learn_rule_policy(case, split, spec: FeatureSpec, max_rules: int | None = None) -> RulesPolicy:
    """Learn the `rules` policy on the training split; the validation split picks its length."""
    costs = case.costs
    train, valid = split.train, split.valid
    clean = spec.clean(train.frame)
    kw = {}
    if costs.example_dependent:
        kw["row_costs"] = costs.cost_of_each_decision(train.y, train.frame)
    else:
        kw["class_costs"] = costs.tensor()[0]
    learned = learn_rules(
        clean,
        feature_kinds(spec),
        train.y,
        costs.n_classes,
        costs.decisions,
        valid=(spec.clean(valid.frame), costs.cost_of_each_decision(valid.y, valid.frame)),
        max_rules=int(max_rules if max_rules is not None else case.option("max_rules")),
        max_conditions=int(case.option("max_conditions")),
        random_state=case.seed,
        name=f"{case.name}-rules",
        **kw,
    )
    return RulesPolicy("rules", learned.rules, costs, spec, learned.proba, "Learned rule list")


def expert_rule_policy(case, split, spec: FeatureSpec, path=None) -> RulesPolicy:
    """The hand-written rule file (`path`, default the case's), checked against the schema."""
    path = path or case.rules_path
    rules = load_rules(path, feature_kinds(spec), case.costs.decisions)
    train = split.train
    proba = rule_proba(rules, spec.clean(train.frame), train.y, case.costs.n_classes)
    return RulesPolicy("expert-rules", rules, case.costs, spec, proba, "Expert rule file")


def fit_rule_policies(case, split, spec: FeatureSpec, data) -> dict[str, Policy]:
    """The `rules` policy and, when the case names a rule file, the `expert-rules` policy."""
    out: dict[str, Policy] = {"rules": learn_rule_policy(case, split, spec)}
    if case.rules_path is not None:
        out["expert-rules"] = expert_rule_policy(case, split, spec)
    return out


def rules_stage(stages, payload: dict) -> None:
    """Pipeline stage: each rule policy's renderings and per-rule coverage and cost on test."""
    test = stages.split.test
    each = stages.case.costs.cost_of_each_decision(test.y, test.frame)
    clean = stages.spec.clean(test.frame)
    out = {}
    for name, policy in stages.policies.items():
        if isinstance(policy, RulesPolicy):
            out[name] = policy.report(clean, each)
    payload["rules"] = out


__all__ = [
    "RulesPolicy",
    "expert_rule_policy",
    "feature_kinds",
    "fit_rule_policies",
    "learn_rule_policy",
    "rule_proba",
    "rules_stage",
]
