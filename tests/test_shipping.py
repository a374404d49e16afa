"""What ships when the run refitted is the procedure the pooled out-of-fold figures describe,
refitted on every labelled row with the run's choices: the model for the rule's number of
rounds, calibrated on the out-of-fold raw probabilities; the rule list of the chosen kind cut
to the chosen length; and the bundles' monitor figures come from the out-of-fold rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from advisor.analysis.calibration_gap import calibration_gaps
from advisor.analysis.crossfit import cross_fit
from advisor.analysis.outoffold import FoldFit, refit_rows
from advisor.analysis.pipeline import analyse, fit_policies
from advisor.analysis.shipping import ROUNDS_EXPONENT, ship, shipped_rounds
from advisor.artefacts.bundle import load_policy
from advisor.artefacts.result import Result
from advisor.core.case import resolve_case
from advisor.core.data import Part, load_dataset, split_dataset
from advisor.core.features import FeatureSpec
from advisor.policies.ml import Calibrator
from advisor.policies.rules.learner import learn_rules
from advisor.stats.bootstrap import Resampler
from tests.conftest import synthetic_frame

COSTS = {"fp": 10, "fn": 100, "tp": 30}
ROWS = 800


def _case(**kwargs):
    return resolve_case(
        synthetic_frame(ROWS, seed=3),
        target="outcome",
        costs=COSTS,
        bootstrap_resamples=100,
        seed=1,
        **kwargs,
    )


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    """An analysis that cross-fits (4 folds), and its run folder."""
    analysis = analyse(_case(refits=4))
    folder = Result.from_analysis(analysis).save(tmp_path_factory.mktemp("run"))
    return analysis, folder


def _raw(policy, frame: pd.DataFrame) -> np.ndarray:
    return policy._raw_proba(policy.spec.encode(frame))


def test_the_rounds_rule_scales_the_median_fit_to_the_rows():
    fits = [FoldFit(600, 40, 0.05), FoldFit(600, 50, 0.05), FoldFit(300, 30, 0.05)]
    scaled = sorted(f.trees * (1000 / f.rows) ** ROUNDS_EXPONENT for f in fits)
    assert scaled[1] == pytest.approx(40 * (1000 / 600) ** ROUNDS_EXPONENT)  # the median fit
    assert shipped_rounds(fits, 1000) == round(scaled[1])
    assert shipped_rounds(fits[:1], 600) == 40  # the same rows: the early-stopped rounds


def test_the_bundled_model_is_refitted_on_every_row_for_the_rule_s_rounds(shipped_run):
    """Fails if the bundle holds the main split's fit: its trees follow the rounds rule over
    the main fit and every refit, and its raw scores are those of LightGBM trained on every
    labelled row for that many rounds (trained here independently)."""
    import lightgbm as lgb

    analysis, folder = shipped_run
    main = analysis.policies["ml"]
    bundled = load_policy(folder / "policies" / "ml")
    refits = analysis.refits
    split = split_dataset(load_dataset(analysis.case), analysis.case.seed)
    fits = [FoldFit(len(split.train), main.n_trees_, main.learning_rate_), *refits.fits["ml"]]
    assert len(fits) == 1 + refits.plan.refits
    assert bundled.n_trees_ == shipped_rounds(fits, ROWS)
    assert refits.shipped.models["ml"].trees == bundled.n_trees_
    assert bundled.version != main.version
    report = (folder / "report.html").read_text()
    assert "What ships" in report and f"boosts {bundled.n_trees_} rounds" in report

    data = load_dataset(analysis.case)
    spec = FeatureSpec(data.schema).fit(data.frame)
    train_set = lgb.Dataset(
        spec.encode(data.frame, order="F"),
        data.y,
        feature_name=[f"f{i}" for i in range(len(spec.encoders_))],
        categorical_feature=spec.categorical_indices_,
        params=bundled._params(),
    )
    booster = lgb.train(bundled._params(), train_set, num_boost_round=bundled.n_trees_)
    expected = booster.predict(spec.encode(data.frame))
    np.testing.assert_allclose(_raw(bundled, data.frame)[:, 1], expected, rtol=1e-9)
    assert not np.allclose(_raw(main, data.frame)[:, 1], expected)


def test_the_out_of_fold_raw_probabilities_come_from_refits_that_never_saw_the_rows(
    shipped_run,
):
    analysis, _ = shipped_run
    proba, y = analysis.refits.raw["ml"]
    data = load_dataset(analysis.case)
    repeats = analysis.refits.plan.repeats
    assert proba.shape == (repeats * ROWS, 2)
    np.testing.assert_array_equal(np.bincount(y), repeats * np.bincount(data.y))
    # each refit's model scores its held-out fold differently from a fit on every row
    whole = analysis.refits.shipped.policies["ml"]
    assert not np.allclose(np.sort(proba[:, 1]), np.sort(_raw(whole, data.frame)[:, 1]))


def test_a_calibrated_model_ships_the_calibration_fitted_out_of_fold():
    """The main fit chose to calibrate: the shipped scaling is the one fitted on the refits'
    out-of-fold raw probabilities, not the main fit's (fitted on its validation split)."""
    case = _case(refits=3)
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    policies = fit_policies(case, split, spec)
    main = policies["ml"]
    main.calibrator_ = Calibrator(2, main.seed).fit(_raw(main, split.valid.frame), split.valid.y)
    main.calibration_ = {"method": "platt"}
    refits = cross_fit(case, data, lambda s, fs: fit_policies(case, s, fs))
    shipped = ship(case, data, policies, len(split.train), refits.fits, refits.raw)
    model = shipped.policies["ml"]
    proba, y = refits.raw["ml"]
    own = Calibrator(2, main.seed).fit(proba, y)
    np.testing.assert_allclose(model.calibrator_.model_.coef_, own.model_.coef_)
    np.testing.assert_allclose(model.calibrator_.model_.intercept_, own.model_.intercept_)
    assert not np.allclose(model.calibrator_.model_.coef_, main.calibrator_.model_.coef_)
    record = shipped.models["ml"]
    assert record.calibration == "platt" and record.calibration_rows == len(y) == ROWS


