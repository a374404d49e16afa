"""The report: every section renders from the payload alone, charts are small accessible SVG,
and text from the data is always escaped."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

import advisor
from advisor.analysis.explain import (
    THRESHOLD_GRID,
    _threshold_costs,
    calibration_curve,
    effective_threshold,
    explained_class,
)
from advisor.artefacts.result import Result
from advisor.cli.main import main
from advisor.core.costs import CostMatrix
from advisor.report import charts, render_report, render_summary
from advisor.report.render import SECTIONS, _sections
from advisor.stats.large_sample import NORMAL_INTERVAL

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def small_result() -> Result:
    """The whole pipeline on the small synthetic binary case."""
    return advisor.advise(
        synthetic_frame(),
        target="outcome",
        costs={"fp": 10, "fn": 100, "tp": 30},
        volume="500 per day",
        seed=3,
    )


def fake_recommendation() -> dict:
    """A recommendation payload shaped as the recommendation stage writes it."""
    iv = lambda e, lo, hi: {"estimate": e, "low": lo, "high": hi}  # noqa: E731
    return {
        "option": "batch-ml",
        "headline": "Ship a batch ML model: it nets 12,000 USD a year more than the rules.",
        "reasons": ["The rules capture 60% of ML's value.", "An A/B test confirms it in 9 days."],
        "p_best": 0.87,
        "p_best_by_option": {"ship-rules": 0.13, "batch-ml": 0.87},
        "p_best_includes": "paired resamples of the rows that score the options",
        "tied": False,
        "tie_rule": "no option has the highest net value in 80% of the resamples",
        "top_two": {
            "options": ["batch-ml", "ship-rules"],
            "net_difference": iv(4000, 1000, 7000),
        },
        "procedure_option": "batch-ml",
        "break_even": {"volume_per_day": 123.4, "flips_to": "ship-rules", "reason": None},
        "rules_policy": "rules",
        "options": {
            "ship-rules": {
                "policy": "rules",
                "annual_value": iv(20000, 15000, 25000),
                "annual_upkeep": 8000,
                "net": iv(12000, 7000, 17000),
                "feasible": True,
                "note": None,
            },
            "batch-ml": {
                "policy": "ml",
                "annual_value": iv(58400, 50000, 66000),
                "annual_upkeep": 34400,
                "net": iv(24000, 15600, 31600),
                "feasible": True,
                "note": None,
            },
            "realtime-ml": {
                "policy": "ml",
                "annual_value": iv(58400, 50000, 66000),
                "annual_upkeep": 88000,
                "net": iv(-29600, -38000, -22000),
                "feasible": False,
                "note": "misses the latency budget",
            },
        },
        "sensitivity": [
            {"factor": "volume", "multiplier": 0.5, "option": "ship-rules"},
            {"factor": "maintenance", "multiplier": 2.0, "option": "batch-ml"},
        ],
        "currency": "USD",
    }


def fake_maintenance() -> dict:
    """A maintenance payload shaped as the maintenance stage writes it."""

    def option(hours: dict, money: float, one_off: float) -> dict:
        monthly = sum(hours.values())
        cost = monthly * 100 + money
        return {
            "monthly_hours": monthly,
            "hours_by_activity": hours,
            "monthly_money": money,
            "monthly_cost": cost,
            "one_off": one_off,
            "annual_cost": 12 * cost + one_off / 2,
        }

    return {
        "horizon_years": 2.0,
        "retrains_per_month": 1.0,
        "assumptions": {
            "hourly_rate": {
                "value": 120,
                "default": 100,
                "unit": "money/hour",
                "description": "Cost of an engineer-hour",
            },
            "retrain_hours": {
                "value": 4,
                "default": 4,
                "unit": "hours",
                "description": "Hours per retrain",
            },
        },
        "ship-rules": option({"rule_review": 4, "monitoring": 1}, 0, 4000),
        "batch-ml": option({"retraining": 4, "monitoring": 8, "pipeline": 8}, 200, 16000),
        "realtime-ml": option({"retraining": 4, "monitoring": 12, "serving": 24}, 800, 32000),
    }


def headings(html: str) -> list[str]:
    return [h for h in re.findall(r"<h2>([^<]*)</h2>", html) if h != "Contents"]


def test_sections_follow_the_report_order_whatever_the_list_order():
    payload = {key: {} for key, _, _ in SECTIONS}
    ids = [s["id"] for s in _sections(payload)]
    assert ids[0] == "summary" and ids[-1] == "reproducibility"
    assert ids[1:3] == ["incumbent", "case"]  # what runs today answers the headline's question
    assert ids.index("model") < ids.index("comparison") < ids.index("maintenance")


def test_full_report_has_model_threshold_and_calibration(small_result: Result):
    html = small_result.to_html()
    assert "The ML model" in headings(html) and "Offline comparison" in headings(html)
    model = small_result.data["model"]
    assert model["shap"]["rows"] <= 2000
    assert all(len(d["shap"]) <= 300 for d in model["shap"]["dependence"])
    assert len(model["shap"]["dependence"]) == 3
    assert model["threshold"]["decision"] == "yes"
    assert "Cost against the decision threshold" in html
    assert "<script" not in html.lower()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count("<svg") >= 6 and html.count('role="img"') == html.count("<svg")
    assert small_result.data["experiment"]["available"]
    assert "Power of the A/B test against days of traffic" in html
    assert "Latency of one decision against the budget" in html


def test_threshold_curve_meets_the_ml_policy_at_its_threshold(small_result: Result):
    t = small_result.data["model"]["threshold"]
    # costs fp 10, fn 100, tp 30: act when P(yes) >= 10 / (10 + 70)
    assert t["ml_threshold"]["estimate"] == pytest.approx(10 / 80)
    assert not t["ml_threshold"]["varies"]
    assert len(t["grid"]) == len(t["cost_per_decision"]) == 101
    best = t["best"]
    assert best["chosen_on"] == "validation"
    at = t["grid"].index(best["threshold"])
    assert t["cost_per_decision"][at] == pytest.approx(best["cost_per_decision"])


@pytest.mark.parametrize("act", [0, 1])
def test_the_threshold_curves_costs_are_those_of_acting_at_each_threshold(act):
    """Sums in order of p give what acting on every row with p >= t costs, row by row:
    probabilities on the grid's own values (ties at t act) and between them, row costs."""
    rng = np.random.default_rng(4)
    n = 3000
    p = np.where(rng.random(n) < 0.5, np.round(rng.random(n), 2), rng.random(n))
    p[:5] = [0.0, 1.0, 0.5, 0.5, 0.29]
    each = rng.gamma(2.0, 10.0, size=(n, 2))
    acting = p[None, :] >= THRESHOLD_GRID[:, None]
    direct = np.where(acting, each[:, act], each[:, 1 - act]).mean(axis=1)
    np.testing.assert_allclose(_threshold_costs(p, each, act), direct, rtol=1e-12)


