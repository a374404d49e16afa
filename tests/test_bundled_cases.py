"""The bundled cases by name, from any folder: the library, the CLI, the wheel's layout."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import advisor
from advisor.core import cases
from advisor.core.case import resolve_case
from advisor.core.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("car-loans", "credit-scoring", "telco-churn")


def run(*args: str):
    from advisor.cli.main import main

    return CliRunner().invoke(main, list(args))


def test_the_checkout_lists_its_datasets_folder():
    assert cases.cases_root() == ROOT
    assert cases.bundled_names() == NAMES
    assert cases.bundled_case_file("credit-scoring") == ROOT / "datasets" / "credit-scoring.yaml"


def test_a_bundled_case_resolves_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = resolve_case("telco-churn")
    assert case.name == "telco-churn"
    assert case.data_path == ROOT / "datasets" / "telco-churn.csv.gz"
    assert case.rules_path == ROOT / "rules" / "telco-churn.yaml"
    assert case.question == "Which customers should get a retention offer this month?"


def test_an_existing_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "telco-churn").write_text("not a case")
    with pytest.raises(InputError, match="expected a case file"):
        resolve_case("telco-churn")


def test_a_folder_is_neither_a_case_nor_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "telco-churn").mkdir()
    with pytest.raises(InputError, match=r"^telco-churn: a folder: expected a case file or a"):
        resolve_case("telco-churn")


def test_an_unknown_name_is_an_error_that_lists_the_bundled_cases(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        advisor.advise("telco-chrun")
    message = str(caught.value)
    assert message.startswith("telco-chrun: neither a file nor a bundled case")
    assert message.endswith("bundled cases: car-loans, credit-scoring, telco-churn")


def test_a_missing_case_path_named_like_a_bundled_case_points_to_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no such case file; the bundled case goes by its name"):
        resolve_case("datasets/telco-churn.yaml")
    with pytest.raises(InputError, match=r"^elsewhere/mine\.yaml: no such case file$"):
        resolve_case("elsewhere/mine.yaml")


def test_keyword_arguments_with_a_case_name_are_refused():
    with pytest.raises(InputError, match="unexpected arguments with a case name"):
        resolve_case("telco-churn", volume="10 per day")


def test_advisor_cases_lists_question_and_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run("cases")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].split() == ["case", "rows", "columns", "data", "file", "question"]
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert list(rows) == list(NAMES)
    assert rows["telco-churn"][1:4] == ["7,043", "20", "91"]
    assert rows["credit-scoring"][1:4] == ["4,454", "15", "59"]
    assert rows["car-loans"][1:5] == ["100,000", "10", "3.5", "MB"]
    assert lines[3].endswith("  Which customers should get a retention offer this month?")
    assert "advisor analyze telco-churn" in done.output


@pytest.mark.parametrize("args", [("analyze", "telco-chrun"), ("rules", "learn", "telco-chrun")])
def test_a_name_that_is_no_case_exits_2_with_one_line(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    done = run(*args)
    assert done.exit_code == 2
    assert done.stderr.strip().splitlines() == [
        "advisor: error: telco-chrun: neither a file nor a bundled case; "
        "bundled cases: car-loans, credit-scoring, telco-churn"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_data_file_with_data_options_still_says_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run("analyze", "rows.csv", "--cost-fp", "1", "--cost-fn", "5")
    assert done.exit_code == 2
    assert done.stderr.strip() == "advisor: error: rows.csv: --target is needed with a data file"


def test_demo_writes_the_telco_churn_run_under_reports_in_the_current_folder(
    tmp_path, monkeypatch, bundled_analysis
):
    """The demo's own glue; the analysis is the session's one telco-churn run."""
    seen, result = [], bundled_analysis("telco-churn")

    def advise(case, **_):
        seen.append(case)
        return result

    monkeypatch.setattr("advisor.api.advise", advise)
    monkeypatch.chdir(tmp_path)
    done = run("demo", "-q")
    assert done.exit_code == 0, done.output
    assert seen[0].source == ROOT / "datasets" / "telco-churn.yaml"
    folder = tmp_path / "reports" / "telco-churn"
    assert {p.name for p in folder.iterdir()} >= {"report.html", "result.json", "policies"}


def test_the_wheel_layout_is_read_first_and_its_rule_paths_resolve(tmp_path, monkeypatch):
    """The wheel maps datasets/ and rules/ into advisor/cases/ (pyproject); a copy laid out that
    way is what the resolver reads, and `../rules/` in the case files lands in its rules/."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    wheel = build["targets"]["wheel"]
    assert wheel["sources"] == {
        "datasets": f"advisor/{cases.PACKAGED}/datasets",
        "rules": f"advisor/{cases.PACKAGED}/rules",
    }
    assert set(wheel["only-include"]) == {"advisor", "datasets", "rules"}
    installed = tmp_path / "site-packages" / "advisor"
    for folder in ("datasets", "rules"):
        shutil.copytree(ROOT / folder, installed / cases.PACKAGED / folder)
    monkeypatch.setattr("importlib.resources.files", lambda package: installed)
    monkeypatch.chdir(tmp_path)

    assert cases.cases_root() == installed / "cases"
    assert cases.bundled_names() == NAMES
    for name in NAMES:
        case = resolve_case(name)
        assert case.data_path == installed / "cases" / "datasets" / f"{name}.csv.gz"
        assert case.rules_path == installed / "cases" / "rules" / f"{name}.yaml"


def test_without_bundled_cases_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("importlib.resources.files", lambda package: tmp_path / "advisor")
    with pytest.raises(InputError, match="bundled cases: none installed with this copy"):
        resolve_case("telco-churn")
