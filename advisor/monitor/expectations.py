"""What production is compared with: a run folder's offline expectations.

From `result.json`: the case (costs, target, latency budget), the roles, the A/B plan and the
model's explanation (which features matter). From each bundle's `bundle.json`: its version, the
test cost per decision with its interval and the decision shares, and the training reference
every bundle carries for drift. Only `bundle.json` is read: the monitor never decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from advisor.artefacts.bundle import META, meta_plugin, read_meta
from advisor.artefacts.payload import ResultData
from advisor.artefacts.run import POLICIES, open_run
from advisor.core.costs import CostMatrix, parse_costs
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.stats.psi import Reference

IMPORTANT_SHARE = 0.8  # the features that together carry this share of the model's importance


@dataclass(frozen=True)
class Expectations:
    """A run folder as the monitor reads it."""

    path: Path
    result: Mapping
    costs: CostMatrix
    spec: FeatureSpec
    reference: Reference | None
    bundles: Mapping[str, Mapping]
    importance: Mapping[str, float]
    importance_source: str

    @property
    def case(self) -> Mapping:
        return self.result["case"]

    @property
    def currency(self) -> str:
        return self.case.get("currency") or ""

    @property
    def target(self) -> str:
        return self.case["target"]

    @property
    def budget_ms(self) -> float | None:
        return (self.case.get("decision") or {}).get("latency_budget_ms")

    @property
    def roles(self) -> Mapping:
        return self.result.get("roles") or {}

    @property
    def plan(self) -> Mapping:
        """The A/B plan of result.json (empty when the run planned none)."""
        plan = self.result.get("experiment") or {}
        return plan if plan.get("available", True) and plan.get("effect_size") is not None else {}

    def expected(self, policy: str) -> Mapping:
        """A policy's test cost per decision {estimate, low, high} and decision shares."""
        return self.bundles.get(policy, {}).get("expected") or {}

    def important(self, rule_features: set[str]) -> dict:
        """Which features count as important for drift alerts, and why."""
        ranked = sorted(self.importance.items(), key=lambda kv: -kv[1])
        model, carried = [], 0.0
        for name, share in ranked:
            if carried >= IMPORTANT_SHARE:
                break
            model.append(name)
            carried += share
        features = sorted(set(model) | rule_features)
        rule = (
            f"the features that together carry {IMPORTANT_SHARE:.0%} of the ML model's "
            f"importance ({self.importance_source}), largest first, and every feature a rule "
            "list in the log reads"
        )
        return {
            "features": features,
            "model": model,
            "rules": sorted(rule_features),
            "shares": {n: s for n, s in ranked},
            "rule": rule,
        }


def read_expectations(path: str | Path) -> Expectations:
    """A run folder (or its result.json), checked: result.json and every bundle.json in it."""
    folder = open_run(path)
    bundles = {}
    policies = folder.path / POLICIES
    for meta_path in sorted(policies.glob(f"*/{META}")):
        bundles[meta_path.parent.name] = meta = read_meta(meta_path)
        meta_plugin(meta, str(meta_path))
    if not bundles:
        raise InputError(f"not a run folder: no {POLICIES}/<policy>/{META}", where=str(folder.path))
    first = next(iter(bundles.values()))
    where = str(policies / next(iter(bundles)) / META)
    try:
        costs = parse_costs(first["costs"], where=f"{where}: costs")
        spec = FeatureSpec.from_data(first["features"])
        ref = next((b["reference"] for b in bundles.values() if b.get("reference")), None)
        reference = Reference.from_dict(ref) if ref else None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"damaged: {exc}", where=where) from None
    if "target" not in folder.result["case"]:
        raise InputError("no case.target", where=str(folder.path / "result.json"))
    importance, source = model_importance(folder.result)
    return Expectations(
        folder.path, folder.result, costs, spec, reference, bundles, importance, source
    )


def model_importance(result: Mapping) -> tuple[dict[str, float], str]:
    """Each feature's share of the ML model's importance: mean |SHAP| from the run's model
    explanation, else LightGBM's gain shares; empty when the run has no ML model."""
    view = ResultData(result)
    shap = view.model.shap if view.model else None
    if shap and shap.importance:
        values = {r.feature: float(r.mean_abs_shap) for r in shap.importance}
        total = sum(values.values()) + float(shap.other_features_mean_abs_shap or 0.0)
        if total > 0:
            return {k: v / total for k, v in values.items()}, "mean |SHAP| on the test split"
    treatment = (view.roles.treatment if view.roles else None) or "ml"
    policy = view.evaluation.policies.get(treatment) if view.evaluation else None
    description = policy.description if policy else {}
    top = (description.get("details") or {}).get("top_features") or []
    if top:
        return {r["feature"]: float(r["gain_share"]) for r in top}, "LightGBM's gain shares"
    return {}, "no ML model in the run"
