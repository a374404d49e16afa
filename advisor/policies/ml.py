"""The ML policy: LightGBM on the shared features, calibrated, deciding by minimum expected cost."""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix, record_tensor
from advisor.core.data import Part
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.policies.base import Batch, Policy, content_version
from advisor.policies.boosting import REFINE_RATE, boost

EPS = 1e-12
PREDICT_ROWS = 100_000  # rows encoded at once to predict: about 24 MB of inputs at 30 features


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the actual class codes."""
    p = np.clip(proba[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.log(p).mean())


class Calibrator:
    """Platt scaling (binary) or multinomial scaling of log-probabilities (multiclass)."""

    def __init__(self, n_classes: int, seed: int = 0) -> None:
        self.n_classes = n_classes
        self.seed = seed

    def _features(self, proba: np.ndarray) -> np.ndarray:
        p = np.clip(proba, 1e-7, 1 - 1e-7)
        if self.n_classes == 2:
            return np.log(p[:, 1:] / p[:, :1])
        return np.log(p)

    def fit(self, proba: np.ndarray, y: np.ndarray) -> Calibrator:
        from sklearn.linear_model import LogisticRegression

        self.model_ = LogisticRegression(C=100.0, max_iter=1000).fit(self._features(proba), y)
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """The calibrated probabilities: scikit-learn's `predict_proba` of the fitted model step
        for step (its decision function, then the logistic function or the softmax), so equal
        bit for bit, without the input checks that cost one request more than the arithmetic."""
        from scipy.special import expit

        m = self.model_
        scores = self._features(proba) @ m.coef_.T + m.intercept_
        if len(m.classes_) <= 2:
            p = expit(scores.reshape(-1))
            calibrated = np.stack([1 - p, p], axis=1)
        else:
            scores -= scores.max(axis=1).reshape(-1, 1)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=1).reshape(-1, 1)
            calibrated = scores
        out = np.zeros((len(proba), self.n_classes))
        out[:, m.classes_] = calibrated
        return out

    def params(self) -> list:
        return [self.model_.coef_.round(10).tolist(), self.model_.intercept_.round(10).tolist()]

    def to_dict(self) -> dict:
        """The fitted scaling at full precision (JSON floats read back exactly)."""
        m = self.model_
        return {
            "n_classes": self.n_classes,
            "coef": m.coef_.tolist(),
            "intercept": m.intercept_.tolist(),
            "classes": m.classes_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibrator:
        """A calibrator whose probabilities equal the fitted one's, bit for bit: the same
        scikit-learn model with its fitted coefficients set."""
        from sklearn.linear_model import LogisticRegression

        cal = cls(int(data["n_classes"]))
        model = LogisticRegression(C=100.0, max_iter=1000)
        model.coef_ = np.asarray(data["coef"], dtype=float)
        model.intercept_ = np.asarray(data["intercept"], dtype=float)
        model.classes_ = np.asarray(data["classes"], dtype=np.int64)
        model.n_features_in_ = model.coef_.shape[1]
        cal.model_ = model
        return cal


def calibration_record(calibrator: Calibrator | None, calibration: Mapping) -> dict:
    """A bundle's `calibration.json`: what the choice measured, and the fitted scaling (or
    None when the probabilities are used as given)."""
    return {**calibration, "parameters": calibrator.to_dict() if calibrator else None}


def read_calibration(record: Mapping) -> tuple[Calibrator | None, dict]:
    """The calibrator and the measured figures from a `calibration_record`."""
    calibration = dict(record)
    scaling = calibration.pop("parameters")
    return (Calibrator.from_dict(scaling) if scaling else None), calibration


def should_calibrate(
    proba: np.ndarray, y: np.ndarray, n_classes: int, seed: int
) -> tuple[bool, dict]:
    """Cross-fitted check on the validation rows: does calibration lower the log loss?"""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    if (counts[counts > 0] < 4).any() or (counts > 0).sum() < 2:
        return False, {"raw_log_loss": log_loss(y, proba), "calibrated_log_loss": None}
    calibrated = np.zeros_like(proba)
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    for fit_idx, eval_idx in folds.split(proba, y):
        if len(np.unique(y[fit_idx])) < 2:
            return False, {"raw_log_loss": log_loss(y, proba), "calibrated_log_loss": None}
        cal = Calibrator(n_classes, seed).fit(proba[fit_idx], y[fit_idx])
        calibrated[eval_idx] = cal.transform(proba[eval_idx])
    raw, cal = log_loss(y, proba), log_loss(y, calibrated)
    return cal < raw, {"raw_log_loss": raw, "calibrated_log_loss": cal}


LEARNING_RATES = ((200_000, 0.05), (2_000_000, 0.1))  # up to rows: step; 0.2 beyond


def learning_rate_for(rows: int) -> float:
    """LightGBM's first step size for this many training rows: 0.05 up to 200,000 rows, 0.1
    up to 2,000,000, 0.2 beyond; above 0.05 the fit goes on at 0.05 from the best round
    (`boosting.boost`). On `benchmarks/scale.py`'s five generators at 600,000 training rows
    (seeds 0 and 1), a first step of 0.15 left the test log loss 0.05 to 0.24 % above the hand
    fit's at 0.05 and the cost per decision up to 0.034 higher; 0.1 left it -0.12 to +0.12 %,
    the cost within 0.015 either way, for 0 to 10 s more fitting. At 6,000,000 rows 0.2
    stays within 0.1 % of the hand fit's log loss."""
    return next((step for most, step in LEARNING_RATES if rows <= most), 0.2)


