"""`advisor serve` under load: open-loop requests at fixed rates against the real command on
localhost (target: 500 requests/s with p99 under 20 ms and no errors for a bundled ML bundle).

The service runs as its own process (`advisor serve BUNDLE --port P -q`, one uvicorn worker,
with `--log` to a temporary folder unless `--no-log`). An aiohttp client sends one-record
`POST /decide` requests on a fixed schedule, request i at t0 + i / rate, whatever the answers
before it: a slow answer does not slow the sending (open loop), and each latency is measured
from the request's scheduled time, so time spent queueing in the client or the server counts.
The records are the case's test rows in a seeded order, missing values included. Per rate it
prints p50, p99, p99.9 and the maximum in milliseconds, the error rate (any status but 200, a
timeout or a refused connection), the rate achieved, the service's CPU seconds per request and
the load average (the machine has 2 cores shared with other work: the client runs on them too).
Last, the highest rate held: no error and p99 under the case's latency budget (and under 20 ms).

    uv run --all-extras python benchmarks/serve_load.py [--case credit-scoring]
        [--bundle PATH] [--rates 100,500,1000] [--seconds 30] [--no-log] [--reasons K]

`--reasons 3` asks every request for three reasons (exact TreeSHAP on the one record).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 20.0
TIMEOUT_SECONDS = 5.0
START_SECONDS = 180.0  # a loaded shared machine can take a minute to import the service


def ml_bundle(case: str, tmp: Path) -> Path:
    """The case's ML bundle, from a fresh analysis into `tmp`."""
    print(f"Analysing {case} to get its ML bundle ...", flush=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "advisor.cli", "analyze"),
            *(str(ROOT / "datasets" / f"{case}.yaml"), "--out", str(tmp / "runs"), "-q"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return tmp / "runs" / case / "policies" / "ml"


def request_bodies(case: str, n: int, columns: list[str], reasons: int = 0) -> list[bytes]:
    """`n` one-record request bodies from the case's test rows (seeded order, nulls kept),
    asking for `reasons` reasons each when given."""
    from advisor.analysis.latency import request_records
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset

    c = load_case(ROOT / "datasets" / f"{case}.yaml")
    test = split_dataset(load_dataset(c), c.seed).test.frame[columns]
    test = test.astype(object).where(test.notna(), None)
    bodies = []
    for i, record in enumerate(request_records(test, n, seed=0)):
        plain = {k: v.item() if hasattr(v, "item") else v for k, v in record.items()}
        body = {"id": f"r-{i}", "record": plain, **({"reasons": reasons} if reasons else {})}
        bodies.append(json.dumps(body).encode())
    return bodies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(url: str, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Send `rate * seconds` requests open-loop; latencies from each scheduled time, the
    service's own `latency_ms`, and how late the client sent (its own lag on a busy machine)."""
    import aiohttp

    n = int(rate * seconds)
    latency, inside, late = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    errors = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    ) as session:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            late[i] = time.perf_counter() - due
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    body = await r.read()
                    ok = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latency[i] = time.perf_counter() - due
                inside[i] = json.loads(body)["latency_ms"]
            else:
                errors += 1

        loop = asyncio.get_running_loop()
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(loop.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ms = latency[np.isfinite(latency)] * 1000
    p50, p99, p999 = np.percentile(ms, [50, 99, 99.9]) if len(ms) else (np.nan,) * 3
    return {
        "sent": n,
        "errors": errors,
        "achieved": n / elapsed,
        "p50": p50,
        "p99": p99,
        "p999": p999,
        "max": float(ms.max()) if len(ms) else np.nan,
        "inside_p99": float(np.nanpercentile(inside, 99)) if len(ms) else np.nan,
        "late_p99": float(np.percentile(late, 99) * 1000),
    }


def wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"advisor serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"advisor serve did not start within {START_SECONDS:g} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="credit-scoring")
    parser.add_argument("--bundle", type=Path, help="An ML bundle (default: analyse the case).")
    parser.add_argument("--rates", default="100,500,1000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-log", action="store_true", help="Serve without the prediction log.")
    parser.add_argument("--reasons", type=int, default=0, help="Ask each request for K reasons.")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]

    import advisor
    from advisor.core.case import load_case

    budget = load_case(ROOT / "datasets" / f"{args.case}.yaml").decision.latency_budget_ms
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bundle = args.bundle or ml_bundle(args.case, tmp)
        policy = advisor.load_policy(bundle)
        bodies = request_bodies(
            args.case, 5000, list(dict.fromkeys(policy.input_columns())), args.reasons
        )
        port = free_port()
        command = [sys.executable, "-m", "advisor.cli", "serve", str(bundle), "--port", str(port)]
        command += [] if args.no_log else ["--log", str(tmp / "log")]
        server = subprocess.Popen([*command, "-q"])
        base = f"http://127.0.0.1:{port}"
        sent = 0
        try:
            wait_ready(base, server)
            print(
                f"{args.case}: policy {policy.name!r} ({policy.version}), budget {budget:g} ms, "
                f"{'no log' if args.no_log else 'prediction log on'}, {args.seconds:g} s per rate, "
                f"{os.cpu_count()} CPUs"
            )
            gc.collect()
            gc.freeze()  # the client's own full collections would count as service latency
            run(drive(f"{base}/decide", bodies, 50, 2))  # warm-up, not reported
            sent += 100
            print(
                f"{'rate/s':>7} {'achieved':>9} {'p50 ms':>7} {'p99 ms':>8} {'p99.9 ms':>9} "
                f"{'max ms':>8} {'errors':>7} {'in-service p99':>14} {'client late p99':>15} "
                f"{'CPU ms/req':>10}  load average"
            )
            limit = min(budget, TARGET_MS)
            held = []
            for rate in rates:
                cpu0 = cpu_seconds(server.pid)
                r = run(drive(f"{base}/decide", bodies, rate, args.seconds))
                sent += r["sent"]
                cpu = (cpu_seconds(server.pid) - cpu0) / r["sent"] * 1000
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                error_rate = r["errors"] / r["sent"]
                print(
                    f"{rate:>7g} {r['achieved']:>9.1f} {r['p50']:>7.2f} {r['p99']:>8.2f} "
                    f"{r['p999']:>9.2f} {r['max']:>8.1f} {error_rate:>7.2%} "
                    f"{r['inside_p99']:>14.2f} {r['late_p99']:>15.2f} {cpu:>10.2f}  {load}",
                    flush=True,
                )
                if r["errors"] == 0 and r["p99"] < limit:
                    held.append(rate)
            print(
                f"Highest rate held (no error, p99 under {limit:g} ms): "
                + (f"{max(held):g} requests/s" if held else "none of the rates")
            )
            if not args.no_log:
                with urllib.request.urlopen(f"{base}/health") as h:
                    dropped = json.load(h)["log"]["dropped"]
        finally:
            server.terminate()
            server.wait(30)
        if not args.no_log:
            lines = sum(p.read_bytes().count(b"\n") for p in (tmp / "log").glob("*.jsonl"))
            print(
                f"Prediction log: {lines:,} lines for {sent:,} requests sent (a request the client "
                f"gave up on may still be answered and logged), {dropped:,} dropped"
            )


def run(coroutine):
    """Run on uvloop when it is installed (it comes with the serve extra): a lighter client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    main()
