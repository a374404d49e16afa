"""End to end through the service: `advisor serve` (in this process, on a free port) serves the
credit-scoring rules with ML as a 50 % treatment and as shadow, writing its prediction log; the
case's test rows are sent over HTTP; the outcomes of some of them arrive; `advisor monitor`
reads the service's own log. Then inputs that drift: the same rows with Income tripled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import Http, json_records
from production import test_rows

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")

from advisor.cli.main import main
from advisor.serve.app import Served, Service
from advisor.serve.predictionlog import PredictionLog
from advisor.serve.server import running

pytestmark = pytest.mark.slow
BATCH = 1  # one record a request: each line logs its request's latency, held to the budget


def serve_rows(run: Path, rows: pd.DataFrame, log: Path, prefix: str) -> list[str]:
    """Send every row (in batches) to the service; the ids it answered."""
    policies = run / "policies"
    service = Service(
        Served.load(policies / "rules"),
        treatment=Served.load(policies / "ml"),
        share=0.5,
        shadow=Served.load(policies / "ml"),
        log=PredictionLog(log),
    )
    inputs = list(service.reader.columns)
    records = json_records(rows[inputs])
    sent = []
    with running(service) as url:
        client = Http(url)
        for start in range(0, len(records), BATCH):
            ids = [f"{prefix}-{i}" for i in range(start, min(start + BATCH, len(records)))]
            body = {"records": [{"id": k, "record": records[int(k.split("-")[-1])]} for k in ids]}
            status, answer = client.post(body)
            assert status == 200, answer
            sent += ids
        client.close()
    return sent


@pytest.fixture(scope="module")
def served(credit_run: Path, tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """The service's log of the test rows (those ML can decide: Amount known), and the rows."""
    tmp = tmp_path_factory.mktemp("served")
    rows = test_rows("credit-scoring")
    rows = rows[rows["Amount"].notna()].reset_index(drop=True)
    ids = serve_rows(credit_run, rows, tmp / "log", "r")
    assert len(ids) == len(rows)
    return tmp, tmp / "log", rows


def test_the_services_log_and_late_partial_outcomes_give_keep(credit_run, served):
    tmp, log, rows = served
    rng = np.random.default_rng(0)
    arrived = rng.random(len(rows)) < 0.7  # 70 % of the outcomes are known so far
    known = pd.DataFrame({"id": [f"r-{i}" for i in range(len(rows))], "Status": rows["Status"]})
    known[arrived].to_csv(tmp / "outcomes.csv", index=False)
    done = CliRunner().invoke(
        main,
        [
            "monitor",
            str(credit_run),
            "--log",
            str(log),
            "--outcomes",
            str(tmp / "outcomes.csv"),
            "--out",
            str(tmp / "monitoring"),
        ],
    )
    assert done.exit_code == 0, done.output
    found = json.loads((tmp / "monitoring" / "monitor.json").read_text())
    assert found["verdict"]["verdict"] == "keep"
    assert found["log"]["rows"] == len(rows)
    assert all(p["in_run"] for p in found["log"]["policies"])
    assert found["outcomes"]["matched_log_rows"] == int(arrived.sum())
    overall = found["overall"]
    waiting = [p["cost"]["waiting_share"] for p in overall["policies"].values()]
    assert all(0.2 < w < 0.4 for w in waiting)
    (shadow,) = overall["shadow"]
    assert (shadow["policy"], shadow["shadow_policy"]) == ("rules", "ml")
    lines = [json.loads(x) for f in sorted(log.iterdir()) for x in f.read_text().splitlines()]
    assert all(x["decision"] == x[f"{x['arm']}_decision"] for x in lines)
    assert any(x["control_decision"] != x["treatment_decision"] for x in lines)
    # The test is read as planned: the triggered units, with the always-valid readout.
    assert found["run"]["plan"]["design"] == found["test"]["design"] == "triggered"
    readout = found["test"]["readout"]
    assert readout["decision"] in ("better", "not yet")
    assert readout["looks"] == found["window"]["count"]
    assert readout["effect"]["low"] <= readout["effect"]["estimate"] <= readout["effect"]["high"]
    triggered = sum(x["control_decision"] != x["treatment_decision"] for x in lines)
    assert sum(found["test"]["analysed"].values()) <= triggered
    test = overall["experiment"]
    assert test["srm"]["mismatch"] is False
    assert test["units"]["control"] + test["units"]["treatment"] == len(rows)
    latency = overall["operations"]["latency"]
    assert 0 < latency["p99_ms"]["estimate"] < found["run"]["latency_budget_ms"]


def test_drifted_inputs_through_the_service_raise_a_drift_alert(credit_run, served, tmp_path):
    _, log, rows = served
    shifted = rows.assign(Income=rows["Income"] * 3)
    serve_rows(credit_run, shifted, tmp_path / "log", "s")
    for file in log.iterdir():
        (tmp_path / "log" / f"before-{file.name}").write_bytes(file.read_bytes())
    done = CliRunner().invoke(
        main,
        ["monitor", str(credit_run), "--log", str(tmp_path / "log"), "--out", str(tmp_path / "m")],
    )
    assert done.exit_code == 3, done.output
    found = json.loads((tmp_path / "m" / "monitor.json").read_text())
    assert "Income" in {a["subject"] for a in found["alerts"] if a["kind"] == "drift"}
    assert found["verdict"]["verdict"] == "retrain"
