"""The HTTP service: `POST /decide`, `GET /health`, `GET /version`, `GET /metrics`.

`Service` holds what a running service serves (the control bundle, optionally a treatment and
a shadow, the prediction log, the metrics) and answers requests without knowing about HTTP;
`create_app` puts it behind FastAPI. Bad input gets a 4xx whose JSON body names the field
(`{"field", "message", "errors"}`); only a fault of the service itself is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from advisor.artefacts.bundle import read_bundle
from advisor.artefacts.manifest import advisor_version
from advisor.core.errors import InputError
from advisor.core.predictionlog import CONTROL, SHADOW, TREATMENT
from advisor.policies.base import Policy
from advisor.serve.deciding import Decider, Outcome, record_frame
from advisor.serve.inputs import (
    MAX_BODY_BYTES,
    MAX_RECORDS,
    DecideRequest,
    RequestError,
    RequestReader,
    refuse,
)
from advisor.serve.predictionlog import PredictionLog
from advisor.serve.prometheus import CONTENT_TYPE, Metrics
from advisor.serve.stalls import GCPauses, LoopLag

JSON = "application/json"
# While serving, the interpreter hands its lock to a waiting thread (a reasons worker, the log's
# writer) after this long instead of Python's 5 ms: a thread that runs Python then holds the
# event loop for at most about this long at a time, and gets its turn as soon.
SWITCH_SECONDS = 0.0002
REASON_THREADS = 2  # a batch's reasons are computed off the event loop by this many threads
logger = logging.getLogger("advisor.serve")


@dataclass(frozen=True)
class Served:
    """A policy as the service serves it, with its bundle's description when it has one."""

    policy: Policy
    meta: Mapping | None = None
    path: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Served:
        bundle = read_bundle(path)
        return cls(bundle.policy, bundle.meta, str(bundle.path))

    def describe(self) -> dict:
        meta = self.meta or {}
        return {
            "policy": self.policy.name,
            "model_version": self.policy.version,
            "kind": self.policy.kind,
            "created": meta.get("created"),
            "case": meta.get("case"),
            "bundle": self.path,
        }


def _same_question(control: Policy, other: Served | None, option: str) -> None:
    if other is not None and list(other.policy.costs.decisions) != list(control.costs.decisions):
        raise InputError(
            f"decides {list(other.policy.costs.decisions)}, not the served bundle's "
            f"{list(control.costs.decisions)}",
            where=f"{option} {other.path or other.policy.name}",
        )


