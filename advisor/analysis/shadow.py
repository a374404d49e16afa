"""Shadow mode: ML runs beside the rules on the test split, deciding without acting.

What a team would see in the shadow logs before ML acts: how often the two policies disagree,
what each one's choice realised on those rows (who was right how often), which decision pairs
the disagreements are made of, and which rules fire most where ML disagrees (where ML sees
something the rules miss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from advisor.analysis.evaluate import Evaluation
from advisor.analysis.roles import Roles
from advisor.policies.base import Policy
from advisor.stats.bootstrap import Resampler, interval

TOP_RULES = 8


def rule_hits(policy: Policy, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """Which rule decided each row, for a rule policy; None for a policy without rules.

    A rule policy keeps its rule list in `rules_`, whose `match_index` gives, for the cleaned
    features of every row, the index of the first matching rule (`len(rules)`: the default).
    Returned labels: each rule's `when` text and decision, then the default.
    """
    rules = getattr(policy, "rules_", None)
    if rules is None or not callable(getattr(rules, "match_index", None)):
        return None
    index = np.asarray(rules.match_index(policy.spec.clean(frame)), dtype=np.int64)
    labels = [f"{r.when} -> {r.decision}" for r in rules.rules]
    labels.append(f"otherwise -> {rules.default}")
    return index, labels


def rules_on_disagreements(
    hits: np.ndarray, labels: Sequence[str], disagree: np.ndarray, top: int = TOP_RULES
) -> list[dict]:
    """The rules that decided the most disagreement rows, most first.

    `hits` indexes `labels` (the last label is usually the default decision). Each entry: the
    rule, rows it decided, how many of those ML disagreed with, their share of all
    disagreements, and the disagreement rate within the rule's rows.
    """
    hits = np.asarray(hits, dtype=np.int64)
    disagree = np.asarray(disagree, dtype=bool)
    out = []
    for idx in np.unique(hits):
        mask = hits == idx
        n_dis = int((mask & disagree).sum())
        if n_dis == 0:
            continue
        out.append(
            {
                "rule": int(idx),
                "text": labels[int(idx)],
                "rows": int(mask.sum()),
                "disagreements": n_dis,
                "share_of_disagreements": n_dis / max(int(disagree.sum()), 1),
                "disagreement_rate": n_dis / int(mask.sum()),
            }
        )
    out.sort(key=lambda e: (-e["disagreements"], e["rule"]))
    return out[:top]


def shadow_summary(
    control_codes: np.ndarray,
    treatment_codes: np.ndarray,
    control_costs: np.ndarray,
    treatment_costs: np.ndarray,
    decisions: Sequence[str],
    resampler: Resampler,
) -> dict:
    """Disagreements between two policies on the same rows, with bootstrap intervals.

    On a disagreement row, the policy whose choice realised the lower cost was right; equal
    realised costs are ties. Costs are per row, as evaluated (positive = cost, negative = gain).
    """
    c_codes = np.asarray(control_codes)
    t_codes = np.asarray(treatment_codes)
    c_cost = np.asarray(control_costs, dtype=float)
    t_cost = np.asarray(treatment_costs, dtype=float)
    n = len(c_codes)
    disagree = c_codes != t_codes
    n_dis = int(disagree.sum())
    d = disagree.astype(float)
    t_right = disagree & (t_cost < c_cost)
    c_right = disagree & (c_cost < t_cost)
    columns = np.column_stack([d, d * (c_cost - t_cost)])
    reps = resampler.means(columns) if n else np.empty((0, 2))
    out: dict = {
        "n": n,
        "disagreements": n_dis,
        "disagreement_rate": interval(d.mean() if n else 0.0, reps[:, 0]),
        "saving_per_decision": interval(columns[:, 1].mean() if n else 0.0, reps[:, 1]),
        "treatment_right": int(t_right.sum()),
        "control_right": int(c_right.sum()),
        "ties": n_dis - int(t_right.sum()) - int(c_right.sum()),
    }
    if n_dis:
        dis_c, dis_t = c_cost[disagree], t_cost[disagree]
        diff = dis_c - dis_t
        share = np.column_stack([t_right[disagree], c_right[disagree], diff]).astype(float)
        rep_dis = resampler.subset(np.flatnonzero(disagree), seed_offset=1).means(share)
        out.update(
            {
                "control_cost_on_disagreements": float(dis_c.mean()),
                "treatment_cost_on_disagreements": float(dis_t.mean()),
                "control_total_on_disagreements": float(dis_c.sum()),
                "treatment_total_on_disagreements": float(dis_t.sum()),
                "treatment_right_share": interval(share[:, 0].mean(), rep_dis[:, 0]),
                "control_right_share": interval(share[:, 1].mean(), rep_dis[:, 1]),
                "saving_per_disagreement": interval(diff.mean(), rep_dis[:, 2]),
            }
        )
    out["pairs"] = _pairs(c_codes, t_codes, c_cost, t_cost, decisions, disagree)
    return out


def _pairs(c_codes, t_codes, c_cost, t_cost, decisions, disagree) -> list[dict]:
    """Disagreements by (control decision, treatment decision), largest first."""
    rows = []
    for a in range(len(decisions)):
        for b in range(len(decisions)):
            mask = disagree & (c_codes == a) & (t_codes == b)
            k = int(mask.sum())
            if a == b or k == 0:
                continue
            rows.append(
                {
                    "control": decisions[a],
                    "treatment": decisions[b],
                    "rows": k,
                    "control_cost": float(c_cost[mask].mean()),
                    "treatment_cost": float(t_cost[mask].mean()),
                    "treatment_right": int((t_cost[mask] < c_cost[mask]).sum()),
                    "control_right": int((c_cost[mask] < t_cost[mask]).sum()),
                }
            )
    rows.sort(key=lambda r: -r["rows"])
    return rows


@dataclass(frozen=True)
class Shadow:
    """ML in shadow beside the control on the test split (result.json key `shadow`)."""

    available: bool
    control: str | None = None
    treatment: str | None = None
    disagreement_rate: float | None = None
    details: Mapping = field(default_factory=dict)

    def to_dict(self) -> dict:
        if not self.available:
            return {"available": False, **self.details}
        return {
            **self.details,
            "available": True,
            "control": self.control,
            "treatment": self.treatment,
        }


def run_shadow(
    evaluation: Evaluation,
    roles: Roles,
    control_policy: Policy,
    test: pd.DataFrame,
    decisions: Sequence[str],
    volume_per_day: float,
) -> Shadow:
    """Where the ML treatment and the control disagree on the test split, and who was right."""
    arms = evaluation.arms(roles)
    if arms is None:
        return Shadow(False, details={"reason": "no ML policy or control policy"})
    (c, t), control, treatment = arms, roles.control, roles.treatment
    summary = shadow_summary(
        c.decisions, t.decisions, c.costs, t.costs, list(decisions), evaluation.resampler
    )
    hits = rule_hits(control_policy, test)
    if hits is not None:
        summary["rules_on_disagreements"] = rules_on_disagreements(
            hits[0], hits[1], c.decisions != t.decisions
        )
    else:
        summary["rules_on_disagreements"] = None
        summary["rules_note"] = (
            f"The control policy {control!r} has no rules, so no rule can be blamed for the "
            "disagreements."
        )
    rate = summary["disagreement_rate"]["estimate"]
    summary.update(
        {"volume_per_day": volume_per_day, "disagreements_per_day": rate * volume_per_day}
    )
    return Shadow(True, control, treatment, rate, summary)
