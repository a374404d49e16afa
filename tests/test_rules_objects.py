"""Rule value objects, the rule-file parser, evaluation and the three renderings."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.core.errors import InputError
from advisor.policies.rules import Condition, Rule, RuleList, load_rules, parse_rules
from advisor.policies.rules.render import sql_identifier, to_english, to_python, to_sql

ROOT = Path(__file__).resolve().parent.parent


def telco_rules() -> RuleList:
    return parse_rules(
        """
name: retention
default: no_offer
rules:
  - when: contract == "Month-to-month" and tenure < 12
    decide: offer
  - when: charges >= 70.5 and `online security` not in ["Yes"]
    decide: offer
  - when: charges is missing
    decide: review
"""
    )


def test_value_objects_are_immutable_hashable_and_ordered():
    a = Condition("tenure", "<", 12)
    b = Condition("tenure", "<", 12.0)
    assert a == b and hash(a) == hash(b)
    assert a.value == 12.0 and isinstance(a.value, float)
    with pytest.raises(AttributeError):
        a.op = ">"
    rules = telco_rules()
    assert rules == telco_rules() and hash(rules) == hash(telco_rules())
    assert sorted([Condition("b", "==", "x"), a]) == [Condition("b", "==", "x"), a]
    assert Condition("x", "in", ["a", "b"]).value == ("a", "b")
    with pytest.raises(ValueError):
        Condition("x", "<", "text")
    with pytest.raises(ValueError):
        Condition("x", "in", [1, "a"])
    with pytest.raises(ValueError):
        Rule((), "offer")


def test_str_is_rule_file_text_and_round_trips():
    rules = telco_rules()
    text = str(rules)
    assert "default: no_offer" in text
    assert 'contract == "Month-to-month" and tenure < 12' in text
    assert "`online security`" in text
    assert parse_rules(text) == rules
    assert str(Condition("odd`name", "is missing")) == "`odd``name` is missing"
    assert (
        parse_rules(str(RuleList((Rule((Condition("odd`name", "is missing"),), "a"),), "b")))
        .rules[0]
        .conditions[0]
        .column
        == "odd`name"
    )


def test_bundled_rule_files_parse_against_their_cases():
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset

    for name in ("telco-churn", "credit-scoring"):
        case = load_case(ROOT / "datasets" / f"{name}.yaml")
        schema = load_dataset(case).schema
        rules = load_rules(case.rules_path, schema.features, case.costs.decisions)
        assert len(rules) >= 3
    car = load_rules(ROOT / "rules" / "car-loans.yaml")
    assert car.default == "approve"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("tenure <", "position 9: expected a value"),
        ("tenure < 12 and", "position 16: expected a column name"),
        ("tenure = 12", "position 8: unexpected character '='"),
        ("tenure < 12 or x > 1", "position 13: expected 'and'"),
        ('tenure < "12"', "position 10: '<' compares numbers"),
        ("contract == 12", "position 13: column 'contract' holds text"),
        ('tenure == "a"', "position 11: column 'tenure' holds numbers"),
        ("nope == 1", "position 1: unknown column 'nope'"),
        ("contract in []", "position 14: expected a value"),
        ("contract is maybe", "position 13: expected 'missing' or 'not missing'"),
        ('contract in ["a" "b"]', "position 18: expected ',' or ']'"),
        ("`unclosed == 1", "position 1: unexpected character '`' (unclosed quote?)"),
    ],
)
def test_parse_errors_name_file_rule_and_position(when, message):
    text = f"default: no_offer\nrules:\n  - when: a == 1\n    decide: offer\n  - when: '{when}'\n    decide: offer\n"
    kinds = {"tenure": "numeric", "contract": "categorical", "a": "numeric"}
    with pytest.raises(InputError) as err:
        parse_rules(text, "my.yaml", kinds)
    assert str(err.value).startswith("my.yaml: rule 2: ")
    assert message in str(err.value)


def test_file_level_errors():
    with pytest.raises(InputError, match="missing field 'default'"):
        parse_rules("rules: []", "f.yaml")
    with pytest.raises(InputError, match="rule 1: unknown decision 'maybe'"):
        parse_rules(
            "default: a\nrules:\n  - when: x < 1\n    decide: maybe", "f.yaml", decisions=["a", "b"]
        )
    with pytest.raises(InputError, match="rule 1: missing field 'decide'"):
        parse_rules("default: a\nrules:\n  - when: x < 1", "f.yaml")
    with pytest.raises(InputError, match="not valid YAML"):
        parse_rules("default: [", "f.yaml")
    with pytest.raises(InputError, match="no such rule file"):
        load_rules("/nonexistent/rules.yaml")


def test_missing_matches_no_comparison():
    frame = pd.DataFrame(
        {"x": [1.0, np.nan, 3.0], "c": ["a", None, "b"]},
    )
    assert Condition("x", "!=", 1).mask(frame).tolist() == [False, False, True]
    assert Condition("x", "not in", [1]).mask(frame).tolist() == [False, False, True]
    assert Condition("c", "!=", "a").mask(frame).tolist() == [False, False, True]
    assert Condition("c", "not in", ["a"]).mask(frame).tolist() == [False, False, True]
    assert Condition("x", "is missing").mask(frame).tolist() == [False, True, False]
    assert Condition("c", "is not missing").mask(frame).tolist() == [True, False, True]
    assert not Condition("x", "<", 5).holds(None)
    assert not Condition("c", "!=", "a").holds(math.nan)


def test_english_rendering():
    english = to_english(telco_rules())
    assert (
        english.splitlines()[0] == "1. If contract is Month-to-month and tenure is below 12, offer."
    )
    assert "If charges is at least 70.5 and online security is not Yes, offer." in english
    assert english.splitlines()[-1] == "Otherwise, no_offer."


def test_sql_quotes_identifiers_and_literals():
    rules = RuleList((Rule((Condition('we"ird', "==", "O'Neil"),), "it's"),), "no")
    sql = to_sql(rules)
    assert "\"we\"\"ird\" = 'O''Neil' THEN 'it''s'" in sql
    assert sql_identifier("a b") == '"a b"'


# --- property: vectorised, per-record, Python and SQL agree --------------------------------

NAMES = ["tenure", "a b", 'qu"ote', "back`tick", "it's", "and", "ünï", "x.y", "9lives"]
NUMS = [-1.5, 0.0, 1.0, 2.0, 2.5, 10.0, 1e-7, 123456.0]
TEXTS = ["a", "b", "O'Neil", 'say "hi"', "back\\slash", "ünï", " ", "1"]


@st.composite
def frames_and_rules(draw):
    n_cols = draw(st.integers(2, 5))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=n_cols, max_size=n_cols, unique=True))
    numeric = {name: draw(st.booleans()) for name in names}
    n = draw(st.integers(1, 25))
    data = {}
    for name in names:
        if numeric[name]:
            pool = st.one_of(
                st.sampled_from(NUMS), st.floats(-5, 5, allow_nan=False), st.just(math.nan)
            )
            data[name] = [draw(pool) for _ in range(n)]
        else:
            data[name] = [draw(st.one_of(st.sampled_from(TEXTS), st.none())) for _ in range(n)]
    frame = pd.DataFrame(
        {k: pd.Series(v, dtype=float if numeric[k] else object) for k, v in data.items()}
    )

    def condition():
        col = draw(st.sampled_from(names))
        if numeric[col]:
            op = draw(
                st.sampled_from(
                    [
                        "<",
                        "<=",
                        ">",
                        ">=",
                        "==",
                        "!=",
                        "in",
                        "not in",
                        "is missing",
                        "is not missing",
                    ]
                )
            )
            pool = st.sampled_from(NUMS)
        else:
            op = draw(st.sampled_from(["==", "!=", "in", "not in", "is missing", "is not missing"]))
            pool = st.sampled_from(TEXTS)
        if op in ("is missing", "is not missing"):
            return Condition(col, op)
        if op in ("in", "not in"):
            return Condition(col, op, tuple(draw(st.lists(pool, min_size=1, max_size=3))))
        return Condition(col, op, draw(pool))

    rules = tuple(
        Rule(tuple(condition() for _ in range(draw(st.integers(1, 3)))), f"d{i}")
        for i in range(draw(st.integers(0, 4)))
    )
    return frame, numeric, RuleList(rules, "default", "prop")


def _sql_decisions(frame: pd.DataFrame, numeric: dict, rules: RuleList) -> list[str]:
    con = sqlite3.connect(":memory:")
    cols = ", ".join(
        f"{sql_identifier(c)} {'REAL' if numeric[c] else 'TEXT'}" for c in frame.columns
    )
    con.execute(f"CREATE TABLE t ({cols})")
    rows = [
        tuple(None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in row)
        for row in frame.itertuples(index=False, name=None)
    ]
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(frame.columns))})", rows)
    out = [r[0] for r in con.execute(f"SELECT {to_sql(rules)} FROM t ORDER BY rowid")]
    con.close()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames_and_rules())
def test_every_path_gives_the_same_decisions(case):
    frame, numeric, rules = case
    vectorised = rules.decide(frame).tolist()
    records = frame.to_dict("records")
    assert vectorised == [rules.decide_one(r) for r in records]
    namespace: dict = {}
    exec(to_python(rules), namespace)  # the rendering is meant to be executed
    assert vectorised == [namespace["decide"](r) for r in records]
    assert vectorised == _sql_decisions(frame, numeric, rules)
    assert parse_rules(str(rules)) == rules
