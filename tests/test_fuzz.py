"""Fuzzing the three parsers of user text: any input gives a result or an InputError, nothing else.

The case-file loader, the cost-cell grammar and the rule-file parser each get arbitrary text,
text built from their own tokens (to reach past the first check), and mutations of a good input.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.core.case import Case, load_case
from advisor.core.costs import LinearCost, parse_cost_cell
from advisor.core.errors import InputError
from advisor.policies.rules.conditions import RuleList
from advisor.policies.rules.parser import parse_rules

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD_CASE = """\
name: fuzz
data: d.csv
target: outcome
time: when
ignore: [id]
costs:
  decisions: [skip, call]
  matrix:
    "no": {skip: 0, call: 10}
    "yes": {skip: "0.5 * amount + 3", call: 30}
decision: {volume: 500 per day, timing: live, precomputable: false, latency_budget_ms: 20}
rules: r.yaml
assumptions: {hourly_rate: 90, batch-ml: {infrastructure_per_month: 300}}
options: {max_rules: 4, bootstrap_resamples: 200}
seed: 3
"""
GOOD_RULES = """\
name: fuzz-rules
default: skip
rules:
  - when: plan == "basic" and age >= 50
    decide: call
  - when: '`odd name` in ["a", "b"] and income is missing'
    decide: skip
"""
KINDS = {"plan": "categorical", "age": "numeric", "income": "numeric", "odd name": "categorical"}

YAML_BITS = [
    *("name", "data", "target", "time", "time_unit", "ignore", "costs", "decisions", "matrix"),
    *("decision", "volume", "timing", "rules", "assumptions", "options", "seed", "default"),
    *("when", "decide", "d.csv", "r.yaml", "per day", "live", "periodic", "yes", "no", "null"),
    *(":", ": ", "- ", "\n", "\n  ", "\n    ", "{", "}", "[", "]", ",", '"', "'", "&a", "*a"),
    *("!!python/object", "!!binary", "~", "0", "-1", "1e999", ".nan", "2024-01-01", "?", "|"),
]
CONDITION_BITS = [
    *("age", "plan", "income", "`odd name`", "`", "colour", "and", "or", "not", "in", "is"),
    *("missing", "<", "<=", ">", ">=", "==", "!=", "=", "[", "]", ",", "(", ")", '"basic"'),
    *("'x'", '"\\q"', "1", "-2.5", "1e999", ".5", "true", "false", "nan", "\\", "\n"),
]


def _joined(bits: list[str], sep: str = "") -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(bits), max_size=40).map(sep.join)


def _mutated(text: str) -> st.SearchStrategy[str]:
    """The text with a few characters deleted, replaced or inserted."""

    @st.composite
    def mutate(draw) -> str:
        out = text
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(out)))
            j = min(len(out), i + draw(st.integers(0, 3)))
            out = out[:i] + draw(st.text(max_size=3)) + out[j:]
        return out

    return mutate()


def _any_text(good: str, bits: list[str], sep: str = "") -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=200), _joined(bits, sep), _mutated(good))


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    """A folder with the data and rule file the good case names, so loading goes deep."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "d.csv").write_text("age,amount,outcome,when,id\n1,2,no,2024-01-01,7\n")
    (folder / "r.yaml").write_text(GOOD_RULES)
    return folder


def test_the_good_inputs_parse(case_folder: Path):
    (case_folder / "c.yaml").write_text(GOOD_CASE)
    case = load_case(case_folder / "c.yaml")
    assert case.decision.timing == "live" and case.costs.columns == ("amount",)
    assert len(parse_rules(GOOD_RULES, kinds=KINDS, decisions=["skip", "call"]).rules) == 2
    assert parse_cost_cell("0.5 * amount + 3", "c") == LinearCost(3.0, 0.5, "amount")


@FUZZ
@given(text=_any_text(GOOD_CASE, YAML_BITS))
def test_any_case_text_loads_or_is_an_input_error(case_folder: Path, text: str):
    path = case_folder / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _loads_or_says_why(path)


def _loads_or_says_why(path: Path) -> None:
    try:
        case = load_case(path)
    except InputError as exc:
        assert str(exc).startswith(str(path)) and len(str(exc).splitlines()) == 1
        return
    assert isinstance(case, Case) and case.costs.n_decisions >= 1


FIELD_NAMES = st.sampled_from([*yaml.safe_load(GOOD_CASE), "volume", "matrix", "hourly_rate"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["d.csv", "r.yaml", "amount", "yes", "no", "skip", "call", "5 per day"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            FIELD_NAMES | st.sampled_from(["no", "yes", "skip", "call"]), inner, max_size=3
        )
    ),
    max_leaves=12,
)


@FUZZ
@given(fields=st.dictionaries(FIELD_NAMES, VALUES, max_size=6))
def test_any_case_fields_load_or_are_an_input_error(case_folder: Path, fields: dict):
    base = yaml.safe_load(GOOD_CASE)
    path = case_folder / "c.yaml"
    path.write_text(yaml.safe_dump({**base, **fields}))
    _loads_or_says_why(path)


CELL_BITS = ["amount", "`odd col`", "*", "+", "-", "1", "0.5", "1e308", "1e999", ".", "e", " "]


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=60),
        _joined(CELL_BITS),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_any_cost_cell_parses_or_is_an_input_error(value):
    try:
        cell = parse_cost_cell(value, "costs.matrix.a.b")
    except InputError as exc:
        assert str(exc).startswith("costs.matrix.a.b: ") and len(str(exc).splitlines()) == 1
        return
    assert isinstance(cell, LinearCost)
    assert math.isfinite(cell.intercept) and math.isfinite(cell.slope)
    assert (cell.column is None) == (cell.slope == 0)


@settings(max_examples=300, deadline=None)
@given(
    text=_any_text(GOOD_RULES, CONDITION_BITS, " "),
    checked=st.booleans(),
)
def test_any_rule_file_parses_or_is_an_input_error(text: str, checked: bool):
    kinds, decisions = (KINDS, ["skip", "call"]) if checked else (None, None)
    try:
        rules = parse_rules(text, "r.yaml", kinds, decisions)
    except InputError as exc:
        assert str(exc).startswith("r.yaml") and len(str(exc).splitlines()) == 1
        return
    assert isinstance(rules, RuleList)


@settings(max_examples=300, deadline=None)
@given(when=st.one_of(st.text(max_size=80), _joined(CONDITION_BITS, " ")), checked=st.booleans())
def test_any_condition_in_a_rule_parses_or_is_an_input_error(when: str, checked: bool):
    text = yaml.safe_dump({"default": "skip", "rules": [{"when": when, "decide": "call"}]})
    kinds = KINDS if checked else None
    try:
        rules = parse_rules(text, "r.yaml", kinds, ["skip", "call"])
    except InputError as exc:
        assert str(exc).startswith("r.yaml") and len(str(exc).splitlines()) == 1
        return
    assert len(rules.rules) == 1
