"""Deciding requests with the served bundles: the control policy, the treatment for the units a
salted hash assigns to it, and the shadow on every request.

While a treatment is set, both arms' policies decide every unit before the response is sent
(the one not acted on costs one more decision on the same record): the log then says what
each arm would have decided, which the triggered analysis of the A/B test needs (the units
where the two disagree are known in both arms). The other arm's decision never changes the
answer; where it cannot decide a record, it is left unknown.

A single record goes through `Policy.decide_record` (the policy's single-record feature path,
`clean_record`/`encode_record`, as fast as `decide_one`); a batch is built into a frame and
goes through `Policy.decide_batch`, the path `advisor score` takes. Both are the bundle's own
code: the service has no feature code of its own.

Assignment: a unit is in treatment when `u < share`, where `u` is the first 8 bytes of
SHA-256(salt, a NUL byte, the unit, all UTF-8) read as an unsigned big-endian integer and
divided by 2**64. The same salt and unit always give the same arm; another salt reshuffles.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from advisor.core.errors import InputError
from advisor.core.predictionlog import CONTROL, TREATMENT
from advisor.policies.base import Batch, Policy
from advisor.policies.output import decision_record
from advisor.serve.inputs import Item, Problem, RequestError, unknown_costs

RECORD_PATH_MAX = 16  # the other arm decides up to this many units record by record


def treatment_score(salt: str, unit: str) -> float:
    """The unit's uniform number in [0, 1): the first 8 bytes of SHA-256(salt NUL unit)."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(salt: str, unit: str, share: float) -> str:
    """The unit's arm: treatment when its score is below `share`."""
    return TREATMENT if treatment_score(salt, unit) < share else CONTROL


@dataclass(frozen=True)
class Outcome:
    """One decision: the item, its arm, the policy that decided and the batch (with what
    explains it) whose row `row` it is."""

    item: Item
    arm: str
    policy: Policy
    batch: Batch
    row: int = 0
    reasons: list[dict] | None = None  # when asked: {feature, value, contribution, text}
    arms: tuple[int | None, int | None] | None = None  # (control, treatment) codes in a test

    @property
    def code(self) -> int:
        return int(self.batch.codes[self.row])

    @property
    def decision(self) -> str:
        return self.policy.costs.decisions[self.code]

    def answer(self) -> dict:
        """The decision as the response and `advisor score` give it (`decision_record`)."""
        return decision_record(self.policy, self.batch, self.row)

    def arm_decision(self, arm: str) -> str | None:
        """What `arm`'s policy decided for this unit (None outside a test or when it could not)."""
        if self.arms is None:
            return None
        code = self.arms[0 if arm == CONTROL else 1]
        return None if code is None else self.policy.costs.decisions[code]


def record_frame(records: Sequence[dict], columns: Sequence[str]) -> pd.DataFrame:
    """The records as a frame of the columns a policy reads (pandas types each column)."""
    return pd.DataFrame(
        {c: [r.get(c) for r in records] for c in columns}, index=pd.RangeIndex(len(records))
    )


