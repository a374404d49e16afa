"""The cost matrix: what each decision costs for each actual class, possibly per example.

Cells are numbers, a column name, or a linear expression of one column (`a * column + b`),
parsed by a small tokenizer (never `eval`). Decisions by minimum expected cost (Elkan, 2001).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.core.errors import InputError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|`(?P<quoted>[^`]+)`|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op>[*+\-]))"
)


UNDECIDED = -1  # the decision code of a row whose costs cannot be known


@dataclass(frozen=True, order=True)
class LinearCost:
    """A cost cell `slope * column + intercept`; `column` is None for a constant."""

    intercept: float = 0.0
    slope: float = 0.0
    column: str | None = None

    def values(self, frame: pd.DataFrame | None, n: int) -> np.ndarray:
        """The cell's cost for each of `n` rows (a broadcastable scalar array when constant)."""
        if self.column is None:
            return np.full(1, self.intercept)
        col = pd.to_numeric(frame[self.column], errors="coerce").to_numpy(dtype=float)
        return self.slope * col + self.intercept

    def __str__(self) -> str:
        if self.column is None:
            return _fmt(self.intercept)
        name = self.column if re.fullmatch(r"[A-Za-z_]\w*", self.column) else f"`{self.column}`"
        term = (
            name
            if self.slope == 1
            else f"-{name}"
            if self.slope == -1
            else f"{_fmt(self.slope)} * {name}"
        )
        if self.intercept == 0:
            return term
        sign = "+" if self.intercept > 0 else "-"
        return f"{term} {sign} {_fmt(abs(self.intercept))}"


def _flat(codes: np.ndarray, size: int) -> np.ndarray:
    """Codes in 0..size-1, negative ones counted from the end (an index's rule)."""
    if len(codes) and (codes.min() < -size or codes.max() >= size):
        raise IndexError(f"code out of range for {size} entries")
    return np.where(codes < 0, codes + size, codes)


def _taken(frame: pd.DataFrame, column: str, at: np.ndarray) -> pd.DataFrame:
    """The rows `at` of one column of `frame`: what a cell reads for the rows it applies to."""
    return pd.DataFrame({column: frame[column].to_numpy()[at]}, copy=False)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_cost_cell(value: object, where: str) -> LinearCost:
    """Parse a cost cell: a finite number, a column name, or `a * column + b`."""
    if isinstance(value, bool):
        raise InputError(f"expected a number or an expression, got {value!r}", where=where)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InputError(f"cost must be a finite number, got {value!r}", where=where)
        return LinearCost(intercept=float(value))
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a number or an expression, got {value!r}", where=where)
    return _parse_expression(value, where)


def _parse_expression(text: str, where: str) -> LinearCost:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise InputError(
                f"cannot read {text!r} at position {pos + 1}: expected a number, "
                "a column name, '*', '+' or '-'",
                where=where,
            )
        kind = m.lastgroup or ""
        tokens.append(("col" if kind == "quoted" else kind, m.group(kind), m.start(kind)))
        pos = m.end()

    intercept, slope, column = 0.0, 0.0, None
    i = 0

    def fail(msg: str) -> InputError:
        return InputError(f"cannot read {text!r}: {msg}", where=where)

    expect_term = True
    sign = 1.0
    while i < len(tokens):
        kind, val, _ = tokens[i]
        if not expect_term:
            if kind != "op" or val == "*":
                raise fail(f"expected '+' or '-' before {val!r}")
            sign = 1.0 if val == "+" else -1.0
            expect_term = True
            i += 1
            continue
        if kind == "op" and val in "+-":
            sign *= 1.0 if val == "+" else -1.0
            i += 1
            continue
        factors: list[tuple[str, str]] = []
        while True:
            if i >= len(tokens) or tokens[i][0] == "op":
                raise fail("expected a number or a column name")
            factors.append((tokens[i][0], tokens[i][1]))
            i += 1
            if i < len(tokens) and tokens[i] == ("op", "*", tokens[i][2]):
                i += 1
                continue
            break
        coef = sign
        names = []
        for kind_f, val_f in factors:
            if kind_f == "num":
                coef *= float(val_f)
            else:
                names.append(val_f)
        if len(names) > 1:
            raise fail("a cost may multiply a column by a number, not two columns")
        if names:
            if column is not None and names[0] != column:
                raise fail("a cost may depend on one column only")
            column = names[0]
            slope += coef
        else:
            intercept += coef
        sign = 1.0
        expect_term = False
    if expect_term:
        raise fail("the expression ends early")
    if not (math.isfinite(intercept) and math.isfinite(slope)):
        raise fail("numbers must be finite")
    return LinearCost(intercept=intercept, slope=slope, column=column if slope != 0 else None)


