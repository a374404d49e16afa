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
from advisor.core.record import Record, json_field

CONSTANT_NOTE = (
    "ship-rules keeps the constant decision: there is no rule list to build, review or "
    "monitor, so it costs nothing to keep"
)


@dataclass(frozen=True)
class Assumption(Record):
    """One upkeep assumption as used, with its default, unit and description."""

    value: float
    default: float
    unit: str
    description: str


@dataclass(frozen=True)
class OptionUpkeep(Record):
    """Hours and money a month, the one-off build and the yearly cost of one option."""

    hours_by_activity: Mapping[str, float]
    monthly_hours: float
    monthly_money: float
    monthly_cost: float
    one_off: float
    annual_running_cost: float
    annual_cost: float


@dataclass(frozen=True)
class Upkeep(Record):
    """What each option costs to keep alive (result.json key `maintenance`, each option's
    figures under its name)."""

    horizon_years: float
    retrains_per_month: float
    retrains_source: str
    assumptions: Mapping[str, Assumption]
    note: str | None = json_field(omit_none=True)
    ship_rules: OptionUpkeep = json_field(key="ship-rules")
    batch_ml: OptionUpkeep = json_field(key="batch-ml")
    realtime_ml: OptionUpkeep = json_field(key="realtime-ml")

    def option(self, name: str) -> OptionUpkeep:
        """The figures of an option by its name (`ship-rules`, `batch-ml`, `realtime-ml`)."""
        return getattr(self, name.replace("-", "_"))

    @property
    def annual_cost(self) -> dict[str, float]:
        return {o: self.option(o).annual_cost for o in OPTIONS}


def price_options(
    overrides: Mapping,
    retrains_per_month: float,
    horizon_years: float,
    constant_rules: bool = False,
) -> Upkeep:
    """Hours, money and the annual total of each option (the `maintenance` section).

    `constant_rules`: the rule list that stands for ship-rules is the constant decision,
    which has nothing to build or keep, so ship-rules costs nothing.
    """
    a = resolved_assumptions(overrides)
    rate = a["hourly_rate"]["value"]
    retrains = overrides.get("retrains_per_month", retrains_per_month)
    options = {}
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
        options[option.replace("-", "_")] = OptionUpkeep(
            hours_by_activity=hours,
            monthly_hours=monthly_hours,
            monthly_money=item["infrastructure_per_month"],
            monthly_cost=monthly_cost,
            one_off=one_off,
            annual_running_cost=12 * monthly_cost,
            annual_cost=12 * monthly_cost + one_off / horizon_years,
        )
    return Upkeep(
        horizon_years=horizon_years,
        retrains_per_month=retrains,
        retrains_source="assumptions" if "retrains_per_month" in overrides else "drift stage",
        assumptions={k: Assumption(**v) for k, v in a.items()},
        note=CONSTANT_NOTE if constant_rules else None,
        **options,
    )


def price_upkeep(
    assumptions: Mapping,
    retrains_per_month: float,
    horizon_years: float,
    constant_rules: bool = False,
) -> Upkeep:
    """The upkeep of every option from the case's assumptions and the drift stage's cadence."""
    return price_options(
        parse_assumptions(assumptions), retrains_per_month, horizon_years, constant_rules
    )
