"""`advisor monitor` on bad input, one table: exit 2, one line naming the file, column or option
and what is wrong, nothing written.

Each row starts from a good run folder, log folder (`log/`, JSON Lines as the service writes
them) and outcomes file (`outcomes.csv`), changes one thing, and says what the error line must
name and a fragment of what it must say.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from production import outcomes, simulate, test_rows, write_log

from advisor.cli.main import main

pytestmark = pytest.mark.slow


@dataclass
class Bad:
    """Change the good inputs (a function of the folder), then expect `names` and `says`."""

    change: Callable[[Path], None]
    names: str
    says: str
    args: tuple[str, ...] = ()


def _rewrite_log(edit: Callable[[list[dict]], list[dict]]) -> Callable[[Path], None]:
    """Rewrite every file of the log line by line through `edit`."""

    def change(tmp: Path) -> None:
        for file in sorted((tmp / "log").iterdir()):
            lines = [json.loads(x) for x in file.read_text().splitlines()]
            file.write_text("".join(json.dumps(x) + "\n" for x in edit(lines)))

    return change


def _set(field: str, value, row: int = 1) -> Callable[[Path], None]:
    def edit(lines: list[dict]) -> list[dict]:
        lines[row][field] = value
        return lines

    return _rewrite_log(edit)


def _drop(field: str) -> Callable[[Path], None]:
    return _rewrite_log(lambda lines: [{k: v for k, v in x.items() if k != field} for x in lines])


def _drop_record_field(field: str) -> Callable[[Path], None]:
    def edit(lines: list[dict]) -> list[dict]:
        for x in lines:
            x["record"].pop(field)
        return lines

    return _rewrite_log(edit)


def _outcomes(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def change(tmp: Path) -> None:
        edit(pd.read_csv(tmp / "outcomes.csv")).to_csv(tmp / "outcomes.csv", index=False)

    return change


def _empty_log(tmp: Path) -> None:
    for file in (tmp / "log").iterdir():
        file.write_text("")


def _no_log_files(tmp: Path) -> None:
    shutil.rmtree(tmp / "log")
    (tmp / "log").mkdir()
    (tmp / "log" / "notes.txt").write_text("not a log")


def _broken_line(tmp: Path) -> None:
    first = sorted((tmp / "log").iterdir())[0]
    lines = first.read_text().splitlines()
    lines[2] = lines[2][:40]
    first.write_text("\n".join(lines) + "\n")


def _not_a_run(tmp: Path) -> None:
    shutil.rmtree(tmp / "run")
    (tmp / "run").mkdir()


def _run_without_bundles(tmp: Path) -> None:
    shutil.rmtree(tmp / "run" / "policies")


def _other_folder_at_out(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "mine.txt").write_text("someone's file")


def _bundle_format(version: str) -> Callable[[Path], None]:
    def change(tmp: Path) -> None:
        for meta_path in (tmp / "run" / "policies").glob("*/bundle.json"):
            meta = json.loads(meta_path.read_text())
            meta_path.write_text(json.dumps(meta | {"format": version}))

    return change


def _nothing(tmp: Path) -> None:
    """No change: the arguments are what is wrong."""


CASES: dict[str, Bad] = {
    "run folder that is not one": Bad(_not_a_run, "run", "not a run folder: no result.json"),
    "run folder without bundles": Bad(_run_without_bundles, "run", "no policies/"),
    "no such log": Bad(lambda t: shutil.rmtree(t / "log"), "log", "no such log file or folder"),
    "a folder without log files": Bad(_no_log_files, "log", "no log files in the folder"),
    "a log with no rows": Bad(_empty_log, "log", "the log has no rows"),
    "a timestamp that does not parse": Bad(_set("ts", "yesterday"), ".jsonl", "'yesterday' is not"),
    "a line that is not JSON": Bad(_broken_line, ".jsonl", "line 3 is not JSON"),
    "no decision column": Bad(_drop("decision"), "log", "no column 'decision'"),
    "no timestamp column": Bad(_drop("ts"), "log", "no column 'ts'"),
    "a decision the run does not know": Bad(_set("decision", "maybe"), "log", "'maybe'"),
    "an arm that is not one": Bad(_set("arm", "b"), "log", "column 'arm' holds 'b'"),
    "a log line of another format version": Bad(
        _set("format", "advisor-log/9"), "log", "prediction log format 'advisor-log/9' is not"
    ),
    "a bundle of another format version": Bad(
        _bundle_format("advisor-bundle/0"), "bundle.json", "bundle format 'advisor-bundle/0' is not"
    ),
    "a log from another model version": Bad(
        _rewrite_log(lambda lines: [x | {"model_version": "ml-000000000000"} for x in lines]),
        "log",
        "no row was decided by a policy of the run at its version",
    ),
    "a cost column missing from the log": Bad(
        _drop_record_field("Amount"), "log", "no column 'Amount' in the log"
    ),
    "outcomes without the key column": Bad(
        _outcomes(lambda f: f.rename(columns={"id": "ref"})), "outcomes.csv", "no column 'id'"
    ),
    "outcomes without the target (unknown target)": Bad(
        _outcomes(lambda f: f.rename(columns={"Status": "status"})),
        "outcomes.csv",
        "no column 'Status', the case's target",
    ),
    "an outcome that is not a class": Bad(
        _outcomes(lambda f: f.assign(Status=["maybe", *f["Status"][1:]])),
        "outcomes.csv",
        "holds 'maybe', not a class",
    ),
    "a key with two outcomes": Bad(
        _outcomes(
            lambda f: pd.concat(
                [f, f.head(1).assign(Status="bad" if f["Status"].iloc[0] == "good" else "good")]
            )
        ),
        "outcomes.csv",
        "has two different outcomes",
    ),
    "no such outcomes file": Bad(
        lambda t: (t / "outcomes.csv").unlink(), "outcomes.csv", "no such data file"
    ),
    "a key the log does not have": Bad(
        _outcomes(lambda f: f.assign(customer=f["id"])),
        "log",
        "no column 'customer' (the --key) in the log",
        ("--key", "customer"),
    ),
    "a window that does not read": Bad(
        _nothing, "--window", "cannot read 'daily'", ("--window", "daily")
    ),
    "a window too short for the log": Bad(
        _nothing, "--window", "choose a longer window", ("--window", "1min")
    ),
    "a share outside (0, 1)": Bad(_nothing, "--share", "above 0 and below 1", ("--share", "1.5")),
    "an output folder advisor did not write": Bad(
        _other_folder_at_out, "out", "exists and is not a folder advisor wrote"
    ),
}


@pytest.fixture(scope="module")
def good(credit_run: Path, tmp_path_factory) -> Path:
    """A good run folder, log and outcomes to copy for each row of the table."""
    tmp = tmp_path_factory.mktemp("monitor-good")
    shutil.copytree(credit_run, tmp / "run")
    log = simulate(credit_run, test_rows("credit-scoring"), "Status", days=2, per_day=150)
    meta = json.loads((credit_run / "policies" / "rules" / "bundle.json").read_text())
    inputs = list(dict.fromkeys([*meta["inputs"], "Amount"]))
    write_log(log, tmp / "log", inputs, lines=100)
    outcomes(log, "Status", now="2026-03-04").to_csv(tmp / "outcomes.csv", index=False)
    return tmp


def test_the_good_inputs_pass(good: Path, tmp_path: Path):
    done = _invoke(good, tmp_path / "out")
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(good: Path, tmp_path: Path, name):
    bad = CASES[name]
    for item in ("run", "log", "outcomes.csv"):
        (shutil.copytree if (good / item).is_dir() else shutil.copy)(good / item, tmp_path / item)
    bad.change(tmp_path)
    out = tmp_path / "out"
    before = sorted(out.iterdir()) if out.exists() else None
    done = _invoke(tmp_path, out, *bad.args)
    assert done.exit_code == 2, (done.output, done.exception)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("advisor: error: ")
    assert bad.names in lines[0] and bad.says in lines[0], lines[0]
    assert (sorted(out.iterdir()) if out.exists() else None) == before
    assert not list(tmp_path.glob(".out.*"))


def _invoke(folder: Path, out: Path, *extra: str):
    args = [
        "monitor",
        str(folder / "run"),
        "--log",
        str(folder / "log"),
        "--outcomes",
        str(folder / "outcomes.csv"),
        "--out",
        str(out),
        *extra,
    ]
    return CliRunner().invoke(main, args)
