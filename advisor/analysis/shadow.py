"""Shadow mode: ML runs beside the rules on the test split, deciding without acting.

What a team would see in the shadow logs before ML acts: how often the two policies disagree,
what each one's choice realised on those rows (who was right how often), which decision pairs
the disagreements are made of, and which rules fire most where ML disagrees (where ML sees
something the rules miss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from advisor.analysis.evaluate import Evaluation
from advisor.analysis.roles import Roles
from advisor.core.record import Record, json_field
from advisor.policies.base import Policy
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import Interval

TOP_RULES = 8


@dataclass(frozen=True)
class RuleOnDisagreements(Record):
    """A rule of the control and how many of the rows it decided ML decided otherwise."""

    rule: int
    text: str
    rows: int
    disagreements: int
    share_of_disagreements: float
    disagreement_rate: float


@dataclass(frozen=True)
class DisagreementPair(Record):
    """The rows where the control decided `control` and ML `treatment`, and who was right."""

    control: str
    treatment: str
    rows: int
    control_cost: float
    treatment_cost: float
    treatment_right: int
    control_right: int


@dataclass(frozen=True)
class OnDisagreements(Record):
    """Each policy's realised cost on the rows where they disagree, and who was right."""

    control_cost_on_disagreements: float
    treatment_cost_on_disagreements: float
    control_total_on_disagreements: float
    treatment_total_on_disagreements: float
    treatment_right_share: Interval
    control_right_share: Interval
    saving_per_disagreement: Interval


@dataclass(frozen=True)
class Disagreements(Record):
    """Disagreements between two policies on the same rows, with bootstrap intervals."""

    n: int
    disagreements: int
    disagreement_rate: Interval
    saving_per_decision: Interval
    treatment_right: int
    control_right: int
    ties: int
    on_disagreements: OnDisagreements | None = json_field(flatten=True)
    pairs: tuple[DisagreementPair, ...]


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
) -> list[RuleOnDisagreements]:
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
            RuleOnDisagreements(
                rule=int(idx),
                text=labels[int(idx)],
                rows=int(mask.sum()),
                disagreements=n_dis,
                share_of_disagreements=n_dis / max(int(disagree.sum()), 1),
                disagreement_rate=n_dis / int(mask.sum()),
            )
        )
    out.sort(key=lambda e: (-e.disagreements, e.rule))
    return out[:top]


def shadow_summary(
    control_codes: np.ndarray,
    treatment_codes: np.ndarray,
    control_costs: np.ndarray,
    treatment_costs: np.ndarray,
    decisions: Sequence[str],
    resampler: Resampler,
) -> Disagreements:
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
    on_disagreements = None
    if n_dis:
        dis_c, dis_t = c_cost[disagree], t_cost[disagree]
        diff = dis_c - dis_t
        share = np.column_stack([t_right[disagree], c_right[disagree], diff]).astype(float)
        rep_dis = resampler.subset(np.flatnonzero(disagree), seed_offset=1).means(share)
        on_disagreements = OnDisagreements(
            control_cost_on_disagreements=float(dis_c.mean()),
            treatment_cost_on_disagreements=float(dis_t.mean()),
            control_total_on_disagreements=float(dis_c.sum()),
            treatment_total_on_disagreements=float(dis_t.sum()),
            treatment_right_share=interval(share[:, 0].mean(), rep_dis[:, 0]),
            control_right_share=interval(share[:, 1].mean(), rep_dis[:, 1]),
            saving_per_disagreement=interval(diff.mean(), rep_dis[:, 2]),
        )
    return Disagreements(
        n=n,
        disagreements=n_dis,
        disagreement_rate=interval(d.mean() if n else 0.0, reps[:, 0]),
        saving_per_decision=interval(columns[:, 1].mean() if n else 0.0, reps[:, 1]),
        treatment_right=int(t_right.sum()),
        control_right=int(c_right.sum()),
        ties=n_dis - int(t_right.sum()) - int(c_right.sum()),
        on_disagreements=on_disagreements,
        pairs=tuple(_pairs(c_codes, t_codes, c_cost, t_cost, decisions, disagree)),
    )


def _pairs(c_codes, t_codes, c_cost, t_cost, decisions, disagree) -> list[DisagreementPair]:
    """Disagreements by (control decision, treatment decision), largest first."""
    rows = []
    for a in range(len(decisions)):
        for b in range(len(decisions)):
            mask = disagree & (c_codes == a) & (t_codes == b)
            k = int(mask.sum())
            if a == b or k == 0:
                continue
            rows.append(
                DisagreementPair(
                    control=decisions[a],
                    treatment=decisions[b],
                    rows=k,
                    control_cost=float(c_cost[mask].mean()),
                    treatment_cost=float(t_cost[mask].mean()),
                    treatment_right=int((t_cost[mask] < c_cost[mask]).sum()),
                    control_right=int((c_cost[mask] < t_cost[mask]).sum()),
                )
            )
    rows.sort(key=lambda r: -r.rows)
    return rows


@dataclass(frozen=True)
class Shadow(Record):
    """ML in shadow beside the control on the test split (result.json key `shadow`): the
    disagreements when there is an ML treatment and a control, else the `reason` there are none."""

    available: bool
    summary: Disagreements | None = json_field(flatten=True, default=None)
    rules_on_disagreements: tuple[RuleOnDisagreements, ...] | None = None
    rules_note: str | None = json_field(omit_none=True, default=None)
    volume_per_day: float | None = None
    disagreements_per_day: float | None = None
    control: str | None = None
    treatment: str | None = None
    reason: str | None = json_field(omit_none=True, default=None)

    @property
    def disagreement_rate(self) -> float | None:
        return self.summary.disagreement_rate.estimate if self.summary else None

    def to_dict(self) -> dict:
        if not self.available:
            return {"available": False, "reason": self.reason}
        return super().to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None) -> Shadow:
        if not data.get("available"):
            return cls(False, reason=data.get("reason"))
        return super().from_dict(data, where=where)


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
        return Shadow(False, reason="no ML policy or control policy")
    c, t = arms
    summary = shadow_summary(
        c.decisions, t.decisions, c.costs, t.costs, list(decisions), evaluation.resampler
    )
    hits = rule_hits(control_policy, test)
    blamed, note = None, None
    if hits is not None:
        blamed = tuple(rules_on_disagreements(hits[0], hits[1], c.decisions != t.decisions))
    else:
        note = (
            f"The control policy {roles.control!r} has no rules, so no rule can be blamed for "
            "the disagreements."
        )
    return Shadow(
        True,
        summary,
        blamed,
        note,
        volume_per_day,
        summary.disagreement_rate.estimate * volume_per_day,
        roles.control,
        roles.treatment,
    )
