"""The small contracts with one home each: money, atomic writes, an exception's first line,
the prediction log's format version, the one bundle.json reader, and loading a bundle without
the case-file parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.artefacts.bundle import META, read_meta
from advisor.core.atomic import replacing, write_atomic
from advisor.core.errors import InputError, first_line
from advisor.core.money import money, money_interval
from advisor.core.predictionlog import FIELDS, FORMAT, check_format
from advisor.serve.predictionlog import log_line


def test_money_keeps_cents_below_100_and_a_true_minus():
    assert money(12345.6, "USD") == "12,346 USD"
    assert money(12.345, "EUR") == "12.35 EUR"
    assert money(-1500, "") == "−1,500"
    assert money(1500, "USD", 2) == "1,500.00 USD"
    assert money(None, "USD") == money(float("nan")) == "–"
    entry = {"estimate": 12.3, "low": 11.1, "high": -13.5}
    assert money_interval(entry, "USD", "per decision") == (
        "12.30 USD per decision (95% interval 11.10 to −13.50)"
    )
    assert money_interval({"estimate": None}, "USD") is None


def test_an_exceptions_first_line():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(KeyError()) == "KeyError"


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path: Path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), replacing(target, folder=True) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("stopped while writing")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with replacing(target, folder=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


def test_a_file_is_written_with_the_umasks_permissions(tmp_path: Path):
    path = write_atomic(tmp_path / "a" / "b.txt", "text")
    assert path.read_text() == "text"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_each_log_line_carries_the_format_version_first():
    line = json.loads(log_line({"ts": 0.0, "policy": "ml", "decision": "yes"}))
    assert list(line) == list(FIELDS) and line["format"] == FORMAT == "advisor-log/1"


def test_a_log_of_another_format_is_refused_in_one_line():
    check_format([FORMAT, None, float("nan")], "log")  # missing: logs written before the field
    with pytest.raises(InputError, match=r"^log: prediction log format 'advisor-log/2' is not"):
        check_format([FORMAT, "advisor-log/2"], "log")


def test_the_one_bundle_reader_refuses_another_format_and_a_missing_field(
    small_run, tmp_path: Path
):
    _, folder = small_run
    meta = read_meta(folder / "policies" / "ml")
    assert meta["policy"] == "ml" and meta["kind"] == "ml"
    for change, says in (
        ({"format": "advisor-bundle/0"}, "bundle format 'advisor-bundle/0' is not one"),
        ({"kind": None}, "no field 'kind'"),
    ):
        edited = {k: v for k, v in (meta | change).items() if v is not None}
        path = tmp_path / META
        path.write_text(json.dumps(edited))
        with pytest.raises(InputError, match=says) as caught:
            read_meta(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_loading_a_bundle_does_not_import_the_case_parser(small_run):
    _, folder = small_run
    code = (
        "import sys, advisor\n"
        f"policy = advisor.load_policy({str(folder / 'policies' / 'rules')!r})\n"
        "print(policy.version, 'advisor.core.case' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, imported = out.stdout.split()
    assert version.startswith("rules-") and imported == "False"
