"""The rule-file parser: YAML for the file, a small grammar for each `when:` (never eval).

Grammar of a condition list::

    when      := condition ("and" condition)*
    condition := column ( ("<" | "<=" | ">" | ">=" | "==" | "!=") value
                        | "in" list | "not" "in" list
                        | "is" "missing" | "is" "not" "missing" )
    list      := "[" value ("," value)* "]"
    value     := number | "text" | 'text' | true | false
    column    := identifier | `any text` (a backtick inside is written twice)

Given the case's feature kinds, unknown columns and type mismatches (a text column compared
with a number, a number column with text) are errors at load time. Every error names the
file, the rule number and the position in the `when:` text, and says what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from advisor.core.errors import InputError, yaml_error
from advisor.policies.rules.conditions import COMPARISONS, Condition, Rule, RuleList
from advisor.policies.rules.literals import KEYWORDS, format_value

_TOKENS = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<dstring>\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<sstring>'(?:[^'\\]|\\.)*')"
    r"|(?P<quoted>`(?:[^`]|``)*`)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<punct>[\[\],])"
)
_FILE_KEYS = {"name", "default", "rules"}
_RULE_KEYS = {"when", "decide"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: object
    pos: int


class _Fail(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _describe(tok: Token | None) -> str:
    return "the end of the condition" if tok is None else repr(tok.text)


def tokenize(text: str) -> list[Token]:
    """Split a `when:` text into tokens, each with its 0-based position."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if not m:
            ch = text[pos]
            hint = " (unclosed quote?)" if ch in "\"'`" else ""
            raise _Fail(
                f"unexpected character {ch!r}{hint}: expected a column, an operator or a value",
                pos,
            )
        kind = m.lastgroup or ""
        raw = m.group(0)
        if kind != "space":
            out.append(Token(*_token_value(kind, raw, pos)))
        pos = m.end()
    return out


def _token_value(kind: str, raw: str, pos: int) -> tuple[str, str, object, int]:
    if kind == "number":
        if not math.isfinite(float(raw)):
            raise _Fail(f"the number {raw} is too large", pos)
        return "value", raw, float(raw), pos
    if kind == "dstring":
        try:
            return "value", raw, json.loads(raw), pos
        except json.JSONDecodeError:
            raise _Fail(f"bad escape in the text {raw}", pos) from None
    if kind == "sstring":
        body = re.sub(r"\\(.)", r"\1", raw[1:-1])
        return "value", raw, body, pos
    if kind == "quoted":
        name = raw[1:-1].replace("``", "`")
        if not name:
            raise _Fail("empty column name in backticks", pos)
        return "column", raw, name, pos
    if kind == "name":
        if raw in ("true", "false"):
            return "value", raw, 1.0 if raw == "true" else 0.0, pos
        if raw in KEYWORDS:
            return "keyword", raw, raw, pos
        return "column", raw, raw, pos
    return kind, raw, raw, pos


