"""What a run compares besides advisor's own policies: the incumbent (today's decisions, read
from a column) and the user's ready-made models, each by the name the user gave it; and the
list of every compared policy with its kind (result.json key `policies`, the same `kind` as
bundle.json's).

A ready-made model is evaluated as given, never refitted: advisor cannot know which rows it
was trained on, so the list warns that it may have seen the rows it is scored on, unless the
case says when its training data ended (`trained_until`) and the test rows all come later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from advisor.core.case import Case
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.core.record import Record, json_field
from advisor.core.timecolumn import time_text
from advisor.policies.base import Policy
from advisor.policies.registry import plugin_of

RESERVED = ("baseline", "rules", "expert-rules", "ml", "incumbent", "estimator", "mlflow")
UNSEEN_WARNING = (
    "advisor cannot know whether this ready-made model was trained on the rows it is scored "
    "on; if it was, its cost here is flattered. Say when its training data ended "
    "(trained_until) for time-ordered data."
)


def own_policies(case: Case, spec: FeatureSpec) -> list[Policy]:
    """The incumbent and the user's ready-made models as policies, unfitted, in case order."""
    out: list[Policy] = []
    if case.incumbent is not None:
        from advisor.policies.incumbent import IncumbentPolicy

        out.append(IncumbentPolicy(case.incumbent.column, case.costs, spec))
    for name, model in case.models.items():
        if not isinstance(name, str) or not name or name in RESERVED:
            raise InputError(
                f"policy name {name!r} is taken or empty; advisor's own are {list(RESERVED)}",
                where="policies",
            )
        if isinstance(model, str):
            from advisor.policies.registered import PREFIX, RegisteredPolicy

            if not model.startswith(PREFIX) or len(model) == len(PREFIX):
                raise InputError(
                    f"expected mlflow:MODEL_URI (e.g. mlflow:models:/scorer@champion), got "
                    f"{model!r}",
                    where=f"policies.{name}",
                )
            out.append(RegisteredPolicy(name, model, case.costs, spec))
            continue
        from advisor.policies.estimator import EstimatorPolicy

        out.append(EstimatorPolicy(name, model, case.costs, spec))
    return out


@dataclass(frozen=True)
class Compared(Record):
    """One compared policy: its name, its kind, whether it has a bundle, and a warning."""

    name: str
    kind: str
    bundled: bool
    warning: str | None = json_field(omit_none=True, default=None)


def compared_policies(
    policies: Mapping[str, Policy], case: Case, test_times: pd.Series | None
) -> tuple[Compared, ...]:
    """Every compared policy with its kind; a ready-made model carries the warning that it
    may have seen the rows it is scored on, unless `trained_until` precedes every test row."""
    seen = _may_have_seen(case, test_times)
    out = []
    for name, policy in policies.items():
        plugin = plugin_of(policy)
        ready_made = plugin.named_by_user
        out.append(
            Compared(
                name=name,
                kind=policy.kind,
                bundled=not plugin.evaluated_only,
                warning=seen if ready_made and seen else None,
            )
        )
    return tuple(out)


def _may_have_seen(case: Case, test_times: pd.Series | None) -> str | None:
    """The warning for ready-made models, or None when `trained_until` precedes the test rows."""
    if case.trained_until is None:
        return UNSEEN_WARNING
    if test_times is None:
        return UNSEEN_WARNING + " trained_until needs a time column to be checked."
    first = test_times.min()
    try:
        if pd.api.types.is_datetime64_any_dtype(test_times):
            until = pd.Timestamp(case.trained_until)
            if until.tzinfo is not None:
                until = until.tz_convert("UTC").tz_localize(None)
        else:
            until = float(case.trained_until)
        before = bool(until < first)
    except (TypeError, ValueError):
        raise InputError(
            f"{case.trained_until!r} is not a time like the time column's", where="trained_until"
        ) from None
    if before:
        return None
    return (
        f"trained_until {case.trained_until} is not before the first test row "
        f"({time_text(first)}): the ready-made models may have seen rows they are scored on."
    )
