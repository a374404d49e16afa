"""The prediction log's contract: its format version, fields and arms, written by `advisor
serve` and read by `advisor monitor` (one definition, so the two cannot drift apart).

Each JSON line carries `"format": "advisor-log/1"`; a reader refuses a line of another format
with one line naming it. A log written before the field existed (or a Parquet/CSV table
without the column) is read as the first format, which it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from advisor.core.errors import InputError

FORMAT = "advisor-log/1"
CONTROL, TREATMENT, SHADOW = "control", "treatment", "shadow"
ARMS = (CONTROL, TREATMENT)  # the arms that answer requests; the shadow only logs
DECISION_FIELDS = ("id", "unit", "arm", "policy", "model_version", "decision")
# While a treatment is set, what each arm's policy decided for the unit (the one acted on is
# `decision`): the triggered analysis of the A/B test reads the units where they differ.
ARM_FIELDS = ("control_decision", "treatment_decision")
SHADOW_FIELDS = ("shadow_policy", "shadow_version", "shadow_decision")
# `latency_ms` is the request's time: for a batch, every line carries the batch's. So each line
# also says how many records its request decided (`request_records`), and the monitor holds the
# per-decision latency budget to the single-record requests (a line without it counts as one).
REQUEST_RECORDS = "request_records"
FIELDS = (
    "format",
    "ts",
    *DECISION_FIELDS,
    *ARM_FIELDS,
    *SHADOW_FIELDS,
    "record",
    "latency_ms",
    REQUEST_RECORDS,
)


def check_format(values: Iterable[object], where: str) -> None:
    """Refuse a log holding a format version this advisor does not read (missing is the first
    format: logs written before lines carried it)."""
    other = sorted({str(v) for v in values if v is not None and v == v and v != FORMAT})
    if other:
        raise InputError(
            f"prediction log format {other[0]!r} is not one this advisor reads ({FORMAT!r}); "
            "use the advisor version that wrote it",
            where=where,
        )
