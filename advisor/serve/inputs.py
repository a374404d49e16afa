"""What `POST /decide` accepts: the JSON body parsed and checked against the columns the served
policies read, so that every bad request is refused with the field named, never with a 500.

A request is `{"id": ..., "unit": ..., "record": {...}}` (id and unit optional) or
`{"records": [request, ...]}` with 1 to `MAX_RECORDS` such requests. A record must hold every
column a served policy reads (null for a missing value); other fields are ignored. Values
are checked by the column's kind: a number for numeric and cost columns, true/false (or the
text the feature code reads as a boolean) for booleans, text for categories whose levels are
text. Only this module reads the request body.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from advisor.core.features import BOOLEAN_VALUES
from advisor.policies.base import Policy

MAX_RECORDS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_ID_CHARS = 200
MAX_PROBLEMS = 50
MAX_REASONS = 20
SINGLE_KEYS = ("id", "unit", "record")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field (a JSON path such as `records[3].record.age`)
    and what is wrong with it."""

    field: str
    message: str


class RequestError(Exception):
    """A request the service refuses: an HTTP status and the problems, first one named."""

    def __init__(self, status: int, problems: Iterable[Problem]) -> None:
        self.status = status
        self.problems = list(problems)[:MAX_PROBLEMS]
        super().__init__(f"{self.problems[0].field}: {self.problems[0].message}")

    def to_dict(self) -> dict:
        """The JSON body: the first problem's field and message, then every problem found."""
        first = self.problems[0]
        return {
            "field": first.field,
            "message": first.message,
            "errors": [{"field": p.field, "message": p.message} for p in self.problems],
        }


def refuse(status: int, field: str, message: str) -> RequestError:
    """A refusal with one problem."""
    return RequestError(status, [Problem(field, message)])


@dataclass(frozen=True)
class Item:
    """One record to decide: its id (given or generated), its unit (given, else the id) and the
    fields the service reads."""

    id: str
    unit: str
    record: dict


@dataclass(frozen=True)
class DecideRequest:
    """A parsed request: its items, and whether it came as a batch (`records`)."""

    items: list[Item]
    batch: bool
    reasons: int = 0  # the K reasons asked for each decision (0: none)


def _shown(value: object) -> str:
    """A value as the client wrote it, cut to 40 characters for a message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_number(value: object) -> bool:
    """A JSON number that a float can hold (a whole number beyond 1e308 cannot)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


class ColumnCheck:
    """What one record field may hold, from every served policy that reads the column."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kinds: set[str] = set()

    def problem(self, value: object) -> str | None:
        """Why `value` cannot stand in this column, or None when it can (null always can)."""
        if value is None:
            return None
        if isinstance(value, dict | list):
            return f"expected a single value, got {_shown(value)}"
        if self.kinds & {"numeric", "cost"} and not _is_number(value):
            return f"expected a number (within ±1e308) or null, got {_shown(value)}"
        if "boolean" in self.kinds and not (
            isinstance(value, bool) or (isinstance(value, str) and value in BOOLEAN_VALUES)
        ):
            return f"expected true, false or null, got {_shown(value)}"
        if "text" in self.kinds and not isinstance(value, str):
            return f"expected text or null, got {_shown(value)}"
        return None


def column_checks(policies: Iterable[Policy]) -> dict[str, ColumnCheck]:
    """Column -> its check, for every column any of `policies` reads, in the order read."""
    checks: dict[str, ColumnCheck] = {}
    for policy in policies:
        for name in policy.input_columns():
            checks.setdefault(name, ColumnCheck(name))
        read = set(policy.input_columns())
        for e in policy.spec.encoders_:
            if e.name not in read:
                continue
            if e.kind == "categorical":
                if e.levels and all(isinstance(v, str) for v in e.levels):
                    checks[e.name].kinds.add("text")
            else:
                checks[e.name].kinds.add(e.kind)
        for name in policy.costs.columns:
            if name in read:
                checks[name].kinds.add("cost")
    return checks


def _reject_constant(text: str) -> float:
    raise ValueError(f"{text} is not a JSON number")


def parse_json(body: bytes) -> object:
    """The body as JSON; malformed JSON, NaN or Infinity is a 400 naming the body."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise refuse(400, "body", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise refuse(
            400, "body", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise refuse(400, "body", f"not valid JSON: {exc}") from None


