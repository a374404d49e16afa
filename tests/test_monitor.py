"""`advisor monitor` on simulated production: the credit-scoring case's test rows decided by its
own bundles over several days, written as `advisor serve` writes its log, with outcomes that
arrive late and partially (`production.py`). Four scenarios and their verdicts, the command's
exit status and files, and the same figures from every log format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from production import outcomes, simulate, test_rows, write_log

from advisor.cli.main import main
from advisor.monitor import monitor
from advisor.monitor.estimate import BY_BANDS

TARGET = "Status"
NOW = "2026-03-06"  # the day after the log's last: outcomes known for rows a day old or more

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return test_rows("credit-scoring")


@pytest.fixture(scope="module")
def inputs(credit_run: Path) -> list[str]:
    meta = json.loads((credit_run / "policies" / "ml" / "bundle.json").read_text())
    return list(dict.fromkeys(meta["inputs"]))


def production(tmp: Path, log: pd.DataFrame, inputs: list[str]) -> tuple[Path, Path]:
    """The log as the service writes it, and the outcomes known on NOW, as CSV."""
    folder = write_log(log, tmp / "log", inputs)
    known = outcomes(log, TARGET, now=NOW)
    known.to_csv(tmp / "outcomes.csv", index=False)
    return folder, tmp / "outcomes.csv"


def run_cli(run: Path, log: Path, known: Path, out: Path, *extra: str):
    args = ["--log", str(log), "--outcomes", str(known), "--out", str(out), *extra]
    return CliRunner().invoke(main, ["monitor", str(run), *args])


def test_no_change_gives_no_alert_and_exit_0(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, treatment="ml", shadow="ml")
    folder, known = production(tmp_path, log, inputs)
    done = run_cli(credit_run, folder, known, tmp_path / "out")
    assert done.exit_code == 0, done.output
    found = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert found["alerts"] == []
    assert found["verdict"]["verdict"] == "keep"
    assert found["exit_status"] == 0
    assert (tmp_path / "out" / "monitor.html").read_text().count("Keep it") >= 1
    assert len(found["windows"]) == 4
    # Late and partial: the last day waits for every outcome, older days for about a fifth.
    waiting = [w["policies"]["ml"]["cost"]["waiting_share"] for w in found["windows"]]
    assert waiting[-1] == 1.0 and all(0.1 < s < 0.3 for s in waiting[:-1])
    assert found["outcomes"]["matched_log_rows"] == len(pd.read_csv(known))
    test = found["overall"]["experiment"]
    assert test["srm"]["mismatch"] is False and 0 < test["power"]["reached"] <= 1
    assert {p["policy"] for p in found["log"]["policies"]} == {"rules", "ml"}
    estimated = found["windows"][-1]["policies"]["ml"]["estimated_cost"]  # before any outcome
    assert estimated["reliable"] and estimated["low"] < estimated["estimate"] < estimated["high"]
    assert estimated["correction"]["by"] == BY_BANDS  # the bundle's bands, the window's mix
    assert "estimated_cost" not in found["windows"][-1]["policies"]["rules"]


def test_a_shifted_input_raises_a_drift_alert_on_that_feature(credit_run, rows, inputs, tmp_path):
    shifted = rows.assign(Income=rows["Income"] * 3)
    log = pd.concat(
        [
            simulate(credit_run, rows, TARGET, days=2, control="ml"),
            simulate(credit_run, shifted, TARGET, days=2, control="ml", start="2026-03-04", seed=1),
        ],
        ignore_index=True,
    )
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known)
    assert found.exit_status == 3
    drift = [a for a in found.alerts if a["kind"] == "drift"]
    assert [a["subject"] for a in drift] == ["Income"]
    assert drift[0]["windows"] == ["2026-03-04", "2026-03-05"]
    assert drift[0]["test"].startswith("chi-square") and drift[0]["family_rate"] == 0.05
    assert "Income" in found.payload["important_features"]["features"]
    assert found.verdict["verdict"] == "retrain"
    assert "Income" in found.verdict["reason"]
    before = found.payload["windows"][0]["drift"]["Income"]
    assert before["flag"] == "stable"


def test_outcomes_that_turn_worse_raise_a_cost_alert(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, control="ml")
    rng = np.random.default_rng(5)
    worse = (log["ts"] >= "2026-03-03") & (log["truth"] == "good") & (rng.random(len(log)) < 0.4)
    log.loc[worse, "truth"] = "bad"
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known)
    assert found.exit_status == 3
    assert [(a["kind"], a["subject"]) for a in found.alerts] == [("cost", "ml")]
    alert = found.alerts[0]
    assert "2026-03-02" not in alert["windows"] and "2026-03-03" in alert["windows"]
    assert found.verdict["verdict"] == "retrain"
    first = found.payload["windows"][0]["policies"]["ml"]["cost"]
    assert first["position"] == "within"


def test_a_skewed_canary_split_raises_a_sample_ratio_alert(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, treatment="ml", share=0.08)
    folder, known = production(tmp_path, log, inputs)
    done = run_cli(credit_run, folder, known, tmp_path / "out", "--share", "0.05")
    assert done.exit_code == 3, done.output
    found = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert [a["kind"] for a in found["alerts"]] == ["srm"]
    assert found["alerts"][0]["severity"] == "critical"
    assert found["alerts"][0]["level"] == found["family"]["budget"]["srm"]
    assert "sequential" in found["alerts"][0]["test"]
    assert found["verdict"]["verdict"] == "roll back"
    assert found["overall"]["experiment"]["planned_share"] == 0.05
    assert "Verdict: roll back" in done.output
    # The same split planned at 8 % is no mismatch.
    again = monitor(credit_run, folder, known, share=0.08)
    assert not [a for a in again.alerts if a["kind"] == "srm"]


def test_every_log_format_gives_the_same_figures(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, days=2, per_day=300, control="ml", shadow="rules")
    folder, known = production(tmp_path, log, inputs)
    table = log.drop(columns=["truth"])
    table.to_parquet(tmp_path / "log.parquet")
    table.assign(ts=table["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).to_csv(
        tmp_path / "log.csv", index=False
    )
    parquet_known = tmp_path / "outcomes.parquet"
    pd.read_csv(known).to_parquet(parquet_known)
    figures = [
        monitor(credit_run, path, k).payload
        for path, k in (
            (folder, known),
            (tmp_path / "log.parquet", parquet_known),
            (tmp_path / "log.csv", known),
        )
    ]
    for found in figures:
        for key in ("windows", "overall", "alerts", "verdict"):
            assert found[key] == figures[0][key], key


def test_a_log_read_in_small_batches_gives_the_same_monitor_json_as_one_read_whole(
    credit_run, rows, inputs, tmp_path
):
    """The log is read in blocks (bounded memory); the figures must not depend on the block:
    4 KB blocks (about ten lines each, windows split across blocks and files, one file with a
    cut-off last line) give the monitor.json of each file read in one block."""
    log = simulate(credit_run, rows, TARGET, days=3, per_day=300, treatment="ml", shadow="ml")
    folder, known = production(tmp_path, log, inputs)
    last = sorted(folder.iterdir())[-1]
    last.write_bytes(last.read_bytes() + b'{"ts":"2026-03-04T23:59:59Z","id":"cut')
    whole, small = (
        monitor(credit_run, folder, known, batch_bytes=size).payload for size in (2**30, 4096)
    )
    for found in (whole, small):
        found["manifest"].pop("created")
    assert small["log"]["partial_lines_skipped"] == 1
    assert small["outcomes"]["matched_log_rows"] > 0 and small["windows"][0]["drift"]
    assert json.dumps(small, sort_keys=True) == json.dumps(whole, sort_keys=True)


def test_an_unfinished_last_line_is_skipped_and_counted(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, days=1, per_day=200, control="ml")
    folder, known = production(tmp_path, log, inputs)
    last = sorted(folder.iterdir())[-1]
    last.write_bytes(last.read_bytes() + b'{"ts":"2026-03-02T23:59:59Z","id":"cut')
    found = monitor(credit_run, folder, known)
    assert found.payload["log"]["partial_lines_skipped"] == 1
    assert found.payload["log"]["rows"] == len(log)


def test_shadow_and_the_test_are_measured_against_the_offline_figures(
    credit_run, rows, inputs, tmp_path
):
    log = simulate(credit_run, rows, TARGET, days=3, control="rules", shadow="ml")
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known).payload
    (shadow,) = found["overall"]["shadow"]
    assert (shadow["policy"], shadow["shadow_policy"]) == ("rules", "ml")
    offline = shadow["offline_disagreement_rate"]
    live = shadow["disagreement_rate"]
    assert live["low"] <= offline["estimate"] <= live["high"]
    right = shadow["with_outcomes"]
    assert right["served_right"] + right["shadow_right"] + right["ties"] == right["disagreements"]
    assert right["shadow_saving_per_decision"]["estimate"] > 0  # ML saves, as offline
    assert found["overall"]["experiment"] is None  # no treatment arm


def test_drift_on_a_feature_that_is_not_important_is_a_note(credit_run, rows, inputs, tmp_path):
    aged = rows.assign(Age=rows["Age"] + 25)
    log = simulate(credit_run, aged, TARGET, days=2, control="ml")
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known)
    assert "Age" not in found.payload["important_features"]["features"]
    assert found.alerts == [] and found.exit_status == 0
    notes = [n for n in found.payload["notes"] if n["kind"] == "drift"]
    assert notes and all("Age drifted" in n["message"] for n in notes)
    assert found.verdict["verdict"] == "watch"


def test_outcomes_better_than_expected_are_a_note_not_an_alert(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, control="ml")
    rng = np.random.default_rng(6)
    better = (log["ts"] >= "2026-03-03") & (log["truth"] == "bad") & (rng.random(len(log)) < 0.8)
    log.loc[better, "truth"] = "good"
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known)
    assert found.alerts == [] and found.exit_status == 0
    notes = [n for n in found.payload["notes"] if n["kind"] == "cost"]
    assert notes and all("better than expected" in n["message"] for n in notes)
    assert {n["level"] for n in notes} == {"info"}
    assert found.verdict["verdict"] == "keep"


def test_failing_and_slow_requests_say_roll_back(credit_run, rows, inputs, tmp_path):
    log = simulate(credit_run, rows, TARGET, control="ml")
    rng = np.random.default_rng(7)
    day3 = (log["ts"] >= "2026-03-04") & (log["ts"] < "2026-03-05")
    failed = day3 & (rng.random(len(log)) < 0.08)
    log["decision"] = log["decision"].where(~failed, None)
    log.loc[log["ts"] >= "2026-03-05", "latency_ms"] *= 30  # p99 of ~5 ms becomes ~150 ms
    folder, known = production(tmp_path, log, inputs)
    found = monitor(credit_run, folder, known)
    kinds = {(a["kind"], a["window"]) for a in found.alerts}
    assert kinds == {("errors", "2026-03-04"), ("latency", "2026-03-05")}
    assert {a["severity"] for a in found.alerts} == {"critical"}
    assert found.verdict["verdict"] == "roll back"


def test_the_pair_is_written_together_and_replaced_together(
    credit_run, rows, inputs, tmp_path, monkeypatch
):
    log = simulate(credit_run, rows, TARGET, days=2, per_day=200, control="ml")
    folder, known = production(tmp_path, log, inputs)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, ["monitor", str(credit_run), "--log", str(folder), "-q"])
    assert done.exit_code == 0, done.output
    out = tmp_path / "monitoring" / "credit-scoring"  # the default --out
    assert sorted(p.name for p in out.iterdir()) == ["monitor.html", "monitor.json"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert json.loads(before["monitor.json"])["outcomes"]["given"] is False

    def broken(payload):
        raise RuntimeError("the page could not be drawn")

    monkeypatch.setattr("advisor.monitor.page.render_monitor", broken)
    again = run_cli(credit_run, folder, known, out)
    assert again.exit_code == 1 and "internal error" in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["credit-scoring"]
