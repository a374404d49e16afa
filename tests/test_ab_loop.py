"""One experiment from plan to readout: the monitor reads the A/B test the plan sized, on the
units its design analyses, with the always-valid readout, and reading it after every daily
window keeps the false-positive rate at alpha (a null that exercises the triggered design:
two different policies whose decisions cost the same in expectation wherever they differ)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from production import outcomes, simulate, test_rows, write_log
from scipy import stats

from advisor.core.costs import CostMatrix
from advisor.monitor import arms, monitor

COSTS = CostMatrix.from_mapping(
    {"good": {"approve": 0, "decline": 30}, "bad": {"approve": 100, "decline": 30}},
    decisions=["approve", "decline"],
)
PLAN = {"design": "triggered", "alpha": 0.05, "sequential": {"tuning": 3000.0}}
DAYS, PER_DAY, TRIGGER = 30, 200, 0.4


def triggered_log(rng: np.random.Generator, bad_where_they_differ: float) -> pd.DataFrame:
    """30 days of a 50 % test: where the policies differ (40 %), control approves and treatment
    declines; elsewhere both approve. Declining costs 30; approving costs 100 on a bad outcome,
    so the arms cost the same where they differ when a bad outcome has probability 0.3."""
    n = DAYS * PER_DAY
    differ = rng.random(n) < TRIGGER
    treated = rng.random(n) < 0.5
    bad = np.where(differ, rng.random(n) < bad_where_they_differ, rng.random(n) < 0.2)
    control = np.full(n, "approve", dtype=object)
    treatment = np.where(differ, "decline", "approve").astype(object)
    return pd.DataFrame(
        {
            "unit": np.arange(n).astype(str),
            "arm": np.where(treated, "treatment", "control"),
            "decision": np.where(treated, treatment, control),
            "control_decision": control,
            "treatment_decision": treatment,
            "outcome": np.where(bad, COSTS.class_index("bad"), COSTS.class_index("good")),
        }
    )


def daily_ends() -> list[int]:
    return [PER_DAY * (d + 1) for d in range(DAYS)]


def test_the_readout_analyses_only_the_units_where_the_arms_decide_differently():
    log = triggered_log(np.random.default_rng(0), 0.3)
    (last,) = arms.readout_to_date(log, [len(log)], PLAN, COSTS)
    differ = log["control_decision"] != log["treatment_decision"]
    assert last["design"] == "triggered"
    assert sum(last["analysed"].values()) == int(differ.sum())
    (plain,) = arms.readout_to_date(log, [len(log)], PLAN | {"design": "all-units"}, COSTS)
    assert plain["design"] == "all units" and sum(plain["analysed"].values()) == len(log)
    without = log.drop(columns=["control_decision", "treatment_decision"])
    (fallback,) = arms.readout_to_date(without, [len(log)], PLAN, COSTS)
    assert fallback["design"].startswith("all units (the log does not say")


def null_test(rng: np.random.Generator, bad: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The analysed (triggered) units of one test of `triggered_log`, as numbers: arm, cost
    and position in time, drawn directly (the monitor's selection is tested above)."""
    n = DAYS * PER_DAY
    position = np.flatnonzero(rng.random(n) < TRIGGER)
    treated = rng.random(len(position)) < 0.5
    approve = np.where(rng.random(len(position)) < bad, 100.0, 0.0)
    return treated, np.where(treated, 30.0, approve), position


def test_the_monitor_readout_is_its_numeric_core_on_the_log():
    log = triggered_log(np.random.default_rng(3), 0.3)
    reads = arms.readout_to_date(log, daily_ends(), PLAN, COSTS)
    differ = (log["control_decision"] != log["treatment_decision"]).to_numpy()
    codes = np.where(log["decision"] == "approve", 0, 1)
    cost = COSTS.realised(log["outcome"].to_numpy(), codes, log)
    core = arms.sequence_readouts(
        (log["arm"] == "treatment").to_numpy()[differ],
        cost[differ],
        np.flatnonzero(differ),
        daily_ends(),
        3000.0,
        0.05,
    )
    assert [r["effect"] for r in reads] == [r["effect"] for r in core]
    assert [r["decision"] for r in reads] == [r["decision"] for r in core]


