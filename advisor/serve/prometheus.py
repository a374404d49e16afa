"""The service's Prometheus metrics, in a registry of its own (one per application).

- `advisor_requests_total{endpoint, status}`: every HTTP request by endpoint and status code;
- `advisor_request_seconds{endpoint}`: a histogram of the time from a request's arrival to its
  response (in the application);
- `advisor_decisions_total{policy, version, arm, decision}`: decisions by value, per policy and
  version; the shadow's decisions count with `arm="shadow"`;
- `advisor_decide_seconds{policy, version}`: a histogram of each policy call's time;
- `advisor_serving_info{role, policy, version}`: 1 for each served bundle (control, treatment,
  shadow);
- `advisor_log_lines_total{outcome}`: the prediction log's lines written, dropped (answered
  without their line, under `--on-log-failure degrade` or `--log-sync async`) and refused
  (decisions answered 503 for want of their line, under `refuse`);
- `advisor_log_degraded`, `advisor_log_refusing`: 1 while the log loses lines and the service
  answers anyway, or refuses the decisions it cannot record;
- `advisor_log_info{sync, on_failure}`: 1, with the log's modes;
- `advisor_event_loop_lag_seconds`: a histogram of how late the event loop woke a timer
  (`serve.stalls.LoopLag`): the time requests wait to be read while the loop is held;
- `advisor_gc_pause_seconds{generation}`: a histogram of the cycle collector's pauses;
- `advisor_log_write_seconds{by}`: a histogram of the log's writes (and fsyncs), by who wrote:
  `request` (from the event loop) or `writer` (the log's thread);
- `..._recent_seconds{quantile}` beside each of these three: the p50 (`0.5`), p99 (`0.99`) and
  maximum (`1`) over the last `stalls.WINDOW_SECONDS` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from advisor.policies.base import Policy
from advisor.serve.stalls import QUANTILES, Recent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SECONDS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
WRITE_SECONDS = (0.00002, 0.00005, 0.0001, 0.0002, *SECONDS)
ENDPOINTS = frozenset({"/decide", "/health", "/version", "/metrics"})


class LogCollector:
    """The prediction log's counts, read when Prometheus scrapes."""

    def __init__(self, status: Callable[[], dict]) -> None:
        self.status = status

    def collect(self) -> Iterable:
        s = self.status()
        lines = CounterMetricFamily(
            "advisor_log_lines", "Prediction log lines by outcome", labels=["outcome"]
        )
        lines.add_metric(["written"], s["written"])
        lines.add_metric(["dropped"], s["dropped"])
        lines.add_metric(["refused"], s["refused"])
        degraded = GaugeMetricFamily(
            "advisor_log_degraded",
            "1 while the prediction log loses lines and the service answers anyway",
        )
        degraded.add_metric([], 1.0 if s["state"] == "degraded" else 0.0)
        refusing = GaugeMetricFamily(
            "advisor_log_refusing",
            "1 while the service refuses (503) decisions the prediction log cannot record",
        )
        refusing.add_metric([], 1.0 if s["state"] == "refusing" else 0.0)
        info = GaugeMetricFamily(
            "advisor_log_info",
            "The prediction log's modes",
            labels=["sync", "on_failure"],
        )
        info.add_metric([s["sync"], s["on_failure"]], 1.0)
        return [lines, degraded, refusing, info]


class RecentCollector:
    """The p50, p99 and maximum over the last seconds of each `Recent`, read when scraped."""

    def __init__(self, sources: dict[str, tuple[str, dict[tuple[str, ...], Recent], list[str]]]):
        self.sources = sources

    def collect(self) -> Iterable:
        out = []
        for name, (what, recents, labels) in self.sources.items():
            family = GaugeMetricFamily(name, what, labels=[*labels, "quantile"])
            for values, recent in recents.items():
                summary = recent.summary()
                if summary["count"]:
                    for q, _ in QUANTILES:
                        family.add_metric([*values, q], summary[q])
            out.append(family)
        return out


class Metrics:
    """Counters and histograms of one running service."""

    def __init__(self, roles: dict[str, Policy], log_status: Callable[[], dict] | None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "advisor_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "advisor_request_seconds",
            "Time from a request's arrival to its response",
            ["endpoint"],
            buckets=SECONDS,
            registry=r,
        )
        self.decisions = Counter(
            "advisor_decisions",
            "Decisions by value, per policy and version",
            ["policy", "version", "arm", "decision"],
            registry=r,
        )
        self.decide_seconds = Histogram(
            "advisor_decide_seconds",
            "Time of each policy call",
            ["policy", "version"],
            buckets=SECONDS,
            registry=r,
        )
        info = Gauge(
            "advisor_serving_info", "The served bundles", ["role", "policy", "version"], registry=r
        )
        for role, policy in roles.items():
            info.labels(role, policy.name, policy.version).set(1)
        if log_status is not None:
            r.register(LogCollector(log_status))
        self.loop_lag = Histogram(
            "advisor_event_loop_lag_seconds",
            "How late the event loop woke a timer",
            buckets=SECONDS,
            registry=r,
        ).observe
        gc_seconds = Histogram(
            "advisor_gc_pause_seconds",
            "Pauses of Python's cycle collector",
            ["generation"],
            buckets=WRITE_SECONDS,
            registry=r,
        )
        self.gc_pause = lambda generation, s: gc_seconds.labels(str(generation)).observe(s)
        write_seconds = Histogram(
            "advisor_log_write_seconds",
            "Prediction log writes (and fsyncs), by who wrote",
            ["by"],
            buckets=WRITE_SECONDS,
            registry=r,
        )
        self.log_write = lambda by, s: write_seconds.labels(by).observe(s)

    def recent(self, lag: Recent, gc_pauses: Recent, writes: dict[str, Recent]) -> None:
        """Show the recent p50, p99 and maximum of the loop's lag, the collector's pauses and
        the log's writes (by who wrote)."""
        self.registry.register(
            RecentCollector(
                {
                    "advisor_event_loop_lag_recent_seconds": (
                        "How late the event loop woke a timer, recently",
                        {(): lag},
                        [],
                    ),
                    "advisor_gc_pause_recent_seconds": (
                        "Pauses of Python's cycle collector, recently",
                        {(): gc_pauses},
                        [],
                    ),
                    "advisor_log_write_recent_seconds": (
                        "Prediction log writes, recently, by who wrote",
                        {(by,): recent for by, recent in writes.items()},
                        ["by"],
                    ),
                }
            )
        )

    def request(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"
        self.requests.labels(endpoint, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)

    def decided(self, policy: Policy, arm: str, decision: str, n: int = 1) -> None:
        self.decisions.labels(policy.name, policy.version, arm, decision).inc(n)

    def timed(self, policy: Policy, seconds: float) -> None:
        self.decide_seconds.labels(policy.name, policy.version).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
