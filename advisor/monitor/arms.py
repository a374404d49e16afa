"""Shadow mode and the canary / A/B test on live traffic.

Shadow: how often the shadow policy disagreed with the served one and, on the rows whose
outcome is known, which of the two decisions realised the lower cost. The test: the arms'
units to date against the planned split (the sample-ratio check of `advisor.analysis.rollout`), the power
the outcomes gathered so far give against the plan in result.json (`advisor.stats.power`), and the
effect in each window and overall (control's cost per decision minus treatment's, with a
bootstrap interval), and the readout: the effect to date read with the always-valid
confidence sequence of `advisor.stats.sequential`, on the units the plan's design analyses
(where the two arms' policies decide differently, for the triggered design; every unit
otherwise). The readout is the only reading that may raise `treatment_worse`: it can be read
after every window without raising the false-positive rate above alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix
from advisor.core.predictionlog import ARMS
from advisor.monitor import units
from advisor.monitor.measures import decision_codes, proportion, realised_at, resampler
from advisor.stats.bootstrap import interval
from advisor.stats.power import analytical_power, welch_power
from advisor.stats.sample_ratio import sample_ratio_mismatch
from advisor.stats.sequential import DEFAULT_TUNING, readout


def shadow(rows: pd.DataFrame, costs: CostMatrix, offline: Mapping | None, seed: int) -> list[dict]:
    """Per pair of served and shadow policy: the disagreement rate and, on the rows with
    outcomes, who was right; empty without a shadow in the log. Each pair's rows are read by
    position, only the columns it reads."""
    if "shadow_decision" not in rows:
        return []
    names = pd.Index(sorted({*_texts(rows["policy"]), *_texts(rows.get("shadow_policy")), ""}))
    served = _codes_in(rows["policy"], names)
    other = (
        _codes_in(rows["shadow_policy"], names, missing=names.get_loc(""))
        if "shadow_policy" in rows
        else np.full(len(rows), names.get_loc(""))
    )
    paired = (rows["shadow_decision"].notna() & rows["decision"].notna()).to_numpy()
    pos = np.flatnonzero(paired & (other != served) & (served >= 0))
    pair = served[pos] * len(names) + other[pos]
    del served, other
    found = sorted((str(names[k // len(names)]), names[k % len(names)], k) for k in np.unique(pair))
    return [
        _pair(p, o or None, rows, pos[pair == k], costs, offline, seed + i)
        for i, (p, o, k) in enumerate(found)
    ]


def _texts(values: pd.Series | None) -> list[str]:
    """The distinct texts of a column (its categories when categorical)."""
    if values is None:
        return []
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(v) for v in values.cat.categories]
    return [str(v) for v in values.dropna().unique()]


def _codes_in(values: pd.Series, names: pd.Index, missing: int = -1) -> np.ndarray:
    """Each value's position in `names` (`missing` where it is missing), read off the codes of
    a categorical: no text copy of the column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        table = names.get_indexer(values.cat.categories.astype(str))
        return np.append(table, missing)[values.cat.codes.to_numpy()]
    codes, uniques = pd.factorize(values)
    return np.append(names.get_indexer(uniques.astype(str)), missing)[codes]


def _pair(
    served: str,
    other: str | None,
    rows: pd.DataFrame,
    pos: np.ndarray,
    costs: CostMatrix,
    offline: Mapping | None,
    seed: int,
) -> dict:
    differ = _differ(rows, pos, costs.decisions)
    out: dict = {
        "policy": served,
        "shadow_policy": other,
        "n": len(pos),
        "disagreement_rate": proportion(int(differ.sum()), len(pos)),
        "offline_disagreement_rate": None,
        "with_outcomes": None,
    }
    if offline and {served, other} == {offline.get("control"), offline.get("treatment")}:
        out["offline_disagreement_rate"] = offline.get("disagreement_rate")
    with_outcome = rows["outcome"].to_numpy()[pos] >= 0
    known = pos[with_outcome]
    if not len(known):
        return out
    served_cost = realised_at(rows, known, "decision", costs)
    shadow_cost = realised_at(rows, known, "shadow_decision", costs)
    saving = served_cost - shadow_cost
    reps = resampler(rows["unit"].iloc[known], seed).means(saving)[:, 0]
    disagree = differ[with_outcome]
    served_right = int((served_cost < shadow_cost)[disagree].sum())
    shadow_right = int((shadow_cost < served_cost)[disagree].sum())
    out["with_outcomes"] = {
        "n": len(known),
        "disagreements": int(disagree.sum()),
        "served_right": served_right,
        "shadow_right": shadow_right,
        "ties": int(disagree.sum()) - served_right - shadow_right,
        "shadow_right_share": proportion(shadow_right, int(disagree.sum())),
        "shadow_saving_per_decision": interval(float(saving.mean()), reps).to_dict(),
    }
    return out


