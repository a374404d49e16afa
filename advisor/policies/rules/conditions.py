"""Rule value objects: Condition, Rule and RuleList (a decision list), and their evaluation.

A RuleList decides a row by its first matching rule, else by its default decision. Every
object is immutable, hashable and ordered, and `str()` gives its rule-file text.

Evaluation has two paths that give identical answers: vectorised over a frame (boolean masks,
no loop over rows) and per record (`match_one`, the single-request path). The semantics:

- a condition with a number (`tenure < 12`, `x in [1, 2]`) compares the value as a number;
  a cell that is missing or does not read as a number matches no such comparison;
- a condition with text (`contract == "Month-to-month"`) compares the cell's text (`str`);
  a missing cell matches no such comparison, `!=` and `not in` included;
- only `is missing` matches a missing cell (None, NaN, NA); `is not missing` matches the rest.

Column names that are not plain identifiers are written in backticks; a backtick inside a
name is written twice (`` `odd``name` ``).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from advisor.policies.rules.literals import (
    Value,
    as_number,
    as_text,
    format_number,
    format_value,
    is_missing,
    quote_column,
)

COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
COMPARISONS = tuple(COMPARE)
SET_OPS = ("in", "not in")
MISSING_OPS = ("is missing", "is not missing")
OPS = COMPARISONS + SET_OPS + MISSING_OPS
_ENGLISH_OPS = {
    "<": "is below",
    "<=": "is at most",
    ">": "is above",
    ">=": "is at least",
    "==": "is",
    "!=": "is not",
}


def _english_value(v) -> str:
    return format_number(v) if isinstance(v, float) else str(v)


def _english_list(values, last: str) -> str:
    words = [_english_value(v) for v in values]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + f" {last} " + words[-1]


def _value_key(v) -> tuple:
    if v is None:
        return (0,)
    if isinstance(v, tuple):
        return (3, tuple(_value_key(x) for x in v))
    return (1, v) if isinstance(v, float) else (2, v)


def _normalise(v, where: str) -> Value:
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, int | float | np.integer | np.floating):
        if not math.isfinite(float(v)):
            raise ValueError(f"{where}: a rule value must be a finite number, got {v!r}")
        return float(v)
    if isinstance(v, str):
        return v
    raise ValueError(f"{where}: a rule value must be a number or text, got {v!r}")


@functools.total_ordering
@dataclass(frozen=True, eq=True)
class Condition:
    """`column OP value`: one test on one column; see the module docstring for the semantics."""

    column: str
    op: str
    value: Value | tuple[Value, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ValueError(f"a condition needs a column name, got {self.column!r}")
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}; expected one of {list(OPS)}")
        where = f"condition on {self.column!r}"
        if self.op in MISSING_OPS:
            if self.value is not None:
                raise ValueError(f"{where}: {self.op!r} takes no value")
            return
        if self.op in SET_OPS:
            if (
                isinstance(self.value, str)
                or not isinstance(self.value, Sequence)
                or not self.value
            ):
                raise ValueError(f"{where}: {self.op!r} needs a non-empty list of values")
            values = tuple(_normalise(v, where) for v in self.value)
            if len({isinstance(v, float) for v in values}) > 1:
                raise ValueError(f"{where}: a list must hold only numbers or only text")
            object.__setattr__(self, "value", values)
            return
        value = _normalise(self.value, where)
        if self.op not in ("==", "!=") and not isinstance(value, float):
            raise ValueError(f"{where}: {self.op!r} compares numbers, got text {value!r}")
        object.__setattr__(self, "value", value)

    def _key(self) -> tuple:
        return (self.column, OPS.index(self.op), _value_key(self.value))

    def __lt__(self, other: Condition) -> bool:
        if not isinstance(other, Condition):
            return NotImplemented
        return self._key() < other._key()

    @property
    def numeric(self) -> bool:
        """True when the condition compares numbers; False for text and for missing tests."""
        v = self.value
        first = v[0] if isinstance(v, tuple) else v
        return isinstance(first, float)

    @property
    def text(self) -> bool:
        """True when the condition compares text."""
        return self.value is not None and not self.numeric

    def __str__(self) -> str:
        col = quote_column(self.column)
        if self.op in MISSING_OPS:
            return f"{col} {self.op}"
        if self.op in SET_OPS:
            items = ", ".join(format_value(v) for v in self.value)
            return f"{col} {self.op} [{items}]"
        return f"{col} {self.op} {format_value(self.value)}"

    def english(self) -> str:
        """`tenure < 12` -> 'tenure is below 12'."""
        c = self
        if c.op == "is missing":
            return f"{c.column} is missing"
        if c.op == "is not missing":
            return f"{c.column} is known"
        if c.op == "in":
            if len(c.value) == 1:
                return f"{c.column} is {_english_value(c.value[0])}"
            return f"{c.column} is {_english_list(c.value, 'or')}"
        if c.op == "not in":
            if len(c.value) == 1:
                return f"{c.column} is not {_english_value(c.value[0])}"
            return f"{c.column} is neither {_english_list(c.value, 'nor')}"
        return f"{c.column} {_ENGLISH_OPS[c.op]} {_english_value(c.value)}"

    def holds(self, value) -> bool:
        """Whether one cell satisfies the condition (the per-record path)."""
        op = self.op
        if op == "is missing":
            return is_missing(value)
        if op == "is not missing":
            return not is_missing(value)
        if self.numeric:
            x = as_number(value)
            if math.isnan(x):
                return False
        else:
            x = as_text(value)
            if x is None:
                return False
        v = self.value
        if op in COMPARE:
            return COMPARE[op](x, v)
        if op == "in":
            return x in v
        return x not in v

    def mask(self, frame: pd.DataFrame, cache: dict | None = None) -> np.ndarray:
        """Boolean mask of the rows of `frame` that satisfy the condition (vectorised)."""
        cache = {} if cache is None else cache
        col = _column(frame, self.column)
        op = self.op
        if op in MISSING_OPS:
            key = ("missing", self.column)
            if key not in cache:
                cache[key] = col.isna().to_numpy()
            missing = cache[key]
            return missing.copy() if op == "is missing" else ~missing
        if self.numeric:
            key = ("number", self.column)
            if key not in cache:
                cache[key] = _numbers(col)
            x = cache[key]
            with np.errstate(invalid="ignore"):
                return _apply(op, x, self.value, known=~np.isnan(x))
        key = ("text", self.column)
        if key not in cache:
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            cache[key] = (codes, np.array([str(u) for u in uniques], dtype=object))
        codes, uniques = cache[key]
        on_uniques = _apply(op, uniques, self.value, known=np.ones(len(uniques), dtype=bool))
        out = np.zeros(len(codes), dtype=bool)
        present = codes >= 0
        out[present] = on_uniques[codes[present]]
        return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    try:
        return frame[name]
    except KeyError:
        raise KeyError(f"the rules read column {name!r}, which is not in the data") from None


def _numbers(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col) and not col.isna().any():
        return col.to_numpy(dtype=float)
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=float, na_value=np.nan)
    values = col.astype(object).map(as_number)
    return values.to_numpy(dtype=float)


def _apply(op: str, x: np.ndarray, v, known: np.ndarray) -> np.ndarray:
    if op in COMPARE:
        hit = COMPARE[op](x, v)
        # NaN already fails an ordering; missing text must not count as equal or unequal.
        return hit & known if op in ("==", "!=") else hit
    hit = np.isin(x, np.array(v, dtype=x.dtype)) if len(x) else np.zeros(0, dtype=bool)
    return hit & known if op == "in" else ~hit & known


@functools.total_ordering
@dataclass(frozen=True, eq=True)
class Rule:
    """`when` (a conjunction of one or more conditions) -> `decide`."""

    conditions: tuple[Condition, ...]
    decision: str

    def __post_init__(self) -> None:
        conditions = tuple(self.conditions)
        if not conditions or not all(isinstance(c, Condition) for c in conditions):
            raise ValueError("a rule needs one or more Condition objects")
        if not isinstance(self.decision, str) or not self.decision:
            raise ValueError(f"a rule needs a decision, got {self.decision!r}")
        object.__setattr__(self, "conditions", conditions)

    def _key(self) -> tuple:
        return (tuple(c._key() for c in self.conditions), self.decision)

    def __lt__(self, other: Rule) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return self._key() < other._key()

    @property
    def when(self) -> str:
        """The `when:` text of the rule file."""
        return " and ".join(str(c) for c in self.conditions)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.column for c in self.conditions))

    def __str__(self) -> str:
        return _dump({"when": self.when, "decide": self.decision}).rstrip("\n")

    def english(self) -> str:
        """'If contract is Month-to-month and tenure is below 12, offer.'"""
        return "If " + " and ".join(c.english() for c in self.conditions) + f", {self.decision}."

    def matches(self, record: Mapping) -> bool:
        """Whether one record (column -> value) satisfies every condition."""
        return all(c.holds(record.get(c.column)) for c in self.conditions)

    def mask(self, frame: pd.DataFrame, cache: dict | None = None) -> np.ndarray:
        """Boolean mask of the rows satisfying every condition."""
        out = np.ones(len(frame), dtype=bool)
        cache = {} if cache is None else cache
        for c in self.conditions:
            out &= c.mask(frame, cache)
        return out


@functools.total_ordering
@dataclass(frozen=True, eq=True)
class RuleList:
    """A decision list: the first matching rule decides, else the default decision."""

    rules: tuple[Rule, ...]
    default: str
    name: str = "rules"
    comment: str = field(default="", compare=False, hash=False)

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        if not all(isinstance(r, Rule) for r in rules):
            raise ValueError("a rule list holds Rule objects")
        if not isinstance(self.default, str) or not self.default:
            raise ValueError(f"a rule list needs a default decision, got {self.default!r}")
        object.__setattr__(self, "rules", rules)

    def _key(self) -> tuple:
        return (self.name, self.default, tuple(r._key() for r in self.rules))

    def __lt__(self, other: RuleList) -> bool:
        if not isinstance(other, RuleList):
            return NotImplemented
        return self._key() < other._key()

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the rules read, in order of first use."""
        return tuple(dict.fromkeys(c for r in self.rules for c in r.columns))

    @property
    def decisions(self) -> tuple[str, ...]:
        """Every decision the list can make, in order of first use."""
        return tuple(dict.fromkeys([*(r.decision for r in self.rules), self.default]))

    def __str__(self) -> str:
        """The rule-file text (YAML)."""
        doc = {
            "name": self.name,
            "default": self.default,
            "rules": [{"when": r.when, "decide": r.decision} for r in self.rules],
        }
        head = "".join(f"# {line}\n".replace("# \n", "#\n") for line in self.comment.splitlines())
        return head + _dump(doc)

    def __repr__(self) -> str:
        return f"<RuleList {self.name!r}: {len(self.rules)} rules>\n{self.english()}"

    def match_index(self, frame: pd.DataFrame) -> np.ndarray:
        """For every row, the index of the rule that decides it (`len(rules)`: the default)."""
        n = len(frame)
        out = np.full(n, len(self.rules), dtype=np.int64)
        undecided = np.ones(n, dtype=bool)
        cache: dict = {}
        for i, rule in enumerate(self.rules):
            hit = rule.mask(frame, cache) & undecided
            out[hit] = i
            undecided &= ~hit
        return out

    def match_one(self, record: Mapping) -> int:
        """The index of the rule that decides one record (`len(rules)`: the default)."""
        for i, rule in enumerate(self.rules):
            if rule.matches(record):
                return i
        return len(self.rules)

    def outcome_labels(self) -> list[str]:
        """The decision of each rule, then the default: index with `match_index`."""
        return [r.decision for r in self.rules] + [self.default]

    def decide(self, frame: pd.DataFrame) -> np.ndarray:
        """The decision (label) for every row."""
        labels = np.array(self.outcome_labels(), dtype=object)
        return labels[self.match_index(frame)]

    def decide_one(self, record: Mapping) -> str:
        """The decision (label) for one record."""
        return self.outcome_labels()[self.match_one(record)]

    def decision_codes(self, decisions: Sequence[str]) -> np.ndarray:
        """Codes (indices into `decisions`) of each rule's decision, then the default's."""
        position = {d: i for i, d in enumerate(decisions)}
        unknown = [d for d in self.outcome_labels() if d not in position]
        if unknown:
            raise ValueError(f"decision {unknown[0]!r} is not one of {list(decisions)}")
        return np.array([position[d] for d in self.outcome_labels()], dtype=np.int64)

    def english(self) -> str:
        """Plain English: numbered sentences, first match wins, then the default."""
        if not self.rules:
            return f"Always {self.default}."
        lines = [f"{i}. {r.english()}" for i, r in enumerate(self.rules, start=1)]
        lines.append(self.default_english())
        return "\n".join(lines)

    def default_english(self) -> str:
        """The default decision as a sentence ('Otherwise, offer.' or 'Always offer.')."""
        return f"Otherwise, {self.default}." if self.rules else f"Always {self.default}."


def _dump(doc) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False):
            return super().increase_indent(flow, False)

    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)
