"""The per-decision output every consumer gives: `advisor score`'s Parquet columns, the MLflow
model's frame and `advisor serve`'s JSON answer come from here, so the three cannot differ.

A decision carries `decision` (null where an example-dependent cost is missing), `policy` and
`model_version`, then what its plugin declares (`registry.PolicyPlugin.outputs`): `rule` (the
number of the rule that decided, 0 for the default), `p_<class>` (probabilities; a rule list's
are the class frequencies of the rule that decided) and `expected_cost_<decision>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from advisor.policies.registry import EXPECTED_COSTS, PROBABILITIES, RULE, plugin_of

if TYPE_CHECKING:
    from advisor.policies.base import Batch, Policy

STRING, LONG, DOUBLE = "string", "long", "double"


def output_fields(policy: Policy) -> list[tuple[str, str]]:
    """The output columns in order, each with its type (string, long or double)."""
    fields = [("decision", STRING), ("policy", STRING), ("model_version", STRING)]
    outputs = plugin_of(policy).outputs
    if RULE in outputs:
        fields.append(("rule", LONG))
    if PROBABILITIES in outputs:
        fields += [(f"p_{c}", DOUBLE) for c in policy.costs.classes]
    if EXPECTED_COSTS in outputs:
        fields += [(f"expected_cost_{d}", DOUBLE) for d in policy.costs.decisions]
    return fields


def decision_columns(policy: Policy, batch: Batch) -> dict[str, object]:
    """The output columns (name -> values, in `output_fields` order) of a decided batch:
    `decision` as a categorical of the labels (missing where undecided, as `Policy.decide`
    gives), `policy` and `model_version` as one text each (the same on every row), the rest
    as arrays."""
    import pandas as pd

    codes = np.asarray(batch.codes, dtype=np.int64)
    n = len(codes)
    columns: dict[str, object] = {
        "decision": pd.Categorical.from_codes(codes, categories=list(policy.costs.decisions)),
        "policy": policy.name,
        "model_version": policy.version,
    }
    outputs = plugin_of(policy).outputs
    if RULE in outputs:
        columns["rule"] = np.asarray(batch.rule, dtype=np.int64)
    if PROBABILITIES in outputs:
        proba = _block(batch.proba, n, len(policy.costs.classes))
        for j, name in enumerate(policy.costs.classes):
            columns[f"p_{name}"] = proba[:, j]
    if EXPECTED_COSTS in outputs:
        expected = _block(batch.expected_costs, n, len(policy.costs.decisions))
        for j, name in enumerate(policy.costs.decisions):
            columns[f"expected_cost_{name}"] = expected[:, j]
    return columns


def decision_record(policy: Policy, batch: Batch, row: int = 0) -> dict:
    """One decision of a batch as a JSON object: the labels, then `rule`, `probabilities`
    (class -> p) and `expected_costs` (decision -> cost) as its plugin declares them."""
    code = int(batch.codes[row])
    out: dict = {
        "decision": policy.costs.decisions[code] if code >= 0 else None,
        "policy": policy.name,
        "model_version": policy.version,
    }
    outputs = plugin_of(policy).outputs
    if RULE in outputs:
        out["rule"] = int(batch.rule[row])
    if PROBABILITIES in outputs:
        proba = np.asarray(batch.proba[row], dtype=float).tolist()
        out["probabilities"] = dict(zip(map(str, policy.costs.classes), proba, strict=True))
    if EXPECTED_COSTS in outputs:
        cost = np.asarray(batch.expected_costs[row], dtype=float).tolist()
        out["expected_costs"] = dict(zip(policy.costs.decisions, cost, strict=True))
    return out


def _block(values: np.ndarray | None, rows: int, width: int) -> np.ndarray:
    """A batch's matrix as floats (all NaN when the policy left it out)."""
    if values is None:
        return np.full((rows, width), np.nan)
    return np.asarray(values, dtype=float).reshape(rows, width)