def test_calibration_bins_are_reliability_bins():
    rng = np.random.default_rng(0)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    cal = calibration_curve(np.column_stack([1 - p, p]), y)
    assert sum(b.count for b in cal.bins) == 5000
    assert all(abs(b.observed - b.mean_predicted) < 0.06 for b in cal.bins)
    assert cal.expected_calibration_error < 0.03
    three = calibration_curve(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]))
    assert three.target == "top" and three.bins[0].count == 4


def test_explained_class_and_row_dependent_thresholds():
    binary = CostMatrix.binary("no", "yes", fp=1, fn=5)
    assert explained_class(binary)[0] == 1
    three = CostMatrix.from_mapping(
        {
            "a": {"a": 0, "b": 1, "c": 1},
            "b": {"a": 50, "b": 0, "c": 2},
            "c": {"a": 3, "b": 3, "c": 0},
        }
    )
    assert explained_class(three)[0] == 1
    dependent = CostMatrix.from_mapping(
        {"no": {"skip": 0, "act": "0.1 * amount"}, "yes": {"skip": 100, "act": 0}},
        decisions=["skip", "act"],
    )
    frame = pd.DataFrame({"amount": [100.0, 300.0, 900.0]})
    t = effective_threshold(dependent, frame, act=1)
    assert (
        t.varies and t.low == pytest.approx(10 / 110) and t.high == pytest.approx(0.474, abs=1e-3)
    )


