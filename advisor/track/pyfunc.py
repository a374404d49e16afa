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
from advisor.policies.output import decision_columns

BUNDLE = "bundle"  # the name of the model's artefact: the policy bundle folder


def decisions_frame(
    policy: Policy, frame: pd.DataFrame, reasons: int = 0, method: str = "exact"
) -> pd.DataFrame:
    """The policy's decisions for every row, with what explains them: the columns `advisor
    score` writes (`advisor.policies.output`), without its `scored_at`; and `reason_1` ...
    `reason_K` when `reasons` is K (`Policy.explain`), null where no decision was made."""
    batch = policy.decide_batch(frame)
    columns = decision_columns(policy, batch)
    if reasons:
        decided = np.asarray(batch.codes) >= 0
        text = policy.explain_decided(frame, batch, reasons, method).text
        for j in range(reasons):
            columns[f"reason_{j + 1}"] = np.where(decided, text[:, j], None)
    return pd.DataFrame(columns, index=frame.index)


class PolicyModel(mlflow.pyfunc.PythonModel):
    """An MLflow model that decides through a policy bundle, exactly as `advisor score` does."""

    def load_context(self, context) -> None:
        self.policy = load_policy(context.artifacts[BUNDLE])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Decisions; `params={"reasons": K}` adds reason_1 ... reason_K (`reasons_method`:
        "exact", "lightgbm" or "paths", see `reasons.raw_contributions`)."""
        params = params or {}
        return decisions_frame(
            self.policy,
            pd.DataFrame(model_input),
            int(params.get("reasons", 0) or 0),
            str(params.get("reasons_method", "exact")),
        )