class _Reader:
    def __init__(self, tokens: list[Token], kinds: Mapping[str, str] | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.kinds = kinds

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def end_pos(self) -> int:
        if not self.tokens:
            return 0
        last = self.tokens[-1]
        return last.pos + len(last.text)

    def take(self, expected: str, kinds: tuple[str, ...], texts: tuple[str, ...] = ()) -> Token:
        tok = self.peek()
        if tok is None or tok.kind not in kinds or (texts and tok.text not in texts):
            pos = self.end_pos() if tok is None else tok.pos
            raise _Fail(f"expected {expected}, found {_describe(tok)}", pos)
        self.i += 1
        return tok

    def conditions(self) -> tuple[Condition, ...]:
        out = [self.condition()]
        while self.peek() is not None:
            self.take("'and' between conditions", ("keyword",), ("and",))
            out.append(self.condition())
        return tuple(out)

    def condition(self) -> Condition:
        col = self.take("a column name (backticks for odd names)", ("column",))
        kind = self._kind(col)
        tok = self.peek()
        ops = "an operator (<, <=, >, >=, ==, !=, in, not in, is missing, is not missing)"
        if tok is not None and tok.kind == "op":
            self.i += 1
            value = self.value()
            self._check_type(col, kind, tok.text, value)
            return Condition(col.value, tok.text, value.value)
        word = self.take(ops, ("keyword",), ("in", "not", "is"))
        if word.text == "is":
            nxt = self.take(
                "'missing' or 'not missing' after 'is'", ("keyword",), ("missing", "not")
            )
            if nxt.text == "not":
                self.take("'missing' after 'is not'", ("keyword",), ("missing",))
                return Condition(col.value, "is not missing")
            return Condition(col.value, "is missing")
        op = "in"
        if word.text == "not":
            self.take("'in' after 'not'", ("keyword",), ("in",))
            op = "not in"
        values = self.values()
        for v in values:
            self._check_type(col, kind, op, v)
        if len({isinstance(v.value, float) for v in values}) > 1:
            raise _Fail("a list must hold only numbers or only text", values[0].pos)
        return Condition(col.value, op, tuple(v.value for v in values))

    def value(self) -> Token:
        return self.take('a value (a number, "text", true or false)', ("value",))

    def values(self) -> list[Token]:
        self.take("'[' to open the list of values", ("punct",), ("[",))
        out = [self.value()]
        while True:
            sep = self.take("',' or ']' in the list of values", ("punct",), (",", "]"))
            if sep.text == "]":
                return out
            out.append(self.value())

    def _kind(self, col: Token) -> str | None:
        if self.kinds is None:
            return None
        if col.value not in self.kinds:
            known = ", ".join(sorted(self.kinds)[:12]) + (", ..." if len(self.kinds) > 12 else "")
            raise _Fail(f"unknown column {col.value!r}; feature columns are {known}", col.pos)
        return self.kinds[col.value]

    def _check_type(self, col: Token, kind: str | None, op: str, value: Token) -> None:
        is_number = isinstance(value.value, float)
        if op in COMPARISONS[:4] and not is_number:
            raise _Fail(f"{op!r} compares numbers, found text {value.text}", value.pos)
        if kind is None:
            return
        if kind == "categorical" and is_number:
            raise _Fail(
                f"column {col.value!r} holds text; compare it with text in quotes, "
                f"not the number {value.text}",
                value.pos,
            )
        if kind in ("numeric", "boolean") and not is_number:
            raise _Fail(
                f"column {col.value!r} holds {'numbers' if kind == 'numeric' else 'true/false'}; "
                f"compare it with a number{' or true/false' if kind == 'boolean' else ''}, "
                f"not the text {value.text}",
                value.pos,
            )


def parse_conditions(
    text: str, kinds: Mapping[str, str] | None = None, where: str = "when"
) -> tuple[Condition, ...]:
    """Parse one `when:` text; errors are InputErrors naming `where` and the position (1-based)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("expected a condition, found nothing", where=where)
    try:
        return _Reader(tokenize(text), kinds).conditions()
    except _Fail as exc:
        raise InputError(f"position {exc.pos + 1}: {exc.message}", where=where) from None


def parse_rules(
    source: str,
    where: str = "<rules>",
    kinds: Mapping[str, str] | None = None,
    decisions: Sequence[str] | None = None,
) -> RuleList:
    """Parse rule-file text (YAML). `kinds` (column -> numeric/boolean/categorical) checks
    columns and types; `decisions` checks that every decision is one the cost matrix knows."""
    import yaml

    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, where) from None
    if not isinstance(raw, Mapping):
        raise InputError("expected a mapping with 'default' and 'rules'", where=where)
    unknown = sorted(str(k) for k in set(raw) - _FILE_KEYS)
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r}; expected name, default, rules", where=where
        )
    name = raw.get("name", "rules")
    if not isinstance(name, str) or not name:
        raise InputError(f"'name' must be text, got {name!r}", where=where)
    if "default" not in raw:
        raise InputError("missing field 'default' (the decision when no rule matches)", where=where)
    default = _decision(raw["default"], decisions, f"{where}: default")
    items = raw.get("rules") or []
    if not isinstance(items, list):
        raise InputError("'rules' must be a list of {when, decide}", where=where)
    rules = []
    for number, item in enumerate(items, start=1):
        at = f"{where}: rule {number}"
        if not isinstance(item, Mapping):
            raise InputError("expected a mapping with 'when' and 'decide'", where=at)
        extra = sorted(str(k) for k in set(item) - _RULE_KEYS)
        if extra:
            raise InputError(f"unknown field {extra[0]!r}; expected 'when' and 'decide'", where=at)
        for key in ("when", "decide"):
            if key not in item:
                raise InputError(f"missing field {key!r}", where=at)
        when = item["when"]
        if not isinstance(when, str):
            raise InputError(f"'when' must be a condition text, got {when!r}", where=at)
        conditions = parse_conditions(when, kinds, where=at)
        rules.append(Rule(conditions, _decision(item["decide"], decisions, at)))
    return RuleList(tuple(rules), default, name)


def _decision(value, decisions: Sequence[str] | None, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        raise InputError(f"expected a decision name, got {value!r}", where=where)
    text = value if isinstance(value, str) else format_value(float(value))
    if decisions is not None and text not in decisions:
        raise InputError(f"unknown decision {text!r}; decisions are {list(decisions)}", where=where)
    return text


def load_rules(
    path: str | Path,
    kinds: Mapping[str, str] | None = None,
    decisions: Sequence[str] | None = None,
) -> RuleList:
    """Read and parse a rule file (see `parse_rules`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such rule file", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("a folder, not a file: expected a rule file", where=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", where=str(path)) from None
    return parse_rules(text, str(path), kinds, decisions)
