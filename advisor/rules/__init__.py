"""The public home of the transparent rule lists (`advisor.rules.RuleListClassifier`, the rule
objects, the rule-file parser and renderers). The code lives in `advisor.policies.rules`."""

from __future__ import annotations

from advisor.policies.rules import __all__ as __all__
from advisor.policies.rules import __getattr__ as __getattr__
