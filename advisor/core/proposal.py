"""What `advisor init` proposes from a sample of the data: the target, the time column, the
identifier columns to ignore and the decisions; and the commented case file it writes.

Pure functions over a data frame, so the command line only reads, asks and writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from advisor.core.costs import label_key, parse_cost_cell
from advisor.core.data import MAX_CLASSES, infer_kind
from advisor.core.errors import InputError
from advisor.core.reading import preview_columns

SAMPLE_ROWS = 50_000
_LABEL_NAME = re.compile(
    r"(^|[_\W])(target|label|y|class|outcome|churn(ed)?|default(ed)?|fraud|status|response|"
    r"converted|bad|result|defaulted|attrition|left|exited|approved|default_flag)([_\W]|$)",
    re.IGNORECASE,
)
_TIME_NAME = re.compile(r"(date|time|timestamp|month|period|created|day|week|year)", re.IGNORECASE)
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|identifier)$|^id[_\W]", re.IGNORECASE)


@dataclass(frozen=True)
class Proposal:
    """What the data suggests; `target` is None when the choice is unclear."""

    columns: tuple[str, ...]
    target_candidates: tuple[str, ...]
    target: str | None
    time: str | None
    ids: tuple[str, ...]


def propose(frame: pd.DataFrame) -> Proposal:
    """The target (when clear), the time column and the identifier columns of a data sample."""
    candidates = target_candidates(frame)
    named = [c for c in candidates if _LABEL_NAME.search(c)]
    if len(named) == 1:
        target = named[0]
    elif len(candidates) == 1:
        target = candidates[0]
    else:
        target = None
    return Proposal(
        columns=tuple(frame.columns),
        target_candidates=tuple(candidates),
        target=target,
        time=time_column(frame),
        ids=identifier_columns(frame),
    )


def target_candidates(frame: pd.DataFrame) -> list[str]:
    """Columns with 2 to MAX_CLASSES distinct values, not identifiers nor times; those named
    like a label first, then two-valued ones, then in file order from the last column."""
    ids = set(identifier_columns(frame))
    found = []
    for position, column in enumerate(frame.columns):
        series = frame[column]
        if column in ids or infer_kind(series) == "datetime":
            continue
        distinct = series.nunique(dropna=True)
        if 2 <= distinct <= MAX_CLASSES and not _is_measurement(series, distinct):
            named = bool(_LABEL_NAME.search(column))
            found.append((not named, distinct != 2, -position, column))
    return [column for *_, column in sorted(found)]


def _is_measurement(series: pd.Series, distinct: int) -> bool:
    """A numeric column with fractional values is a measurement, not a label."""
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.dropna()
    return distinct > 2 and bool((values != values.round()).any())


def time_column(frame: pd.DataFrame) -> str | None:
    """The first column holding dates or timestamps, preferring one named like a time."""
    times = [c for c in frame.columns if infer_kind(frame[c]) == "datetime"]
    named = [c for c in times if _TIME_NAME.search(c)]
    return (named or times or [None])[0]


def identifier_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Columns named like an identifier, or whose values are (nearly) all distinct text or
    consecutive whole numbers: they identify rows, they do not describe them."""
    out = []
    n = len(frame)
    for column in frame.columns:
        series = frame[column]
        if _ID_NAME.search(column) and series.nunique(dropna=True) > MAX_CLASSES:
            out.append(column)
            continue
        kind = infer_kind(series)
        if n < 50 or kind in ("datetime", "boolean"):
            continue
        distinct = series.nunique(dropna=True)
        if pd.api.types.is_integer_dtype(series):
            if distinct == n and series.max() - series.min() + 1 <= 1.1 * n:
                out.append(column)
        elif kind == "categorical" and distinct / n > 0.9:
            out.append(column)
    return tuple(out)


def classes_of(frame: pd.DataFrame, target: str, where: str) -> list:
    """The target's distinct values, sorted; an InputError when it cannot be a label."""
    if target not in frame.columns:
        raise InputError(
            f"no column {target!r}; columns are {preview_columns(frame.columns)}", where=where
        )
    values = frame[target].dropna().unique().tolist()
    if len(values) < 2:
        raise InputError(f"target {target!r} has {len(values)} distinct value(s)", where=where)
    if len(values) > MAX_CLASSES:
        raise InputError(
            f"target {target!r} has {len(values)} distinct values; a target needs 2 to "
            f"{MAX_CLASSES} classes",
            where=where,
        )
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def default_decisions(classes: Sequence) -> list[str]:
    """Placeholder decisions to rename: `no_action`/`act` for two classes, else one per class."""
    if len(classes) == 2:
        return ["no_action", "act"]
    return [f"as_{re.sub(r'[^A-Za-z0-9]+', '_', str(c)).strip('_') or 'blank'}" for c in classes]


