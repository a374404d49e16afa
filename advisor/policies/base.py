"""The one abstraction: a Policy turns rows into decisions, and says which version decided.

Every policy is fitted the same way, `fit(train, valid)` (the validation split may pick a
length, calibration or early stopping; it never sees the test split), and then offers
`decide_batch(frame)` (vectorised), `decide_record(record)` (one request), `describe()`, a
content-hash `version` and `to_bundle`/`from_bundle`. Evaluation, simulation, drift, latency,
scoring and serving only talk to this surface.
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
    """Anything that turns rows into decisions under a cost matrix.

    The protocol (docs/architecture.md, "The policy protocol"): `fit(train, valid)`, then
    `decide_batch(frame)` and `decide_record(record)` (each a `Batch`: codes and what explains
    them), `describe()`, the content-hash `version`, and `to_bundle()` / `from_bundle(...)`.
    Parameters are the `__init__` arguments (`get_params`, as in scikit-learn); what fitting
    learns ends in `_`. `decide`, `decide_one` and `decide_codes` are conveniences on top.
    """

    name: str
    kind: str
    costs: CostMatrix
    spec: FeatureSpec
    probabilistic: bool = False
    # `__init__` arguments a bundle stores in its shared fields, not among the parameters.
    CONTEXT: tuple[str, ...] = ("costs", "spec")

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The `__init__` arguments, in order: what `get_params` returns (scikit-learn's rule:
        every argument is stored unchanged under its own name)."""
        import inspect

        signature = inspect.signature(cls.__init__)
        return tuple(
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = False) -> dict:
        """The policy's parameters (its `__init__` arguments) by name."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    def set_params(self, **params) -> Policy:
        """Change parameters by name; an unknown name is an error, as in scikit-learn."""
        names = self.parameter_names()
        for key, value in params.items():
            if key not in names:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def bundle_parameters(self) -> dict:
        """The parameters a bundle records (JSON values): all but the shared context."""
        return {k: v for k, v in self.get_params().items() if k not in self.CONTEXT}

    @property
    def version(self) -> str:
        """The fitted policy's content hash: equal decisions' inputs give equal versions."""
        try:
            return self.version_
        except AttributeError:
            raise AttributeError(f"policy {self.name!r} is not fitted: it has no version") from None

    @version.setter
    def version(self, value: str) -> None:
        # A policy class written before versions were fitted attributes may still assign it.
        self.version_ = value

    @abstractmethod
    def fit(self, train: Part, valid: Part) -> Policy:
        """Fit on the training split; the validation split may make the policy's own choices."""

    @abstractmethod
    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        """Decision codes (indices into `costs.decisions`) for every row of `frame`, with
        what explains them; the one vectorised decision path. UNDECIDED (-1) marks a row whose
        costs cannot be known (an example-dependent cost missing)."""

    def decide_validation(self, frame: pd.DataFrame) -> Batch:
        """`decide_batch` of the validation rows this policy was fitted with, for the choices
        made there; a policy that kept what those decisions need while fitting answers from
        it (`MLPolicy`)."""
        return self.decide_batch(frame)

    @abstractmethod
    def decide_record(self, record: Mapping) -> Batch:
        """One record (column -> value) decided through the single-record feature path
        (`clean_record`, `encode_record`), with what explains it: the one-request twin of
        `decide_batch`. Raises InputError when the record's costs cannot be known."""

    @abstractmethod
    def describe(self) -> dict:
        """What a person reads: a title, a summary and details."""

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

    def decide_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """`decide_batch(frame).codes`: the decision codes alone."""
        return self.decide_batch(frame).codes

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
        """One record's decision as a label, with the policy and version that made it."""
        code = int(self.decide_record(record).codes[0])
        return Decision(self.costs.decisions[code], code, self.name, self.version)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError(f"policy {self.name!r} gives no probabilities")

    def explain(self, frame: pd.DataFrame, k: int = 3, method: str = "exact"):
        """The main reasons for each row's decision, at most `k` (`reasons.Reasons`)."""
        raise NotImplementedError(f"policy {self.name!r} gives no reasons")

    def explain_record(self, record: Mapping, k: int = 3, method: str = "exact"):
        """`explain` for one record (a dict of column -> value)."""
        return self.explain(pd.DataFrame([dict(record)]), k, method)

    def explain_decided(self, frame: pd.DataFrame, decided: Batch, k: int, method: str = "exact"):
        """`explain` for rows already decided (`decided` is their `decide_batch`): a policy
        whose batch already holds the reason (a rule list's rule) need not decide again."""
        return self.explain(frame, k, method)

    def _repr_html_(self) -> str:
        """How a notebook shows a policy: what it is, its version, inputs and decisions."""
        from advisor.policies.display import policy_html

        return policy_html(self)


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
        self.version_ = content_version("baseline", self.costs.to_dict(), self.code_)
        return self

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return Batch(np.full(len(frame), self.code_, dtype=np.int64))

    def decide_record(self, record: Mapping) -> Batch:
        return Batch(np.array([self.code_], dtype=np.int64))

    def input_columns(self) -> tuple[str, ...]:
        return ()

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        return {"decision": self.costs.decisions[self.code_]}, {}

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> BaselinePolicy:
        return cls(costs, spec)._set(costs.decisions.index(parameters["decision"]))

    def explain(self, frame: pd.DataFrame, k: int = 3, method: str = "exact"):
        """One reason for every row: the constant decision."""
        from advisor.policies.reasons import constant_reasons

        decision = self.costs.decisions[self.code_]
        return constant_reasons(len(frame), k, f"always {decision}: the cheapest constant decision")

    def explain_record(self, record: Mapping, k: int = 3, method: str = "exact"):
        return self.explain(pd.DataFrame(index=[0]), k, method)

    def describe(self) -> dict:
        decision = self.costs.decisions[self.code_]
        return {
            "title": "Best constant decision",
            "summary": f"Always {decision}: the cheapest single decision on the training data.",
            "details": {"decision": decision},
        }
