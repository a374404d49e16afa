"""How values and column names are read and written in a rule: literals, quoting, missing
cells. Shared by the rule objects, the parser and every rendering."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd

KEYWORDS = frozenset({"and", "in", "not", "is", "missing", "true", "false"})
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Value = float | str


def quote_column(name: str) -> str:
    """A column name as written in a rule: bare when a plain identifier, else in backticks."""
    if _PLAIN_NAME.fullmatch(name) and name not in KEYWORDS:
        return name
    return "`" + name.replace("`", "``") + "`"


def format_number(x: float) -> str:
    """Shortest text that reads back as the same float (`12`, `0.5`, `1e-07`)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def format_value(v: Value) -> str:
    """A literal as written in a rule: numbers bare, text in double quotes (JSON escapes)."""
    return format_number(v) if isinstance(v, float) else json.dumps(v, ensure_ascii=False)


def is_missing(value) -> bool:
    """None, NaN, NA and NaT are missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def as_number(value) -> float:
    """One cell as a number; missing or unreadable cells are NaN (like `pd.to_numeric`)."""
    if is_missing(value):
        return math.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def as_text(value) -> str | None:
    """One cell as text; None when missing."""
    return None if is_missing(value) else str(value)
