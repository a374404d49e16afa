"""The maintenance model and the decision logic, on hand-made inputs whose answer is known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from advisor.analysis.economics import DAYS_PER_YEAR
from advisor.analysis.maintenance import price_options
from advisor.analysis.recommend import (
    Inputs,
    break_even,
    break_even_volume,
    choose,
    confidence,
    is_tie,
    sensitivity,
)
from advisor.analysis.wording import headline, settle
from advisor.core.assumptions import parse_assumptions
from advisor.core.errors import InputError


def test_default_upkeep_matches_the_design_table():
    m = price_options({}, retrains_per_month=2, horizon_years=2)
    assert m.option("ship-rules").monthly_hours == 4 + 1
    assert m.option("batch-ml").monthly_hours == 4 * 2 + 8 + 8
    assert m.option("realtime-ml").monthly_hours == 4 * 2 + 12 + 12 + 24
    # batch: 24 h x 100 + 200 infra = 2,600 a month; build 4 weeks x 40 h x 100 = 16,000 over 2 years.
    assert m.option("batch-ml").annual_cost == pytest.approx(12 * 2600 + 16000 / 2)
    assert m.option("realtime-ml").one_off == 8 * 40 * 100


def test_assumption_overrides_and_their_errors():
    over = parse_assumptions({"hourly_rate": 150, "batch-ml": {"infrastructure_per_month": 0}})
    m = price_options(over, retrains_per_month=1, horizon_years=1)
    assert m.option("batch-ml").monthly_cost == (4 + 8 + 8) * 150
    assert m.assumptions["batch-ml.infrastructure_per_month"].to_dict() == {
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
    assert option == "ship-rules" and not facts.ml_feasible


RULES_FIRST = {
    "capture_reached": lambda f: f.capture_reached,
    "extra_net": lambda f: f.extra_net <= 0,
    "confirmable": lambda f: not f.confirmable,
    "difference_clear": lambda f: not f.difference_clear,
}


@pytest.mark.parametrize(
    ("condition", "kw"),
    [
        # rules capture (10 − 5.4) / (10 − 5) = 92 %; ML still nets more and is confirmable
        (
            "capture_reached",
            {"rules": 5.4, "upkeep": {"ship-rules": 0.0, "batch-ml": 0.0, "realtime-ml": 0.0}},
        ),
        # the value of 3 a decision at 20 a day does not pay the 30,000 extra upkeep
        ("extra_net", {"decisions_per_day": 20.0, "enrol_days": 5.0}),
        ("confirmable", {"enrol_days": 400.0}),
        # a noisy test split: ML's 3 a decision cannot be told apart from zero
        ("difference_clear", {"sd": 8.0}),
    ],
)
def test_each_rules_first_condition_alone_ships_the_rules(condition, kw):
    base_option, base_facts = choose(_inputs())
    assert base_option == "batch-ml"
    assert not any(holds(base_facts) for holds in RULES_FIRST.values())
    option, facts = choose(_inputs(**kw))
    assert option == "ship-rules"
    assert [name for name, holds in RULES_FIRST.items() if holds(facts)] == [condition]


def test_break_even_volume_is_where_the_decision_flips():
    inp = _inputs()  # ML saves 3 a decision; 30,000 a year more upkeep; 10 days of traffic
    found = break_even(inp)
    # Two volume conditions: the extra net value turns positive at 30,000 / (3 × 365.25) =
    # 27.4 a day, and the test fits in 90 days from 1000 × 10 / 90 = 111.1 a day.
    assert found.volume_per_day == pytest.approx(1000 * 10 / 90, rel=1e-6)
    assert found.flips_to == "ship-rules" and found.verified
    above = Inputs(**{**inp.__dict__}).scaled("volume", found.volume_per_day * 1.001 / 1000)
    below = Inputs(**{**inp.__dict__}).scaled("volume", found.volume_per_day * 0.999 / 1000)
    assert choose(above)[0] == "batch-ml" and choose(below)[0] == "ship-rules"
    quick = _inputs(enrol_days=0.5)  # confirmable at any volume above 5.6 a day
    assert break_even_volume(quick) == pytest.approx(30_000 / (3.0 * DAYS_PER_YEAR), rel=1e-6)
    # When the rules capture nearly all of ML's value, no volume flips the answer: say why.
    none = break_even(_inputs(rules=5.1))
    assert none.volume_per_day is None and "volume scales both alike" in none.reason


def test_confidence_reruns_the_whole_procedure_on_each_resample():
    inp = _inputs()
    assert confidence(inp, "batch-ml") == 1.0
    # The rules capture (10 − 5.5) / (10 − 5) = 90 % of ML's value: right on the target, so
    # the capture condition alone decides each resample. Upkeep is zero, so the option with
    # the highest net value is ML in nearly every resample: the old measure said ~100 %.
    free = {"ship-rules": 0.0, "batch-ml": 0.0, "realtime-ml": 0.0}
    close = _inputs(rules=5.5, upkeep=free)
    option = choose(close)[0]
    capture = (close.base[1:] - close.rules[1:]) / (close.base[1:] - close.ml[1:])
    same = capture >= 0.9 if option == "ship-rules" else capture < 0.9
    assert confidence(close, option) == pytest.approx(same.mean())
    assert 0.2 < confidence(close, option) < 0.8
    nets = close.nets()
    assert np.mean(nets["batch-ml"][1:] > nets["ship-rules"][1:]) > 0.99


def test_a_tie_is_reported_as_a_tie():
    flat = _inputs(rules=10.0, ml=10.0, base=10.0, sd=0.0)
    assert is_tie(flat) and confidence(flat, choose(flat)[0]) is None


def test_sensitivity_table():
    inp = _inputs()
    table = {(r.factor, r.multiplier): r.option for r in sensitivity(inp)}
    assert table[("volume", 2.0)] == "batch-ml"
    flips = {
        (r.factor, r.multiplier): r.option
        for r in sensitivity(_inputs(decisions_per_day=150.0, enrol_days=10.0 * 1000 / 150))
    }
    assert flips[("volume", 0.5)] == "ship-rules" and flips[("volume", 2.0)] == "batch-ml"


def _headline(inp, **kw):
    option, facts = choose(inp)
    context = {"rules_name": "rules", "base_decision": "approve", "confidence": 0.95} | kw
    return option, headline(option, facts, inp, "USD", **context)


def test_when_no_option_pays_for_itself_the_headline_says_so_first():
    option, text = _headline(_inputs(decisions_per_day=2.0))  # 2 a day: upkeep dwarfs value
    assert option == "ship-rules"
    assert text.startswith(
        "No option clearly pays for its upkeep here: the best, ship-rules, nets −"
    )
    assert "Ship the rules:" in text
    _, paying = _headline(_inputs())
    assert paying.startswith("Ship a batch ML model:")


def test_the_constant_decision_shipped_is_named_in_words():
    option, text = _headline(_inputs(rules=10.0, ml=9.99, sd=0.5), rules_name="baseline")
    assert option == "ship-rules"
    assert text == (
        "Keep it simple: always approve; neither a rule list nor a model pays for its upkeep here."
    )


def test_low_confidence_leans_and_says_what_would_settle_it():
    _, text = _headline(_inputs(), confidence=0.55)
    assert text.startswith("Lean towards “Ship a batch ML model”, but the data cannot separate")
    assert "holds in 55% of resamples" in text
    test = SimpleNamespace(
        confirmable_within_max_days=True, n_per_arm=1234, days_needed=40.0, max_experiment_days=90
    )
    plan = SimpleNamespace(test=test)
    assert "Or run the A/B test: 1,234 units per arm, 40 days" in settle(0.55, plan, 2000)
    assert "2,000 test rows" in settle(0.55, plan, 2000)
    assert settle(0.95, plan, 2000) is None
    _, tie = _headline(_inputs(), confidence=None)
    assert tie.startswith("The data cannot tell the options apart (a tie).")


def test_the_headline_counts_days_until_the_answer_on_the_cautious_size():
    inp = _inputs(enrol_days=10.0, label_delay_days=30.0)
    _, text = _headline(inp)
    assert "sized on the cautious end of the saving's interval" in text
    assert "within 40 days (10 of traffic plus 30 until the outcomes are known)" in text


def test_a_test_sized_on_the_cautious_end_scales_with_it_in_every_resample():
    # Sized on half the saving: a replicate whose saving is 1 lower loses 1 of the 1.5 sized for.
    from advisor.analysis.recommend import procedure

    inp = _inputs(enrol_days=10.0, sized_fraction=0.5)
    _, facts = procedure(inp)
    saving = inp.rules - inp.ml
    moved = 0.5 * saving[0] + saving - saving[0]
    days = np.where(moved > 0, 10.0 * (0.5 * saving[0] / moved) ** 2, np.inf)
    assert np.array_equal(facts["confirmable"], days <= inp.max_experiment_days)
