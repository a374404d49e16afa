"""A model from the user's MLflow registry as a policy: `--policy NAME=mlflow:MODEL_URI`.

The model is an MLflow pyfunc returning either class probabilities (a frame whose columns are
named by the target's classes) or decisions (one column, or a series, of decision labels). A
registry alias (`models:/scorer@champion`) is resolved to a model version once, when the run
fits; the bundle pins that version's URI, keeps the run's copy of its signature and a sha256 of
the model's files, which loading checks before it loads. Probabilities are calibrated on the
validation split when that lowers the cross-fitted log loss, and decide by minimum expected cost.

Loading runs `mlflow.pyfunc.load_model`, which runs the model's own loader and may unpickle:
the one exception to advisor's no-pickle rule, because the user names a registry they trust.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, label_key, record_tensor
from advisor.core.data import Part
from advisor.core.errors import InputError, first_line
from advisor.core.features import FeatureSpec
from advisor.policies.base import Batch, Policy, content_version
from advisor.policies.ml import Calibrator, calibration_record, read_calibration, should_calibrate

MLFLOW = "mlflow"
PREFIX = "mlflow:"
FILE = "mlflow.json"
NEEDS = "an MLflow policy needs the mlflow extra: pip install 'advisor-ship[mlflow]'"


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise InputError(NEEDS) from None
    return mlflow


def pin(uri: str) -> str:
    """`models:/NAME@ALIAS` resolved to `models:/NAME/VERSION`; any other URI as given."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri
    name, _, alias = uri.removeprefix("models:/").partition("@")
    client = _mlflow().MlflowClient()
    version = client.get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}"