def _differ(rows: pd.DataFrame, pos: np.ndarray, decisions) -> np.ndarray:
    """Where the shadow's decision differs from the served one at `pos`, compared by their
    codes among the run's decisions (a value that is not one compared as it is)."""
    served = rows["decision"].iloc[pos]
    shadowed = rows["shadow_decision"].iloc[pos]
    a, b = decision_codes(served, decisions), decision_codes(shadowed, decisions)
    differ = a != b
    odd = np.flatnonzero((a < 0) | (b < 0))
    if len(odd):
        differ[odd] = (
            shadowed.iloc[odd].astype(object).to_numpy()
            != served.iloc[odd].astype(object).to_numpy()
        )
    return differ


def _one(values: pd.Series) -> str | None:
    """The most frequent value (the policy name of the rows)."""
    counts = values.dropna().value_counts()
    return str(counts.index[0]) if len(counts) else None


def split_to_date(
    frame: pd.DataFrame, ends: Sequence[int], plan: Mapping, share: float
) -> list[dict] | None:
    """The test to the end of each window (`ends`: one past its last row, in time order):
    units per arm against the planned share, units seen in both arms, and the power the
    control units with outcomes give; None when the log has no treatment arm. Each unit's
    first row per arm is found by sorting the unit keys (`advisor.monitor.units`)."""
    decided = (frame["decision"].notna() & frame["arm"].notna()).to_numpy()
    rows = {arm: np.flatnonzero(decided & (frame["arm"] == arm).to_numpy()) for arm in ARMS}
    if not len(rows["treatment"]):
        return None
    policies = {arm: _one(frame["policy"].iloc[rows[arm]]) for arm in ARMS}
    keys, missing = units.keys(frame["unit"])
    firsts, by_unit = {}, {}
    for arm in ARMS:  # the first row of each unit in each arm
        by_unit[arm] = units.firsts_by_unit(keys, missing, rows[arm])
        gone = rows[arm][missing[rows[arm]]]
        firsts[arm] = np.sort(np.append(by_unit[arm][1], gone[:1]))
    common, c, t = np.intersect1d(
        by_unit["control"][0], by_unit["treatment"][0], assume_unique=True, return_indices=True
    )
    both = np.sort(np.maximum(by_unit["control"][1][c], by_unit["treatment"][1][t]))
    del by_unit, common
    outcome = frame["outcome"].to_numpy()
    control = rows["control"]
    known_control = units.first_rows(keys, missing, control[outcome[control] >= 0])
    out = []
    for end in ends:
        n_c, n_t = (int(np.searchsorted(firsts[arm], end)) for arm in ARMS)
        analysed = int(np.searchsorted(known_control, end))
        out.append(
            {
                "policies": policies,
                "units": {"control": n_c, "treatment": n_t},
                "units_in_both_arms": int(np.searchsorted(both, end)),
                "planned_share": share,
                "observed_share": n_t / (n_c + n_t) if n_c + n_t else None,
                "srm": sample_ratio_mismatch(n_c, n_t, share) if n_c and n_t else None,
                "control_units_with_outcomes": analysed,
                "power": power_so_far(plan, policies, analysed, share),
            }
        )
    return out


def effect(rows: pd.DataFrame, costs: CostMatrix, plan: Mapping, seed: int) -> dict | None:
    """Control's cost per decision minus treatment's on the rows with outcomes (positive: the
    treatment saves), with a bootstrap interval (the arms resampled apart); None unless both
    arms have rows with outcomes."""
    known = (rows["decision"].notna() & (rows["outcome"] >= 0)).to_numpy()
    pos = {arm: np.flatnonzero(known & (rows["arm"] == arm).to_numpy()) for arm in ARMS}
    if not len(pos["control"]) or not len(pos["treatment"]):
        return None
    control = realised_at(rows, pos["control"], "decision", costs)
    treatment = realised_at(rows, pos["treatment"], "decision", costs)
    reps_c = resampler(rows["unit"].iloc[pos["control"]], seed).means(control)[:, 0]
    reps_t = resampler(rows["unit"].iloc[pos["treatment"]], seed + 1).means(treatment)[:, 0]
    return {
        "with_outcomes": {"control": len(control), "treatment": len(treatment)},
        "control_cost": float(control.mean()),
        "treatment_cost": float(treatment.mean()),
        "saving": interval(float(control.mean() - treatment.mean()), reps_c - reps_t).to_dict(),
        "planned_saving": (plan.get("all_units") or {}).get("difference"),
    }