def test_multiclass_model_section_renders():
    frame = synthetic_frame(900, seed=5)
    frame["outcome"] = np.where(
        frame["age"] > 60, "old", np.where(frame["plan"] == "basic", "basic", "other")
    )
    result = advisor.advise(
        frame,
        target="outcome",
        costs={
            "matrix": {
                "basic": {"basic": 0, "old": 5, "other": 5},
                "old": {"basic": 40, "old": 0, "other": 40},
                "other": {"basic": 1, "old": 1, "other": 0},
            }
        },
    )
    model = result.data["model"]
    assert model["shap"]["explained_class"] == "old"
    assert model["threshold"] is None and model["calibration"]["target"] == "top"
    html = result.to_html()
    assert "The ML model" in headings(html) and "Cost against the decision threshold" not in html


def test_the_model_sections_interval_line_names_how_each_interval_was_found(
    small_result: Result,
):
    payload = copy.deepcopy(small_result.to_dict())
    html = render_report(payload)
    assert "Intervals from 2,000 bootstrap resamples; the ROC AUC's from DeLong" in html
    assert "normal interval of a mean" not in html
    payload["evaluation"]["mean_interval"] = NORMAL_INTERVAL
    html = render_report(payload)
    assert (
        "Intervals from 2,000 bootstrap resamples; accuracy's, Brier score's, log loss's and "
        "the calibration gaps' from the normal interval of a mean (at least 50,000 test rows"
        in html
    )


def test_executive_summary_and_maintenance_from_a_fake_payload(small_result: Result):
    payload = copy.deepcopy(small_result.to_dict())
    payload["recommendation"] = fake_recommendation()
    payload["maintenance"] = fake_maintenance()
    html = render_report(payload)
    h = headings(html)
    assert h[0] == "Executive summary" and "Maintenance" in h
    assert h.index("Maintenance") == len(h) - 2
    assert "Ship a batch ML model" in html and "87%" in html and "123" in html
    assert "Chance it is best" in html and "ship-rules 13%, batch-ml 87%" in html
    assert "Confidence" not in html
    assert "24,000 USD" in html and "−29,600 USD" in html and "misses the latency budget" in html
    assert "Net value per year of each option" in html and "Upkeep per year of each option" in html
    assert "(changed)" in html and "hourly_rate" in html
    card = render_summary(payload)
    assert "Ship a batch ML model" in card and "The three options, per year" in card
    assert "<h2>" not in card


def test_notebook_display_and_full_html(small_result: Result):
    card = small_result._repr_html_()
    assert "advisor-card" in card and "cost per decision" in card
    html = small_result.to_html()
    assert html.startswith("<!DOCTYPE html>") and len(html) > len(card)


