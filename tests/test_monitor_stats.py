"""The monitor's statistics against independent references: exact binomial intervals against
statsmodels, the order-statistic interval of a percentile against its textbook ranks and its
coverage in simulation, the decision-mix test against the chi-square formula, bootstrap cost
intervals against the normal-theory interval (and wider when units repeat), the power so far
against statsmodels, and the error-rate rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advisor.core.costs import CostMatrix
from advisor.monitor import arms, measures
from advisor.monitor.alerts import Findings, _operations
from advisor.stats.power import analytical_power


def test_rates_carry_the_exact_clopper_pearson_interval():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 50), (3, 200), (120, 400), (50, 50)):
        got = measures.proportion(k, n)
        low, high = proportion_confint(k, n, alpha=0.05, method="beta")
        assert got["estimate"] == k / n
        assert got["low"] == pytest.approx(low, abs=1e-9)
        assert got["high"] == pytest.approx(high, abs=1e-9)


def test_a_percentile_interval_uses_the_textbook_ranks():
    x = np.arange(1.0, 101.0)  # the k-th order statistic is k
    median = measures.quantile_interval(x, 0.5)
    assert (median["low"], median["high"]) == (40.0, 61.0)  # n = 100: ranks 40 and 61


def test_the_p99_interval_covers_the_true_p99_at_least_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    truth = np.log(100.0)  # p99 of a standard exponential
    hits = [
        (lambda q: q["low"] <= truth <= q["high"])(
            measures.quantile_interval(rng.exponential(size=600), 0.99)
        )
        for _ in range(1000)
    ]
    assert np.mean(hits) >= 0.94


def test_the_decision_mix_test_is_pearsons_chi_square_of_both_samples():
    names = ["a", "b", "c"]
    offline = {"a": 0.5, "b": 0.3, "c": 0.2}
    window = pd.Series(["a"] * 40 + ["b"] * 40 + ["c"] * 20)
    got = measures.decision_mix(window, names, offline, 1000)
    table = np.array([[500.0, 300.0, 200.0], [40.0, 40.0, 20.0]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    assert got["chi2"] == pytest.approx(chi2)
    assert got["p_value"] == pytest.approx(stats.chi2.sf(chi2, 2))
    assert got["moved"] is False
    moved = measures.decision_mix(pd.Series(["c"] * 80 + ["a"] * 20), names, offline, 1000)
    assert moved["moved"] is True and moved["p_value"] < 1e-6


def _frame(costs: np.ndarray, units: np.ndarray) -> pd.DataFrame:
    """Rows whose realised cost under `COSTS` is `costs` (the column `x`)."""
    return pd.DataFrame({"decision": "act", "outcome": 0, "unit": units.astype(str), "x": costs})


COSTS = CostMatrix.from_mapping({"y": {"act": "x"}}, decisions=["act"])


def test_the_cost_interval_matches_normal_theory_and_widens_when_units_repeat():
    rng = np.random.default_rng(2)
    values = rng.normal(10.0, 4.0, 3000)
    rows = _frame(values, np.arange(3000))
    got = measures.cost(rows, COSTS, {"estimate": 10, "low": 9, "high": 11}, seed=0)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    c = got["cost_per_decision"]
    assert c["estimate"] == pytest.approx(values.mean())
    assert c["high"] - c["low"] == pytest.approx(2 * half, rel=0.1)
    assert got["position"] == "within" and got["waiting_share"] == 0.0
    # 300 units with 10 identical rows each: the information of 300 rows, not 3,000.
    clustered = _frame(np.repeat(values[:300], 10), np.repeat(np.arange(300), 10))
    wide = measures.cost(clustered, COSTS, None, seed=0)["cost_per_decision"]
    assert (wide["high"] - wide["low"]) / (c["high"] - c["low"]) == pytest.approx(
        np.sqrt(10), rel=0.15
    )


def test_the_cost_position_needs_both_intervals_apart():
    rows = _frame(np.full(100, 20.0) + np.linspace(-1, 1, 100), np.arange(100))
    above = measures.cost(rows, COSTS, {"estimate": 10, "low": 9, "high": 11}, seed=0)
    below = measures.cost(rows, COSTS, {"estimate": 30, "low": 29, "high": 31}, seed=0)
    within = measures.cost(rows, COSTS, {"estimate": 20, "low": 15, "high": 25}, seed=0)
    few = measures.cost(rows.head(10), COSTS, {"estimate": 10, "low": 9, "high": 11}, seed=0)
    assert [x["position"] for x in (above, below, within, few)] == [
        "above",
        "below",
        "within",
        "too few outcomes",
    ]


def test_the_effect_interval_matches_welch_and_the_power_matches_statsmodels():
    rng = np.random.default_rng(3)
    n = 4000
    arm = np.where(np.arange(n) % 2 == 0, "control", "treatment")
    x = np.where(arm == "control", rng.normal(10, 5, n), rng.normal(9, 5, n))
    rows = _frame(x, np.arange(n)).assign(arm=arm, policy=np.where(arm == "control", "r", "m"))
    plan = {
        "control": "r",
        "treatment": "m",
        "effect_size": 0.2,
        "design": "all units",
        "alpha": 0.05,
        "n_per_arm": 400,
    }
    got = arms.effect(rows, COSTS, plan, seed=0)
    c, t = x[arm == "control"], x[arm == "treatment"]
    se = np.sqrt(c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t))
    saving = got["saving"]
    assert saving["estimate"] == pytest.approx(c.mean() - t.mean())
    assert saving["high"] - saving["low"] == pytest.approx(2 * 1.96 * se, rel=0.1)
    (to_date,) = arms.split_to_date(rows, [n], plan, 0.5)
    assert to_date["srm"]["mismatch"] is False
    assert to_date["units"] == {"control": 2000, "treatment": 2000}
    assert to_date["power"]["reached"] == pytest.approx(analytical_power(0.2, 2000, 0.05, 0.5))
    from statsmodels.stats.power import TTestIndPower

    at_plan = arms.power_so_far(plan, {"control": "r", "treatment": "m"}, 400, 0.5)
    assert at_plan["reached"] == pytest.approx(
        TTestIndPower().power(effect_size=0.2, nobs1=400, alpha=0.05, ratio=1.0)
    )
    triggered = arms.power_so_far(
        plan | {"design": "triggered", "triggered": {"trigger_rate": 0.25}},
        {"control": "r", "treatment": "m"},
        400,
        0.5,
    )
    assert triggered["analysed_units"] == 100


def test_the_split_to_date_counts_units_once_and_window_by_window():
    arm = ["control", "treatment", "control", "treatment", "control", "control"]
    rows = _frame(np.zeros(6), np.array([1, 2, 1, 3, 2, 4])).assign(arm=arm, policy="p")
    rows["outcome"] = [0, -1, 0, 0, -1, 0]
    first, second = arms.split_to_date(rows, [3, 6], {}, 0.5)
    assert first["units"] == {"control": 1, "treatment": 1} and first["units_in_both_arms"] == 0
    assert second["units"] == {"control": 3, "treatment": 2} and second["units_in_both_arms"] == 1
    assert (first["control_units_with_outcomes"], second["control_units_with_outcomes"]) == (1, 2)
    assert second["srm"]["p_value"] == pytest.approx(stats.chisquare([3, 2]).pvalue)


def test_many_units_are_resampled_in_random_groups_with_the_same_interval():
    rng = np.random.default_rng(5)
    values = rng.exponential(10.0, 200_000)
    chosen = measures.resampler(pd.Series(np.arange(len(values))), seed=0)
    assert chosen.n_blocks == measures.MAX_GROUPS
    c = measures.cost(_frame(values, np.arange(len(values))), COSTS, None, seed=0)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    width = c["cost_per_decision"]["high"] - c["cost_per_decision"]["low"]
    assert width == pytest.approx(2 * half, rel=0.08)


def _errors(k: int, n: int) -> dict:
    return {"requests": n, "errors": measures.proportion(k, n)}


def test_a_rising_error_rate_alerts_and_a_steady_one_does_not():
    found = Findings()
    _operations(found, _errors(50, 1000), "w3", 5, 2000, [])  # 5 % after 0.25 %
    assert [a["kind"] for a in found.alerts.values()] == ["errors"]
    steady = Findings()
    _operations(steady, _errors(22, 1000), "w3", 40, 2000, [])  # 2.2 % after 2 %
    _operations(steady, _errors(12, 1000), "w1", 0, 0, [])  # 1.2 %: within tolerance
    assert steady.alerts == {}


def test_latency_alerts_only_when_more_than_one_percent_of_requests_are_over_budget():
    rng = np.random.default_rng(4)
    rows = pd.DataFrame({"decision": "a", "latency_ms": rng.exponential(20, 1000)})
    found = Findings()
    _operations(found, measures.operations(rows, 50.0), "w1", 0, 0, [])
    assert [a["kind"] for a in found.alerts.values()] == ["latency"]
    calm = Findings()
    _operations(calm, measures.operations(rows, 500.0), "w1", 0, 0, [])
    assert calm.alerts == {} and calm.notes == []


def test_the_latency_budget_is_judged_on_single_record_requests_not_batch_lines():
    """A batch's lines carry the whole batch's time: a slow 500-record batch beside fast single
    requests is no latency alert, and the single requests' p99 is what the budget reads."""
    rng = np.random.default_rng(5)
    single = rng.exponential(5, 1000)
    rows = pd.DataFrame(
        {
            "decision": "a",
            "latency_ms": np.concatenate([single, np.full(500, 400.0)]),
            "request_records": np.concatenate([np.ones(1000), np.full(500, 500.0)]),
        }
    )
    ops = measures.operations(rows, 50.0)
    latency = ops["latency"]
    assert ops["requests"] == 1500
    assert (latency["n"], latency["batch_lines_excluded"]) == (1000, 500)
    assert latency["over_budget"] == int((single > 50).sum())
    assert latency["p99_ms"] == measures.quantile_interval(single, 0.99)
    found = Findings()
    _operations(found, ops, "w1", 0, 0, [])
    assert found.alerts == {}
    old = rows.drop(columns="request_records")  # a log from before the field: every line is one
    assert measures.operations(old, 50.0)["latency"]["n"] == 1500
    loud = Findings()
    _operations(loud, measures.operations(old, 50.0), "w1", 0, 0, [])
    assert [a["kind"] for a in loud.alerts.values()] == ["latency"]


def test_the_scans_error_flag_counts_only_the_lines_with_an_error():
    rows = pd.DataFrame({"decision": ["a", "b", None, "c"], "error": [False, True, False, False]})
    text = rows.assign(error=[None, "timeout", None, " "])
    for frame in (rows, text):
        assert measures.operations(frame, None)["errors"]["k"] == 2
