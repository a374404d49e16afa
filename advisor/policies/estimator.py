"""A user's own fitted classifier as a policy: evaluated as given, never refitted.

Any scikit-learn-compatible classifier with `predict_proba` and `classes_` matching the cost
matrix's classes. It reads the raw data columns it was fitted on (`feature_names_in_`, else the
case's features), its probabilities are calibrated on the validation split when that lowers
the cross-fitted log loss (as advisor's own model), and it decides by minimum expected cost.
Its bundle stores the estimator with `skops.io`, never pickle (`advisor.policies.stored`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, label_key, record_tensor
from advisor.core.data import Part
from advisor.core.errors import InputError, first_line
from advisor.core.features import FeatureSpec
from advisor.policies.base import Batch, Policy, content_version
from advisor.policies.ml import Calibrator, calibration_record, read_calibration, should_calibrate
from advisor.policies.stored import STORED, dump_estimator, estimator_digest, load_estimator

ESTIMATOR = "estimator"


def class_order(estimator: object, costs: CostMatrix, name: str) -> list[int]:
    """For each cost-matrix class, the column of the estimator's `predict_proba` that holds it;
    an estimator whose classes are not the target's is an InputError naming the policy."""
    if not callable(getattr(estimator, "predict_proba", None)):
        raise InputError(
            "has no predict_proba: advisor needs class probabilities to decide by expected cost",
            where=f"policy {name!r}",
        )
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise InputError(
            "is not fitted (no classes_): pass a fitted estimator", where=f"policy {name!r}"
        )
    have = [label_key(c) for c in classes]
    want = [label_key(c) for c in costs.classes]
    if sorted(have) != sorted(want):
        raise InputError(
            f"predicts classes {[str(c) for c in classes]}, not the target's "
            f"{[str(c) for c in costs.classes]}",
            where=f"policy {name!r}",
        )
    return [have.index(k) for k in want]


class EstimatorPolicy(Policy):
    """A fitted classifier of the user's, named by them, deciding by minimum expected cost."""

    kind = ESTIMATOR
    probabilistic = True

    def __init__(
        self,
        name: str,
        estimator: object,
        costs: CostMatrix,
        spec: FeatureSpec,
        columns: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.estimator = estimator
        self.costs = costs
        self.spec = spec
        self.columns = columns

    def fit(self, train: Part, valid: Part) -> EstimatorPolicy:
        """Check the estimator against the data, store it, and calibrate on validation if it
        pays; the estimator itself is never refitted."""
        self.order_ = class_order(self.estimator, self.costs, self.name)
        self.inputs_ = tuple(self.columns or self._fitted_columns())
        absent = [c for c in self.inputs_ if c not in valid.frame.columns]
        if absent:
            raise InputError(
                f"reads column {absent[0]!r}, which is not in the data",
                where=f"policy {self.name!r}",
            )
        raw = self._raw_proba(valid.frame)
        self.stored_ = dump_estimator(self.estimator, self.name)
        use, losses = should_calibrate(raw, valid.y, self.costs.n_classes, seed=0)
        self.calibrator_ = Calibrator(self.costs.n_classes).fit(raw, valid.y) if use else None
        self.calibration_ = {
            "method": ("platt" if self.costs.n_classes == 2 else "multinomial") if use else "none",
            **losses,
        }
        return self._set_version()

    def _fitted_columns(self) -> list[str]:
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return list(self.spec.names_)

    def _set_version(self) -> EstimatorPolicy:
        self.version_ = content_version(
            ESTIMATOR,
            self.name,
            estimator_digest(self.stored_),
            list(self.inputs_),
            self.calibrator_.params() if self.calibrator_ else None,
            self.costs.to_dict(),
        )
        return self

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns the estimator reads, numeric features as numbers (a JSON record's
        None or text turns into NaN, as in the data frame)."""
        absent = [c for c in self.inputs_ if c not in frame.columns]
        if absent:
            raise InputError(f"policy {self.name!r} needs column {absent[0]!r}, not in the rows")
        X = frame.loc[:, list(self.inputs_)].copy()
        kinds = {e.name: e.kind for e in self.spec.encoders_}
        for column in X.columns:
            if kinds.get(column) == "numeric":
                X[column] = pd.to_numeric(X[column], errors="coerce").astype(float)
        return X

    def _raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        X = self._frame(frame)
        try:
            p = np.asarray(self.estimator.predict_proba(X), dtype=float)
        except Exception as exc:  # the user's code: any failure is theirs to read, in one line
            raise InputError(
                f"predict_proba failed: {type(exc).__name__}: {first_line(exc)}",
                where=f"policy {self.name!r}",
            ) from None
        if p.shape != (len(X), self.costs.n_classes) or not np.isfinite(p).all():
            raise InputError(
                f"predict_proba gave shape {p.shape} or non-finite values; expected "
                f"({len(X)}, {self.costs.n_classes}) probabilities",
                where=f"policy {self.name!r}",
            )
        return p[:, self.order_]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = self._raw_proba(frame)
        return self.calibrator_.transform(p) if self.calibrator_ is not None else p

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        proba = self.predict_proba(frame)
        expected = self.costs.expected_costs(proba, frame)
        return Batch(self.costs.choose(expected), proba=proba, expected_costs=expected)

    def decide_record(self, record: Mapping) -> Batch:
        proba = self.predict_proba(pd.DataFrame([dict(record)]))
        expected = np.einsum("nk,nkd->nd", proba, record_tensor(self.costs, record))
        return Batch(np.argmin(expected, axis=1), proba=proba, expected_costs=expected)

    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.inputs_, *self.costs.columns]))

    def bundle_parameters(self) -> dict:
        return {"name": self.name, "columns": list(self.inputs_), "order": list(self.order_)}

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        """The estimator as skops text and the calibration as JSON."""
        calibration = calibration_record(self.calibrator_, self.calibration_)
        files = {STORED: self.stored_, "calibration.json": json.dumps(calibration, indent=2) + "\n"}
        return self.bundle_parameters(), files

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> EstimatorPolicy:
        estimator = load_estimator(files[STORED])
        columns = tuple(str(c) for c in parameters["columns"])
        policy = cls(str(parameters["name"]), estimator, costs, spec, columns)
        policy.order_ = class_order(estimator, costs, policy.name)
        policy.inputs_ = columns
        policy.stored_ = files[STORED]
        policy.calibrator_, policy.calibration_ = read_calibration(
            json.loads(files["calibration.json"])
        )
        return policy._set_version()

    def describe(self) -> dict:
        return {
            "title": f"Your model {self.name!r}",
            "summary": (
                f"{type(self.estimator).__name__} as you fitted it (advisor never refits it), "
                f"{'calibrated on the validation split' if self.calibrator_ else 'used as given'}; "
                "decides by minimum expected cost."
            ),
            "details": {
                "estimator": type(self.estimator).__name__,
                "columns": list(self.inputs_),
                "calibration": self.calibration_,
            },
        }
