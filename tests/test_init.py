"""`advisor init`: what it proposes from the data, the case file it writes, and the way from a
CSV to a report with one edit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

from advisor.cli import init as init_module
from advisor.cli.main import main
from advisor.core.case import load_case
from advisor.core.proposal import propose


def _data(n: int = 300) -> pd.DataFrame:
    frame = synthetic_frame(n, seed=2, with_time=True)
    frame.insert(0, "customer_id", np.arange(5000, 5000 + n))
    frame["ticket"] = [f"T-{i:05d}" for i in range(n)]
    return frame.rename(columns={"outcome": "churned"})


def test_propose_finds_the_label_the_time_and_the_identifiers():
    found = propose(_data())
    assert found.target == "churned"
    assert found.target_candidates[0] == "churned"
    assert {"plan", "region"} <= set(found.target_candidates)
    assert "amount" not in found.target_candidates  # a measurement, not a label
    assert found.time == "when"
    assert set(found.ids) == {"customer_id", "ticket"}


def test_propose_leaves_an_unclear_target_open():
    frame = pd.DataFrame({"a": [0, 1] * 60, "b": ["x", "y", "z"] * 40, "v": np.linspace(0, 1, 120)})
    found = propose(frame)
    assert found.target is None
    assert found.target_candidates == ("a", "b")


def test_init_writes_a_template_that_analyze_refuses_cell_by_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _data().to_csv("churn.csv", index=False)
    done = CliRunner().invoke(main, ["init", "churn.csv"])
    assert done.exit_code == 0, done.output
    assert "fill in the 4 cost cell(s)" in done.output
    text = Path("churn.yaml").read_text()
    assert 'ignore: ["customer_id", "ticket"]' in text and 'time: "when"' in text
    refused = CliRunner().invoke(main, ["analyze", "churn.yaml", "-q"])
    assert refused.exit_code == 2
    assert refused.stderr.strip().endswith(
        "fill in each: no.no_action, no.act, yes.no_action, yes.act"
    )


def test_init_with_every_cost_writes_a_complete_case(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _data().to_csv("churn.csv", index=False)
    args = ["init", "churn.csv", "-o", "cases/c.yaml", "--target", "churned"]
    args += ["--decisions", "skip,call", "--cost", "no:skip=0", "--cost", "no:call=10"]
    args += ["--cost", "yes:skip=100", "--cost", "yes:call=0.01 * amount + 20"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "Next:      advisor analyze cases/c.yaml" in done.output
    case = load_case("cases/c.yaml")
    assert case.data_path == (tmp_path / "churn.csv").resolve()
    assert case.costs.decisions == ("skip", "call")
    assert case.costs.to_dict()["matrix"] == {
        "no": {"skip": "0", "call": "10"},
        "yes": {"skip": "100", "call": "0.01 * amount + 20"},
    }
    assert case.time == "when" and case.ignore == ("customer_id", "ticket")


def test_init_asks_for_an_unclear_target_only_at_a_terminal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"a": [0, 1] * 60, "b": ["x", "y", "z"] * 40}).to_csv("d.csv", index=False)
    piped = CliRunner().invoke(main, ["init", "d.csv"])
    assert piped.exit_code == 2 and "candidates: a, b" in piped.stderr
    monkeypatch.setattr(init_module, "interactive", lambda: True)
    asked = CliRunner().invoke(main, ["init", "d.csv"], input="b\n")
    assert asked.exit_code == 0, asked.output
    assert load_case_text("d.yaml")["target"] == "b"


def load_case_text(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


@pytest.mark.slow
def test_from_a_csv_to_a_report_with_init_and_one_edit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthetic_frame(800, seed=4).to_csv("calls.csv", index=False)
    assert CliRunner().invoke(main, ["init", "calls.csv", "-q"]).exit_code == 0
    text = Path("calls.yaml").read_text()
    filled = text.replace(
        '"no": {"no_action": null, "act": null}', '"no": {"no_action": 0, "act": 10}'
    ).replace('"yes": {"no_action": null, "act": null}', '"yes": {"no_action": 100, "act": 30}')
    Path("calls.yaml").write_text(filled)
    done = CliRunner().invoke(main, ["analyze", "calls.yaml", "--out", "runs", "-q"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "runs" / "calls" / "report.html").is_file()
    assert "Recommendation:" in done.output
