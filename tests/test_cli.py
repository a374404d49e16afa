"""The command line end to end (bad input has its own table in test_bad_input.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import synthetic_frame

from advisor.cli.main import main


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
    run_folder = out / "small"
    data = json.loads((run_folder / "result.json").read_text())
    for name in ("baseline", "ml"):
        c = data["evaluation"]["policies"][name]["cost_per_decision"]
        assert c["low"] <= c["estimate"] <= c["high"]
    assert data["manifest"]["seed"] == 3
    assert len(data["manifest"]["data_sha256"]) == 64
    html = (run_folder / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Offline comparison" in html
    assert sorted(p.name for p in out.iterdir()) == ["small"]
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "policies",
        "report.html",
        "result.json",
    ]
    assert sorted(p.name for p in (run_folder / "policies").iterdir()) == [
        "baseline",
        "ml",
        "rules",
    ]
    assert f"Report:   {run_folder / 'report.html'}" in proc.stdout
    assert f"Ship it:  advisor export {run_folder}" in proc.stdout
    rec = data["recommendation"]
    sure = "a tie" if rec["p_best"] is None else f"best in {rec['p_best']:.0%} of resamples"
    if rec["tied"] and rec["p_best"] is not None:
        sure = f"tied; {sure}"
    assert f"Recommendation: {rec['option']} ({sure})" in proc.stdout
    assert "confidence" not in proc.stdout

    rerendered = tmp_path / "again.html"
    assert run("render", str(run_folder / "result.json"), "-o", str(rerendered)).exit_code == 0
    assert rerendered.read_text() == html
    (run_folder / "report.html").unlink()
    assert run("render", str(run_folder / "result.json")).exit_code == 0
    assert (run_folder / "report.html").read_text() == html


def test_a_second_run_replaces_the_run_folder_whole(small_case_file: Path, tmp_path: Path):
    out = tmp_path / "out"
    stale = out / "small" / "policies" / "old-policy"
    stale.mkdir(parents=True)
    (out / "small" / "result.json").write_text("{}")
    result = run("analyze", str(small_case_file), "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and (out / "small" / "result.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["small"]


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
    data = json.loads((tmp_path / "r" / "d" / "result.json").read_text())
    assert data["case"]["costs"]["matrix"]["yes"] == {"no": "50", "yes": "0"}
    assert data["case"]["decision"]["volume_per_day"] == 2000
    assert data["case"]["decision"]["timing"] == "live"


def test_data_file_without_costs_is_exit_2(tmp_path: Path):
    synthetic_frame(100).to_csv(tmp_path / "d.csv", index=False)
    result = run("analyze", str(tmp_path / "d.csv"), "--target", "outcome", "-q")
    assert result.exit_code == 2
    assert "--cost-fp and --cost-fn are needed" in result.stderr


def test_help_is_quick_and_imports_nothing_heavy():
    code = "import sys; import advisor; from advisor.cli.main import main; print(sorted(m for m in ('pandas','lightgbm','sklearn','shap','mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
