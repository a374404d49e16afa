"""The result.json payload read as typed values: its schema version, the upgrade of files an
older advisor wrote, and one typed value per section (the stages' own classes, rebuilt by
their `from_dict`), so readers use attributes instead of string keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

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
from advisor.core.errors import InputError

SCHEMA_VERSION = 4
READS = (2, 3, 4)  # the schema versions this advisor reads; 2 and 3 are upgraded on reading
UNMEASURED = "not measured: the file was written before p_best (schema 4)"


def upgrade(data: dict, where: str) -> dict:
    """The payload at SCHEMA_VERSION: a version-2 file loses its duplicated keys (the drift
    cadence at the top of `drift`, `recommendation.break_even_volume_per_day`,
    `experiment.n_control`); a version-2 or 3 file's `confidence` is dropped and p_best is
    marked as not measured; any other version is refused in one line."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return data
    if version not in READS:
        raise InputError(
            f"result.json schema_version {version!r} is not one this advisor reads "
            f"(it reads {', '.join(map(str, READS))})",
            where=where,
        )
    out = dict(data, schema_version=SCHEMA_VERSION)
    drift = dict(out.get("drift") or {})
    if drift:
        top = {
            k: drift.pop(k, None)
            for k in ("retrains_per_month", "cadence_method", "cadence_reason")
        }
        drift.setdefault(
            "cadence",
            {
                "retrains_per_month": top["retrains_per_month"],
                "method": top["cadence_method"],
                "reason": top["cadence_reason"],
            },
        )
        out["drift"] = drift
    if out.get("recommendation"):
        rec = dict(out["recommendation"])
        volume = rec.pop("break_even_volume_per_day", None)
        rec.setdefault("break_even", {"volume_per_day": volume, "flips_to": None, "reason": None})
        rec.pop("confidence", None)
        rec.pop("confidence_label", None)
        for key, value in (
            ("p_best", None),
            ("p_best_by_option", None),
            ("p_best_includes", UNMEASURED),
            ("tied", False),
            ("tie_rule", UNMEASURED),
            ("top_two", None),
            ("procedure_option", rec.get("option")),
        ):
            rec.setdefault(key, value)
        rec["conditions"] = {"capture_interval": None, **(rec.get("conditions") or {})}
        out["recommendation"] = rec
    if out.get("experiment"):
        out["experiment"] = {k: v for k, v in out["experiment"].items() if k != "n_control"}
    return out


class Sections:
    """Typed access to a payload's sections (`self.data`); None for a section the run left out."""

    data: Mapping[str, Any]

    def _section(self, key: str, kind: type) -> Any:
        raw = self.data.get(key)
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise InputError(f"expected an object, found {type(raw).__name__}", where=key)
        return kind.from_dict(raw, where=key)

    @property
    def case(self) -> Mapping[str, Any]:
        """The case as the run resolved it (plain: the case file's own shape)."""
        return self.data["case"]

    @property
    def name(self) -> str:
        return self.case["name"]

    @property
    def currency(self) -> str:
        return self.case.get("currency") or ""

    @cached_property
    def roles(self) -> Roles | None:
        return self._section("roles", Roles)

    @cached_property
    def evaluation(self) -> Evaluation | None:
        return self._section("evaluation", Evaluation)

    @cached_property
    def model(self) -> ModelReport | None:
        return self._section("model", ModelReport)

    @cached_property
    def shadow(self) -> Shadow | None:
        return self._section("shadow", Shadow)

    @cached_property
    def experiment(self) -> ExperimentPlan | None:
        return self._section("experiment", ExperimentPlan)

    @cached_property
    def latency(self) -> Latency | None:
        return self._section("latency", Latency)

    @cached_property
    def drift(self) -> Drift | None:
        return self._section("drift", Drift)

    @cached_property
    def maintenance(self) -> Upkeep | None:
        return self._section("maintenance", Upkeep)

    @cached_property
    def recommendation(self) -> Recommendation | None:
        return self._section("recommendation", Recommendation)

    @cached_property
    def incumbent(self) -> Replacement | None:
        """Keep what runs today or replace it (None when the case names no incumbent)."""
        return self._section("incumbent", Replacement)

    def option_policy(self, option: str) -> str | None:
        """The policy that stands for an option: the control rule list for ship-rules, the
        ML treatment for the two ML options (None when the run has none)."""
        rec = self.recommendation
        named = rec.options.get(option) if rec else None
        if named is not None and named.policy:
            return named.policy
        roles = self.roles
        if roles is None:
            return None
        return roles.control if option == "ship-rules" else roles.treatment


@dataclass(frozen=True)
class ResultData(Sections):
    """A result.json payload (already upgraded) with typed access to its sections."""

    data: Mapping[str, Any]