def power_so_far(
    plan: Mapping,
    policies: Mapping,
    control_units: int,
    share: float,
    analysed: float | None = None,
) -> dict | None:
    """The power the control units with outcomes give at the effect the plan was sized for,
    for its design: `analysed` control units (the triggered ones counted in the log, when it
    says what each arm decided; else the control units times the planned trigger rate)."""
    if not plan or (policies.get("control"), policies.get("treatment")) != (
        plan.get("control"),
        plan.get("treatment"),
    ):
        return None
    if analysed is None:
        trigger = (plan.get("triggered") or {}).get("trigger_rate") or 1.0
        analysed = control_units * (trigger if plan.get("design") == "triggered" else 1.0)
    d = float(plan["effect_size"])
    alpha = float(plan.get("alpha", 0.05))
    sized = plan.get("sized_on")
    if sized and plan.get("control_var") is not None:
        reached = welch_power(
            sized["effect"], plan["control_var"], plan["treatment_var"], analysed, alpha, share
        )
    else:  # a plan from before Welch's sizes: the standardised effect
        reached = analytical_power(d, analysed, alpha, share)
    return {
        "reached": reached,
        "effect_size": d,
        "design": plan.get("design"),
        "analysed_units": float(analysed),
        "planned_units_per_arm": plan.get("n_per_arm"),
        "planned_power": plan.get("analytical_power"),
        "target_power": plan.get("target_power"),
        "progress": control_units / plan["n_per_arm"] if plan.get("n_per_arm") else None,
    }


def analysed_rows(frame: pd.DataFrame, plan: Mapping) -> tuple[np.ndarray, str]:
    """Which decided rows the test analyses, and the design read: the rows where the two arms'
    policies decided differently when the plan chose the triggered design and the log says
    what each arm decided; every row otherwise."""
    decided = (frame["decision"].notna() & frame["arm"].isin(ARMS)).to_numpy()
    if (plan or {}).get("design") != "triggered":
        return decided, "all units"
    if not {"control_decision", "treatment_decision"} <= set(frame.columns):
        return decided, "all units (the log does not say what each arm decided)"
    c, t = frame["control_decision"], frame["treatment_decision"]
    differ = (c.notna() & t.notna() & (c != t)).to_numpy()
    return decided & differ, "triggered"


def readout_to_date(
    frame: pd.DataFrame, ends: Sequence[int], plan: Mapping, costs: CostMatrix
) -> list[dict] | None:
    """The always-valid readout after each window (`ends`: one past its last row, in time
    order): the effect on the analysed units with outcomes to date (first row of each unit in
    each arm), its confidence-sequence interval and the decision; None without a treatment."""
    if not (frame["arm"] == "treatment").any():
        return None
    mask, design = analysed_rows(frame, plan)
    mask = mask & (frame["outcome"].to_numpy() >= 0)
    keys, missing = units.keys(frame["unit"])
    arm = frame["arm"]
    firsts = [  # the first row of each unit in each arm, in time order
        units.first_rows(keys, missing, np.flatnonzero(mask & (arm == a).to_numpy())) for a in ARMS
    ]
    del keys, missing
    pos = np.sort(np.concatenate(firsts))
    cost = realised_at(frame, pos, "decision", costs) if len(pos) else np.zeros(0)
    treated = (arm.iloc[pos] == "treatment").to_numpy()
    alpha = float((plan or {}).get("alpha", 0.05))
    tuning = ((plan or {}).get("sequential") or {}).get("tuning")
    reads = sequence_readouts(treated, cost, pos, ends, tuning, alpha)
    return [r | {"design": design} for r in reads]


def sequence_readouts(
    treated: np.ndarray,
    cost: np.ndarray,
    position: np.ndarray,
    ends: Sequence[int],
    tuning: float | None,
    alpha: float,
) -> list[dict]:
    """The readout after each look from the analysed units' arms, costs and positions in time
    order (a look sees the units before its end): running sums, so the cost is linear in the
    units whatever the number of looks. `tuning` is the plan's (the analysed units at its
    sequential horizon); without one, gbstats' default (it must not change between looks)."""
    sums = {}
    for arm, own in (("control", ~treated), ("treatment", treated)):
        sums[arm] = (position[own], np.cumsum(cost[own]), np.cumsum(cost[own] ** 2))
    out = []
    for look, end in enumerate(ends, start=1):
        seen = {}
        for arm, (at, s, ss) in sums.items():
            n = int(np.searchsorted(at, end))
            mean = s[n - 1] / n if n else np.nan
            var = max((ss[n - 1] - n * mean**2) / (n - 1), 0.0) if n > 1 else np.nan
            seen[arm] = (n, mean, var)
        (n_c, m_c, v_c), (n_t, m_t, v_t) = seen["control"], seen["treatment"]
        at = float(tuning or DEFAULT_TUNING)
        if n_c > 1 and n_t > 1:
            se = float(np.sqrt(v_c / n_c + v_t / n_t))
            read = readout(float(m_c - m_t), se, n_c + n_t, at, alpha)
        else:
            read = {"effect": {"estimate": None, "low": None, "high": None}, "decision": "not yet"}
        out.append(
            read
            | {
                "looks": look,
                "analysed": {"control": n_c, "treatment": n_t},
                "alpha": alpha,
                "tuning": at,
            }
        )
    return out
