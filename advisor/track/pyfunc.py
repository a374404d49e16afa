"""A policy bundle as an MLflow pyfunc model: `load_context` loads the bundle (the model's
artefact `bundle`) through `advisor.load_policy`, which checks every file; `predict` returns
the columns `advisor score` writes. Nothing is pickled: MLflow builds the model by running
`model_code.py` ("models from code").

MLflow is imported here at the top: only `tracking.py` and `model_code.py` import this module.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from advisor.artefacts.bundle import load_policy
from advisor.policies.base import Policy

BUNDLE = "bundle"  # the name of the model's artefact: the policy bundle folder


def decisions_frame(policy: Policy, frame: pd.DataFrame) -> pd.DataFrame:
    """The policy's decisions for every row, with what explains them: `decision` (null where
    an example-dependent cost is missing), `policy`, `model_version`, then `rule` (the rule that
    decided, 0 for the default; rule lists), `p_<class>` (policies that give probabilities) and
    `expected_cost_<decision>` (ML)."""
    batch = policy.decide_batch(frame)
    codes = np.asarray(batch.codes, dtype=np.int64)
    labels = np.asarray(policy.costs.decisions, dtype=object)
    columns: dict[str, object] = {
        "decision": np.where(codes >= 0, labels[np.clip(codes, 0, None)], None),
        "policy": policy.name,
        "model_version": policy.version,
    }
    if batch.rule is not None:
        columns["rule"] = np.asarray(batch.rule, dtype=np.int64)
    proba = batch.proba
    if proba is None and policy.probabilistic:
        proba = policy.predict_proba(frame)
    if proba is not None:
        for j, name in enumerate(policy.costs.classes):
            columns[f"p_{name}"] = np.asarray(proba[:, j], dtype=float)
    if batch.expected_costs is not None:
        for j, name in enumerate(policy.costs.decisions):
            columns[f"expected_cost_{name}"] = np.asarray(batch.expected_costs[:, j], dtype=float)
    return pd.DataFrame(columns, index=frame.index)


class PolicyModel(mlflow.pyfunc.PythonModel):
    """An MLflow model that decides through a policy bundle, exactly as `advisor score` does."""

    def load_context(self, context) -> None:
        self.policy = load_policy(context.artifacts[BUNDLE])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return decisions_frame(self.policy, pd.DataFrame(model_input))
