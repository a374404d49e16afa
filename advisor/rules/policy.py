"""Rule policies in the pipeline (the learned rule list and the case's expert rule file)."""

from __future__ import annotations


def fit_rule_policies(case, split, spec, data) -> dict:
    """The `rules` and `expert-rules` policies for a run."""
    return {}
