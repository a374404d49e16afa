"""Refit-aware evaluation: cross-fitting without a time column, rolling-origin backtests with
one; the pooled out-of-fold costs feed the recommendation, with p_best over resamples and
refits, and the stability of the whole procedure across refits."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import advisor
from advisor.analysis.crossfit import (
    BACKTEST_MAX_ROWS,
    CROSSFIT_MAX_ROWS,
    RepeatResampler,
    cross_fit,
    plan_refits,
    refit_replicates,
)
from advisor.core.errors import InputError
from advisor.stats.bootstrap import Resampler, bootstrap_means
from tests.conftest import synthetic_frame

COSTS = {"fp": 10, "fn": 100, "tp": 30}


def test_the_plan_adapts_to_size_and_the_knob():
    assert plan_refits(5000, False, 10).method == "cross-fitting"
    assert (plan_refits(5000, False, 10).folds, plan_refits(5000, False, 10).repeats) == (5, 2)
    assert (plan_refits(5000, False, 3).folds, plan_refits(5000, False, 3).repeats) == (3, 1)
    assert plan_refits(5000, True, 10).cuts == 4
    assert plan_refits(5000, True, 2).refits == 2
    assert plan_refits(5000, False, 1).refits == 0
    big = plan_refits(CROSSFIT_MAX_ROWS + 1, False, 10)
    assert big.method == "single split" and f"{CROSSFIT_MAX_ROWS:,}" in big.reason
    assert plan_refits(CROSSFIT_MAX_ROWS + 1, True, 10).method == "rolling-origin backtest"
    assert plan_refits(BACKTEST_MAX_ROWS + 1, True, 10).method == "single split"


def test_one_repeat_is_the_plain_row_bootstrap():
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(1, 500, 3))
    resampler = Resampler(300, 7)
    np.testing.assert_allclose(
        refit_replicates(pooled, resampler), bootstrap_means(pooled[0], 300, 7)
    )


def test_the_replicates_carry_refit_to_refit_variation():
    """Two repeats that disagree by 1.0 on every row: a row bootstrap of either repeat alone
    would give a zero-width interval; the pooled replicates hold both repeats, about half each."""
    rows = np.full((200, 1), 5.0)
    pooled = np.stack([rows, rows + 1.0])
    reps = refit_replicates(pooled, Resampler(2000, 3))[:, 0]
    assert set(np.unique(reps)) == {5.0, 6.0}
    assert 0.45 < (reps == 6.0).mean() < 0.55


def test_the_ab_plans_resampler_of_stacked_repeats_is_the_refit_replicates():
    """The A/B plan reads the repeats stacked one after another: its effect interval resamples
    them as the pooled costs do (rows and a repeat per replicate), not as independent rows."""
    rng = np.random.default_rng(1)
    pooled = rng.normal(size=(3, 400, 2)) + np.array([0.0, 1.0, 2.0])[:, None, None]
    resampler = Resampler(500, 11)
    stacked = RepeatResampler(resampler, 3).means(pooled.reshape(1200, 2))
    np.testing.assert_allclose(stacked, refit_replicates(pooled, resampler))
    rows_only = bootstrap_means(pooled.reshape(1200, 2), 500, 11)
    assert stacked[:, 0].std() > 3 * rows_only[:, 0].std()


def _advise(frame, **kwargs) -> advisor.Result:
    return advisor.advise(
        frame, target="outcome", costs=COSTS, bootstrap_resamples=200, seed=1, **kwargs
    )


@pytest.fixture(scope="module")
def crossfitted():
    return _advise(synthetic_frame(900), refits=4)


def test_cross_fitting_scores_every_row_once_per_repeat(crossfitted):
    refits = crossfitted.data["refits"]
    assert refits["plan"]["method"] == "cross-fitting"
    assert (refits["plan"]["folds"], refits["plan"]["repeats"]) == (4, 1)
    periods = refits["periods"]
    assert len(periods) == 4 and refits["rows_scored"] == 900
    assert sum(p["rows"] for p in periods) == 900
    assert all(p["trained_on"] + p["rows"] == 900 for p in periods)
    # the pooled figure is the row-weighted mean of the folds' own figures
    for role, policy in (("baseline", "baseline"), ("treatment", "ml")):
        pooled = sum(p["rows"] * p["cost_per_decision"][policy] for p in periods) / 900
        assert refits["cost_per_decision"][role]["estimate"] == pytest.approx(pooled)
    control = sum(p["rows"] * p["cost_per_decision"][p["control"]] for p in periods) / 900
    assert refits["cost_per_decision"]["control"]["estimate"] == pytest.approx(control)


def test_the_recommendation_reads_the_pooled_figures_and_its_stability(crossfitted):
    rec = crossfitted.data["recommendation"]
    refits = crossfitted.data["refits"]
    options = [p["option"] for p in refits["periods"]]
    assert rec["stability"] == pytest.approx(np.mean([o == rec["option"] for o in options]))
    assert refits["stability"] == rec["stability"]
    assert "cross-fitting repeats" in rec["p_best_includes"]
    base = refits["cost_per_decision"]["baseline"]["estimate"]
    ml = refits["cost_per_decision"]["treatment"]["estimate"]
    value = rec["options"]["batch-ml"]["annual_value"]["estimate"]
    assert value == pytest.approx((base - ml) * 1000 * 365.25)  # 1000 decisions a day
    assert np.sign(value) == np.sign(base - ml)


def _pooled_saving(refits: dict) -> float:
    cost = refits["cost_per_decision"]
    return cost["control"]["estimate"] - cost["treatment"]["estimate"]


def _plan_reads_its_rows(plan: dict) -> None:
    """Rows where the arms decide alike cost the same, so the all-units difference is the
    triggered one times the trigger rate, whichever rows the plan read."""
    if plan.get("triggered"):
        triggered = plan["triggered"]
        assert triggered["trigger_rate"] * triggered["difference"] == pytest.approx(
            plan["all_units"]["difference"]
        )


def test_the_ab_plan_reads_the_pooled_out_of_fold_rows(crossfitted):
    plan = crossfitted.data["experiment"]
    assert plan["rows"] == "out-of-fold (cross-fitting)"
    assert plan["all_units"]["difference"] == pytest.approx(
        _pooled_saving(crossfitted.data["refits"])
    )
    _plan_reads_its_rows(plan)
    assert plan["variance_reduction"] is not None  # the out-of-fold covariate
    html = crossfitted.to_html()
    assert "rows the plan reads" in html and "pooled out-of-fold (cross-fitting) decisions" in html


def test_the_out_of_fold_arms_hold_every_row_scored_by_a_refit_that_never_saw_it():
    from advisor.analysis.pipeline import fit_policies
    from advisor.core.case import resolve_case
    from advisor.core.data import load_dataset

    case = resolve_case(
        synthetic_frame(500), target="outcome", costs=COSTS, bootstrap_resamples=100, refits=5
    )
    data = load_dataset(case)
    refits = cross_fit(case, data, lambda split, spec: fit_policies(case, split, spec))
    arms = refits.arms
    assert arms.rows == "out-of-fold (cross-fitting)" and len(arms.control) == 500
    for role, costs in (("control", arms.control), ("treatment", arms.treatment)):
        assert costs.mean() == pytest.approx(refits.cost_per_decision[role].estimate)
    # where the two decide alike their costs are equal; the covariate is the model's own
    np.testing.assert_array_equal(arms.control[~arms.disagree], arms.treatment[~arms.disagree])
    x_control, x_treatment = arms.expected
    assert (x_treatment <= x_control + 1e-9).all()  # ML picks its cheapest expected decision
    assert isinstance(arms.resampler, RepeatResampler)


def test_a_single_split_has_no_refits():
    result = _advise(synthetic_frame(400), refits=1)
    assert result.data["refits"]["plan"]["method"] == "single split"
    assert result.data["recommendation"]["stability"] is None
    plan, policies = result.data["experiment"], result.data["evaluation"]["policies"]
    assert plan["rows"] == "test split"
    test_saving = (
        policies[plan["control"]]["cost_per_decision"]["estimate"]
        - policies[plan["treatment"]]["cost_per_decision"]["estimate"]
    )
    assert plan["all_units"]["difference"] == pytest.approx(test_saving)
    _plan_reads_its_rows(plan)


def test_a_backtest_scores_later_periods_each_refitted_on_earlier_rows():
    frame = synthetic_frame(1200, with_time=True)
    result = _advise(frame, time="when", refits=3)
    refits = result.data["refits"]
    assert refits["plan"]["method"] == "rolling-origin backtest"
    periods = refits["periods"]
    assert len(periods) == 3
    assert sum(p["rows"] for p in periods) == refits["rows_scored"] == 600
    trained = [p["trained_on"] for p in periods]
    assert trained == sorted(trained) and trained[0] == 600
    assert all(
        p["trained_on"] + p["rows"] == q["trained_on"] for p, q in itertools.pairwise(periods)
    )
    starts = [p["label"].split(" to ")[0] for p in periods]
    assert starts == sorted(starts)
    assert "backtest periods" in result.data["recommendation"]["p_best_includes"]
    plan = result.data["experiment"]
    assert plan["rows"] == "out-of-fold (rolling-origin backtest)"
    assert plan["all_units"]["difference"] == pytest.approx(_pooled_saving(refits))
    _plan_reads_its_rows(plan)


def test_an_expert_rule_on_a_dropped_date_column_exits_naming_it(tmp_path):
    frame = synthetic_frame(600)
    when = pd.Series(pd.date_range("2023-01-01", periods=600, freq="D"))
    frame["when"], frame["month"] = when.astype(str), when.dt.month
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'default: "no"\nrules:\n  - when: plan == "basic"\n    decide: "yes"\n'
        '  - when: month >= 2\n    decide: "yes"\n'
    )
    with pytest.raises(InputError) as caught:
        _advise(frame, time="when", rules=rules)
    text = str(caught.value)
    assert "rule 2 reads column 'month'" in text and "only encodes the date" in text
    assert str(rules) in text and "time_features: keep" in text
    kept = _advise(frame, time="when", rules=rules, time_features="keep")
    assert "expert-rules" in kept.data["evaluation"]["policies"]


def test_the_refits_are_valid_json_read_back_and_shown_in_the_report(crossfitted):
    import json

    import jsonschema

    from advisor.analysis.crossfit import Refits
    from advisor.artefacts.schemas import schema

    payload = json.loads(crossfitted.to_json())
    validator = jsonschema.Draft202012Validator(schema("result"))
    assert [e.message for e in validator.iter_errors(payload)] == []
    assert Refits.from_dict(payload["refits"]).to_dict() == payload["refits"]
    from advisor.artefacts.run import policy_files

    files = policy_files(crossfitted.to_dict(), crossfitted.policies, crossfitted.reference)
    bundle = json.loads(files["policies/ml/bundle.json"])
    assert bundle["expected"]["split"] == "out-of-fold (cross-fitting)"
    assert bundle["expected"]["rows"] == 900
    assert bundle["expected"]["cost_per_decision"] == payload["refits"]["policies"]["ml"]
    assert (
        payload["refits"]["policies"]["ml"] == payload["refits"]["cost_per_decision"]["treatment"]
    )
    html = crossfitted.to_html()
    assert "Same answer across refits" in html and "repeat 1, fold 4" in html


def test_with_a_time_column_the_bundles_expect_the_latest_periods_cost():
    """Outcomes that turn worse over time: each bundle's expected cost (the monitor's offline
    reference) is the latest backtest period's, not the pooled periods'. The constant 'call'
    costs 10 + 20 x the share of 'yes' (closed form), on the latest period's rows."""
    import json

    from advisor.artefacts.run import policy_files

    frame = synthetic_frame(2000, seed=3, with_time=True)
    rng = np.random.default_rng(4)
    rate = np.linspace(0.15, 0.85, len(frame))  # every rate above 0.125: the constant calls
    frame["outcome"] = np.where(rng.random(len(frame)) < rate, "yes", "no")
    result = _advise(frame, time="when", refits=4)
    refits = result.data["refits"]
    latest = refits["latest_period"]
    assert latest["label"] == refits["periods"][-1]["label"] and latest["rows"] == 250
    last = frame.sort_values("when").tail(250)
    share = float((last["outcome"] == "yes").mean())
    baseline = latest["cost_per_decision"]["baseline"]
    assert baseline["estimate"] == pytest.approx(10 + 20 * share)
    assert baseline["low"] < baseline["estimate"] < baseline["high"]
    whole = frame.sort_values("when").tail(1000)
    pooled = refits["policies"]["baseline"]["estimate"]
    assert pooled == pytest.approx(10 + 20 * float((whole["outcome"] == "yes").mean()))
    assert baseline["estimate"] > refits["policies"]["baseline"]["high"]
    files = policy_files(result.to_dict(), result.policies, result.reference)
    for name in ("baseline", "ml"):
        expected = json.loads(files[f"policies/{name}/bundle.json"])["expected"]
        assert expected["cost_per_decision"] == latest["cost_per_decision"][name]
        assert expected["split"] == f"latest backtest period ({latest['label']})"
        assert expected["rows"] == 250 and "latest backtest period" in expected["rule"]
    gap = json.loads(files["policies/ml/bundle.json"])["expected"]["calibration_gap"]
    assert gap == refits["calibration_gaps"]["ml"]  # the gap still pools every period


def test_without_a_time_column_the_bundles_expect_the_pooled_cost(crossfitted):
    import json

    from advisor.artefacts.run import policy_files

    assert "latest_period" not in crossfitted.data["refits"]
    files = policy_files(crossfitted.to_dict(), crossfitted.policies, crossfitted.reference)
    expected = json.loads(files["policies/ml/bundle.json"])["expected"]
    assert expected["cost_per_decision"] == crossfitted.data["refits"]["policies"]["ml"]
    assert "rule" not in expected
