"""The maintenance model and the decision logic, on hand-made inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.errors import InputError
from advisor.maintenance import parse_assumptions, price_options
from advisor.recommend import (
    DAYS_PER_YEAR,
    Inputs,
    break_even_volume,
    choose,
    confidence,
    sensitivity,
)


def test_default_upkeep_matches_the_design_table():
    m = price_options({}, retrains_per_month=2, horizon_years=2)
    assert m["ship-rules"]["monthly_hours"] == 4 + 1
    assert m["batch-ml"]["monthly_hours"] == 4 * 2 + 8 + 8
    assert m["realtime-ml"]["monthly_hours"] == 4 * 2 + 12 + 12 + 24
    # batch: 24 h x 100 + 200 infra = 2,600 a month; build 4 weeks x 40 h x 100 = 16,000 over 2 years.
    assert m["batch-ml"]["annual_cost"] == pytest.approx(12 * 2600 + 16000 / 2)
    assert m["realtime-ml"]["one_off"] == 8 * 40 * 100


def test_assumption_overrides_and_their_errors():
    over = parse_assumptions({"hourly_rate": 150, "batch-ml": {"infrastructure_per_month": 0}})
    m = price_options(over, retrains_per_month=1, horizon_years=1)
    assert m["batch-ml"]["monthly_cost"] == (4 + 8 + 8) * 150
    assert m["assumptions"]["batch-ml.infrastructure_per_month"] == {
        "value": 0.0,
        "default": 200,
        "unit": "money/month",
        "description": "Infrastructure (batch-ml)",
    }
    with pytest.raises(InputError, match="assumptions: unknown key 'gpu_hours'"):
        parse_assumptions({"gpu_hours": 3})
    with pytest.raises(
        InputError, match=r"assumptions.batch-ml.serving_hours: expected a number >= 0"
    ):
        parse_assumptions({"batch-ml": {"serving_hours": -1}})
    with pytest.raises(InputError, match="unknown item 'coffee'"):
        parse_assumptions({"realtime-ml": {"coffee": 1}})


def _inputs(rules=8.0, ml=5.0, base=10.0, sd=0.2, n=2000, **kw) -> Inputs:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, sd, n)
    series = lambda m: np.concatenate([[m], m + noise + rng.normal(0, sd / 4, n)])  # noqa: E731
    defaults = dict(
        decisions_per_day=1000.0,
        upkeep={"ship-rules": 10_000.0, "batch-ml": 40_000.0, "realtime-ml": 100_000.0},
        timing="periodic",
        precomputable=True,
        budget_ms=50.0,
        ml_p99_ms=2.0,
        rules_p99_ms=0.1,
        enrol_days=10.0,
        max_experiment_days=90.0,
        capture_target=0.9,
    )
    defaults.update(kw)
    return Inputs(base=series(base), rules=series(rules), ml=series(ml), **defaults)


def test_clear_ml_gain_gives_batch_then_realtime_when_live_and_not_precomputable():
    assert choose(_inputs())[0] == "batch-ml"
    assert choose(_inputs(timing="live", precomputable=True))[0] == "batch-ml"
    assert choose(_inputs(timing="live", precomputable=False))[0] == "realtime-ml"
    # Too slow for the budget: say so through the facts and fall back to the rules.
    option, facts = choose(_inputs(timing="live", precomputable=False, ml_p99_ms=80.0))
    assert option == "ship-rules" and not facts["ml_feasible"]


@pytest.mark.parametrize(
    ("kw", "holds"),
    [
        ({"rules": 5.2}, lambda f: f["capture_reached"]),  # rules capture (10-5.2)/(10-5) = 96 %
        ({"decisions_per_day": 5.0}, lambda f: f["extra_net"] <= 0),  # upkeep outweighs value
        ({"enrol_days": 400.0}, lambda f: not f["confirmable"]),
        ({"ml": 7.95, "sd": 2.0}, lambda f: not f["difference_clear"]),
    ],
)
def test_each_rules_first_condition_alone_ships_the_rules(kw, holds):
    option, facts = choose(_inputs(**kw))
    assert option == "ship-rules"
    assert holds(facts)
    others = {k: v for k, v in facts.items() if k in ("capture_reached", "confirmable")}
    assert sum(not v if k == "confirmable" else v for k, v in others.items()) <= 1


def test_break_even_volume_is_where_extra_net_value_is_zero():
    inp = _inputs()
    v = break_even_volume(inp)
    extra_upkeep = 40_000 - 10_000
    assert v == pytest.approx(extra_upkeep / (3.0 * DAYS_PER_YEAR))
    at = Inputs(**{**inp.__dict__, "decisions_per_day": v})
    nets = at.nets()
    assert nets["batch-ml"][0] - nets["ship-rules"][0] == pytest.approx(0, abs=1e-6)
    assert break_even_volume(_inputs(ml=9.0, rules=8.0)) is None


def test_confidence_and_sensitivity():
    inp = _inputs()
    assert confidence(inp, "batch-ml") == 1.0
    table = {(r["factor"], r["multiplier"]): r["option"] for r in sensitivity(inp)}
    assert table[("volume", 2.0)] == "batch-ml"
    assert choose(_inputs(decisions_per_day=12.0))[0] == "ship-rules"  # break-even is ~27/day
    flips = {
        (r["factor"], r["multiplier"]): r["option"]
        for r in sensitivity(_inputs(decisions_per_day=40.0))
    }
    assert flips[("volume", 0.5)] == "ship-rules" and flips[("volume", 2.0)] == "batch-ml"
    assert flips[("maintenance", 2.0)] == "ship-rules"
