"""The incumbent as a policy: the decisions today's system made, read from a column of the data.

It is evaluated like every other policy on the rows that are scored, and it is the reference of
the replace question, but it is not a bundle: advisor cannot export, score or serve the system
that runs today (its registry plugin is `evaluated_only`). Fitting learns nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix
from advisor.core.data import Part
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.core.incumbent import incumbent_codes
from advisor.policies.base import Batch, Policy, content_version

INCUMBENT = "incumbent"


class IncumbentPolicy(Policy):
    """The decisions of the system that runs today, from the data column `column`."""

    name = INCUMBENT
    kind = INCUMBENT

    def __init__(self, column: str, costs: CostMatrix, spec: FeatureSpec) -> None:
        self.column = column
        self.costs = costs
        self.spec = spec

    def fit(self, train: Part, valid: Part | None = None) -> IncumbentPolicy:
        """Nothing to learn: the incumbent decides as it did."""
        self.version_ = content_version(INCUMBENT, self.column, self.costs.to_dict())
        return self

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        if self.column not in frame.columns:
            raise InputError(f"incumbent column {self.column!r} is not in the rows")
        return Batch(incumbent_codes(frame[self.column], self.costs.decisions))

    def decide_record(self, record: Mapping) -> Batch:
        codes = incumbent_codes(pd.Series([record.get(self.column)]), self.costs.decisions)
        if codes[0] < 0:
            raise InputError(f"incumbent column {self.column!r} holds no decision in this record")
        return Batch(np.asarray(codes, dtype=np.int64))

    def input_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        raise InputError(
            "the incumbent is evaluated only: advisor compares it but does not export, score or "
            "serve it (the system that runs today keeps deciding)"
        )

    def describe(self) -> dict:
        return {
            "title": "What runs today",
            "summary": f"The decisions the current system made, from column {self.column!r}.",
            "details": {"column": self.column},
        }
