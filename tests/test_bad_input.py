"""Bad input, one table: exit 2, one line naming the file and what is wrong, nothing written.

Each row changes one thing in a good case (case file `c.yaml`, data `d.csv`, rule file
`r.yaml`) and says which file the error line must name and a fragment of what it must say.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import synthetic_frame

from advisor.cli.main import main

FOLDER = object()  # a folder where a file should be
DROP = object()  # remove this field from the good case

GOOD_CASE = {
    "data": "d.csv",
    "target": "outcome",
    "costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": 100, "yes": 30}}},
}
DATA_ARGS = ("d.csv", "--target", "outcome", "--cost-fp", "1", "--cost-fn", "5")
GOOD_RULES = {"default": "no", "rules": [{"when": 'plan == "basic" and age > 50', "decide": "yes"}]}


def _csv(n: int = 120, **columns) -> Callable[[], str]:
    """The good data (n rows), with columns replaced or added (None drops one)."""

    def make() -> str:
        frame = synthetic_frame(n, seed=1)
        for name, values in columns.items():
            if values is None:
                frame = frame.drop(columns=name)
            else:
                frame[name] = values(n) if callable(values) else values
        return frame.to_csv(index=False)

    return make


def _with_classes(*labels: str) -> Callable[[int], list[str]]:
    return lambda n: [labels[i % len(labels)] for i in range(n)]


def _rules(**changes) -> str:
    return yaml.safe_dump({**GOOD_RULES, **changes}, sort_keys=False)


@dataclass
class Bad:
    """One bad input: the file the error line names and a fragment of its message."""

    file: str
    says: str
    case: dict | str | bytes | object = field(default_factory=dict)  # changed fields, or the text
    files: dict = field(default_factory=dict)  # name -> text, bytes, a maker, or FOLDER
    args: tuple[str, ...] | None = None  # a command line instead of `analyze c.yaml`


CASES: dict[str, Bad] = {
    # --- the case file ---
    "case file missing": Bad("missing.yaml", "no such case file", args=("missing.yaml",)),
    "case file is a folder": Bad("c.yaml", "a folder, not a file", case=FOLDER),
    "case file empty": Bad("c.yaml", "the case file is empty", case=""),
    "case file YAML syntax": Bad("c.yaml", "not valid YAML at line 2", case="data: [unclosed\n"),
    "case file tab indentation": Bad("c.yaml", "not valid YAML", case="costs:\n\tmatrix: 1\n"),
    "case file is a list": Bad("c.yaml", "expected a mapping of case fields", case="- a\n- b\n"),
    "case file binary": Bad("c.yaml", "not a UTF-8 text file", case=bytes(range(128, 256))),
    "unknown case field": Bad("c.yaml", "unknown field 'colour'", case={"colour": "blue"}),
    "missing target field": Bad("c.yaml", "missing field 'target'", case={"target": DROP}),
    "missing costs field": Bad("c.yaml", "missing field 'costs'", case={"costs": DROP}),
    "missing data field": Bad("c.yaml", "missing field 'data'", case={"data": DROP}),
    "cost cells left null": Bad(
        "c.yaml",
        "costs.matrix: 2 cost cell(s) still empty (null), fill in each: no.yes, yes.no",
        case={"costs": {"matrix": {"no": {"no": 0, "yes": None}, "yes": {"no": None, "yes": 3}}}},
    ),
    "name not text": Bad("c.yaml", "name: expected text", case={"name": [1, 2]}),
    "negative seed": Bad("c.yaml", "seed: expected a non-negative", case={"seed": -1}),
    "unknown option": Bad("c.yaml", "unknown option 'speed'", case={"options": {"speed": 3}}),
    "bad option value": Bad(
        "c.yaml", "options.max_rules: expected a positive", case={"options": {"max_rules": -1}}
    ),
    "unknown time unit": Bad(
        "c.yaml", "time_unit: expected one of", case={"time": "age", "time_unit": "fortnight"}
    ),
    "time unit without time": Bad("c.yaml", "needs a time column", case={"time_unit": "day"}),
    "ignore not a list": Bad("c.yaml", "ignore: expected a list", case={"ignore": {"a": 1}}),
    # --- the incumbent (what runs today) ---
    "incumbent labels outside the decisions": Bad(
        "d.csv",
        "incumbent column 'today' holds 'maybe', which are not decisions of the cost matrix",
        case={"incumbent": "today"},
        files={"d.csv": _csv(today=_with_classes("no", "yes", "maybe"))},
    ),
    "incumbent missing on some rows": Bad(
        "d.csv",
        "incumbent column 'today' is missing on 40 of 120 rows",
        case={"incumbent": "today"},
        files={"d.csv": _csv(today=_with_classes("no", "yes", ""))},
    ),
    "incumbent column not in the data": Bad(
        "d.csv", "incumbent column 'today' is not in the data", case={"incumbent": "today"}
    ),
    "incumbent upkeep negative": Bad(
        "c.yaml",
        "incumbent.annual_upkeep: expected a number >= 0",
        case={"incumbent": {"column": "plan", "annual_upkeep": -5}},
    ),
    "incumbent_missing unknown": Bad(
        "c.yaml",
        "incumbent_missing: expected 'refuse' or 'skip'",
        case={"incumbent": "plan", "incumbent_missing": "drop"},
    ),
    "--incumbent names a column of other values": Bad(
        "d.csv",
        "incumbent column 'plan' holds 'basic'",
        args=(*DATA_ARGS, "--incumbent", "plan"),
    ),
    # --- the data ---
    "data file missing": Bad("c.yaml", "data file 'nope.csv' not found", case={"data": "nope.csv"}),
    "data file is a folder": Bad("d.csv", "a folder, not a file", files={"d.csv": FOLDER}),
    "data file empty": Bad("d.csv", "the file is empty", files={"d.csv": ""}),
    "header-only CSV": Bad("d.csv", "no rows", files={"d.csv": "age,plan,outcome\n"}),
    "binary data as CSV": Bad(
        "d.csv",
        "not UTF-8",
        files={"d.csv": bytes(np.random.default_rng(0).integers(0, 256, 4000))},
    ),
    "gzip data named .csv": Bad(
        "d.csv", "not UTF-8", files={"d.csv": lambda: gzip.compress(_csv()().encode(), mtime=0)}
    ),
    "unsupported data type": Bad(
        "d.xlsx", "unsupported file type", case={"data": "d.xlsx"}, files={"d.xlsx": "x"}
    ),
    "duplicate column names": Bad(
        "d.csv",
        "column 'age' appears twice",
        files={"d.csv": "age,age,outcome\n" + "1,2,no\n3,4,yes\n" * 30},
    ),
    "target not in data": Bad("d.csv", "target column 'churn' is not", case={"target": "churn"}),
    "one class": Bad("d.csv", "single class", files={"d.csv": _csv(outcome=_with_classes("no"))}),
    "only missing targets": Bad(
        "d.csv", "every row has a missing target", files={"d.csv": _csv(outcome=[None] * 120)}
    ),
    "unknown class in data": Bad(
        "d.csv",
        "value 'maybe', which is not a class",
        files={"d.csv": _csv(outcome=_with_classes("no", "yes", "maybe"))},
    ),
    "class of the data missing from the matrix": Bad(
        "d.csv",
        "value 'yes', which is not a class of the cost matrix (['no', 'maybe'])",
        case={
            "costs": {
                "decisions": ["no", "yes"],
                "matrix": {"no": {"no": 0, "yes": 1}, "maybe": {"no": 5, "yes": 0}},
            }
        },
    ),
    "unquoted yes/no classes": Bad(
        "d.csv",
        "quote the class names",
        case="data: d.csv\ntarget: outcome\ncosts:\n  decisions: [a, b]\n  matrix:\n"
        "    no: {a: 0, b: 1}\n    yes: {a: 1, b: 0}\n",
    ),
    "float target with many values": Bad(
        "d.csv",
        "target 'outcome' holds 120 different numbers",
        files={"d.csv": _csv(outcome=lambda n: np.random.default_rng(0).normal(size=n))},
    ),
    "100,000-level categorical target": Bad(
        "d.csv",
        "target 'outcome' has 100,000 different values",
        files={"d.csv": _csv(100_000, outcome=lambda n: [f"C{i:06d}" for i in range(n)])},
    ),
    "time column not in data": Bad("d.csv", "time column 'nope' is not", case={"time": "nope"}),
    "unparseable time column": Bad(
        "d.csv", "time column 'plan' has a value that is not a timestamp", case={"time": "plan"}
    ),
    "all-missing time column": Bad(
        "d.csv",
        "time column 'when' is empty",
        case={"time": "when"},
        files={"d.csv": _csv(when=[None] * 120)},
    ),
    "ignore names unknown column": Bad("d.csv", "ignored column 'nope'", case={"ignore": ["nope"]}),
    "no feature columns": Bad(
        "d.csv",
        "no usable feature columns",
        case={"ignore": ["age", "income", "plan", "region", "amount"]},
    ),
    "fewer rows than the split needs": Bad(
        "d.csv", "only 20 labelled rows", files={"d.csv": _csv(20)}
    ),
    "class too small to split": Bad(
        "d.csv",
        "class 'yes' has only 3 rows",
        files={"d.csv": _csv(outcome=lambda n: ["yes"] * 3 + ["no"] * (n - 3))},
    ),
    "training period holds one class": Bad(
        "d.csv",
        "the training split (the earliest 60% of rows by time) holds a single class",
        case={"time": "when"},
        files={
            "d.csv": _csv(
                when=lambda n: [f"2024-01-{1 + i % 28:02d}" for i in range(n)],
                outcome=lambda n: ["no" if i % 28 < 20 else "yes" for i in range(n)],
            )
        },
    ),
    # --- the cost matrix ---
    "costs not a mapping": Bad("c.yaml", "costs: expected a mapping", case={"costs": 5}),
    "costs unknown field": Bad(
        "c.yaml",
        "unknown field 'currency'",
        case={"costs": {**GOOD_CASE["costs"], "currency": "EUR"}},
    ),
    "costs without matrix": Bad(
        "c.yaml", "missing field 'matrix'", case={"costs": {"decisions": ["a"]}}
    ),
    "empty cost matrix": Bad(
        "c.yaml", "costs.matrix: expected a mapping", case={"costs": {"matrix": {}}}
    ),
    "non-numeric cost": Bad(
        "c.yaml",
        "costs.matrix.yes.no: cannot read '12 dollars'",
        case={
            "costs": {
                "matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": "12 dollars", "yes": 30}}
            }
        },
    ),
    "cost names a column not in the data": Bad(
        "c.yaml",
        "costs.matrix.yes.no: names column 'lots', which is not in the data",
        case={"costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": "lots", "yes": 30}}}},
    ),
    "true as a cost": Bad(
        "c.yaml",
        "costs.matrix.no.yes: expected a number",
        case={"costs": {"matrix": {"no": {"no": 0, "yes": True}, "yes": {"no": 1, "yes": 0}}}},
    ),
    "infinite cost": Bad(
        "c.yaml",
        "finite",
        case={
            "costs": {"matrix": {"no": {"no": 0, "yes": float("inf")}, "yes": {"no": 1, "yes": 0}}}
        },
    ),
    "cost of two columns": Bad(
        "c.yaml",
        "not two columns",
        case={
            "costs": {
                "matrix": {"no": {"no": 0, "yes": "age * amount"}, "yes": {"no": 1, "yes": 0}}
            }
        },
    ),
    "eval attempt as a cost": Bad(
        "c.yaml",
        "cannot read",
        case={
            "costs": {
                "matrix": {"no": {"no": 0, "yes": "__import__('os')"}, "yes": {"no": 1, "yes": 0}}
            }
        },
    ),
    "unknown decision in the matrix": Bad(
        "c.yaml",
        "unknown decision 'offer'",
        case={"costs": {"matrix": {"no": {"no": 0, "offer": 10}, "yes": {"no": 100, "yes": 30}}}},
    ),
    "decision without a cost": Bad(
        "c.yaml",
        "no cost given for decision 'yes'",
        case={"costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": 100}}}},
    ),
    "same class twice": Bad(
        "c.yaml",
        "two classes have the same label",
        case="data: d.csv\ntarget: outcome\ncosts:\n  matrix:\n    1: {a: 0}\n    '1': {a: 1}\n",
    ),
    "missing values in a cost column": Bad(
        "d.csv",
        "cost column 'amount' has 2 missing values",
        case={
            "costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": "amount", "yes": 30}}}
        },
        files={"d.csv": _csv(amount=[None, None] + [5.0] * 118)},
    ),
    "all-missing cost column": Bad(
        "d.csv",
        "cost column 'amount' has 120 missing values",
        case={
            "costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": "amount", "yes": 30}}}
        },
        files={"d.csv": _csv(amount=[None] * 120)},
    ),
    "text in a cost column": Bad(
        "d.csv",
        "cost column 'amount' holds a non-number 'free'",
        case={
            "costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": "amount", "yes": 30}}}
        },
        files={"d.csv": _csv(amount=["free"] + [5.0] * 119)},
    ),
    # --- the decision context ---
    "negative volume": Bad(
        "c.yaml", "volume must be a positive number", case={"decision": {"volume": -5}}
    ),
    "zero volume": Bad(
        "c.yaml", "volume must be a positive number", case={"decision": {"volume": "0 per day"}}
    ),
    "unparseable volume": Bad(
        "c.yaml", "decision.volume: expected e.g.", case={"decision": {"volume": "lots"}}
    ),
    "volume per fortnight": Bad(
        "c.yaml", "decision.volume: expected e.g.", case={"decision": {"volume": "5 per fortnight"}}
    ),
    "unknown timing": Bad(
        "c.yaml",
        "decision.timing: expected 'periodic' or 'live'",
        case={"decision": {"timing": "hourly"}},
    ),
    "unknown decision field": Bad(
        "c.yaml", "unknown field 'speed'", case={"decision": {"speed": 1}}
    ),
    "negative latency budget": Bad(
        "c.yaml", "decision.latency_budget_ms", case={"decision": {"latency_budget_ms": -1}}
    ),
    "precomputable not true/false": Bad(
        "c.yaml",
        "decision.precomputable: expected true or false",
        case={"decision": {"precomputable": "maybe"}},
    ),
    "decision not a mapping": Bad("c.yaml", "decision: expected a mapping", case={"decision": 5}),
    # --- the assumptions ---
    "unknown assumption": Bad(
        "c.yaml", "unknown key 'coffee'", case={"assumptions": {"coffee": 3}}
    ),
    "negative assumption": Bad(
        "c.yaml",
        "assumptions.hourly_rate: expected a number >= 0",
        case={"assumptions": {"hourly_rate": -10}},
    ),
    "text assumption": Bad(
        "c.yaml",
        "assumptions.hourly_rate: expected a number",
        case={"assumptions": {"hourly_rate": "cheap"}},
    ),
    "unknown item of an option": Bad(
        "c.yaml", "unknown item 'gpus'", case={"assumptions": {"batch-ml": {"gpus": 2}}}
    ),
    "assumptions not a mapping": Bad(
        "c.yaml", "assumptions: expected a mapping", case={"assumptions": [1]}
    ),
    # --- the rule file ---
    "rule file missing": Bad(
        "c.yaml", "rule file 'nope.yaml' not found", case={"rules": "nope.yaml"}
    ),
    "rule file is a folder": Bad(
        "r.yaml", "a folder, not a file", case={"rules": "r.yaml"}, files={"r.yaml": FOLDER}
    ),
    "rule file YAML syntax": Bad(
        "r.yaml", "not valid YAML", case={"rules": "r.yaml"}, files={"r.yaml": "default: [no\n"}
    ),
    "rule file empty": Bad(
        "r.yaml", "expected a mapping", case={"rules": "r.yaml"}, files={"r.yaml": ""}
    ),
    "rule file binary": Bad(
        "r.yaml",
        "not a UTF-8 text file",
        case={"rules": "r.yaml"},
        files={"r.yaml": bytes(range(128, 256))},
    ),
    "rule without default": Bad(
        "r.yaml",
        "missing field 'default'",
        case={"rules": "r.yaml"},
        files={"r.yaml": "rules: []\n"},
    ),
    "rule condition syntax": Bad(
        "r.yaml",
        "rule 1: position 6: expected a value",
        case={"rules": "r.yaml"},
        files={"r.yaml": _rules(rules=[{"when": "age >", "decide": "yes"}])},
    ),
    "rule names an unknown column": Bad(
        "r.yaml",
        "unknown column 'colour'",
        case={"rules": "r.yaml"},
        files={"r.yaml": _rules(rules=[{"when": 'colour == "red"', "decide": "yes"}])},
    ),
    "rule compares text with a number": Bad(
        "r.yaml",
        "column 'plan' holds text",
        case={"rules": "r.yaml"},
        files={"r.yaml": _rules(rules=[{"when": "plan == 3", "decide": "yes"}])},
    ),
    "rule compares numbers with text": Bad(
        "r.yaml",
        "column 'age' holds numbers",
        case={"rules": "r.yaml"},
        files={"r.yaml": _rules(rules=[{"when": 'age == "old"', "decide": "yes"}])},
    ),
    "rule with an unknown decision": Bad(
        "r.yaml",
        "unknown decision 'offer'",
        case={"rules": "r.yaml"},
        files={"r.yaml": _rules(default="offer")},
    ),
    # --- a data file on the command line ---
    "fp/fn shortcut with three classes": Bad(
        "d.csv",
        "exactly two classes, found 3",
        files={"d.csv": _csv(outcome=_with_classes("no", "yes", "maybe"))},
        args=DATA_ARGS,
    ),
    "unknown positive class": Bad(
        "d.csv",
        "positive class 'maybe' is not among",
        args=(*DATA_ARGS, "--positive", "maybe"),
    ),
    "unknown --time-unit": Bad(
        "time_unit",
        "expected one of day, week",
        args=(*DATA_ARGS, "--time", "age", "--time-unit", "fortnight"),
    ),
    "data file without costs": Bad(
        "d.csv", "--cost-fp and --cost-fn are needed", args=("d.csv", "--target", "outcome")
    ),
    "case file with data-file flags": Bad(
        "c.yaml", "--target applies to a data file", args=("c.yaml", "--target", "outcome")
    ),
}


def _write(path: Path, content) -> None:
    if content is FOLDER:
        path.mkdir()
        return
    content = content() if callable(content) else content
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _case_text(case) -> object:
    if case is FOLDER or isinstance(case, str | bytes):
        return case
    fields = {**GOOD_CASE, **case}
    return yaml.safe_dump({k: v for k, v in fields.items() if v is not DROP}, sort_keys=False)


def test_the_table_covers_every_input():
    assert len(CASES) >= 40
    files = {bad.file for bad in CASES.values()}
    assert {"c.yaml", "d.csv", "r.yaml"} <= files


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    bad = CASES[name]
    monkeypatch.chdir(tmp_path)
    files = {"d.csv": _csv(), "r.yaml": _rules(), **bad.files}
    for file_name, content in files.items():
        _write(tmp_path / file_name, content)
    _write(tmp_path / "c.yaml", _case_text(bad.case))
    out = tmp_path / "out"
    args = bad.args or ("c.yaml",)
    result = CliRunner().invoke(main, ["analyze", *args, "--out", str(out), "-q"])

    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("advisor: error: ")
    assert bad.file in lines[0], lines[0]
    assert bad.says in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


# `advisor init DATA`: the same contract (args after `init`; the file the line names; a fragment).
INIT_CASES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "data missing": (("nope.csv",), "nope.csv", "no such data file"),
    "data empty": (("empty.csv",), "empty.csv", "the file is empty"),
    "unknown target": (("d.csv", "--target", "colour"), "d.csv", "no column 'colour'"),
    "target not a label": (("d.csv", "--target", "income"), "d.csv", "distinct values"),
    "unclear target in a pipe": (("two.csv",), "two.csv", "candidates: b, a"),
    "unknown --time": (("d.csv", "--target", "outcome", "--time", "when"), "d.csv", "'when'"),
    "cost names an unknown class": (
        ("d.csv", "--target", "outcome", "--cost", "maybe:act=1"),
        "--cost maybe:act=1",
        "unknown class 'maybe'",
    ),
    "cost names an unknown decision": (
        ("d.csv", "--target", "outcome", "--cost", "yes:call=1"),
        "--cost yes:call=1",
        "unknown decision 'call'",
    ),
    "cost malformed": (
        ("d.csv", "--target", "outcome", "--cost", "yes=1"),
        "--cost yes=1",
        "expected ACTUAL:DECISION=VALUE",
    ),
    "cost value unreadable": (
        ("d.csv", "--target", "outcome", "--cost", "yes:act=2 * * amount"),
        "--cost yes:act",
        "cannot read",
    ),
    "cost given twice": (
        ("d.csv", "--target", "outcome", "--cost", "yes:act=1", "--cost", "yes:act=2"),
        "--cost yes:act=2",
        "given twice",
    ),
    "decisions repeated": (
        ("d.csv", "--target", "outcome", "--decisions", "a,a"),
        "--decisions",
        "distinct",
    ),
    "output exists": (("d.csv", "-o", "c.yaml"), "c.yaml", "pass --force"),
    "output not yaml": (("d.csv", "-o", "case.txt"), "case.txt", ".yaml"),
}


@pytest.mark.parametrize("name", list(INIT_CASES))
def test_init_bad_input_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    args, file, says = INIT_CASES[name]
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "d.csv", _csv())
    _write(tmp_path / "empty.csv", "")
    _write(
        tmp_path / "two.csv",
        "a,b,x\n" + "".join(f"{i % 2},{i % 3 == 0},{i}.5\n" for i in range(90)),
    )
    _write(tmp_path / "c.yaml", "name: kept\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["init", *args])

    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advisor: error: "), result.stderr
    assert file in lines[0] and says in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "c.yaml").read_text() == "name: kept\n"