class Service:
    """What one running service serves and counts; answers requests without HTTP."""

    def __init__(
        self,
        control: Served,
        *,
        treatment: Served | None = None,
        share: float = 0.05,
        salt: str | None = None,
        shadow: Served | None = None,
        log: PredictionLog | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_records: int = MAX_RECORDS,
    ) -> None:
        _same_question(control.policy, treatment, "--treatment")
        _same_question(control.policy, shadow, "--shadow")
        if treatment is not None and not 0 < share < 1:
            raise InputError(f"must be above 0 and below 1, got {share:g}", where="--share")
        self.control, self.treatment, self.shadow = control, treatment, shadow
        self.salt = salt if salt is not None else (treatment.policy.version if treatment else "")
        self.log = log
        self.max_body_bytes = max_body_bytes
        roles = {CONTROL: control, TREATMENT: treatment, SHADOW: shadow}
        self.metrics = Metrics(
            {role: s.policy for role, s in roles.items() if s is not None},
            log.status if log is not None else None,
        )
        self.decider = Decider(
            control.policy,
            treatment=treatment.policy if treatment else None,
            share=share,
            salt=self.salt,
            shadow=shadow.policy if shadow else None,
            observe=self.metrics.timed,
        )
        self.reader = RequestReader(self.decider.policies, max_records)
        self.lag = LoopLag(observe=self.metrics.loop_lag)
        self.gc_pauses = GCPauses(observe=self.metrics.gc_pause)
        writes = {}
        if log is not None:
            log.observe_write = self.metrics.log_write
            writes = log.write_times
        self.metrics.recent(self.lag.recent, self.gc_pauses.recent, writes)
        self._explainer: ThreadPoolExecutor | None = None

    def warm_up(self) -> None:
        """Decide (and explain) a record of nulls (costs 0) alone and in a batch with every
        policy before serving, so that what the first request would load is loaded already."""
        record = {name: None for name in self.reader.columns}
        for policy in self.decider.policies:
            record.update({c: 0.0 for c in policy.costs.columns})
        for policy in self.decider.policies:
            policy.decide_record(record)
            policy.decide_batch(record_frame([record, record], list(record)))
            with contextlib.suppress(NotImplementedError):  # a policy that gives no reasons
                policy.explain_record(record, 1)

    def close(self) -> None:
        """Let the reasons' threads go (the service stops)."""
        if self._explainer is not None:
            self._explainer.shutdown(wait=False)
            self._explainer = None

    def version(self) -> dict:
        """What `GET /version` says: the served bundles and the assignment."""
        return {
            **self.control.describe(),
            "advisor_version": advisor_version(),
            "arms": {
                CONTROL: self.control.policy.version,
                **({TREATMENT: self.treatment.policy.version} if self.treatment else {}),
            },
            "treatment": self.treatment.describe() if self.treatment else None,
            "treatment_share": self.decider.share if self.treatment else None,
            "shadow": self.shadow.describe() if self.shadow else None,
            "fields": list(self.reader.columns),
            "max_records": self.reader.max_records,
            "max_body_bytes": self.max_body_bytes,
        }

    def health(self) -> dict:
        """What `GET /health` says: ok; degraded while the prediction log loses lines and the
        service answers anyway; refusing while it refuses decisions it cannot record."""
        log = self.log.status() if self.log is not None else {"state": "off"}
        return {
            "status": log["state"] if log["state"] in ("degraded", "refusing") else "ok",
            "policy": self.control.policy.name,
            "model_version": self.control.policy.version,
            "log": log,
        }

    async def decide(
        self, request: DecideRequest, started: float
    ) -> tuple[dict, list[Outcome], float]:
        """The response body, the outcomes and the latency in milliseconds (counted in the
        metrics once answered: `answered`). One record's reasons are computed here, on the event
        loop: from the model's TreeSHAP tables they take under a millisecond, less than handing
        them to a thread costs in CPU. A batch's are computed on a thread of their own, so that
        the event loop reads and decides other requests meanwhile."""
        outcomes = self.decider.decide(request.items, request.batch)
        if request.reasons and not request.batch:
            outcomes = self.decider.explained(outcomes, False, request.reasons)
        elif request.reasons:
            if self._explainer is None:
                self._explainer = ThreadPoolExecutor(REASON_THREADS, "advisor-reasons")
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._explainer,
                self.decider.explained,
                outcomes,
                request.batch,
                request.reasons,
            )
        latency_ms = (time.perf_counter() - started) * 1000
        answers = [answer(o, latency_ms) for o in outcomes]
        body = {"decisions": answers, "latency_ms": latency_ms} if request.batch else answers[0]
        return body, outcomes, latency_ms

    def answered(self, outcomes: list[Outcome], shadow: Sequence[int | None] = ()) -> None:
        """Count the decisions of an answered request, the shadow's too."""
        for o in outcomes:
            self.metrics.decided(o.policy, o.arm, o.decision)
        s = self.decider.shadow
        if s is not None:
            for code in shadow:
                if code is not None:
                    self.metrics.decided(s, SHADOW, s.costs.decisions[code])

    async def follow_up(
        self, request: DecideRequest, outcomes: list[Outcome], latency_ms: float, ts: float
    ) -> None:
        """After the response is sent, when the log does not wait for its lines: the shadow
        decides, and every decision goes to the log (a queue put; the log's thread writes)."""
        shadow = self.decider.shadow_codes(request.items, request.batch)
        self.answered([], shadow)
        if self.log is not None:
            for entry in self.log_entries(outcomes, shadow, latency_ms, ts):
                self.log.put(entry)

    def log_entries(
        self, outcomes: list[Outcome], shadow: list[int | None], latency_ms: float, ts: float
    ) -> list[dict]:
        """The request's decisions as log entries, the shadow's decision beside each."""
        s = self.decider.shadow
        return [
            {
                "ts": ts,
                "id": o.item.id,
                "unit": o.item.unit,
                "arm": o.arm,
                "policy": o.policy.name,
                "model_version": o.policy.version,
                "decision": o.decision,
                "control_decision": o.arm_decision(CONTROL),
                "treatment_decision": o.arm_decision(TREATMENT),
                "shadow_policy": s.name if s else None,
                "shadow_version": s.version if s else None,
                "shadow_decision": s.costs.decisions[code] if s and code is not None else None,
                "record": o.item.record,
                "latency_ms": latency_ms,
                "request_records": len(outcomes),
                **({"reasons": o.reasons} if o.reasons is not None else {}),
            }
            for o, code in zip(outcomes, shadow, strict=True)
        ]


