"""What each option costs to keep alive: hours and money per month and year, from the case's
stated, overridable assumptions (`advisor.core.assumptions`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from advisor.core.assumptions import (
    OPTIONS,
    PER_OPTION,
    RETRAINED,
    parse_assumptions,
    resolved_assumptions,
)

CONSTANT_NOTE = (
    "ship-rules keeps the constant decision: there is no rule list to build, review or "
    "monitor, so it costs nothing to keep"
)


def price_options(
    overrides: Mapping,
    retrains_per_month: float,
    horizon_years: float,
    constant_rules: bool = False,
) -> dict:
    """Hours, money and the annual total of each option (the `maintenance` section).

    `constant_rules`: the rule list that stands for ship-rules is the constant decision,
    which has nothing to build or keep, so ship-rules costs nothing.
    """
    a = resolved_assumptions(overrides)
    rate = a["hourly_rate"]["value"]
    retrains = overrides.get("retrains_per_month", retrains_per_month)
    out: dict = {
        "horizon_years": horizon_years,
        "retrains_per_month": retrains,
        "retrains_source": "assumptions" if "retrains_per_month" in overrides else "drift stage",
        "assumptions": a,
    }
    if constant_rules:
        out["note"] = CONSTANT_NOTE
    for option in OPTIONS:
        item = {key: a[f"{option}.{key}"]["value"] for key in PER_OPTION}
        if constant_rules and option == "ship-rules":
            item = dict.fromkeys(PER_OPTION, 0.0)
        hours = {
            "rule review": item["rule_review_hours"],
            "retraining": a["retrain_hours"]["value"] * retrains if option in RETRAINED else 0.0,
            "monitoring and outcome join": item["monitoring_hours"],
            "pipeline and dependencies": item["pipeline_hours"],
            "serving and on-call": item["serving_hours"],
        }
        monthly_hours = sum(hours.values())
        monthly_cost = monthly_hours * rate + item["infrastructure_per_month"]
        one_off = item["build_weeks"] * a["hours_per_week"]["value"] * rate
        out[option] = {
            "hours_by_activity": hours,
            "monthly_hours": monthly_hours,
            "monthly_money": item["infrastructure_per_month"],
            "monthly_cost": monthly_cost,
            "one_off": one_off,
            "annual_running_cost": 12 * monthly_cost,
            "annual_cost": 12 * monthly_cost + one_off / horizon_years,
        }
    return out


@dataclass(frozen=True)
class Upkeep:
    """What each option costs to keep alive (result.json key `maintenance`)."""

    annual_cost: Mapping[str, float]
    details: Mapping

    def to_dict(self) -> dict:
        return dict(self.details)


def price_upkeep(
    assumptions: Mapping,
    retrains_per_month: float,
    horizon_years: float,
    constant_rules: bool = False,
) -> Upkeep:
    """The upkeep of every option from the case's assumptions and the drift stage's cadence."""
    details = price_options(
        parse_assumptions(assumptions), retrains_per_month, horizon_years, constant_rules
    )
    return Upkeep({o: details[o]["annual_cost"] for o in OPTIONS}, details)