class Decider:
    """Decides items with the served policies; `observe` hears the seconds of every call."""

    def __init__(
        self,
        control: Policy,
        *,
        treatment: Policy | None = None,
        share: float = 0.0,
        salt: str = "",
        shadow: Policy | None = None,
        observe: Callable[[Policy, float], None] | None = None,
    ) -> None:
        self.control = control
        self.treatment = treatment
        self.share = float(share) if treatment is not None else 0.0
        self.salt = salt
        self.shadow = shadow
        self.observe = observe or (lambda policy, seconds: None)

    @property
    def policies(self) -> list[Policy]:
        """Every policy that decides requests, the shadow included."""
        return [p for p in (self.control, self.treatment, self.shadow) if p is not None]

    def arm(self, unit: str) -> str:
        if self.treatment is None:
            return CONTROL
        return assign(self.salt, unit, self.share)

    def decide(self, items: Sequence[Item], batch: bool, reasons: int = 0) -> list[Outcome]:
        """The decision of every item by its arm's policy, in order. A record whose costs cannot
        be known (a cost column null) is refused, and so is a batch holding one: a batch is
        decided whole or not at all, and a record gets the same answer alone or in a batch.
        While a treatment is set, each outcome also carries what the other arm's policy decides
        for the unit (`_other`), which never refuses a request."""
        arms = [self.arm(item.unit) for item in items]
        out: list[Outcome | None] = [None] * len(items)
        codes: dict[str, list[int | None]] = {
            CONTROL: [None] * len(items),
            TREATMENT: [None] * len(items),
        }
        for arm, policy in ((CONTROL, self.control), (TREATMENT, self.treatment)):
            where = [i for i, a in enumerate(arms) if a == arm]
            if not where:
                continue
            group = [items[i] for i in where]
            decided = self._run(policy, group, batch, where)
            for j, i in enumerate(where):
                out[i] = Outcome(items[i], arm, policy, decided, j)
                codes[arm][i] = int(decided.codes[j])
        if reasons:
            out = self.explained(out, batch, reasons)  # type: ignore[arg-type]
        if self.treatment is None:
            return out  # type: ignore[return-value]
        for arm, policy in ((CONTROL, self.control), (TREATMENT, self.treatment)):
            rest = [i for i, a in enumerate(arms) if a != arm]
            decided = self._other(policy, [items[i] for i in rest], batch)
            for i, code in zip(rest, decided, strict=True):
                codes[arm][i] = code
        return [
            replace(o, arms=(codes[CONTROL][i], codes[TREATMENT][i]))  # type: ignore[arg-type]
            for i, o in enumerate(out)
        ]

    def explained(self, outcomes: Sequence[Outcome], batch: bool, k: int) -> list[Outcome]:
        """The outcomes with the k reasons of each decision, as the deciding policy's
        `Policy.explain` gives them (the service runs this off its event loop)."""
        out = list(outcomes)
        for policy in {id(o.policy): o.policy for o in outcomes}.values():
            where = [i for i, o in enumerate(outcomes) if o.policy is policy]
            why = explain(policy, [outcomes[i].item for i in where], batch, k)
            for i, reasons in zip(where, why, strict=True):
                out[i] = replace(out[i], reasons=reasons)
        return out

    def _other(self, policy: Policy, group: list[Item], batch: bool) -> list[int | None]:
        """`policy`'s codes for units of the other arm (None where it cannot decide): record by
        record on the single-record path for a few units (a small frame costs more than the
        decisions), as a frame for more."""
        if not group:
            return []
        start = time.perf_counter()
        if batch and len(group) > RECORD_PATH_MAX:
            frame = record_frame([it.record for it in group], _columns(policy))
            codes = [int(c) if c >= 0 else None for c in policy.decide_batch(frame).codes]
        else:
            codes = [_record_code(policy, it.record) for it in group]
        self.observe(policy, time.perf_counter() - start)
        return codes

    def shadow_codes(self, items: Sequence[Item], batch: bool) -> list[int | None]:
        """The shadow policy's decision codes (None where it cannot decide); never raises for a
        record, since the shadow must not fail a request it does not answer."""
        if self.shadow is None:
            return [None] * len(items)
        records = [item.record for item in items]
        start = time.perf_counter()
        if batch:
            frame = record_frame(records, _columns(self.shadow))
            codes = [int(c) if c >= 0 else None for c in self.shadow.decide_batch(frame).codes]
        else:
            try:
                codes = [int(self.shadow.decide_record(records[0]).codes[0])]
            except InputError:
                codes = [None]
        self.observe(self.shadow, time.perf_counter() - start)
        return codes

    def _run(self, policy: Policy, group: list[Item], batch: bool, where: list[int]) -> Batch:
        start = time.perf_counter()
        if batch:
            decided = policy.decide_batch(
                record_frame([it.record for it in group], _columns(policy))
            )
            refused = np.flatnonzero(np.asarray(decided.codes) < 0)
            if len(refused):
                raise RequestError(
                    422,
                    [
                        _cost_problem(policy, group[j].record, f"records[{where[j]}].record")
                        for j in refused
                    ],
                )
        else:
            try:
                decided = policy.decide_record(group[0].record)
            except InputError as exc:
                raise RequestError(
                    422, [_cost_problem(policy, group[0].record, "record", str(exc))]
                ) from None
        self.observe(policy, time.perf_counter() - start)
        return decided


def explain(policy: Policy, group: Sequence[Item], batch: bool, k: int) -> list[list[dict]]:
    """The k reasons of each decision, as the library's `Policy.explain` gives them (one
    record through the single-record path, a batch as a frame)."""
    if batch:
        frame = record_frame([it.record for it in group], _columns(policy))
        return policy.explain(frame, k).records()
    return policy.explain_record(group[0].record, k).records()


def _record_code(policy: Policy, record: dict) -> int | None:
    try:
        return int(policy.decide_record(record).codes[0])
    except InputError:
        return None


def _columns(policy: Policy) -> list[str]:
    return list(dict.fromkeys(policy.input_columns()))


def _cost_problem(policy: Policy, record: dict, at: str, fallback: str = "") -> Problem:
    """A record the policy cannot decide: the cost column that is not a number."""
    missing = unknown_costs(record, policy.costs.columns)
    if not missing:
        return Problem(at, fallback or "the policy cannot decide this record")
    return Problem(
        f"{at}.{missing[0]}",
        f"must be a number: policy {policy.name!r} weighs its decisions by this cost column",
    )