class MLPolicy(Policy):
    """LightGBM with native categoricals and early stopping; decisions by minimum expected cost.

    `learning_rate` None chooses it from the training rows (`learning_rate_for`) and, when
    that step is larger than 0.05, continues from its best round at 0.05 until the validation
    loss stops improving again (`boosting.boost`); a given `learning_rate` is used alone. Early
    stopping waits `early_stopping_rounds` rounds at a step of 0.05, proportionally fewer at
    larger steps (the same distance along the boosting path).
    """

    name = "ml"
    kind = "ml"
    probabilistic = True

    def __init__(
        self,
        costs: CostMatrix,
        spec: FeatureSpec,
        seed: int = 0,
        learning_rate: float | None = None,
        num_leaves: int = 31,
        max_rounds: int = 2000,
        early_stopping_rounds: int = 100,
        num_threads: int = 2,
    ) -> None:
        self.costs = costs
        self.spec = spec
        self.seed = seed
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads

    def _params(self) -> dict:
        k = self.costs.n_classes
        params = {
            "objective": "binary" if k == 2 else "multiclass",
            "learning_rate": self.learning_rate_,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
            "max_cat_to_onehot": 8,
        }
        if k > 2:
            params["num_class"] = k
        return params

    def fit(self, train: Part, valid: Part) -> MLPolicy:
        """Boost on the training split; the validation split stops the boosting and decides
        whether calibrating the probabilities pays."""
        import lightgbm as lgb

        y, y_valid = train.y, valid.y
        self.learning_rate_ = self.learning_rate or learning_rate_for(len(y))
        cats = self.spec.categorical_indices_
        # LightGBM bins the columns at once and keeps its bins, not the inputs.
        train_set = lgb.Dataset(
            self._columns(train.frame),
            y,
            feature_name=self._names(),
            categorical_feature=cats,
            params=self._params(),
        ).construct()
        valid_set = lgb.Dataset(
            self._columns(valid.frame),
            y_valid,
            reference=train_set,
            categorical_feature=cats,
            params=self._params(),
        ).construct()
        boosted = boost(
            self._params(),
            train_set,
            valid_set,
            self.max_rounds,
            self.early_stopping_rounds,
            refine_rate=None if self.learning_rate else REFINE_RATE,
        )
        self.booster_ = boosted.booster
        self.n_trees_ = boosted.trees
        self.refined_trees_ = boosted.trees - boosted.first_phase_trees
        raw_valid = self._raw_frame(valid.frame)
        use, losses = should_calibrate(raw_valid, y_valid, self.costs.n_classes, self.seed)
        self.calibrator_ = (
            Calibrator(self.costs.n_classes, self.seed).fit(raw_valid, y_valid) if use else None
        )
        self.calibration_ = {
            "method": ("platt" if self.costs.n_classes == 2 else "multinomial") if use else "none",
            **losses,
        }
        self._keep_validation(self._calibrated(raw_valid), valid.frame)
        return self._set_version()

    def _keep_validation(self, proba: np.ndarray | None, frame: pd.DataFrame | None) -> None:
        """Keep the validation rows' calibrated probabilities from fitting, tied to the very
        frame they came from (a weak reference, so no frame is held alive): choosing on the
        validation split (`decide_validation`) then costs no second pass over the trees. They
        are neither bundled nor pickled (`__getstate__`)."""
        self.validation_proba_ = proba
        self.validation_frame_ = None if frame is None else weakref.ref(frame)

    def decide_validation(self, frame: pd.DataFrame) -> Batch:
        """The validation rows' decisions from the probabilities kept while fitting when
        `frame` is the frame fitted with; otherwise predicted as any rows are."""
        kept = getattr(self, "validation_frame_", None)
        if kept is not None and kept() is frame:
            return self.decide_from_proba(self.validation_proba_, frame)
        return self.decide_batch(frame)

    def __getstate__(self) -> dict:
        """The state without the validation rows' kept probabilities (a fitting-time shortcut,
        not part of the model): a policy shipped to a worker or copied predicts afresh."""
        state = self.__dict__.copy()
        state["validation_proba_"] = None
        state["validation_frame_"] = None
        return state

    def fit_rounds(
        self, rows: Part, rounds: int, calibrator: Calibrator | None, calibration: Mapping
    ) -> MLPolicy:
        """Boost exactly `rounds` rounds on `rows`, with no validation split, and use a
        calibration fitted elsewhere: a procedure whose choices (rounds, calibration) were made
        on held-out rows, refitted on all of them (`advisor.analysis.shipping`)."""
        import lightgbm as lgb

        self.learning_rate_ = self.learning_rate or learning_rate_for(len(rows.y))
        train_set = lgb.Dataset(
            self._columns(rows.frame),
            rows.y,
            feature_name=self._names(),
            categorical_feature=self.spec.categorical_indices_,
            params=self._params(),
        )
        booster = lgb.train(self._params(), train_set, num_boost_round=max(1, int(rounds)))
        self.booster_ = lgb.Booster(model_str=booster.model_to_string())
        self.n_trees_ = self.booster_.current_iteration()
        self.refined_trees_ = 0
        self.calibrator_ = calibrator
        self.calibration_ = dict(calibration)
        self._keep_validation(None, None)  # no validation split here
        return self._set_version()

    def _names(self) -> list[str]:
        return [f"f{i}" for i in range(len(self.spec.encoders_))]

    def _columns(self, frame: pd.DataFrame):
        """The model inputs as an Arrow table of encoded columns, for LightGBM to bin: a
        float column is the frame's own, so no rows x features matrix is built (LightGBM
        bins the same values as from the matrix: the same trees)."""
        import pyarrow as pa

        encoded = (pa.array(e.encode_column(frame[e.name])) for e in self.spec.encoders_)
        return pa.table(dict(zip(self._names(), encoded, strict=True)))

    def _set_version(self) -> MLPolicy:
        self.version_ = content_version(
            "ml",
            self.model_text().encode(),
            self.calibrator_.params() if self.calibrator_ else None,
            self.spec.to_dict(),
            self.costs.to_dict(),
        )
        return self

    def model_text(self) -> str:
        """The boosted trees in LightGBM's own text format, cut at the trees used."""
        return self.booster_.model_to_string(num_iteration=self.n_trees_)

    def to_bundle(self) -> tuple[dict, dict[str, str]]:
        """LightGBM's text model and the calibration as JSON (method, parameters, log losses)."""
        calibration = calibration_record(self.calibrator_, self.calibration_)
        files = {
            "model.txt": self.model_text(),
            "calibration.json": json.dumps(calibration, indent=2) + "\n",
        }
        fitted = {
            "trees": self.n_trees_,
            "learning_rate_used": self.learning_rate_,
            "refined_trees": self.refined_trees_,
        }
        return {**self.bundle_parameters(), **fitted}, files

    @classmethod
    def from_bundle(
        cls, costs: CostMatrix, spec: FeatureSpec, parameters: Mapping, files: Mapping[str, str]
    ) -> MLPolicy:
        import lightgbm as lgb

        names = [n for n in cls.parameter_names() if n not in cls.CONTEXT]
        policy = cls(costs, spec, **{key: parameters[key] for key in names})
        try:
            policy.booster_ = lgb.Booster(model_str=files["model.txt"])
        except lgb.basic.LightGBMError as exc:
            raise InputError(f"not a LightGBM model: {exc}", where="model.txt") from None
        policy.n_trees_ = int(parameters["trees"])
        policy.learning_rate_ = float(parameters.get("learning_rate_used") or 0.05)
        policy.refined_trees_ = int(parameters.get("refined_trees") or 0)
        policy.calibrator_, policy.calibration_ = read_calibration(
            json.loads(files["calibration.json"])
        )
        return policy._set_version()

    def _raw_proba(self, X: np.ndarray) -> np.ndarray:
        # One row is fastest on one thread: no pool start-up on the request path.
        p = self.booster_.predict(
            X,
            num_iteration=getattr(self, "n_trees_", None) or self.booster_.best_iteration,
            num_threads=1 if len(X) == 1 else self.num_threads,
        )
        if p.ndim == 1:
            p = np.column_stack([1 - p, p])
        return p

    def _raw_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """`_raw_proba` of a frame's rows, encoded PREDICT_ROWS at a time (each row's
        probabilities do not depend on the others, so the matrix need not hold every row)."""
        if len(frame) <= PREDICT_ROWS:
            return self._raw_proba(self.spec.encode(frame))
        return np.concatenate(
            [
                self._raw_proba(self.spec.encode(frame.iloc[start : start + PREDICT_ROWS]))
                for start in range(0, len(frame), PREDICT_ROWS)
            ]
        )

    def _calibrated(self, p: np.ndarray) -> np.ndarray:
        return self.calibrator_.transform(p) if self.calibrator_ is not None else p

    def _proba_matrix(self, X: np.ndarray) -> np.ndarray:
        return self._calibrated(self._raw_proba(X))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._calibrated(self._raw_frame(frame))

    def decide_batch(self, frame: pd.DataFrame) -> Batch:
        return self.decide_from_proba(self.predict_proba(frame), frame)

    def decide_from_proba(self, proba: np.ndarray, frame: pd.DataFrame) -> Batch:
        """The decisions of `frame`'s rows given their (calibrated) probabilities."""
        expected = self.costs.expected_costs(proba, frame)
        return Batch(self.costs.choose(expected), proba=proba, expected_costs=expected)

    def decide_record(self, record: Mapping) -> Batch:
        proba = self._proba_matrix(self.spec.encode_record(record))
        expected = np.einsum("nk,nkd->nd", proba, record_tensor(self.costs, record))
        return Batch(np.argmin(expected, axis=1), proba=proba, expected_costs=expected)

    def explain(self, frame: pd.DataFrame, k: int = 3, method: str = "exact"):
        """The k features that pushed each row most toward its decision against the runner-up
        (`Reasons`); `method` "exact" (TreeSHAP) or "paths" (per-tree path attribution)."""
        return self._explain(
            self.spec.encode(frame), self.costs.tensor(frame, len(frame)), k, method
        )

    def explain_record(self, record: Mapping, k: int = 3, method: str = "exact"):
        """`explain` for one record through the single-record path (what the service uses)."""
        return self._explain(
            self.spec.encode_record(record), record_tensor(self.costs, record), k, method
        )

    def explain_decided(self, frame: pd.DataFrame, decided: Batch, k: int, method: str = "exact"):
        """`explain` for rows `decide_batch` has decided: its decisions and expected costs are
        reused, and a binary model's probabilities are not predicted again (unused)."""
        return self._explain(
            self.spec.encode(frame), self.costs.tensor(frame, len(frame)), k, method, decided
        )

    def raw_contributions(self, X: np.ndarray, method: str = "exact"):
        """Per-feature contributions to the raw score and the base value (see `reasons`)."""
        from advisor.policies.reasons import raw_contributions

        return raw_contributions(
            self.booster_,
            X,
            self.n_trees_,
            self.costs.n_classes,
            method,
            self.num_threads,
            getattr(self, "version_", ""),
        )

    def _explain(
        self, X: np.ndarray, tensor: np.ndarray, k: int, method: str, batch: Batch | None = None
    ):
        from advisor.policies.reasons import constant_reasons, top_reasons, toward_decision

        if self.costs.n_decisions < 2:
            return constant_reasons(len(X), k, f"the only decision: {self.costs.decisions[0]}")
        # A binary model's weights need only the calibration's slope, not the probabilities.
        raw = self._raw_proba(X) if batch is None or self.costs.n_classes > 2 else None
        if batch is None:
            proba = self.calibrator_.transform(raw) if self.calibrator_ is not None else raw
            expected = np.einsum(
                "nk,nkd->nd", proba, np.broadcast_to(tensor, (len(X), *tensor.shape[1:]))
            )
            codes = self.costs.choose(expected)
        else:
            expected, codes = batch.expected_costs, np.asarray(batch.codes)
        decided = codes >= 0
        ranked = np.argsort(
            np.where(np.isfinite(expected), expected, np.inf), axis=1, kind="stable"
        )
        runner_up = np.where(ranked[:, 0] == codes, ranked[:, 1], ranked[:, 0])
        contrib, base = self.raw_contributions(X, method)
        slope = (
            float(self.calibrator_.model_.coef_.ravel()[0]) if self.calibrator_ is not None else 1.0
        )
        toward, _ = toward_decision(
            contrib, base, raw, tensor, np.where(decided, codes, 0), runner_up, slope
        )
        labels = np.asarray(self.costs.decisions, dtype=object)[np.where(decided, codes, 0)]
        return top_reasons(toward, X, self.spec.encoders_, k, decided, labels)

    def feature_importance(self) -> dict[str, float]:
        gain = self.booster_.feature_importance(importance_type="gain", iteration=self.n_trees_)
        total = gain.sum() or 1.0
        pairs = sorted(zip(self.spec.names_, gain / total, strict=True), key=lambda kv: -kv[1])
        return {name: float(share) for name, share in pairs}

    def describe(self) -> dict:
        top = list(self.feature_importance().items())[:5]
        return {
            "title": "LightGBM model",
            "summary": (
                f"Gradient-boosted trees ({self.n_trees_} trees of up to {self.num_leaves} leaves) "
                f"on {len(self.spec.names_)} features; probabilities "
                f"{'calibrated on the validation split' if self.calibrator_ else 'used as fitted'}; "
                "each row gets the decision with the lowest expected cost."
            ),
            "details": {
                "trees": self.n_trees_,
                "learning_rate": self.learning_rate_,
                "refined_trees": self.refined_trees_,
                "features": len(self.spec.names_),
                "calibration": self.calibration_,
                "top_features": [{"feature": n, "gain_share": s} for n, s in top],
            },
        }
