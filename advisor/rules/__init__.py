"""Transparent policies: rule objects, the rule-file parser and the cost-aware learner."""

from __future__ import annotations

from advisor.rules.conditions import Condition, Rule, RuleList
from advisor.rules.learner import RuleListClassifier
from advisor.rules.parser import load_rules, parse_rules
from advisor.rules.render import to_english, to_python, to_sql

__all__ = [
    "Condition",
    "Rule",
    "RuleList",
    "RuleListClassifier",
    "load_rules",
    "parse_rules",
    "to_english",
    "to_python",
    "to_sql",
]