@dataclass(frozen=True)
class CostMatrix:
    """Costs by actual class (rows) and decision (columns); positive is a cost, negative a gain."""

    classes: tuple
    decisions: tuple[str, ...]
    cells: tuple[tuple[LinearCost, ...], ...]

    @classmethod
    def from_mapping(
        cls, matrix: Mapping, decisions: Sequence[str] | None = None, where: str = "costs"
    ) -> CostMatrix:
        """Build from `{class: {decision: cell}}` as written in a case file."""
        if not isinstance(matrix, Mapping) or not matrix:
            raise InputError(
                "expected a mapping of class -> {decision: cost}", where=f"{where}.matrix"
            )
        classes = tuple(matrix.keys())
        if len({label_key(c) for c in classes}) != len(classes):
            raise InputError("two classes have the same label", where=f"{where}.matrix")
        if decisions is None:
            decisions = tuple(str(c) for c in classes)
        decisions = tuple(str(d) for d in decisions)
        if len(set(decisions)) != len(decisions):
            raise InputError("decisions must be distinct", where=f"{where}.decisions")
        if len(decisions) < 1:
            raise InputError("at least one decision is needed", where=f"{where}.decisions")
        _refuse_empty_cells(matrix, where)
        rows = []
        for c in classes:
            row = matrix[c]
            cw = f"{where}.matrix.{c}"
            if not isinstance(row, Mapping):
                raise InputError("expected a mapping of decision -> cost", where=cw)
            unknown = [str(d) for d in row if str(d) not in decisions]
            if unknown:
                raise InputError(
                    f"unknown decision {unknown[0]!r}; decisions are {list(decisions)}", where=cw
                )
            missing = [d for d in decisions if d not in {str(k) for k in row}]
            if missing:
                raise InputError(f"no cost given for decision {missing[0]!r}", where=cw)
            by_name = {str(k): v for k, v in row.items()}
            rows.append(tuple(parse_cost_cell(by_name[d], f"{cw}.{d}") for d in decisions))
        return cls(classes=classes, decisions=decisions, cells=tuple(rows))

    @classmethod
    def binary(
        cls, negative, positive, fp: float, fn: float, tp: float = 0.0, tn: float = 0.0
    ) -> CostMatrix:
        """The binary shortcut: decisions are the classes; `positive` is the class to catch."""
        for name, v in {"fp": fp, "fn": fn, "tp": tp, "tn": tn}.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError(f"cost must be a finite number, got {v!r}", where=f"cost-{name}")
        neg, pos = str(negative), str(positive)
        return cls.from_mapping(
            {negative: {neg: tn, pos: fp}, positive: {neg: fn, pos: tp}}, decisions=(neg, pos)
        )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_decisions(self) -> int:
        return len(self.decisions)

    @property
    def columns(self) -> tuple[str, ...]:
        """Data columns the costs depend on (example-dependent costs)."""
        cols = {cell.column for row in self.cells for cell in row if cell.column is not None}
        return tuple(sorted(cols))

    @property
    def example_dependent(self) -> bool:
        return bool(self.columns)

    def class_index(self, label) -> int | None:
        """Position of a data label among the matrix classes (labels compared by `label_key`)."""
        return {label_key(c): i for i, c in enumerate(self.classes)}.get(label_key(label))

    def tensor(self, frame: pd.DataFrame | None = None, n: int | None = None) -> np.ndarray:
        """Cost array of shape (n, classes, decisions); n is 1 when no cell depends on a column."""
        if not self.example_dependent:
            return np.array([[c.intercept for c in row] for row in self.cells], dtype=float)[None]
        rows = len(frame) if n is None else n
        out = np.empty((rows, self.n_classes, self.n_decisions), dtype=float)
        for k, row in enumerate(self.cells):
            for d, cell in enumerate(row):
                out[:, k, d] = cell.values(frame, rows)
        return out

    def expected_costs(self, proba: np.ndarray, frame: pd.DataFrame | None = None) -> np.ndarray:
        """Expected cost of each decision per row, shape (n, decisions), from class probabilities."""
        return np.einsum(
            "nk,nkd->nd",
            proba,
            np.broadcast_to(
                self.tensor(frame, len(proba)), (len(proba), self.n_classes, self.n_decisions)
            ),
        )

    def decide(self, proba: np.ndarray, frame: pd.DataFrame | None = None) -> np.ndarray:
        """Minimum-expected-cost decision codes (ties go to the earlier decision); UNDECIDED
        (-1) for a row whose expected costs are not all numbers (see `choose`)."""
        return self.choose(self.expected_costs(proba, frame))

    def choose(self, expected: np.ndarray) -> np.ndarray:
        """The decision codes of the lowest expected costs (n, decisions); ties go first.

        A row whose expected costs are not all numbers (a cost column missing or not a
        number) gets UNDECIDED (-1): no decision, rather than whichever comes first.
        """
        known = np.isfinite(expected).all(axis=1)
        codes = np.argmin(np.where(known[:, None], expected, 0.0), axis=1)
        return np.where(known, codes, UNDECIDED)

    def realised(
        self, y: np.ndarray, decisions: np.ndarray, frame: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Cost actually incurred per row, given actual class codes and decision codes (negative
        codes count from the end, as an index does). Only the cell each row needs is computed:
        8 bytes a row, not the (n, classes, decisions) tensor."""
        y, decisions = np.asarray(y), np.asarray(decisions)
        if not self.example_dependent:
            return self.tensor()[0][y, decisions]
        cell = _flat(y, self.n_classes) * self.n_decisions + _flat(decisions, self.n_decisions)
        out = np.empty(len(y), dtype=float)
        for k, row in enumerate(self.cells):
            for d, c in enumerate(row):
                at = np.flatnonzero(cell == k * self.n_decisions + d)
                if len(at):
                    out[at] = c.values(None if c.column is None else _taken(frame, c.column, at), 0)
        return out

    def cost_of_each_decision(self, y: np.ndarray, frame: pd.DataFrame | None = None) -> np.ndarray:
        """Realised cost per row of every decision, shape (n, decisions)."""
        t = self.tensor(frame, len(y))
        rows = np.arange(len(y)) if t.shape[0] > 1 else np.zeros(len(y), dtype=int)
        return t[rows, np.asarray(y), :]

    def best_constant(self, y: np.ndarray, frame: pd.DataFrame | None = None) -> int:
        """The single decision with the lowest total realised cost on these rows."""
        return int(np.argmin(self.cost_of_each_decision(y, frame).sum(axis=0)))

    def to_dict(self) -> dict:
        return {
            "classes": [str(c) for c in self.classes],
            "decisions": list(self.decisions),
            "matrix": {
                str(c): {d: str(cell) for d, cell in zip(self.decisions, row, strict=True)}
                for c, row in zip(self.classes, self.cells, strict=True)
            },
            "example_dependent": self.example_dependent,
        }

    def to_case(self) -> dict:
        """The matrix as a case file writes it (`decisions`, `matrix`): `parse_costs` reads it
        back to an equal CostMatrix. Constant cells are numbers, the others expressions."""
        return {
            "decisions": list(self.decisions),
            "matrix": {
                str(c): {
                    d: cell.intercept if cell.column is None else str(cell)
                    for d, cell in zip(self.decisions, row, strict=True)
                }
                for c, row in zip(self.classes, self.cells, strict=True)
            },
        }


def _refuse_empty_cells(matrix: Mapping, where: str) -> None:
    """Name every cell still `null` (as `advisor init` leaves them to fill in), in one line."""
    empty = [
        f"{c}.{d}"
        for c, row in matrix.items()
        if isinstance(row, Mapping)
        for d, cell in row.items()
        if cell is None
    ]
    if empty:
        raise InputError(
            f"{len(empty)} cost cell(s) still empty (null), fill in each: {', '.join(empty)}",
            where=f"{where}.matrix",
        )


def label_key(value) -> str:
    """Canonical text of a class label, so YAML `1`, data `1.0` and `"1"` all match."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if text.lower() in {"true", "false"}:
        return text.lower()
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if math.isfinite(f) and f.is_integer() else text


def record_tensor(costs: CostMatrix, record) -> np.ndarray:
    """Cost array (1, classes, decisions) for one record: the single-request twin of `tensor`.

    Raises InputError naming the cost column when the record lacks it or it is not a number:
    one request must not get a decision its costs cannot support.
    """
    out = np.empty((1, costs.n_classes, costs.n_decisions), dtype=float)
    for k, row in enumerate(costs.cells):
        for d, cell in enumerate(row):
            if cell.column is None:
                out[0, k, d] = cell.intercept
                continue
            value = record.get(cell.column) if hasattr(record, "get") else None
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or not math.isfinite(number):
                raise InputError(
                    f"cost column {cell.column!r} must be a number, got {value!r}",
                    where="record",
                )
            out[0, k, d] = cell.slope * number + cell.intercept
    return out


def parse_costs(raw: object, where: str = "costs") -> CostMatrix:
    """A cost matrix from a case's (or a bundle's) `costs:` mapping: `matrix` and optionally
    `decisions`; an InputError names the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise InputError(
            "expected a mapping with 'matrix' (and optionally 'decisions')", where=where
        )
    unknown = sorted(set(raw) - {"decisions", "matrix"})
    if unknown:
        raise InputError(
            f"unknown field {unknown[0]!r}; expected 'decisions' and 'matrix'", where=where
        )
    decisions = raw.get("decisions")
    if decisions is not None and (
        not isinstance(decisions, list)
        or not decisions
        or not all(isinstance(d, str | int) for d in decisions)
    ):
        raise InputError("expected a list of decision names", where=f"{where}.decisions")
    if "matrix" not in raw:
        raise InputError("missing field 'matrix'", where=where)
    return CostMatrix.from_mapping(raw["matrix"], decisions, where=where)
