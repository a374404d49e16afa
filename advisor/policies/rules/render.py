"""Renderings of a rule list: plain English, a Python function and an SQL CASE expression.

All three agree with the evaluator in `conditions.py` (tests run the Python source and the
SQL in SQLite). The Python and SQL read the cleaned feature values (what
`FeatureSpec.clean` gives: numbers and booleans as numbers, categories as text).
"""

from __future__ import annotations

from collections.abc import Mapping

from advisor.policies.rules.conditions import Condition, RuleList
from advisor.policies.rules.literals import format_number, format_value


def to_english(rules: RuleList) -> str:
    """Numbered sentences, first match wins, then the default."""
    return rules.english()


_PY_HELPERS = """import math


def _missing(value):
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType") or (
        hasattr(value, "dtype") and value != value
    )


def _number(value):
    if _missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value):
    return None if _missing(value) else str(value)
"""


def _py_number(v: float) -> str:
    return repr(float(v))


def _py_condition(c: Condition) -> str:
    cell = f"row.get({c.column!r})"
    if c.op == "is missing":
        return f"_missing({cell})"
    if c.op == "is not missing":
        return f"not _missing({cell})"
    if c.numeric:
        get, known = f"_number({cell})", f"not math.isnan(_number({cell}))"
        lit = _py_number
    else:
        get, known = f"_text({cell})", f"_text({cell}) is not None"
        lit = repr
    if c.op in ("in", "not in"):
        items = "(" + ", ".join(lit(v) for v in c.value) + ("," if len(c.value) == 1 else "") + ")"
        if c.op == "in":
            return f"{get} in {items}"
        return f"({known} and {get} not in {items})"
    if c.op == "!=":
        return f"({known} and {get} != {lit(c.value)})"
    return f"{get} {c.op} {lit(c.value)}"


def to_python(rules: RuleList, function_name: str = "decide") -> str:
    """Source of a self-contained function `decide(row: dict) -> str` (standard library only)."""
    body = [
        f"def {function_name}(row):",
        f'    """Rule list {rules.name!r}: the first matching rule decides."""',
    ]
    for i, rule in enumerate(rules.rules, start=1):
        test = " and ".join(_py_condition(c) for c in rule.conditions)
        body.append(f"    # rule {i}: {rule.when}".replace("\n", " "))
        body.append(f"    if {test}:")
        body.append(f"        return {rule.decision!r}")
    body.append(f"    return {rules.default!r}")
    return _PY_HELPERS + "\n\n" + "\n".join(body) + "\n"


_PY_MODULE_TAIL = """

KINDS = {kinds}
FLAGS = {flags}
NA_TEXT = frozenset({na_text})


def _flag(value):
    if _missing(value):
        return math.nan
    try:
        return FLAGS.get(value, math.nan)
    except TypeError:
        return math.nan


def clean(row):
    \"\"\"The cells the rules read, as advisor reads them: numbers, true/false as 1/0, text.\"\"\"
    out = {{}}
    for column, kind in KINDS.items():
        value = row.get(column)
        if kind == "numeric":
            out[column] = _number(value)
        elif kind == "boolean":
            out[column] = _flag(value)
        else:
            out[column] = None if _missing(value) else value
    return out


def decide(row):
    \"\"\"The decision for one row: a dict of column -> value, None (or NaN) when missing.\"\"\"
    return _decide_clean(clean(row))


def main():
    \"\"\"CSV rows on standard input, the same rows with a `decision` column on standard output.\"\"\"
    import csv
    import sys

    reader = csv.DictReader(sys.stdin)
    writer = csv.DictWriter(sys.stdout, fieldnames=[*(reader.fieldnames or []), "decision"])
    writer.writeheader()
    for row in reader:
        cells = {{k: None if v in NA_TEXT else v for k, v in row.items()}}
        writer.writerow({{**row, "decision": decide(cells)}})


if __name__ == "__main__":
    main()
"""


def to_python_module(rules: RuleList, kinds: Mapping[str, str], title: str = "") -> str:
    """A standalone module (standard library only): `decide(row)` for one row of raw values,
    cleaned by each column's kind as `FeatureSpec.clean` does, and a CSV filter as `__main__`
    (`python rules.py < rows.csv > decided.csv`)."""
    from advisor.core.features import BOOLEAN_VALUES
    from advisor.core.reading import NA_TEXT

    used = {c: kinds.get(c, "categorical") for c in rules.columns}
    head = f'"""{title}\n\nStandard library only: `from rules import decide` or `python rules.py < rows.csv`."""\n\n'
    return (
        head.replace("\\", "\\\\")
        + to_python(rules, function_name="_decide_clean")
        + _PY_MODULE_TAIL.format(
            kinds=repr(used), flags=repr(BOOLEAN_VALUES), na_text=repr(tuple(NA_TEXT))
        )
    )


def sql_identifier(name: str) -> str:
    """`"name"`, with inner double quotes doubled (standard SQL)."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(v) -> str:
    """A number bare, text in single quotes with inner quotes doubled."""
    if isinstance(v, float):
        return format_number(v)
    return "'" + str(v).replace("'", "''") + "'"


def _sql_condition(c: Condition) -> str:
    col = sql_identifier(c.column)
    if c.op == "is missing":
        return f"{col} IS NULL"
    if c.op == "is not missing":
        return f"{col} IS NOT NULL"
    if c.op in ("in", "not in"):
        items = ", ".join(sql_literal(v) for v in c.value)
        return f"{col} {'IN' if c.op == 'in' else 'NOT IN'} ({items})"
    op = "<>" if c.op == "!=" else "=" if c.op == "==" else c.op
    return f"{col} {op} {sql_literal(c.value)}"


def to_sql(rules: RuleList) -> str:
    """`CASE WHEN ... THEN 'decision' ... ELSE 'default' END` (NULL matches no comparison);
    a list without rules is just the default's literal."""
    if not rules.rules:
        return sql_literal(rules.default)
    lines = ["CASE"]
    for rule in rules.rules:
        test = " AND ".join(_sql_condition(c) for c in rule.conditions)
        lines.append(f"  WHEN {test} THEN {sql_literal(rule.decision)}")
    lines.append(f"  ELSE {sql_literal(rules.default)}")
    lines.append("END")
    return "\n".join(lines)


def to_sql_select(rules: RuleList, title: str = "", table: str = "input_rows") -> str:
    """A ready query: every column of `table` and the decision, from `to_sql`'s CASE."""
    case = to_sql(rules).replace("\n", "\n  ")
    comments = [
        title,
        "The decision is one CASE expression: the first matching WHEN decides; NULL (missing)",
        f"matches no comparison. Replace {table} with your table or view.",
    ]
    head = "".join(
        f"-- {line}\n".replace("\r", " ") for c in comments if c for line in c.splitlines()
    )
    return f"{head}SELECT\n  *,\n  {case} AS decision\nFROM {sql_identifier(table)};\n"


__all__ = [
    "format_value",
    "sql_identifier",
    "sql_literal",
    "to_english",
    "to_python",
    "to_python_module",
    "to_sql",
    "to_sql_select",
]