def test_the_rule_list_is_the_chosen_kind_and_length_grown_on_every_row(shipped_run):
    analysis, folder = shipped_run
    chosen = analysis.policies["rules"].estimator_
    bundled = load_policy(folder / "policies" / "rules")
    record = analysis.refits.shipped.rule_lists["rules"]
    assert (record.source, record.length) == (chosen.source_, chosen.length_)
    assert len(bundled.rules_) > 0  # a list with rules, not two empty ones compared
    data = load_dataset(analysis.case)
    spec = bundled.spec
    costs = analysis.case.costs
    grown = learn_rules(
        spec.clean(data.frame),
        {e.name: e.kind for e in spec.encoders_},
        data.y,
        costs.n_classes,
        costs.decisions,
        class_costs=costs.tensor()[0],
        max_rules=int(analysis.case.option("max_rules")),
        max_conditions=int(analysis.case.option("max_conditions")),
        random_state=analysis.case.seed,
        sources=(chosen.source_,),
        length=chosen.length_,
        name=bundled.rules_.name,
    )
    assert str(bundled.rules_) == str(grown.rules)


def test_the_bundles_monitor_figures_are_the_out_of_fold_ones(shipped_run):
    analysis, folder = shipped_run
    meta = json.loads((folder / "policies" / "ml" / "bundle.json").read_text())
    expected = meta["expected"]
    assert expected["split"] == "out-of-fold (cross-fitting)" and expected["rows"] == ROWS
    pooled = analysis.refits.calibration_gaps["ml"].to_dict()
    assert expected["calibration_gap"] == pytest.approx(pooled)
    test_gap = analysis.evaluation.policies["ml"].calibration_gap.estimate
    assert pooled["estimate"] != pytest.approx(test_gap)
    # and per band of the expected cost, out of fold: every scored row of every repeat in one
    # band, the bands' gaps weighed by their rows giving back the pooled gap
    bands = expected["calibration_bands"]["bands"]
    assert expected["calibration_bands"] == analysis.refits.calibration_bands["ml"]
    rows = np.array([b["rows"] for b in bands])
    assert rows.sum() == analysis.refits.plan.repeats * ROWS
    gaps = np.array([b["estimate"] for b in bands])
    assert rows @ gaps / rows.sum() == pytest.approx(pooled["estimate"])
    # The decision mix the monitor expects is the refits' too, not the test split's.
    shares = analysis.refits.decision_shares
    for name in ("ml", "rules"):
        bundled = json.loads((folder / "policies" / name / "bundle.json").read_text())
        assert bundled["expected"]["decision_shares"] == pytest.approx(shares[name])
        assert sum(shares[name].values()) == pytest.approx(1.0)
    assert shares["ml"] != pytest.approx(dict(analysis.evaluation.policies["ml"].decision_shares))


def test_a_refit_s_gap_is_the_calibration_gap_of_its_rows():
    """`refit_rows` against the test-split implementation (`calibration_gaps`) on the same rows."""
    case = _case(refits=1)
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    policies = fit_policies(case, split, spec)
    test = split.test
    each = case.costs.cost_of_each_decision(test.y, test.frame)
    batches = {n: p.decide_batch(test.frame) for n, p in policies.items()}
    extras = refit_rows(policies, batches, test, each, case.costs, len(split.train))
    rows = np.arange(len(test))
    realised = {n: each[rows, b.codes] for n, b in batches.items()}
    probas = {n: policies[n].predict_proba(test.frame) for n in extras.gaps}
    codes = {n: b.codes for n, b in batches.items()}
    reference, _ = calibration_gaps(
        realised, codes, probas, case.costs, test.frame, Resampler(50, 0)
    )
    assert set(reference) == set(extras.gaps)
    for name, gap in extras.gaps.items():
        assert gap.mean() == pytest.approx(reference[name].estimate)
    assert extras.fits["ml"] == FoldFit(
        len(split.train), policies["ml"].n_trees_, policies["ml"].learning_rate_
    )
    for name, policy in policies.items():  # the counts against the labels `decide` gives
        labels = pd.Series(policy.decide(test.frame)).value_counts()
        counts = dict(zip(case.costs.decisions, extras.counts[name].tolist(), strict=True))
        assert counts == {d: int(labels.get(d, 0)) for d in case.costs.decisions}


def test_without_refits_the_main_fit_ships(tmp_path):
    analysis = analyse(_case(refits=1))
    assert analysis.refits.shipped is None
    folder = Result.from_analysis(analysis).save(tmp_path)
    bundled = load_policy(folder / "policies" / "ml")
    assert bundled.version == analysis.policies["ml"].version
    meta = json.loads((folder / "policies" / "ml" / "bundle.json").read_text())
    scored = analysis.evaluation.policies["ml"]
    assert meta["expected"]["calibration_bands"] == scored.calibration_bands  # the test split's
    rows = np.array([b["rows"] for b in scored.calibration_bands["bands"]])
    gaps = np.array([b["estimate"] for b in scored.calibration_bands["bands"]])
    assert rows.sum() == analysis.evaluation.n_test
    assert rows @ gaps / rows.sum() == pytest.approx(scored.calibration_gap.estimate)
    frame = Part(frame=synthetic_frame(50, seed=9), y=np.zeros(50, dtype=int)).frame
    np.testing.assert_allclose(
        bundled.predict_proba(frame), analysis.policies["ml"].predict_proba(frame)
    )
