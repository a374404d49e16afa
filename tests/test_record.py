"""The typed values' JSON: what `Record.to_dict` writes and `from_dict` reads back, with the
field spellings the stages use (renamed keys, left-out Nones, flattened parts, live objects
kept out), and a missing field named in one line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pytest

from advisor.core.errors import InputError
from advisor.core.record import Record, json_field
from advisor.stats.bootstrap import interval
from advisor.stats.interval import Interval


@dataclass(frozen=True)
class Part(Record):
    share: Interval = json_field(flatten=True)
    policy: str


@dataclass(frozen=True)
class Whole(Record):
    name: str
    costs: Mapping[str, Interval]
    steps: tuple[Part, ...]
    ship_rules: float = json_field(key="ship-rules")
    note: str | None = json_field(omit_none=True, default=None)
    extra: Part | None = json_field(flatten=True, default=None)
    rows: np.ndarray | None = json_field(internal=True)


def test_a_record_writes_its_fields_and_reads_them_back():
    whole = Whole(
        name="w",
        costs={"ml": Interval(1.0, 0.5, 1.5)},
        steps=(Part(Interval(0.2, None, None), "rules"),),
        ship_rules=3.0,
        rows=np.arange(3),
    )
    data = whole.to_dict()
    assert data == {
        "name": "w",
        "costs": {"ml": {"estimate": 1.0, "low": 0.5, "high": 1.5}},
        "steps": [{"estimate": 0.2, "low": None, "high": None, "policy": "rules"}],
        "ship-rules": 3.0,
    }
    back = Whole.from_dict(data)
    assert back == whole and back.rows is None  # live objects do not travel through JSON
    assert back.costs["ml"].low == 0.5 and back.steps[0].share.estimate == 0.2
    with_extra = Whole.from_dict(
        {**data, "note": "n", "estimate": 1.0, "low": 0, "high": 2, "policy": "x"}
    )
    assert with_extra.note == "n" and with_extra.extra == Part(Interval(1.0, 0, 2), "x")


def test_a_missing_field_is_one_input_error_naming_it():
    with pytest.raises(InputError, match=r"steps\[0\]: missing field 'policy'"):
        Whole.from_dict({"name": "w", "costs": {}, "steps": [{"estimate": 1}], "ship-rules": 1})
    with pytest.raises(InputError, match="costs: expected an object, found list"):
        Whole.from_dict({"name": "w", "costs": [], "steps": [], "ship-rules": 1})


def test_the_bootstrap_interval_is_an_interval_value():
    reps = np.linspace(-1.0, 3.0, 401)
    ci = interval(1.0, reps)
    assert (
        isinstance(ci, Interval) and ci.low == pytest.approx(-0.9) and ci.high == pytest.approx(2.9)
    )
    assert not ci.excludes_zero() and Interval(1.0, 0.1, 2.0).excludes_zero()
    assert interval(1.0, np.array([np.nan])).to_dict() == {
        "estimate": 1.0,
        "low": None,
        "high": None,
    }