def files_sha256(folder: Path) -> str:
    """One sha256 over every file of a downloaded model (relative path and content, sorted)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(b"\x00")
        h.update(path.read_bytes())
    return h.hexdigest()


def fetch(uri: str, where: str, sha256: str | None = None) -> tuple[object, str, dict | None]:
    """The pyfunc model at `uri`, the sha256 of its files and its signature; with `sha256`, a
    model whose files differ is refused before it is loaded."""
    mlflow = _mlflow()
    try:
        with tempfile.TemporaryDirectory(prefix="advisor-mlflow-") as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            digest = files_sha256(local)
            if sha256 is not None and digest != sha256:
                raise InputError(
                    f"the model files at {uri} changed since the run (sha256 {digest[:12]}, "
                    f"bundle {sha256[:12]})",
                    where=where,
                )
            model = mlflow.pyfunc.load_model(str(local))
    except InputError:
        raise
    except Exception as exc:  # MLflow's own errors: a missing model, a bad URI, a loader
        raise InputError(
            f"{uri} does not load: {type(exc).__name__}: {first_line(exc)}", where=where
        ) from None
    signature = model.metadata.signature
    return model, digest, signature.to_dict() if signature is not None else None


class RegisteredPolicy(Policy):
    """An MLflow model of the user's, named by them: probabilities decide by minimum expected
    cost, decisions are taken as they come."""

    kind = MLFLOW

    def __init__(self, name: str, uri: str, costs: CostMatrix, spec: FeatureSpec) -> None:
        self.name = name
        self.uri = uri
        self.costs = costs
        self.spec = spec

    @property
    def probabilistic(self) -> bool:
        return getattr(self, "output_", None) == "probabilities"

    @property
    def where(self) -> str:
        return f"policy {self.name!r}"

    def fit(self, train: Part, valid: Part) -> RegisteredPolicy:
        """Pin the URI, load the model once, check its output on the validation rows, and
        calibrate its probabilities there when that pays; the model is never refitted."""
        try:
            self.pinned_ = pin(self.uri.removeprefix(PREFIX))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"{self.uri} does not resolve: {type(exc).__name__}: {first_line(exc)}",
                where=self.where,
            ) from None
        self.model_, self.sha256_, self.signature_ = fetch(self.pinned_, self.where)
        self.inputs_ = tuple(self._signature_columns() or self.spec.names_)
        output = self._predict(valid.frame)
        self.output_ = "probabilities" if output.ndim == 2 else "decisions"
        self.calibrator_, self.calibration_ = None, {"method": "none"}
        if self.probabilistic:
            use, losses = should_calibrate(output, valid.y, self.costs.n_classes, seed=0)
            if use:
                self.calibrator_ = Calibrator(self.costs.n_classes).fit(output, valid.y)
            method = "platt" if self.costs.n_classes == 2 else "multinomial"
            self.calibration_ = {"method": method if use else "none", **losses}
        return self._set_version()

    def _signature_columns(self) -> list[str]:
        inputs = (self.signature_ or {}).get("inputs")
        if not inputs:
            return []
        return [c["name"] for c in json.loads(inputs) if c.get("name")]

    def _set_version(self) -> RegisteredPolicy:
        self.version_ = content_version(
            MLFLOW,
            self.name,
            self.pinned_,
            self.sha256_,
            self.calibrator_.params() if self.calibrator_ else None,
            self.costs.to_dict(),
        )
        return self

    def _predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (rows x classes, in the cost matrix's order) or decision codes."""
        absent = [c for c in self.inputs_ if c not in frame.columns]
        if absent:
            raise InputError(f"needs column {absent[0]!r}, not in the rows", where=self.where)
        X = frame.loc[:, list(self.inputs_)]
        try:
            out = self.model_.predict(X)
        except Exception as exc:  # the user's model: its failure is theirs to read, in one line
            raise InputError(
                f"predict failed: {type(exc).__name__}: {first_line(exc)}", where=self.where
            ) from None
        return self._read_output(out, len(X))

    def _read_output(self, out: object, n: int) -> np.ndarray:
        frame = out if isinstance(out, pd.DataFrame) else pd.DataFrame(np.asarray(out))
        if len(frame) != n:
            raise InputError(f"returned {len(frame)} rows for {n}", where=self.where)
        names = [label_key(c) for c in frame.columns]
        classes = [label_key(c) for c in self.costs.classes]
        if sorted(names) == sorted(classes) and len(names) > 1:
            proba = frame.iloc[:, [names.index(k) for k in classes]].to_numpy(dtype=float)
            ok = np.isfinite(proba).all() and (proba >= 0).all()
            if not ok or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-6):
                raise InputError(
                    "returned class columns that are not probabilities", where=self.where
                )
            return proba
        if frame.shape[1] == 1:
            labels = frame.iloc[:, 0].astype(str).str.strip()
            codes = pd.Categorical(labels, categories=list(self.costs.decisions)).codes
            if (codes < 0).any():
                bad = sorted(set(labels[codes < 0]))[:3]
                raise InputError(
                    f"returned {bad}, which are not decisions of the cost matrix "
                    f"({list(self.costs.decisions)})",
                    where=self.where,
                )
            return np.asarray(codes, dtype=np.int64)
        raise InputError(
            f"returned columns {[str(c) for c in frame.columns][:6]}: expected one column per "
            f"class ({[str(c) for c in self.costs.classes]}) or one column of decisions",
            where=self.where,
        )

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = self._predict(frame)
        if p.ndim != 2:
            raise InputError("returned decisions, not probabilities", where=self.where)
        return self.calibrator_.transform(p) if self.calibrator_ is not None else p

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        if not self.probabilistic:
            return Batch(self._predict(frame))
        proba = self.predict_proba(frame)
        expected = self.costs.expected_costs(proba, frame)
        return Batch(self.costs.choose(expected), proba=proba, expected_costs=expected)

    def decide_record(self, record: Mapping) -> Batch:
        frame = pd.DataFrame([dict(record)])
        if not self.probabilistic:
            return Batch(self._predict(frame))
        proba = self.predict_proba(frame)
        expected = np.einsum("nk,nkd->nd", proba, record_tensor(self.costs, record))
        return Batch(np.argmin(expected, axis=1), proba=proba, expected_costs=expected)

    def input_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.inputs_, *self.costs.columns]))

    def bundle_parameters(self) -> dict:
        return {"name": self.name, "uri": self.uri, "columns": list(self.inputs_)}

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        """The pinned URI, the signature's copy, the files' sha256 and the calibration."""
        calibration = calibration_record(self.calibrator_, self.calibration_)
        pinned = {
            "uri": self.pinned_,
            "given": self.uri,
            "sha256": self.sha256_,
            "signature": self.signature_,
            "output": self.output_,
            "calibration": calibration,
        }
        return self.bundle_parameters(), {FILE: json.dumps(pinned, indent=2) + "\n"}

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> RegisteredPolicy:
        pinned = json.loads(files[FILE])
        policy = cls(str(parameters["name"]), str(parameters["uri"]), costs, spec)
        policy.pinned_ = pinned["uri"]
        policy.model_, policy.sha256_, _ = fetch(pinned["uri"], FILE, pinned["sha256"])
        policy.signature_ = pinned["signature"]
        policy.inputs_ = tuple(str(c) for c in parameters["columns"])
        policy.output_ = pinned["output"]
        policy.calibrator_, policy.calibration_ = read_calibration(pinned["calibration"])
        return policy._set_version()

    def describe(self) -> dict:
        return {
            "title": f"Your MLflow model {self.name!r}",
            "summary": (
                f"{self.pinned_} as registered (advisor never refits it); it gives "
                f"{self.output_}"
                + (", decided by minimum expected cost." if self.probabilistic else ".")
            ),
            "details": {
                "uri": self.uri,
                "pinned": self.pinned_,
                "sha256": self.sha256_,
                "calibration": self.calibration_,
            },
        }