def parse_cost_flags(
    flags: Sequence[str], classes: Sequence, decisions: Sequence[str]
) -> dict[tuple[str, str], object]:
    """`ACTUAL:DECISION=VALUE` flags -> {(class key, decision): cell}; each checked."""
    keys = {label_key(c): c for c in classes}
    cells: dict[tuple[str, str], object] = {}
    for flag in flags:
        where = f"--cost {flag}"
        head, eq, value = flag.partition("=")
        actual, colon, decision = head.rpartition(":")
        if not (eq and colon and actual.strip() and decision.strip() and value.strip()):
            raise InputError("expected ACTUAL:DECISION=VALUE, e.g. Yes:offer=280", where=where)
        actual, decision, value = actual.strip(), decision.strip(), value.strip()
        if label_key(actual) not in keys:
            raise InputError(
                f"unknown class {actual!r}; the target's classes are {[str(c) for c in classes]}",
                where=where,
            )
        if decision not in decisions:
            raise InputError(
                f"unknown decision {decision!r}; decisions are {list(decisions)}", where=where
            )
        try:
            cell: object = float(value)
        except ValueError:
            cell = value
        parse_cost_cell(cell, where)
        key = (label_key(actual), decision)
        if key in cells:
            raise InputError("this cell is given twice", where=where)
        cells[key] = cell
    return cells


def case_text(
    *,
    name: str,
    data: str,
    target: str,
    classes: Sequence,
    decisions: Sequence[str],
    cells: Mapping[tuple[str, str], object],
    time: str | None,
    ignore: Sequence[str],
) -> str:
    """The commented case file: every cost cell given, or `null` to fill in."""

    def scalar(value) -> str:
        return json.dumps(value if isinstance(value, int | float) else str(value))

    rows = []
    for c in classes:
        parts = []
        for d in decisions:
            cell = cells.get((label_key(c), d))
            parts.append(f"{scalar(d)}: {'null' if cell is None else _cell(cell)}")
        rows.append(f"    {scalar(str(c))}: {{{', '.join(parts)}}}")
    missing = len(classes) * len(decisions) - len(cells)
    lines = [
        (f"# Case file written by `advisor init` from {data}; see the README's case file.", ""),
        (f"name: {scalar(name)}", ""),
        ('question: ""', "the decision in one sentence, for the report"),
        (f"data: {scalar(data)}", "relative to this file"),
        (f"target: {scalar(target)}", f"classes: {', '.join(str(c) for c in classes)}"),
        (f"time: {scalar(time) if time else 'null'}", "a time column: time-ordered split, drift"),
        (f"ignore: {json.dumps(list(ignore))}", "identifiers: never used as features"),
        ("currency: USD", ""),
        ("costs:", "rows: the actual class; columns: the decision"),
        ("  # A positive number is a cost, a negative one a gain; a cell may also be a", ""),
        ("  # column (amount) or a linear expression of one (0.1 * amount + 5).", ""),
    ]
    if missing:
        lines.append((f"  # {missing} cell(s) are null: fill in each before advisor analyze.", ""))
    lines += [
        (f"  decisions: {json.dumps(list(decisions))}", ""),
        ("  matrix:", ""),
        *((row, "") for row in rows),
        ("decision:", ""),
        ("  volume: 1000 per day", "decisions made per day, week, month or year"),
        ("  timing: periodic", "periodic (a batch) or live (per request)"),
        ("  precomputable: true", "can a decision be computed before it is needed?"),
        ("  latency_budget_ms: 100", "for live decisions"),
        ("  label_delay_days: 30", "how long until the outcome is known"),
        ("seed: 0", ""),
    ]
    width = max(len(text) for text, comment in lines if comment) + 2
    return (
        "\n".join(f"{text:<{width}}# {comment}" if comment else text for text, comment in lines)
        + "\n"
    )


def _cell(cell: object) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return json.dumps(cell)
