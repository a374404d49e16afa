"""The replace question: keep what runs today, or replace it with what advisor recommends?

Keeping the incumbent costs no build and its stated upkeep; its value a year against the
best constant decision comes from its realised cost on the test rows, resampled with the same
rows as every other policy (the comparison is paired). advisor's pick among its own options
replaces the incumbent only when its net value a year beats keeping it by more than noise
(the 95 % interval of the paired difference lies above zero): otherwise the answer is
`keep-incumbent`, the cheapest change of all. The incumbent is not a bundle; a replacement is
A/B tested against it, with the current system still deciding for the control units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from advisor.analysis.economics import DAYS_PER_YEAR, Inputs
from advisor.analysis.evaluate import Evaluation
from advisor.analysis.recommend import OptionValue, Recommendation
from advisor.analysis.wording import LABELS
from advisor.core.incumbent import KEEP, Incumbent
from advisor.core.money import money
from advisor.core.record import Record
from advisor.stats.bootstrap import interval
from advisor.stats.interval import Interval

KEEP_NOTE = "runs today: no build, only its stated upkeep"
REPLACE_RULE = (
    "the recommended option replaces what runs today only when its net value a year beats "
    "keeping the incumbent by more than noise (the 95 % interval of the paired difference is "
    "above zero); otherwise keep the incumbent"
)


@dataclass(frozen=True)
class Replacement(Record):
    """Keep the incumbent or replace it, and the numbers behind it (result.json key
    `incumbent`)."""

    policy: str
    column: str
    annual_upkeep: float
    cost_per_decision: Interval
    annual_value: Interval  # against the best constant decision
    net: Interval
    candidate: str  # advisor's pick among its own options
    candidate_policy: str | None
    net_gain: Interval  # the candidate's net a year minus keeping the incumbent's
    p_candidate_better: float  # share of resamples in which the candidate's net is higher
    answer: str  # KEEP or the candidate
    rule: str
    rows_skipped: int
    ab_plan: str
    headline: str


def keep_net(inp: Inputs, incumbent_cost: np.ndarray, upkeep: float) -> tuple[np.ndarray, ...]:
    """Keeping the incumbent a year: its value against the baseline and its net (estimate and
    replicates, the same resampled rows as every option)."""
    value = (inp.base - incumbent_cost) * inp.decisions_per_day * DAYS_PER_YEAR
    return value, value - upkeep


def weigh_incumbent(
    rec: Recommendation,
    inp: Inputs,
    evaluation: Evaluation,
    incumbent: Incumbent,
    policy: str,
    rows_skipped: int,
) -> tuple[Replacement, Recommendation]:
    """The replace question answered from the evaluation's paired replicates of the incumbent
    (see `weigh`)."""
    cost = evaluation.policies[policy].cost_per_decision
    return weigh(rec, inp, evaluation.series(policy), cost, incumbent, policy, rows_skipped)


def weigh(
    rec: Recommendation,
    inp: Inputs,
    incumbent_cost: np.ndarray,
    cost_per_decision: Interval,
    incumbent: Incumbent,
    policy: str,
    rows_skipped: int = 0,
) -> tuple[Replacement, Recommendation]:
    """The replace question answered, and the recommendation with `keep-incumbent` among its
    options, its answer and its headline saying whether to keep or replace the incumbent.
    `incumbent_cost` is [estimate, *replicates] of its cost per decision, resampled with the
    same rows as `inp`'s series."""
    value, net = keep_net(inp, incumbent_cost, incumbent.annual_upkeep)
    candidate = rec.option
    gain = inp.nets()[candidate] - net
    gain_ci = interval(float(gain[0]), gain[1:])
    replace_it = gain_ci.known and gain_ci.low > 0
    answer = candidate if replace_it else KEEP
    candidate_policy = rec.options[candidate].policy
    cur = rec.currency
    keep_option = OptionValue(
        policy=policy,
        annual_value=interval(float(value[0]), value[1:]),
        annual_upkeep=incumbent.annual_upkeep,
        net=interval(float(net[0]), net[1:]),
        feasible=True,
        note=KEEP_NOTE,
    )
    span = f"95 % interval {money(gain_ci.low, cur)} to {money(gain_ci.high, cur)}"
    label = (
        "the best constant decision"
        if candidate_policy == "baseline"
        else LABELS[candidate].removeprefix("Ship ")
    )
    if replace_it:
        headline = (
            f"Replace what runs today with {label} ('{candidate_policy}'): after upkeep it is "
            f"worth {money(gain_ci.estimate, cur)} a year more than keeping the incumbent "
            f"({span}). Confirm it in an A/B test against the incumbent."
        )
    else:
        direction = "more" if (gain_ci.estimate or 0) > 0 else "less"
        headline = (
            f"Keep what runs today: {label} ('{candidate_policy}') would be worth "
            f"{money(abs(gain_ci.estimate or 0.0), cur)} a year {direction} than keeping the "
            f"incumbent after upkeep ({span}), not clearly more."
        )
    ab_plan = (
        f"Test {label} against the incumbent: the current system keeps deciding for the "
        f"control units; `advisor serve` decides the treatment units with '{candidate_policy}' "
        "and logs both arms' decisions, so the monitor reads the A/B test as the rows arrive."
    )
    verdict = Replacement(
        policy=policy,
        column=incumbent.column,
        annual_upkeep=incumbent.annual_upkeep,
        cost_per_decision=cost_per_decision,
        annual_value=keep_option.annual_value,
        net=keep_option.net,
        candidate=candidate,
        candidate_policy=candidate_policy,
        net_gain=gain_ci,
        p_candidate_better=float((gain[1:] > 0).mean()) if gain.size > 1 else float("nan"),
        answer=answer,
        rule=REPLACE_RULE,
        rows_skipped=rows_skipped,
        ab_plan=ab_plan,
        headline=headline,
    )
    reason = (
        f"Keeping the incumbent ('{incumbent.column}') is worth {money(float(net[0]), cur)} a "
        f"year net of its upkeep ({money(incumbent.annual_upkeep, cur)}); {LABELS[candidate]} "
        f"is worth {money(float(gain[0]), cur)} a year more ({span})."
    )
    updated = replace(
        rec,
        option=answer,
        headline=f"{headline} {rec.headline}" if replace_it else headline,
        reasons=(reason, *rec.reasons),
        options={**rec.options, KEEP: keep_option},
    )
    return verdict, updated