def test_reading_the_triggered_test_every_day_holds_alpha():
    # 200 tests per seed, 5 seeds pooled, each read after each of 30 daily windows.
    ever, tests = 0, 0
    for seed in range(5):
        rng = np.random.default_rng(1000 + seed)
        for _ in range(200):
            reads = arms.sequence_readouts(*null_test(rng, 0.3), daily_ends(), 3000.0, 0.05)
            ever += any(r["decision"] != "not yet" for r in reads)
            tests += 1
    assert reads[-1]["looks"] == DAYS
    assert ever / tests <= stats.binom.ppf(0.99, tests, 0.05) / tests


def test_a_truly_worse_treatment_is_caught_and_the_days_to_the_alert_are_counted():
    rng = np.random.default_rng(7)
    days = []
    for _ in range(50):  # declining where a bad outcome has probability 0.15: 15 worse
        reads = arms.sequence_readouts(*null_test(rng, 0.15), daily_ends(), 3000.0, 0.05)
        worse = [r["looks"] for r in reads if r["decision"] == "worse"]
        assert not any(r["decision"] == "better" for r in reads)
        days.append(worse[0] if worse else None)
    caught = [d for d in days if d is not None]
    assert len(caught) == 50
    assert 1 <= np.median(caught) <= 10


@pytest.fixture(scope="module")
def worse_run(credit_run, tmp_path_factory):
    """The service's log of a test where the treatment is truly worse: the rule list as the
    treatment of the model it lost to on the test split (both arms decide every unit)."""
    tmp = tmp_path_factory.mktemp("worse")
    rows = test_rows("credit-scoring")
    log = simulate(credit_run, rows, "Status", days=8, per_day=300, control="ml", treatment="rules")
    inputs = [c for c in rows.columns if c != "Status"]
    write_log(log, tmp / "log", inputs)
    known = outcomes(log, "Status", now="2026-03-10", delay_days=0, arrived=1.0)
    known.to_csv(tmp / "outcomes.csv", index=False)
    return tmp


def test_monitor_raises_treatment_worse_once_from_the_readout(credit_run, worse_run):
    found = monitor(credit_run, worse_run / "log", worse_run / "outcomes.csv", window="1d").payload
    worse = [a for a in found["alerts"] if a["kind"] == "treatment_worse"]
    assert len(worse) == 1 and len(worse[0]["windows"]) == 1  # once, at its first window
    assert found["verdict"]["verdict"] == "roll back"
    test = found["test"]
    assert test["design"] == "triggered" and test["readout"]["decision"] == "worse"
    assert test["readout"]["looks"] == found["window"]["count"] == 8
    assert test["readout"]["effect"]["high"] < 0
    first = [w["label"] for w in found["windows"]].index(worse[0]["window"]) + 1
    assert 1 <= first <= 8
    print(f"treatment_worse after {first} daily window(s)")


def test_the_bundled_plan_gets_the_power_it_claims(credit_run):
    # The plan's analytical power and its own Monte Carlo at the planned size agree (or the
    # Monte Carlo sized it), and the daily readout reaches the target power at its size.
    import json

    plan = json.loads((credit_run / "result.json").read_text())["experiment"]
    assert plan["design"] == "triggered"
    if plan["sized_by"] == "welch":
        assert abs(plan["power"] - plan["analytical_power"]) <= 0.03
    else:
        assert abs(plan["power"] - plan["target_power"]) <= 0.03
    seq = plan["sequential"]
    assert abs(seq["power"] - plan["target_power"]) <= 0.03
    assert seq["days_needed"] == seq["days_enrolling"] + plan["label_delay_days"]
    assert plan["days_needed"] == plan["days_enrolling"] + plan["label_delay_days"]
    assert plan["sized_on"]["basis"] == "lower end of the 95% interval"
    assert plan["optimistic"]["n_per_arm"] <= plan["n_per_arm"]
