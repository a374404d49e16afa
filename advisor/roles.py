"""Which policy plays which part, fixed once after fitting and before the test split is read.

The control is the rule list that stands for `ship-rules` (and is the control arm in shadow
mode and the A/B test), the treatment is the ML policy, and the baseline is the best constant
decision. The control is chosen on the validation split, so the test split, scored later,
cannot flatter the choice it reports on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.costs import CostMatrix
from advisor.data import Part
from advisor.policy import Policy

BASELINE, TREATMENT = "baseline", "ml"
RULE_LISTS = ("rules", "expert-rules")


@dataclass(frozen=True)
class Roles:
    """The control rule list, the ML treatment and the do-nothing baseline, by policy name."""

    control: str
    treatment: str | None
    baseline: str
    validation_cost: Mapping[str, float]
    reason: str

    def to_dict(self) -> dict:
        return {
            "control": self.control,
            "treatment": self.treatment,
            "baseline": self.baseline,
            "chosen_on": "validation",
            "validation_cost_per_decision": dict(self.validation_cost),
            "reason": self.reason,
        }


def validation_costs(policies: Mapping[str, Policy], valid: Part, costs: CostMatrix) -> dict:
    """Each policy's realised cost per decision on the validation split."""
    each = costs.cost_of_each_decision(valid.y, valid.frame)
    rows = np.arange(len(valid))
    return {
        name: float(each[rows, policy.decide_codes(valid.frame)].mean())
        for name, policy in policies.items()
    }


def assign_roles(policies: Mapping[str, Policy], valid: Part, costs: CostMatrix) -> Roles:
    """The roles, with the control chosen as the cheaper rule list on the validation split."""
    cost = validation_costs(policies, valid, costs)
    lists = [n for n in RULE_LISTS if n in policies]
    control = min(lists, key=lambda n: cost[n]) if lists else BASELINE
    if len(lists) > 1:
        reason = (
            f"{control!r} costs less than {next(n for n in lists if n != control)!r} on the "
            "validation split"
        )
    elif lists:
        reason = f"{control!r} is the only rule list"
    else:
        reason = "no rule list was fitted, so the best constant decision stands for the rules"
    return Roles(
        control=control,
        treatment=TREATMENT if TREATMENT in policies else None,
        baseline=BASELINE,
        validation_cost=cost,
        reason=reason,
    )