def answer(o: Outcome, latency_ms: float) -> dict:
    """One decision as the response gives it: its id, the decision with what explains it
    (`advisor.policies.output.decision_record`), its arm, its reasons when asked, the latency."""
    out = {"id": o.item.id, **o.answer(), "arm": o.arm}
    if o.reasons is not None:
        out["reasons"] = o.reasons
    out["latency_ms"] = latency_ms
    return out


def _json(
    body: object,
    status: int = 200,
    background: BackgroundTask | None = None,
    started: float | None = None,
) -> Response:
    """A JSON response; from `started` on, a `Server-Timing: app;dur=<ms>` header with the
    time from the request's arrival to its answer (the log's write included)."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    headers = None
    if started is not None:
        headers = {"server-timing": f"app;dur={(time.perf_counter() - started) * 1000:.3f}"}
    return Response(
        text, status_code=status, media_type=JSON, background=background, headers=headers
    )


def unrecorded(log: PredictionLog, started: float) -> Response:
    """503 for a decision the log cannot record under `--on-log-failure refuse`."""
    why = log.status()["error"] or "it cannot be written"
    message = f"the prediction log cannot record the decision ({why}); none is given without it"
    body = {"field": "log", "message": message, "errors": [{"field": "log", "message": message}]}
    response = _json(body, 503, started=started)
    response.headers["retry-after"] = "1"
    return response


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (before reading, when the
    Content-Length says so) and with 415 when it is declared as something other than JSON."""
    kind = request.headers.get("content-type")
    if kind is not None:
        media = kind.split(";", 1)[0].strip().lower()
        if media != JSON and not media.endswith("+json"):
            raise refuse(415, "content-type", f"expected {JSON}, got {kind!r}")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise refuse(400, "content-length", f"not a byte count: {length!r}")
        if int(length) > limit:
            raise refuse(413, "body", f"{int(length):,} bytes; at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refuse(413, "body", f"more than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Counting:
    """ASGI middleware: every request counted by endpoint and status, timed to its response."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 500, "counted": False}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self._count(scope, state, start)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._count(scope, state, start)

    def _count(self, scope, state: dict, start: float) -> None:
        if not state["counted"]:
            state["counted"] = True
            self.metrics.request(scope["path"], state["status"], time.perf_counter() - start)


def create_app(service: Service, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The FastAPI application serving `service`; the prediction log runs with it, and
    `on_ready` hears when it is warm and about to take requests."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.warm_up()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_SECONDS)
        # What is loaded by now (libraries, bundles) lives as long as the service: kept out of
        # the cycle collector's scans, whose full passes over it otherwise stall every request
        # in flight for 0.1 to 0.3 s.
        gc.freeze()
        if service.log is not None:
            service.log.start()
        service.lag.start()
        service.gc_pauses.install()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            service.gc_pauses.remove()
            await service.lag.stop()
            if service.log is not None:
                service.log.close()
            service.close()
            sys.setswitchinterval(switch)
            gc.unfreeze()

    app = FastAPI(
        title="advisor serve",
        version=advisor_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(Counting, metrics=service.metrics)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        field = "method" if exc.status_code == 405 else "path"
        return _json({"field": field, "message": str(exc.detail), "errors": []}, exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.exception("internal error on %s", request.url.path)
        return _json({"field": None, "message": "internal error", "errors": []}, 500)

    @app.post("/decide")
    async def decide(request: Request) -> Response:
        started, ts = time.perf_counter(), time.time()
        try:
            body = await read_body(request, service.max_body_bytes)
            parsed = service.reader.read(body)
            payload, outcomes, latency_ms = await service.decide(parsed, started)
        except RequestError as exc:
            return _json(exc.to_dict(), exc.status)
        log, follow = service.log, None
        if log is not None and log.waits:
            shadow = service.decider.shadow_codes(parsed.items, parsed.batch)
            entries = service.log_entries(outcomes, shadow, latency_ms, ts)
            if not await log.record(entries):
                return unrecorded(log, started)
            service.answered(outcomes, shadow)
        else:
            if log is not None and not log.accepting(len(outcomes)):
                return unrecorded(log, started)
            service.answered(outcomes)
            if log is not None or service.shadow is not None:
                follow = BackgroundTask(service.follow_up, parsed, outcomes, latency_ms, ts)
        return _json(payload, background=follow, started=started)

    @app.get("/health")
    async def health() -> Response:
        said = service.health()
        return _json(said, 503 if said["status"] == "refusing" else 200)

    @app.get("/version")
    async def version() -> Response:
        return _json(service.version())

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.text(), media_type=CONTENT_TYPE)

    return app
