"""`advisor monitor` on credit-scoring's simulated production when defaults are known before
repayments: the realised cost on the arrived rows is biased upward, the windows say their
outcomes are selectively missing, and the cost alert that bias would raise is held (a note)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from production import simulate, test_rows, write_log

from advisor.monitor import monitor, write

TARGET = "Status"

pytestmark = pytest.mark.slow


def test_defaults_known_first_are_detected_and_the_cost_alert_is_held(credit_run, tmp_path):
    rows = test_rows("credit-scoring")
    meta = json.loads((Path(credit_run) / "policies" / "ml" / "bundle.json").read_text())
    log = simulate(credit_run, rows, TARGET, control="ml")
    rng = np.random.default_rng(3)
    arrived = (log["truth"] == "bad") | (rng.random(len(log)) < 0.25)
    folder = write_log(log, tmp_path / "log", list(dict.fromkeys(meta["inputs"])))
    pd.DataFrame({"id": log["id"][arrived], TARGET: log["truth"][arrived]}).to_csv(
        tmp_path / "known.csv", index=False
    )
    found = monitor(credit_run, folder, tmp_path / "known.csv")
    cost = found.payload["overall"]["policies"]["ml"]["cost"]
    assert cost["to_date"]["above"]  # the biased figure would alert
    assert cost["to_date"]["held"] and cost["arrival"]["selective"]
    assert [a for a in found.alerts if a["kind"] == "cost"] == []
    kinds = {n["kind"] for n in found.payload["notes"]}
    assert "arrival" in kinds
    windows = found.payload["windows"]
    assert all(w["policies"]["ml"]["cost"]["arrival"]["selective"] for w in windows)
    by = windows[0]["policies"]["ml"]["cost"]["arrival"]["by_risk_band"]
    assert by[-1] > by[0]  # the riskiest band's outcomes arrive most
    page = (write(found, tmp_path / "out") / "monitor.html").read_text()
    assert "selectively: by decision" in page and "cost alert held" in page


def test_outcomes_arriving_at_random_hold_nothing(credit_run, tmp_path):
    rows = test_rows("credit-scoring")
    meta = json.loads((Path(credit_run) / "policies" / "ml" / "bundle.json").read_text())
    log = simulate(credit_run, rows, TARGET, control="ml", seed=1)
    arrived = np.random.default_rng(4).random(len(log)) < 0.5
    folder = write_log(log, tmp_path / "log", list(dict.fromkeys(meta["inputs"])))
    pd.DataFrame({"id": log["id"][arrived], TARGET: log["truth"][arrived]}).to_csv(
        tmp_path / "known.csv", index=False
    )
    found = monitor(credit_run, folder, tmp_path / "known.csv")
    cost = found.payload["overall"]["policies"]["ml"]["cost"]
    assert not cost["arrival"]["selective"] and not cost["to_date"]["held"]
    assert "arrival" not in {n["kind"] for n in found.payload["notes"]}
