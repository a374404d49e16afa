"""What ships when the run refitted: the fitting procedure the pooled out-of-fold figures
describe, refitted on every labelled row with the choices the run made.

The refits (`advisor.analysis.crossfit`) score a procedure: fit on some rows, let held-out rows
stop the boosting, decide on calibration and choose the rule list. The policies that ship are
that procedure applied to every labelled row, with nothing left to hold out, so each choice is
carried over instead of being made again:

- the ML model boosts a fixed number of rounds: the median over the main fit and every refit of
  its early-stopped trees scaled to the larger set, trees x (rows / its training rows) ^
  ROUNDS_EXPONENT. At a fixed step the early-stopped rounds grow with the rows, but more slowly
  than in proportion: `benchmarks/refit_rounds.py` measures trees ~ rows^b with b = 0.37
  (telco-churn), 0.19 (credit-scoring) and 0.53 (car-loans), so 0.4, near their middle: from
  the refits' 60 % of the rows to all of them that is 1.23 times the rounds, where scaling in
  proportion would give 1.67 times;
- its calibration (when the main fit chose to calibrate) is fitted on the out-of-fold raw
  probabilities of every refit: scores of models that never saw the rows, as scikit-learn's
  `CalibratedClassifierCV(ensemble=False)` does; the shipped model's own probabilities on its
  training rows would be too confident;
- the learned rule list is grown on every row from the kind of list the main fit chose, and cut
  to the length it chose, without any inner cross-validation (`RuleListClassifier(source,
  length)`);
- a hand-written rule file keeps its rules; its class frequencies are counted on every row;
- the constant baseline and ready-made policies (an incumbent column, a user's fitted model)
  are shipped as the main fit has them: the constant is a choice (the report names it), and
  the others are evaluated as they are.

Without refits (large data: a single split) nothing changes: the main fit ships.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from advisor.analysis.outoffold import FoldFit
from advisor.core.case import Case
from advisor.core.data import Dataset, Part
from advisor.core.features import FeatureSpec
from advisor.core.record import Record, json_field
from advisor.policies.base import Policy
from advisor.policies.ml import Calibrator, MLPolicy, log_loss
from advisor.policies.rules.policy import ExpertRulesPolicy, LearnedRulesPolicy
from advisor.stats.psi import Reference, training_reference

ROUNDS_EXPONENT = 0.4  # trees ~ rows^b: b measured 0.19-0.53 (benchmarks/refit_rounds.py)


@dataclass(frozen=True)
class ShippedModel(Record):
    """The shipped ML model's rounds and calibration, and what they came from."""

    trees: int
    learning_rate: float
    fits: int  # early-stopped fits (the main fit and the refits) the rounds come from
    median_trees: float  # their early-stopped trees, unscaled
    median_rows: float  # their training rows
    calibration: str  # "platt", "multinomial" or "none"
    calibration_rows: int  # out-of-fold rows the calibration was fitted on
    raw_log_loss: float | None = None  # out-of-fold, before calibration
    calibrated_log_loss: float | None = None  # out-of-fold, after (the calibration's own rows)


@dataclass(frozen=True)
class ShippedRules(Record):
    """The shipped rule list: the kind and length the main fit chose, grown on every row."""

    source: str
    length: int
    rules: int  # rules after tidying


@dataclass(frozen=True)
class Shipped(Record):
    """What the bundles hold (result.json `refits.shipped`)."""

    rows: int
    refitted: tuple[str, ...]
    as_fitted: tuple[str, ...]  # shipped as the main fit has them
    rounds_rule: str
    models: Mapping[str, ShippedModel]
    rule_lists: Mapping[str, ShippedRules]
    policies: Mapping[str, Policy] = json_field(internal=True)
    reference: Reference = json_field(internal=True)


def shipped_rounds(fits: Sequence[FoldFit], rows: int) -> int:
    """The rounds for `rows` training rows: the median of every fit's early-stopped trees
    scaled by (rows / its training rows) ^ ROUNDS_EXPONENT."""
    scaled = [f.trees * (rows / max(f.rows, 1)) ** ROUNDS_EXPONENT for f in fits]
    return max(1, round(float(np.median(scaled))))