def test_render_command_rebuilds_the_report_from_json_alone(small_result: Result, tmp_path: Path):
    src = tmp_path / "r.json"
    small_result.to_json(src)
    out = tmp_path / "again.html"
    res = CliRunner().invoke(main, ["render", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == small_result.to_html()


def test_html_in_column_names_and_values_appears_as_text():
    frame = synthetic_frame(600, seed=1).rename(columns={"plan": SCRIPT})
    rng = np.random.default_rng(0)
    hit = (frame["outcome"] == "yes") & (rng.random(len(frame)) < 0.7)
    frame["region"] = np.where(hit, IMG, frame["region"])  # a strong feature: SHAP shows it
    frame["outcome"] = frame["outcome"].map({"yes": "<b>yes</b>", "no": "no"})
    result = advisor.advise(
        frame, target="outcome", costs={"fp": 10, "fn": 100}, name="xss", question=SCRIPT
    )
    text = json.dumps(result.to_dict())
    assert IMG in text and SCRIPT in text and "<b>yes</b>" in text
    for html in (result.to_html(), result._repr_html_()):
        assert SCRIPT not in html and IMG not in html and "<b>yes" not in html
        assert "<script" not in html.lower() and "<img" not in html.lower()
    html = result.to_html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x" in html and "&lt;b&gt;yes&lt;/b&gt;" in html


def test_charts_are_accessible_small_and_escaped():
    svg = charts.line_chart(
        [{"name": SCRIPT, "x": [0, 0.5, 1], "y": [1, 2, 3]}],
        hlines=[{"name": IMG, "value": 2}],
        vlines=[{"name": "t", "value": 0.3}],
        title=SCRIPT,
        desc=IMG,
        x_label="x",
        y_label="y",
    )
    assert str(svg).count("<svg") == 1 and 'role="img"' in svg and "<title>" in svg
    assert SCRIPT not in svg and IMG not in svg and "&lt;script&gt;" in svg
    many = charts.scatter(
        list(np.linspace(0, 1, 300)),
        list(np.sin(np.linspace(0, 6, 300))),
        title="t",
        desc="d",
        x_label="x",
        y_label="y",
    )
    assert len(many) < 8000
    cats = charts.scatter(
        ["a", "b", IMG] * 10,
        list(range(30)),
        categories=["a", "b", IMG],
        title="t",
        desc="d",
        x_label="x",
        y_label="y",
    )
    assert IMG not in cats
    heat = charts.heat_table([IMG, "b"], ["x", "y"], [[1, 2], [3, 4]], title="t", desc="d")
    assert IMG not in heat and "<desc>d</desc>" in heat
    hist = charts.histogram(
        [{"low": 0, "high": 1, "count": 3}, {"low": 1, "high": 2, "count": 5}],
        markers=[{"name": "zero", "value": 0}],
        title="t",
        desc="d",
        x_label="x",
    )
    assert "<rect" in hist
    assert charts.nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert charts.tick_label(-12500) == "−12.5k"


@pytest.mark.parametrize("classes", [2, 3])
def test_shap_values_add_up_to_the_raw_score(classes):
    """Local accuracy, the defining property of SHAP: base value + contributions = raw score."""
    from advisor.analysis.explain import tree_shap
    from advisor.core.case import case_from_arguments
    from advisor.core.data import load_dataset, split_dataset
    from advisor.core.features import FeatureSpec
    from advisor.policies.ml import MLPolicy

    frame = synthetic_frame(1500, seed=classes)
    if classes == 3:
        frame["outcome"] = np.where(frame["age"] > 60, "old", frame["outcome"])
    labels = sorted(frame["outcome"].unique())
    matrix = {c: {d: float(c != d) * (1 + i) for d in labels} for i, c in enumerate(labels)}
    case = case_from_arguments(frame, target="outcome", costs={"matrix": matrix})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    ml = MLPolicy(case.costs, FeatureSpec(data.schema).fit(split.train.frame)).fit(
        split.train, split.valid
    )
    X = ml.spec.encode(split.test.frame.head(300))
    raw = ml.booster_.predict(X, num_iteration=ml.n_trees_, raw_score=True)
    for cls in range(classes if classes > 2 else 1):
        values, base = tree_shap(ml, X, cls)
        assert values.shape == X.shape
        expected = raw if raw.ndim == 1 else raw[:, cls]
        np.testing.assert_allclose(base + values.sum(axis=1), expected, atol=1e-9)
