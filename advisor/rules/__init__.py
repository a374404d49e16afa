"""Transparent policies: rule objects, the rule-file parser and the cost-aware learner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advisor.rules.conditions import Condition as Condition
    from advisor.rules.conditions import Rule as Rule
    from advisor.rules.conditions import RuleList as RuleList
    from advisor.rules.learner import RuleListClassifier as RuleListClassifier
    from advisor.rules.parser import load_rules as load_rules
    from advisor.rules.parser import parse_rules as parse_rules
    from advisor.rules.render import to_english as to_english
    from advisor.rules.render import to_python as to_python
    from advisor.rules.render import to_sql as to_sql

_LAZY = {
    "Condition": "advisor.rules.conditions",
    "Rule": "advisor.rules.conditions",
    "RuleList": "advisor.rules.conditions",
    "RuleListClassifier": "advisor.rules.learner",
    "load_rules": "advisor.rules.parser",
    "parse_rules": "advisor.rules.parser",
    "to_english": "advisor.rules.render",
    "to_python": "advisor.rules.render",
    "to_sql": "advisor.rules.render",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Import on first use, so the command line starts without scikit-learn."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor.rules' has no attribute {name!r}")