def _ship_model(
    main: MLPolicy,
    whole: Part,
    spec: FeatureSpec,
    fits: Sequence[FoldFit],
    raw: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[MLPolicy, ShippedModel]:
    """The model refitted on `whole` for a fixed number of rounds, calibrated out of fold."""
    k = main.costs.n_classes
    rounds = shipped_rounds(fits, len(whole))
    calibrator, figures = None, {"method": "none"}
    if main.calibrator_ is not None and raw is not None:
        proba, y = raw
        calibrator = Calibrator(k, main.seed).fit(proba, y)
        figures = {
            "method": main.calibration_["method"],
            "raw_log_loss": log_loss(y, proba),
            "calibrated_log_loss": log_loss(y, calibrator.transform(proba)),
            "fitted_on": f"{len(y):,} out-of-fold raw probabilities of the refits",
        }
    elif main.calibrator_ is not None:  # no out-of-fold probabilities: the main fit's scaling
        calibrator = main.calibrator_
        figures = {**main.calibration_, "fitted_on": "the main fit's validation split"}
    model = MLPolicy(
        main.costs,
        spec,
        seed=main.seed,
        learning_rate=main.learning_rate_,
        num_leaves=main.num_leaves,
        max_rounds=main.max_rounds,
        early_stopping_rounds=main.early_stopping_rounds,
        num_threads=main.num_threads,
    ).fit_rounds(whole, rounds, calibrator, figures)
    shipped = ShippedModel(
        trees=model.n_trees_,
        learning_rate=model.learning_rate_,
        fits=len(fits),
        median_trees=float(np.median([f.trees for f in fits])),
        median_rows=float(np.median([f.rows for f in fits])),
        calibration=figures["method"],
        calibration_rows=len(raw[1]) if calibrator is not None and raw is not None else 0,
        raw_log_loss=figures.get("raw_log_loss"),
        calibrated_log_loss=figures.get("calibrated_log_loss"),
    )
    return model, shipped


def _ship_rules(
    main: LearnedRulesPolicy, whole: Part, spec: FeatureSpec
) -> tuple[LearnedRulesPolicy, ShippedRules]:
    """The rule list of the main fit's kind, grown on `whole` and cut to its chosen length."""
    from sklearn.base import clone

    from advisor.policies.rules.learner import RuleListClassifier

    chosen = main.estimator_
    learner = clone(main.learner if main.learner is not None else RuleListClassifier())
    learner.set_params(source=chosen.source_, length=chosen.length_)
    policy = LearnedRulesPolicy(main.costs, spec, learner, list_name=main.list_name)
    policy.fit(whole, whole)
    return policy, ShippedRules(chosen.source_, chosen.length_, len(policy.rules_))


def ship(
    case: Case,
    data: Dataset,
    policies: Mapping[str, Policy],
    main_train_rows: int,
    fits: Mapping[str, Sequence[FoldFit]],
    raw: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> Shipped:
    """The policies refitted on every labelled row with the main fit's choices; `fits` and
    `raw` are the refits' early stopping and out-of-fold raw probabilities per ML policy."""
    whole = Part(frame=data.frame, y=data.y)
    spec = FeatureSpec(data.schema).fit(data.frame)
    out: dict[str, Policy] = {}
    models, lists = {}, {}
    for name, policy in policies.items():
        if type(policy) is MLPolicy:
            main_fit = FoldFit(main_train_rows, policy.n_trees_, policy.learning_rate_)
            own = [main_fit, *fits.get(name, ())]
            out[name], models[name] = _ship_model(policy, whole, spec, own, raw.get(name))
        elif type(policy) is LearnedRulesPolicy:
            out[name], lists[name] = _ship_rules(policy, whole, spec)
        elif type(policy) is ExpertRulesPolicy:
            out[name] = ExpertRulesPolicy(policy.path, case.costs, spec).fit(whole, whole)
    refitted = tuple(out)
    return Shipped(
        rows=len(whole),
        refitted=refitted,
        as_fitted=tuple(n for n in policies if n not in out),
        rounds_rule=(
            "the median over the main fit and every refit of its early-stopped trees x "
            f"(rows / its training rows)^{ROUNDS_EXPONENT:g}"
        ),
        models=models,
        rule_lists=lists,
        policies={n: out.get(n, p) for n, p in policies.items()},
        reference=training_reference(spec, data.frame),
    )