class RequestReader:
    """Parses and checks `POST /decide` bodies for the columns the served policies read."""

    def __init__(self, policies: Iterable[Policy], max_records: int = MAX_RECORDS) -> None:
        self.checks = column_checks(policies)
        self.max_records = max_records

    @property
    def columns(self) -> tuple[str, ...]:
        """The fields a record must hold."""
        return tuple(self.checks)

    def read(self, body: bytes) -> DecideRequest:
        """The request in `body`, or a RequestError naming every field that is wrong."""
        data = parse_json(body)
        if not isinstance(data, dict):
            raise refuse(422, "body", f"expected a JSON object, got {_shown(data)}")
        reasons = self._reasons(data)
        if "records" in data:
            extra = sorted(set(data) - {"records", "reasons"})
            if extra:
                raise refuse(
                    422,
                    extra[0],
                    "unknown field beside records (give each record's id and unit "
                    "inside its own request)",
                )
            return DecideRequest(self._batch(data["records"]), batch=True, reasons=reasons)
        problems: list[Problem] = []
        item = self._item({k: v for k, v in data.items() if k != "reasons"}, "", problems)
        if problems:
            raise RequestError(422, problems)
        return DecideRequest([item], batch=False, reasons=reasons)

    @staticmethod
    def _reasons(data: dict) -> int:
        """`reasons`: how many reasons each decision comes with, a whole number 0 to 20."""
        k = data.get("reasons", 0)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_REASONS:
            raise refuse(
                422, "reasons", f"expected a whole number from 0 to {MAX_REASONS}, got {_shown(k)}"
            )
        return k

    def _batch(self, records: object) -> list[Item]:
        if not isinstance(records, list):
            raise refuse(422, "records", f"expected a list of requests, got {_shown(records)}")
        if not records:
            raise refuse(422, "records", f"empty: give 1 to {self.max_records:,} requests")
        if len(records) > self.max_records:
            raise refuse(
                422, "records", f"{len(records):,} requests; at most {self.max_records:,} at once"
            )
        problems: list[Problem] = []
        items = [self._item(r, f"records[{i}].", problems) for i, r in enumerate(records)]
        if problems:
            raise RequestError(422, problems)
        return items

    def _item(self, data: object, at: str, problems: list[Problem]) -> Item:
        if not isinstance(data, dict):
            problems.append(Problem(at.rstrip(".") or "body", "expected a JSON object"))
            return Item("", "", {})
        for key in data:
            if key not in SINGLE_KEYS:
                problems.append(
                    Problem(f"{at}{key}", "unknown field; a request has id, unit and record")
                )
        given = self._name(data.get("id"), f"{at}id", problems)
        ident = uuid.uuid4().hex if given is None else given
        unit = self._name(data.get("unit"), f"{at}unit", problems)
        if "record" not in data:
            problems.append(Problem(f"{at}record", "missing: the fields to decide on"))
            return Item(ident, unit or ident, {})
        return Item(ident, unit or ident, self._record(data["record"], f"{at}record", problems))

    @staticmethod
    def _name(value: object, field: str, problems: list[Problem]) -> str | None:
        """An id or unit as text: given as text or a whole number; None when absent or null."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value:
            problems.append(Problem(field, f"expected non-empty text, got {_shown(value)}"))
            return None
        if len(value) > MAX_ID_CHARS:
            problems.append(Problem(field, f"longer than {MAX_ID_CHARS} characters"))
            return None
        return value

    def _record(self, record: object, at: str, problems: list[Problem]) -> dict:
        if not isinstance(record, dict):
            problems.append(
                Problem(at, f"expected an object of field -> value, got {_shown(record)}")
            )
            return {}
        out = {}
        for name, check in self.checks.items():
            if name not in record:
                problems.append(Problem(f"{at}.{name}", "missing (give null for a missing value)"))
                continue
            value = record[name]
            wrong = check.problem(value)
            if wrong:
                problems.append(Problem(f"{at}.{name}", wrong))
            out[name] = value
        return out


def unknown_costs(record: Mapping, columns: Iterable[str]) -> list[str]:
    """The cost columns of `record` that are not finite numbers (its costs cannot be known)."""
    return [
        c
        for c in columns
        if not (_is_number(record.get(c)) and math.isfinite(float(record.get(c))))
    ]
