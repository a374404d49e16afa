"""Frozen values that write and read their own JSON form, so a stage's fields are its contract.

A `Record` is a frozen dataclass whose `to_dict()` writes its fields in order and whose
`from_dict()` rebuilds it from that JSON, nested records, intervals, mappings and tuples
included (read from the field's type hints). Field metadata (see `json_field`) renames a key,
leaves a None out, flattens a nested record into its parent or keeps a field out of the JSON
(live objects such as bootstrap replicates, which a value read back from JSON lacks).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from advisor.core.errors import InputError

R = TypeVar("R", bound="Record")


def json_field(
    *,
    key: str | None = None,
    omit_none: bool = False,
    flatten: bool = False,
    internal: bool = False,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its JSON spelling: `key` (when not the field name), `omit_none`
    (no key when the value is None), `flatten` (a nested record's keys merged into this one),
    `internal` (not written; None when read from JSON, so it needs a default)."""
    metadata = {"key": key, "omit_none": omit_none, "flatten": flatten, "internal": internal}
    if internal and default is dataclasses.MISSING and default_factory is dataclasses.MISSING:
        default = None
    kw: dict = {"metadata": metadata}
    if internal:
        kw.update(repr=False, compare=False, kw_only=True)
    if default is not dataclasses.MISSING:
        kw["default"] = default
    if default_factory is not dataclasses.MISSING:
        kw["default_factory"] = default_factory
    return dataclasses.field(**kw)


def plain(value: Any) -> Any:
    """A value's JSON form: records and intervals by `to_dict()`, mappings and sequences inside."""
    if hasattr(value, "to_dict") and dataclasses.is_dataclass(value):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(hint: Any, raw: Any, where: str) -> Any:
    """`raw` (plain JSON) as the type `hint` says: records, tuples and mappings rebuilt."""
    if raw is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _read(options[0], raw, where) if len(options) == 1 else raw
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        if not isinstance(raw, Mapping):
            raise InputError(f"expected an object, found {type(raw).__name__}", where=where)
        return hint.from_dict(raw, where=where)
    args = typing.get_args(hint)
    if origin in (Mapping, dict, typing.Mapping) and len(args) == 2:
        if not isinstance(raw, Mapping):
            raise InputError(f"expected an object, found {type(raw).__name__}", where=where)
        return {k: _read(args[1], v, f"{where}.{k}") for k, v in raw.items()}
    if origin in (tuple, list) and args:
        if not isinstance(raw, list | tuple):
            raise InputError(f"expected a list, found {type(raw).__name__}", where=where)
        item = args[0]
        values = [_read(item, v, f"{where}[{i}]") for i, v in enumerate(raw)]
        return tuple(values) if origin is tuple else values
    return raw


def _read_flattened(hint: Any, data: Mapping, where: str) -> Any:
    """A record whose keys sit in its parent's; None, when optional, if its first key is absent."""
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if options and len(options) < len(typing.get_args(hint)) and _first_key(options[0]) not in data:
        return None
    return _read(hint, data, where)


def _first_key(cls: type) -> str:
    """The first key a record writes (inside a flattened first field, that field's first)."""
    first = dataclasses.fields(cls)[0]
    if first.metadata.get("flatten"):
        return _first_key(_hints(cls)[first.name])
    return first.metadata.get("key") or first.name


class Record:
    """Mixin for frozen dataclasses whose JSON form is their fields (see the module doc)."""

    def to_dict(self) -> dict:
        out: dict = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            meta = f.metadata
            if meta.get("internal"):
                continue
            value = getattr(self, f.name)
            if value is None and (meta.get("omit_none") or meta.get("flatten")):
                continue
            if meta.get("flatten"):
                out.update(plain(value))
            else:
                out[meta.get("key") or f.name] = plain(value)
        return out

    @classmethod
    def from_dict(cls: type[R], data: Mapping, *, where: str | None = None) -> R:
        """The value written by `to_dict()`, rebuilt; a missing required key is an InputError."""
        where = where or cls.__name__
        hints = _hints(cls)
        kwargs: dict = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            meta = f.metadata
            if meta.get("internal") or not f.init:
                continue
            if meta.get("flatten"):
                kwargs[f.name] = _read_flattened(hints[f.name], data, where)
                continue
            key = meta.get("key") or f.name
            if key in data:
                kwargs[f.name] = _read(hints[f.name], data[key], f"{where}.{key}")
            elif (
                f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
                and not meta.get("omit_none")
            ):
                raise InputError(f"missing field {key!r}", where=where)
            elif meta.get("omit_none"):
                kwargs[f.name] = None
        return cls(**kwargs)
