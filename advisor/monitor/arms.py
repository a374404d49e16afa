"""Shadow mode and the canary / A/B test on live traffic.

Shadow: how often the shadow policy disagreed with the served one and, on the rows whose
outcome is known, which of the two decisions realised the lower cost. The test: the arms'
units against the planned split (the sample-ratio check of `advisor.rollout`), the effect
(control's cost per decision minus treatment's, with a bootstrap interval) and the power the
outcomes gathered so far give against the plan in result.json (`advisor.power`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from advisor.bootstrap import interval
from advisor.costs import CostMatrix
from advisor.monitor.measures import proportion, realised_costs, resampler
from advisor.power import analytical_power
from advisor.rollout import sample_ratio_mismatch


def shadow(rows: pd.DataFrame, costs: CostMatrix, offline: Mapping | None, seed: int) -> list[dict]:
    """Per pair of served and shadow policy: the disagreement rate and, on the rows with
    outcomes, who was right; empty without a shadow in the log."""
    if "shadow_decision" not in rows:
        return []
    both = rows[rows["shadow_decision"].notna() & rows["decision"].notna()]
    if "shadow_policy" in both:
        both = both[both["shadow_policy"].fillna("") != both["policy"]]
        pairs = both.groupby(["policy", both["shadow_policy"].fillna("")], sort=True)
    else:
        pairs = both.groupby(["policy", pd.Series("", index=both.index)], sort=True)
    return [
        _pair(str(served), str(other) or None, group, costs, offline, seed + i)
        for i, ((served, other), group) in enumerate(pairs)
    ]


def _pair(
    served: str,
    other: str | None,
    rows: pd.DataFrame,
    costs: CostMatrix,
    offline: Mapping | None,
    seed: int,
) -> dict:
    differ = (rows["shadow_decision"] != rows["decision"]).to_numpy()
    out: dict = {
        "policy": served,
        "shadow_policy": other,
        "n": len(rows),
        "disagreement_rate": proportion(int(differ.sum()), len(rows)),
        "offline_disagreement_rate": None,
        "with_outcomes": None,
    }
    if offline and {served, other} == {offline.get("control"), offline.get("treatment")}:
        out["offline_disagreement_rate"] = offline.get("disagreement_rate")
    known = rows[rows["outcome"] >= 0]
    if known.empty:
        return out
    served_cost = realised_costs(known, "decision", costs)
    shadow_cost = realised_costs(known, "shadow_decision", costs)
    saving = served_cost - shadow_cost
    reps = resampler(known["unit"], seed).means(saving)[:, 0]
    disagree = (known["shadow_decision"] != known["decision"]).to_numpy()
    served_right = int((served_cost < shadow_cost)[disagree].sum())
    shadow_right = int((shadow_cost < served_cost)[disagree].sum())
    out["with_outcomes"] = {
        "n": len(known),
        "disagreements": int(disagree.sum()),
        "served_right": served_right,
        "shadow_right": shadow_right,
        "ties": int(disagree.sum()) - served_right - shadow_right,
        "shadow_right_share": proportion(shadow_right, int(disagree.sum())),
        "shadow_saving_per_decision": interval(float(saving.mean()), reps),
    }
    return out


def _one(values: pd.Series) -> str | None:
    """The most frequent value (the policy name of the rows)."""
    counts = values.dropna().value_counts()
    return str(counts.index[0]) if len(counts) else None


def experiment(
    rows: pd.DataFrame, costs: CostMatrix, plan: Mapping, share: float, seed: int
) -> dict | None:
    """The test on the rows so far: units per arm against the planned share, the effect on the
    rows with outcomes, and the power reached; None when the log has no treatment arm."""
    decided = rows[rows["decision"].notna()]
    arms = {arm: decided[decided["arm"] == arm] for arm in ("control", "treatment")}
    if arms["treatment"].empty:
        return None
    units = {arm: set(frame["unit"].dropna()) for arm, frame in arms.items()}
    both = units["control"] & units["treatment"]
    n_c, n_t = len(units["control"]), len(units["treatment"])
    out: dict = {
        "policies": {arm: _one(frame["policy"]) for arm, frame in arms.items()},
        "units": {"control": n_c, "treatment": n_t},
        "units_in_both_arms": len(both),
        "planned_share": share,
        "observed_share": n_t / (n_c + n_t) if n_c + n_t else None,
        "srm": sample_ratio_mismatch(n_c, n_t, share) if n_c and n_t else None,
        "effect": None,
        "power": None,
    }
    known = {arm: frame[frame["outcome"] >= 0] for arm, frame in arms.items()}
    out["with_outcomes"] = {arm: len(frame) for arm, frame in known.items()}
    if known["control"].empty or known["treatment"].empty:
        return out
    control = realised_costs(known["control"], "decision", costs)
    treatment = realised_costs(known["treatment"], "decision", costs)
    reps_c = resampler(known["control"]["unit"], seed).means(control)[:, 0]
    reps_t = resampler(known["treatment"]["unit"], seed + 1).means(treatment)[:, 0]
    out["effect"] = {
        "control_cost": float(control.mean()),
        "treatment_cost": float(treatment.mean()),
        "saving": interval(float(control.mean() - treatment.mean()), reps_c - reps_t),
        "planned_saving": (plan.get("all_units") or {}).get("difference"),
    }
    out["power"] = power_so_far(plan, out["policies"], known["control"]["unit"].nunique(), share)
    return out


def power_so_far(plan: Mapping, policies: Mapping, control_units: int, share: float) -> dict | None:
    """The power the control units with outcomes give at the plan's effect size (its design:
    all units, or only the share where the policies disagree), against the planned power."""
    if not plan or (policies.get("control"), policies.get("treatment")) != (
        plan.get("control"),
        plan.get("treatment"),
    ):
        return None
    trigger = (plan.get("triggered") or {}).get("trigger_rate") or 1.0
    analysed = control_units * (trigger if plan.get("design") == "triggered" else 1.0)
    d = float(plan["effect_size"])
    alpha = float(plan.get("alpha", 0.05))
    return {
        "reached": analytical_power(d, analysed, alpha, share),
        "effect_size": d,
        "design": plan.get("design"),
        "analysed_units": float(analysed),
        "planned_units_per_arm": plan.get("n_per_arm"),
        "planned_power": plan.get("analytical_power"),
        "target_power": plan.get("target_power"),
        "progress": control_units / plan["n_per_arm"] if plan.get("n_per_arm") else None,
    }
