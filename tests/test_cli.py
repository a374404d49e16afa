"""The command line end to end, and bad input: exit 2 with one line naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

from advisor.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_analyze_writes_report_and_json(small_case_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "analyze", str(small_case_file), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "baseline" in proc.stdout and "ml" in proc.stdout
    assert "Loading the case" in proc.stderr
    data = json.loads((out / "small.json").read_text())
    for name in ("baseline", "ml"):
        c = data["evaluation"]["policies"][name]["cost_per_decision"]
        assert c["low"] <= c["estimate"] <= c["high"]
    assert data["manifest"]["seed"] == 3
    assert len(data["manifest"]["data_sha256"]) == 64
    html = (out / "small.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Offline comparison" in html
    assert sorted(p.name for p in out.iterdir()) == ["small.html", "small.json"]

    rerendered = tmp_path / "again.html"
    assert run("render", str(out / "small.json"), "-o", str(rerendered)).exit_code == 0
    assert rerendered.read_text() == html


def test_quiet_analyze_of_a_data_file_with_cost_flags(tmp_path: Path):
    synthetic_frame(600).to_csv(tmp_path / "d.csv", index=False)
    result = run(
        "analyze",
        str(tmp_path / "d.csv"),
        "--target",
        "outcome",
        "--cost-fp",
        "5",
        "--cost-fn",
        "50",
        "--volume",
        "2000 per day",
        "--timing",
        "live",
        "--out",
        str(tmp_path / "r"),
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads((tmp_path / "r" / "d.json").read_text())
    assert data["case"]["costs"]["matrix"]["yes"] == {"no": "50", "yes": "0"}
    assert data["case"]["decision"]["volume_per_day"] == 2000
    assert data["case"]["decision"]["timing"] == "live"


def _case(tmp_path: Path, body: str, csv: str | None = None) -> str:
    if csv is None:
        synthetic_frame(300).to_csv(tmp_path / "d.csv", index=False)
    else:
        (tmp_path / "d.csv").write_text(csv)
    (tmp_path / "c.yaml").write_text(textwrap.dedent(body))
    return str(tmp_path / "c.yaml")


GOOD = """
data: d.csv
target: outcome
costs:
  matrix:
    "no": {"no": 0, "yes": 10}
    "yes": {"no": 100, "yes": 30}
"""

BAD_CASES = {
    "missing file": (None, "no such case file"),
    "empty data": (("", GOOD), "the file is empty"),
    "unknown field": ((None, GOOD + "colour: blue\n"), "unknown field 'colour'"),
    "unknown target": (
        (None, GOOD.replace("target: outcome", "target: churn")),
        "target column 'churn' is not in the data",
    ),
    "unknown class": (
        (
            None,
            GOOD.replace("matrix:", 'decisions: ["no", "yes"]\n  matrix:').replace(
                '"yes": {"no": 100', '"maybe": {"no": 100'
            ),
        ),
        "value 'yes', which is not a class",
    ),
    "unknown decision": (
        (None, GOOD.replace('"yes": 30', '"offer": 30')),
        "unknown decision 'offer'",
    ),
    "bad volume": ((None, GOOD + "decision: {volume: lots}\n"), "decision.volume"),
    "bad timing": (
        (None, GOOD + "decision: {timing: hourly}\n"),
        "decision.timing: expected 'periodic' or 'live'",
    ),
    "unknown ignore column": ((None, GOOD + "ignore: [nope]\n"), "ignored column 'nope'"),
    "bad time": (
        (None, GOOD + "time: region\n"),
        "time column 'region' has a value that is not a timestamp",
    ),
    "missing cost column": (
        (None, GOOD.replace('"yes": 30', '"yes": "0.5 * price"')),
        "cost column 'price' is not in the data",
    ),
    "eval attempt": (
        (None, GOOD.replace('"yes": 30', '"yes": "__import__(\'os\')"')),
        "cannot read",
    ),
    "single class": (("a,outcome\n" + "1,no\n" * 40, GOOD), "single class"),
    "nan in cost": (
        ("a,outcome,price\n" + "1,no,\n2,yes,3\n" * 20, GOOD.replace('"yes": 30', '"yes": price')),
        "missing values",
    ),
    "not yaml": ((None, "data: [unclosed\n"), "not valid YAML"),
    "negative seed": ((None, GOOD + "seed: -1\n"), "seed"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_input_exits_2_with_one_line(tmp_path: Path, name: str):
    spec, message = BAD_CASES[name]
    if spec is None:
        path = str(tmp_path / "missing.yaml")
    else:
        csv, body = spec
        path = _case(tmp_path, body, csv)
    result = run("analyze", path, "--out", str(tmp_path / "out"), "-q")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_data_file_without_costs_is_exit_2(tmp_path: Path):
    synthetic_frame(100).to_csv(tmp_path / "d.csv", index=False)
    result = run("analyze", str(tmp_path / "d.csv"), "--target", "outcome", "-q")
    assert result.exit_code == 2
    assert "--cost-fp and --cost-fn are needed" in result.stderr


def test_help_is_quick_and_imports_nothing_heavy():
    code = "import sys; from advisor.cli import main; print(sorted(m for m in ('pandas','lightgbm','sklearn','shap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
