"""The upkeep assumptions a case states: hours and money per option, with their defaults (a
starting point a team edits, not a fact), and the check of a case's `assumptions:` overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from advisor.core.errors import InputError

OPTIONS = ("ship-rules", "batch-ml", "realtime-ml")


@dataclass(frozen=True)
class Item:
    description: str
    unit: str
    defaults: dict[str, float] | float


# Per-option items: a value for each option. Shared items: one value.
PER_OPTION: dict[str, Item] = {
    "build_weeks": Item(
        "Building and launching it, one-off",
        "engineer-weeks",
        {"ship-rules": 1, "batch-ml": 4, "realtime-ml": 8},
    ),
    "rule_review_hours": Item(
        "Reviewing and editing the rules",
        "hours/month",
        {"ship-rules": 4, "batch-ml": 0, "realtime-ml": 0},
    ),
    "monitoring_hours": Item(
        "Monitoring and joining outcomes to decisions",
        "hours/month",
        {"ship-rules": 1, "batch-ml": 8, "realtime-ml": 12},
    ),
    "pipeline_hours": Item(
        "Pipeline and dependency upkeep",
        "hours/month",
        {"ship-rules": 0, "batch-ml": 8, "realtime-ml": 12},
    ),
    "serving_hours": Item(
        "Serving service upkeep and on-call share",
        "hours/month",
        {"ship-rules": 0, "batch-ml": 0, "realtime-ml": 24},
    ),
    "infrastructure_per_month": Item(
        "Infrastructure", "money/month", {"ship-rules": 0, "batch-ml": 200, "realtime-ml": 800}
    ),
}
SHARED: dict[str, Item] = {
    "hourly_rate": Item("Cost of an engineer-hour", "money/hour", 100.0),
    "hours_per_week": Item("Hours in an engineer-week", "hours", 40.0),
    "retrain_hours": Item("Hours per retrain of a model", "hours", 4.0),
}
RETRAINED = ("batch-ml", "realtime-ml")


def _non_negative(value: object, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InputError(f"expected a number >= 0, got {value!r}", where=where)
    return float(value)


def parse_assumptions(raw: Mapping | None, where: str = "assumptions") -> dict:
    """Validate overrides: shared keys at the top, per-option keys at the top (all options) or
    under an option name (`batch-ml: {infrastructure_per_month: 300}`)."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise InputError("expected a mapping", where=where)
    out: dict = {}
    known = sorted([*SHARED, *PER_OPTION, "retrains_per_month", *OPTIONS])
    for key, value in raw.items():
        if key in SHARED or key == "retrains_per_month":
            out[key] = _non_negative(value, f"{where}.{key}")
        elif key in PER_OPTION:
            out[key] = {o: _non_negative(value, f"{where}.{key}") for o in OPTIONS}
        elif key in OPTIONS:
            if not isinstance(value, Mapping):
                raise InputError("expected a mapping of item -> number", where=f"{where}.{key}")
            for item, v in value.items():
                if item not in PER_OPTION:
                    raise InputError(
                        f"unknown item {item!r}; known: {sorted(PER_OPTION)}",
                        where=f"{where}.{key}",
                    )
                out.setdefault(item, {})[key] = _non_negative(v, f"{where}.{key}.{item}")
        else:
            raise InputError(f"unknown key {key!r}; known: {known}", where=where)
    if out.get("hours_per_week", 1) == 0:
        raise InputError("must be positive", where=f"{where}.hours_per_week")
    return out


def resolved_assumptions(overrides: Mapping) -> dict:
    """Every assumption with its value as used, its default, unit and description."""
    out = {}
    for key, item in SHARED.items():
        out[key] = {
            "value": overrides.get(key, item.defaults),
            "default": item.defaults,
            "unit": item.unit,
            "description": item.description,
        }
    for key, item in PER_OPTION.items():
        given = overrides.get(key, {})
        for option in OPTIONS:
            default = item.defaults[option]
            out[f"{option}.{key}"] = {
                "value": given.get(option, default),
                "default": default,
                "unit": item.unit,
                "description": f"{item.description} ({option})",
            }
    return out
