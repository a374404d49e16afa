"""Every failure ends cleanly: an internal error exits 1 with one line and the ADVISOR_DEBUG hint,
an interruption exits 130, and neither leaves a report behind."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

import advisor.analysis.drift
import advisor.artefacts.result
from advisor.cli.main import main
from advisor.core.features import FeatureSpec


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    synthetic_frame(400, with_time=True).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            """
            name: failing
            data: d.csv
            target: outcome
            time: when
            costs:
              matrix:
                "no": {"no": 0, "yes": 10}
                "yes": {"no": 100, "yes": 30}
            options: {bootstrap_resamples: 200}
            """
        )
    )
    return tmp_path / "c.yaml"


def _analyze(case_file: Path, out: Path):
    return CliRunner().invoke(main, ["analyze", str(case_file), "--out", str(out), "-q"])


def _nothing_in(out: Path) -> bool:
    return not out.exists() or not any(out.rglob("*"))


def _fail(*args, **kwargs):
    raise RuntimeError("the drift stage broke\nwith a second line of detail")


def test_an_internal_error_exits_1_with_one_line_and_the_hint(
    case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("ADVISOR_DEBUG", raising=False)
    monkeypatch.setattr(advisor.analysis.drift, "psi", _fail)
    result = _analyze(case_file, tmp_path / "out")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "advisor: internal error: RuntimeError: the drift stage broke",
        "advisor: set ADVISOR_DEBUG=1 to see the traceback",
    ]
    assert result.stdout == ""
    assert _nothing_in(tmp_path / "out")


def test_advisor_debug_shows_the_traceback(
    case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ADVISOR_DEBUG", "1")
    monkeypatch.setattr(FeatureSpec, "fit", _fail)
    result = _analyze(case_file, tmp_path / "out")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "_fail" in result.stderr
    assert "set ADVISOR_DEBUG" not in result.stderr
    assert _nothing_in(tmp_path / "out")


def test_a_failed_write_leaves_neither_file(
    case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real = Path.write_bytes

    def full_disk(path, data):
        if path.name == "report.html":
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    result = _analyze(case_file, tmp_path / "out")
    assert result.exit_code == 1
    assert "OSError" in result.stderr and "No space left" in result.stderr
    assert _nothing_in(tmp_path / "out")


def test_an_interruption_exits_130_and_writes_nothing(
    case_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureSpec, "fit", interrupt)
    result = _analyze(case_file, tmp_path / "out")
    assert result.exit_code == 130
    assert result.stderr.strip() == "advisor: interrupted"
    assert _nothing_in(tmp_path / "out")
