"""The one abstraction: a Policy turns rows into decisions, and says which version decided.

Every policy is fitted the same way, `fit(train, valid)` (the validation split may pick a
length, calibration or early stopping; it never sees the test split), and then offers
`decide(frame)` (vectorised), `decide_one(record)` (one request), `describe()` and a
content-hash `version`. Evaluation, simulation, drift and latency only talk to this surface.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.costs import UNDECIDED, CostMatrix
from advisor.core.data import Part
from advisor.core.features import FeatureSpec


@dataclass(frozen=True)
class Decision:
    """One decision and the policy version that made it."""

    decision: str
    code: int
    policy: str
    version: str


@dataclass(frozen=True)
class Batch:
    """Decisions for a batch of rows and what explains them: the class probabilities and the
    expected cost of each decision (ML), or the number of the rule that decided (1 for the
    first rule, 0 for the default)."""

    codes: np.ndarray
    proba: np.ndarray | None = None
    expected_costs: np.ndarray | None = None
    rule: np.ndarray | None = None


def content_version(prefix: str, *parts: object) -> str:
    """A short content hash: equal inputs give equal versions, any change gives a new one."""
    h = hashlib.sha256()
    for part in parts:
        h.update(
            part
            if isinstance(part, bytes)
            else json.dumps(part, sort_keys=True, default=str).encode()
        )
        h.update(b"\x1e")
    return f"{prefix}-{h.hexdigest()[:12]}"


class Policy(ABC):
    """Anything that turns rows into decisions under a cost matrix."""

    name: str
    kind: str
    costs: CostMatrix
    spec: FeatureSpec
    version: str
    probabilistic: bool = False

    @abstractmethod
    def fit(self, train: Part, valid: Part) -> Policy:
        """Fit on the training split; the validation split may make the policy's own choices."""

    @abstractmethod
    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        """Decision codes (indices into `costs.decisions`) for every row of `frame`, with
        what explains them; the one vectorised decision path."""

    def decide_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Decision codes (indices into `costs.decisions`) for every row of `frame`; UNDECIDED
        (-1) for a row whose costs cannot be known (an example-dependent cost missing)."""
        return self.decide_batch(frame).codes

    def input_columns(self) -> tuple[str, ...]:
        """The columns a row must have for this policy to decide it."""
        return tuple(dict.fromkeys([*self.spec.names_, *self.costs.columns]))

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        """What a policy bundle stores beyond the shared fields: JSON parameters, and files
        (name -> text) in the policy's own formats."""
        raise NotImplementedError(f"policy {self.name!r} cannot be bundled")

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> Policy:
        """The fitted policy rebuilt from what `to_bundle` gave."""
        raise NotImplementedError(f"{cls.__name__} cannot be read from a bundle")

    @abstractmethod
    def decide_one_code(self, record: Mapping) -> int:
        """The decision code for one record (a dict of column -> value)."""

    def decide_record(self, record: Mapping) -> Batch:
        """One record decided through the single-record feature path (`clean_record`,
        `encode_record`), with what explains it: the one-request twin of `decide_batch`, as
        fast as `decide_one`. Raises InputError when the record's costs cannot be known."""
        return Batch(np.array([self.decide_one_code(record)], dtype=np.int64))

    @abstractmethod
    def describe(self) -> dict:
        """What a person reads: a title, a summary and details."""

    def decide(self, frame: pd.DataFrame) -> pd.Series:
        """Decisions for every row, as labels; the series carries the version in `.attrs` and
        the number of rows left undecided (costs not known) in `.attrs["undecided"]`."""
        codes = self.decide_codes(frame)
        labels = pd.Categorical.from_codes(codes, categories=list(self.costs.decisions))
        out = pd.Series(labels, index=frame.index, name=self.name)
        out.attrs["version"] = self.version
        out.attrs["undecided"] = int((codes == UNDECIDED).sum())
        return out

    def decide_one(self, record: Mapping) -> Decision:
        code = int(self.decide_one_code(record))
        return Decision(self.costs.decisions[code], code, self.name, self.version)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError(f"policy {self.name!r} gives no probabilities")


class BaselinePolicy(Policy):
    """The best constant decision on the training rows: the do-nothing reference."""

    name = "baseline"
    kind = "baseline"

    def __init__(self, costs: CostMatrix, spec: FeatureSpec) -> None:
        self.costs = costs
        self.spec = spec

    def fit(self, train: Part, valid: Part | None = None) -> BaselinePolicy:
        return self._set(self.costs.best_constant(train.y, train.frame))

    def _set(self, code: int) -> BaselinePolicy:
        self.code_ = int(code)
        self.version = content_version("baseline", self.costs.to_dict(), self.code_)
        return self

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return Batch(np.full(len(frame), self.code_, dtype=np.int64))

    def decide_one_code(self, record: Mapping) -> int:
        return self.code_

    def input_columns(self) -> tuple[str, ...]:
        return ()

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        return {"decision": self.costs.decisions[self.code_]}, {}

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> BaselinePolicy:
        return cls(costs, spec)._set(costs.decisions.index(parameters["decision"]))

    def describe(self) -> dict:
        decision = self.costs.decisions[self.code_]
        return {
            "title": "Best constant decision",
            "summary": f"Always {decision}: the cheapest single decision on the training data.",
            "details": {"decision": decision},
        }
