"""The latency stage over HTTP (`advisor analyze --measure-service`): each policy written as a
bundle and served by the real command, `advisor serve`, in its own process on a free localhost
port; sent the same test records as the in-process timing, one request at a time on one
keep-alive connection, timed from sending the request to reading the whole answer. Rounds and
the median-p99 round are as in `latency.measure_policies`. A process of its own keeps the
client's interpreter from delaying the server's, which in one process would add its lock
hand-overs to every figure."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from advisor.analysis.latency import (
    LATENCY_ROUNDS,
    REQUESTS,
    WARMUP,
    Latency,
    latency_summary,
    request_records,
)
from advisor.artefacts.run import policy_files
from advisor.policies.base import Policy
from advisor.serve.inputs import column_checks

START_SECONDS = 120.0

TRANSPORT = (
    "HTTP/1.1 to advisor serve (uvicorn and FastAPI, a process of its own) on localhost: one "
    "keep-alive connection, one request at a time, timed from sending to reading the answer"
)


def request_bodies(frame: pd.DataFrame, columns: list[str], n: int, seed: int) -> list[bytes]:
    """`n` one-record request bodies, the records `request_records` picks (nulls for missing)."""
    plain = frame[columns].astype(object)
    plain = plain.where(plain.notna(), None)
    bodies = []
    for i, record in enumerate(request_records(plain, n, seed)):
        fields = {k: v.item() if hasattr(v, "item") else v for k, v in record.items()}
        bodies.append(json.dumps({"id": f"r-{i}", "record": fields}).encode())
    return bodies


def time_over_http(url: str, bodies: list[bytes], warmup: int = WARMUP) -> tuple[np.ndarray, int]:
    """Seconds per request (after `warmup` untimed ones) and how many were refused (422: a
    record whose costs the policy cannot know); any other answer is an error of the service."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"content-type": "application/json"}

    def post(body: bytes) -> int:
        connection.request("POST", "/decide", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 422):
            raise RuntimeError(f"advisor serve answered {answer.status} to a test record")
        return answer.status

    try:
        for body in bodies[:warmup]:
            post(body)
        clock = time.perf_counter_ns
        out = np.empty(len(bodies), dtype=np.int64)
        refused = 0
        for i, body in enumerate(bodies):
            start = clock()
            refused += post(body) == 422
            out[i] = clock() - start
    finally:
        connection.close()
    return out / 1e9, refused


def start_serving(bundle: Path) -> subprocess.Popen:
    """`advisor serve BUNDLE` on a free localhost port, in its own process."""
    command = [sys.executable, "-m", "advisor.cli", "serve", str(bundle), "--port", "0"]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def served_url(process: subprocess.Popen) -> str:
    """The URL a starting `advisor serve` announces once it is warm and listening."""
    said = []
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()  # type: ignore[union-attr]
        if not line:
            break
        said.append(line.strip())
        found = re.search(r" at (http://\S+)", line)
        if found:
            drain = threading.Thread(target=process.stderr.read, daemon=True)  # type: ignore[union-attr]
            drain.start()
            return found.group(1)
    raise RuntimeError(f"advisor serve did not start: {' '.join(said)[-300:]}")


def stop(process: subprocess.Popen) -> None:
    """End a served process as SIGTERM does (the way a deployment stops it)."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_service(
    latency: Latency,
    policies: Mapping[str, Policy],
    frame: pd.DataFrame,
    seed: int,
    requests: int = REQUESTS,
    rounds: int = LATENCY_ROUNDS,
) -> Latency:
    """`latency` with `service`: every policy's figures over HTTP beside the in-process ones."""
    measured = {}
    with tempfile.TemporaryDirectory(prefix="advisor-serve-") as tmp, ExitStack() as servers:
        for path, text in policy_files({}, policies, None).items():
            target = Path(tmp, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        processes = {name: start_serving(Path(tmp, "policies", name)) for name in policies}
        for process in processes.values():
            servers.callback(stop, process)
        urls = {name: served_url(process) for name, process in processes.items()}
        for name, policy in policies.items():
            columns = list(column_checks([policy]))
            bodies = request_bodies(frame, columns, requests, seed)
            runs = sorted(
                (time_over_http(urls[name], bodies) for _ in range(rounds)),
                key=lambda run: float(np.percentile(run[0], 99)),
            )
            seconds, refused = runs[len(runs) // 2]
            entry = latency_summary(seconds, 0.0, latency.budget_ms)
            entry.pop("rows_per_second")
            entry["requests_per_second"] = float(len(seconds) / max(seconds.sum(), 1e-9))
            entry["refused"] = int(refused)
            entry["version"] = policy.version
            measured[name] = entry
    return replace(
        latency,
        service={"transport": TRANSPORT, "requests": requests, "rounds": rounds, **measured},
    )
