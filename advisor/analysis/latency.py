"""Serving latency: what one request costs each policy, and how fast it decides in batch.

`decide_one` is timed on real test records, one at a time, through the same feature code a
service would call (`FeatureSpec.encode_record` behind `Policy.decide_one`). Records are
converted to dicts before timing, so only the call is timed. Throughput is `decide_codes` on
the test split (a seeded sample of at most THROUGHPUT_ROWS rows), best of a few runs. Times are
measured, never assumed.

Each call is timed twice: wall time, and the CPU time of the calling thread. On a machine
shared with other work, wall time also counts the time the call waited for a core, which a
dedicated service would not share; the CPU time does not. The budget is judged on the CPU
time's p99, with a distribution-free 95 % interval over every call of every round: a p99
whose interval contains the budget is within noise of it (`budget_check`), neither clearly in
nor clearly over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from advisor.core.case import DecisionContext
from advisor.core.record import Record, json_field
from advisor.policies.base import Policy
from advisor.stats.interval import Histogram, Interval, quantile_interval

REQUESTS = 1000
WARMUP = 50
THROUGHPUT_RUNS = 3
THROUGHPUT_ROWS = 50_000  # batch throughput on a seeded sample: a fixed cost, whatever the size
LATENCY_ROUNDS = 3


def request_records(frame: pd.DataFrame, n: int = REQUESTS, seed: int = 0) -> list[dict]:
    """`n` records from `frame` in a seeded random order (cycling when it has fewer rows)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    reps = -(-n // max(len(frame), 1))
    rows = np.tile(order, reps)[:n]
    distinct, where = np.unique(rows, return_inverse=True)
    records = frame.iloc[distinct].to_dict("records")
    return [records[i] for i in where]


def time_requests(
    policy: Policy, records: list[Mapping], warmup: int = WARMUP
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per `decide_one` call, one call per record, after `warmup` untimed calls: the
    wall time and the calling thread's CPU time of each call."""
    for record in records[:warmup]:
        policy.decide_one(record)
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    out = np.empty((2, len(records)), dtype=np.int64)
    for i, record in enumerate(records):
        start, start_cpu = wall(), cpu()
        policy.decide_one(record)
        out[1, i] = cpu() - start_cpu
        out[0, i] = wall() - start
    return out[0] / 1e9, out[1] / 1e9


def throughput(policy: Policy, frame: pd.DataFrame, runs: int = THROUGHPUT_RUNS) -> float:
    """Rows per second of `decide_codes` on `frame`, best of `runs`."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        policy.decide_codes(frame)
        best = min(best, time.perf_counter() - start)
    return len(frame) / max(best, 1e-9)


def budget_check(p99: Mapping[str, float | None], budget_ms: float) -> str:
    """ "within" or "over" the budget when the p99's interval lies wholly on one side of it,
    else "within noise" (the budget inside the interval)."""
    if p99["high"] is not None and p99["high"] <= budget_ms:
        return "within"
    if p99["low"] is not None and p99["low"] > budget_ms:
        return "over"
    return "within noise"


def latency_summary(
    seconds: np.ndarray,
    rows_per_second: float,
    budget_ms: float,
    cpu_seconds: np.ndarray | None = None,
) -> dict:
    """Wall-time percentiles in milliseconds, throughput, and whether p99 fits the budget:
    with `cpu_seconds`, the CPU time's p50 and p99 (with its interval), and the budget is
    judged on the CPU p99."""
    ms = np.asarray(seconds, dtype=float) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    judged = quantile_interval(ms if cpu_seconds is None else np.asarray(cpu_seconds) * 1000, 0.99)
    out = {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "rows_per_second": float(rows_per_second),
        "n": len(ms),
        "within_budget": bool(judged["estimate"] <= budget_ms),
        "budget_check": budget_check(judged, budget_ms),
        "histogram_ms": _histogram(ms),
    }
    if cpu_seconds is not None:
        cpu = np.asarray(cpu_seconds, dtype=float) * 1000
        out.update(cpu_p50_ms=float(np.percentile(cpu, 50)), cpu_p99_ms=judged, cpu_n=len(cpu))
    return out


def _histogram(ms: np.ndarray, bins: int = 30) -> dict:
    """Log-spaced histogram of request times (what a latency chart draws)."""
    low, high = max(float(ms.min()), 1e-4), max(float(ms.max()), 2e-4)
    edges = np.geomspace(low, high * 1.0001, bins + 1)
    counts, _ = np.histogram(ms, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def measure_policies(
    policies: Mapping[str, Policy],
    frame: pd.DataFrame,
    budget_ms: float,
    requests: int = REQUESTS,
    seed: int = 0,
    rounds: int = LATENCY_ROUNDS,
) -> dict:
    """`latency.<policy>` entries for every policy, plus the budget.

    Each policy answers the same requests in `rounds` rounds. The wall-time figures are the
    round with the median p99, so that a burst of load from another process, which lands in
    one round, does not decide them; the CPU-time figures, which the budget is judged on,
    pool every call of every round.
    """
    records = request_records(frame, requests, seed)
    batch = (
        frame if len(frame) <= THROUGHPUT_ROWS else frame.sample(THROUGHPUT_ROWS, random_state=seed)
    )
    out: dict = {
        "budget_ms": float(budget_ms),
        "requests": len(records),
        "rounds": rounds,
        "test_rows": len(frame),
        "throughput_rows": len(batch),
    }
    for name, policy in policies.items():
        runs = [time_requests(policy, records) for _ in range(rounds)]
        wall = sorted((w for w, _ in runs), key=lambda s: float(np.percentile(s, 99)))
        cpu = np.concatenate([c for _, c in runs])
        out[name] = latency_summary(
            wall[len(wall) // 2], throughput(policy, batch), budget_ms, cpu_seconds=cpu
        )
        out[name]["version"] = policy.version
    return out


@dataclass(frozen=True)
class PolicyLatency(Record):
    """One policy's request times in milliseconds (wall time; `cpu_*` the calling thread's
    CPU time, which the budget is judged on), batch throughput, and the budget check."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    rows_per_second: float
    n: int
    within_budget: bool
    histogram_ms: Histogram
    version: str
    budget_check: str | None = json_field(omit_none=True, default=None)
    cpu_p50_ms: float | None = json_field(omit_none=True, default=None)
    cpu_p99_ms: Interval | None = json_field(omit_none=True, default=None)
    cpu_n: int | None = json_field(omit_none=True, default=None)


@dataclass(frozen=True)
class RealtimeCheck(Record):
    """Which p99 the realtime-ml check read ("http", or "cpu": the CPU time in one process),
    whether it fits the budget, and its interval and the three-way check when known."""

    policy: str
    figure: str
    measured_p99_ms: float | None
    budget_ms: float
    within_budget: bool
    interval_ms: Interval | None = json_field(omit_none=True, default=None)
    budget_check: str | None = json_field(omit_none=True, default=None)


@dataclass(frozen=True)
class Latency(Record):
    """Request latency and batch throughput per policy (result.json key `latency`, where each
    policy's figures sit under its name); with `service`, the same requests through the real
    service over HTTP (`--measure-service`), and with `realtime_policy`, which figure the
    realtime-ml check read (`realtime_check`)."""

    budget_ms: float
    requests: int
    rounds: int
    test_rows: int
    throughput_rows: int
    timing: str
    precomputable: bool
    note: str
    policies: Mapping[str, PolicyLatency] = json_field(flatten=True)
    service: Mapping[str, Any] | None = json_field(omit_none=True, default=None)
    realtime_policy: str | None = json_field(internal=True)

    def p99_ms(self, name: str) -> float | None:
        entry = self.policies.get(name)
        return None if entry is None else entry.p99_ms

    def realtime_p99_ms(self, name: str) -> tuple[float | None, str]:
        """The p99 a real-time decision by `name` is judged on, and which figure it is: over
        HTTP when the service was measured, else the CPU time in one process ("cpu"; the wall
        time, "in-process", for results written before CPU time was measured)."""
        entry = (self.service or {}).get(name)
        if isinstance(entry, Mapping) and entry.get("p99_ms") is not None:
            return float(entry["p99_ms"]), "http"
        policy = self.policies.get(name)
        if policy is not None and policy.cpu_p99_ms is not None:
            return policy.cpu_p99_ms.estimate, "cpu"
        return self.p99_ms(name), "in-process"

    def realtime_p99_interval(self, name: str) -> Interval | None:
        """The 95 % interval of the p99 that `realtime_p99_ms` reads, when it has one."""
        if self.realtime_p99_ms(name)[1] != "cpu":
            return None
        return self.policies[name].cpu_p99_ms

    @property
    def realtime_check(self) -> RealtimeCheck | None:
        if self.realtime_policy is None:
            return None
        p99, figure = self.realtime_p99_ms(self.realtime_policy)
        bounds = self.realtime_p99_interval(self.realtime_policy)
        return RealtimeCheck(
            self.realtime_policy,
            figure,
            p99,
            self.budget_ms,
            p99 is not None and p99 <= self.budget_ms,
            interval_ms=bounds,
            budget_check=None if bounds is None else budget_check(bounds.to_dict(), self.budget_ms),
        )

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.realtime_check is not None:
            out["realtime_check"] = self.realtime_check.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None) -> Latency:
        """The policies are the entries with a `p99_ms`, beside the shared figures."""
        policies = {
            k: PolicyLatency.from_dict(v, where=f"latency.{k}")
            for k, v in data.items()
            if k != "service" and isinstance(v, Mapping) and "p99_ms" in v
        }
        shared = {k: v for k, v in data.items() if k not in policies}
        check = data.get("realtime_check") or {}
        return cls(
            **{f: shared[f] for f in LATENCY_FIGURES if f in shared},
            policies=policies,
            service=data.get("service"),
            realtime_policy=check.get("policy"),
        )


LATENCY_FIGURES = (
    "budget_ms",
    "requests",
    "rounds",
    "test_rows",
    "throughput_rows",
    "timing",
    "precomputable",
    "note",
)


def measure_latency(
    policies: Mapping[str, Policy], test: pd.DataFrame, decision: DecisionContext, seed: int
) -> Latency:
    """Every policy's `decide_one` latency and `decide` throughput on the test rows."""
    measured = measure_policies(policies, test, decision.latency_budget_ms, seed=seed)
    return Latency(
        budget_ms=measured["budget_ms"],
        requests=measured["requests"],
        rounds=measured["rounds"],
        test_rows=measured["test_rows"],
        throughput_rows=measured["throughput_rows"],
        timing=decision.timing,
        precomputable=decision.precomputable,
        note=(
            "Times are one process on this machine, without network or feature-store "
            "lookups: a floor for what a service would add. The budget is judged on the CPU "
            "time of each call, which the machine's other work does not inflate; the wall "
            "times beside it include waiting for a core."
        ),
        policies={name: PolicyLatency.from_dict(measured[name]) for name in policies},
    )
