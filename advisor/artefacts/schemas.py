"""The published JSON Schemas (draft 2020-12) of the files others rely on: result.json,
bundle.json, monitor.json and the prediction log's lines, shipped as package data in
`advisor/schemas/`. The result schema is derived from the stages' typed values (their fields
and type hints), so it cannot drift from what `to_dict()` writes; the others are written by hand.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any

from advisor.core.errors import InputError

NAMES = ("result", "bundle", "monitor", "prediction-log")
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_text(name: str) -> str:
    """The published schema `name` as shipped (one of NAMES), or an InputError naming it."""
    if name not in NAMES:
        raise InputError(f"unknown schema {name!r}; schemas are {', '.join(NAMES)}", where="schema")
    return resources.files("advisor").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")


def schema(name: str) -> dict:
    return json.loads(schema_text(name))


def _null(node: dict) -> dict:
    """`node` that also accepts null."""
    if "$ref" in node or "anyOf" in node:
        return {"anyOf": [node, {"type": "null"}]}
    kinds = node.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    return {**node, "type": [*kinds, "null"]} if kinds else node


PLAIN = {float: "number", int: "integer", bool: "boolean", str: "string"}


def _node(hint: Any, defs: dict) -> dict:
    """The schema of one type hint; records go to `defs` and are referenced."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _node(options[0], defs) if len(options) == 1 else {}
        return _null(inner) if len(options) < len(args) else inner
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _define(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if origin in (Mapping, dict) and len(args) == 2:
        return {"type": "object", "additionalProperties": _node(args[1], defs)}
    if origin in (tuple, list):
        item = args[0] if args else Any
        return {"type": "array", "items": _node(item, defs)}
    if hint in PLAIN:
        return {"type": PLAIN[hint]}
    return {}


def _members(cls: type, defs: dict) -> tuple[dict, list[str], list[str]]:
    """The properties and required keys that a record writes (flattened records merged), and
    the keys required when an optional flattened record is there."""
    hints = typing.get_type_hints(cls)
    properties: dict = {}
    required: list[str] = []
    conditional: list[str] = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("internal"):
            continue
        hint = hints[f.name]
        if meta.get("flatten"):
            options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
            if not dataclasses.is_dataclass(options[0]):
                continue  # written by the record's own to_dict (see _adjust)
            inner_props, inner_required, _ = _members(options[0], defs)
            properties.update(inner_props)
            if typing.get_args(hint):
                conditional += inner_required
            else:
                required += inner_required
            continue
        key = meta.get("key") or f.name
        properties[key] = _node(hint, defs)
        optional = meta.get("omit_none") or (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        if not optional:
            required.append(key)
    return properties, required, conditional


def _define(cls: type, defs: dict) -> None:
    name = cls.__name__
    if name in defs:
        return
    defs[name] = {}  # reserve: a record may refer to itself through its fields
    properties, required, conditional = _members(cls, defs)
    node: dict = {"type": "object", "properties": properties, "required": required}
    if cls.__doc__:
        node["description"] = " ".join(cls.__doc__.split())
    if conditional and properties[required[0]] == {"type": "boolean"}:
        # a stage that may not apply: its body is required when its flag is true
        flag = required[0]
        node["if"] = {"properties": {flag: {"const": True}}, "required": [flag]}
        node["then"] = {"required": conditional}
    defs[name] = _adjust(cls, node, defs)


def _adjust(cls: type, node: dict, defs: dict) -> dict:
    """The records whose JSON is not their fields alone (see their `to_dict`)."""
    name = cls.__name__
    if name == "Latency":
        from advisor.analysis.latency import PolicyLatency, RealtimeCheck

        node["properties"].pop("policies", None)
        node["properties"]["realtime_check"] = _node(RealtimeCheck, defs)
        node["properties"]["service"] = _null({"type": "object"})
        node["additionalProperties"] = _node(PolicyLatency, defs)
    if name == "Evaluation":
        node["properties"].update(resamples={"type": "integer"}, seed={"type": "integer"})
    return node


def result_schema() -> dict:
    """The result.json schema from the stages' typed values (what `result.schema.json` holds)."""
    from advisor.analysis.compared import Compared
    from advisor.analysis.crossfit import Refits
    from advisor.analysis.drift import Drift
    from advisor.analysis.evaluate import Evaluation
    from advisor.analysis.experiment import ExperimentPlan
    from advisor.analysis.explain import ModelReport
    from advisor.analysis.latency import Latency
    from advisor.analysis.maintenance import Upkeep
    from advisor.analysis.recommend import Recommendation
    from advisor.analysis.replace import Replacement
    from advisor.analysis.roles import Roles
    from advisor.analysis.shadow import Shadow
    from advisor.artefacts.payload import SCHEMA_VERSION

    defs: dict = {}
    sections = {
        "roles": Roles,
        "evaluation": Evaluation,
        "model": ModelReport,
        "shadow": Shadow,
        "experiment": ExperimentPlan,
        "latency": Latency,
        "drift": Drift,
        "maintenance": Upkeep,
        "recommendation": Recommendation,
        "refits": Refits,
    }
    properties: dict = {
        "schema_version": {"const": SCHEMA_VERSION},
        "case": {"type": "object", "required": ["name"], "description": "The case as resolved."},
        "data": {"type": "object", "description": "The data: rows, columns, split, features."},
        "rules": {"type": "object", "description": "Each rule list in plain English."},
        "manifest": {"type": "object", "description": "Data sha256, seed, code and packages."},
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
    }
    for key, kind in sections.items():
        properties[key] = _node(kind, defs)
    properties["model"] = _null(properties["model"])
    properties["incumbent"] = _node(Replacement, defs)
    properties["policies"] = {
        "type": "object",
        "additionalProperties": _node(Compared, defs),
        "description": "Every compared policy by name, with its kind (bundle.json's `kind`).",
    }
    return {
        "$schema": DRAFT,
        "title": "advisor result.json",
        "description": (
            "What one run found: every stage's value under its key. Intervals are "
            "{estimate, low, high} (95 %); a bound is null when no resample was finite."
        ),
        "type": "object",
        "required": ["schema_version", "case", "data", "roles", "evaluation", "recommendation"],
        "properties": properties,
        "$defs": dict(sorted(defs.items())),
    }


def result_schema_text() -> str:
    """`result_schema()` as the file is written (`advisor/schemas/result.schema.json`)."""
    return json.dumps(result_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # regenerate the published file after a stage value changes
    from pathlib import Path

    target = Path(__file__).resolve().parents[1] / "schemas" / "result.schema.json"
    target.write_text(result_schema_text(), encoding="utf-8")
