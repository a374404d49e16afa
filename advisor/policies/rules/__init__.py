"""Transparent policies: rule objects, the rule-file parser and the cost-aware learner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advisor.policies.rules.conditions import Condition as Condition
    from advisor.policies.rules.conditions import Rule as Rule
    from advisor.policies.rules.conditions import RuleList as RuleList
    from advisor.policies.rules.learner import RuleListClassifier as RuleListClassifier
    from advisor.policies.rules.parser import load_rules as load_rules
    from advisor.policies.rules.parser import parse_rules as parse_rules
    from advisor.policies.rules.render import to_english as to_english
    from advisor.policies.rules.render import to_python as to_python
    from advisor.policies.rules.render import to_sql as to_sql

_LAZY = {
    "Condition": "advisor.policies.rules.conditions",
    "Rule": "advisor.policies.rules.conditions",
    "RuleList": "advisor.policies.rules.conditions",
    "RuleListClassifier": "advisor.policies.rules.learner",
    "load_rules": "advisor.policies.rules.parser",
    "parse_rules": "advisor.policies.rules.parser",
    "to_english": "advisor.policies.rules.render",
    "to_python": "advisor.policies.rules.render",
    "to_sql": "advisor.policies.rules.render",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Import on first use, so the command line starts without scikit-learn."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor.policies.rules' has no attribute {name!r}")
