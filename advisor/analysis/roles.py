"""Which policy plays which part, fixed once after fitting and before the test split is read.

The control is the rule list that stands for `ship-rules` (and is the control arm in shadow
mode and the A/B test), the treatment is the ML policy, and the baseline is the best constant
decision. The constant is the simplest rule list of all, so it can be the control too: a list
with rules must beat it by more than noise. The control is chosen on the validation split,
so the test split, scored later, cannot flatter the choice it reports on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.core.costs import CostMatrix
from advisor.core.data import Part
from advisor.core.record import Record, json_field
from advisor.policies.base import Batch, Policy
from advisor.stats.bootstrap import Resampler

BASELINE, TREATMENT = "baseline", "ml"
RULE_LISTS = ("rules", "expert-rules")


@dataclass(frozen=True)
class Roles(Record):
    """The control rule list, the ML treatment and the do-nothing baseline, by policy name
    (result.json key `roles`)."""

    control: str
    treatment: str | None
    baseline: str
    validation_cost: Mapping[str, float] = json_field(key="validation_cost_per_decision")
    reason: str
    chosen_on: str = "validation"


def decide_validation(policies: Mapping[str, Policy], valid: Part) -> dict[str, Batch]:
    """Every policy's decisions on the validation split they were fitted with, made once for
    every choice (a model decides from the probabilities it kept of those rows while fitting,
    `Policy.decide_validation`)."""
    return {name: policy.decide_validation(valid.frame) for name, policy in policies.items()}


def validation_costs(decided: Mapping[str, Batch], valid: Part, costs: CostMatrix) -> dict:
    """Each policy's realised cost per row on the validation split."""
    each = costs.cost_of_each_decision(valid.y, valid.frame)
    rows = np.arange(len(valid))
    return {name: each[rows, batch.codes] for name, batch in decided.items()}


def beats_constant(
    list_costs: np.ndarray, constant_costs: np.ndarray, resampler: Resampler
) -> bool:
    """Whether a rule list costs less than the constant decision by more than noise: the
    one-sided 95 % bootstrap bound of its paired saving per decision is above zero."""
    reps = resampler.means(list_costs - constant_costs)[:, 0]
    return bool(np.percentile(reps, 95) < 0)


def assign_roles(
    decided: Mapping[str, Batch], valid: Part, costs: CostMatrix, resampler: Resampler
) -> Roles:
    """The roles, with the control chosen on the validation split: the cheapest rule list that
    beats the constant decision by more than noise, else the constant decision itself (the
    simplest rule list of all). `decided` holds each policy's validation decisions and
    `resampler` resamples the validation rows."""
    per_row = validation_costs(decided, valid, costs)
    cost = {name: float(c.mean()) for name, c in per_row.items()}
    lists = [n for n in RULE_LISTS if n in decided]
    clear = [n for n in lists if beats_constant(per_row[n], per_row[BASELINE], resampler)]
    if clear:
        control = min(clear, key=lambda n: cost[n])
        others = [n for n in clear if n != control]
        reason = (
            f"{control!r} beats the constant decision by more than noise on the validation split"
        )
        if others:
            reason += f" and costs less there than {others[0]!r}"
    elif lists:
        control = BASELINE
        reason = (
            "no rule list beats the constant decision by more than noise on the validation "
            "split, so the constant decision (the simplest rule list) stands for the rules"
        )
    else:
        control = BASELINE
        reason = "no rule list was fitted, so the constant decision stands for the rules"
    return Roles(
        control=control,
        treatment=TREATMENT if TREATMENT in decided else None,
        baseline=BASELINE,
        validation_cost=cost,
        reason=reason,
    )
