"""`advisor serve` under load: open-loop requests at fixed rates against the real command on
localhost, for each way of writing the prediction log (target: 500 requests/s with p99 under
20 ms and no errors for a bundled ML bundle; `--log-sync process` no more than 1 ms above the
asynchronous log in in-service p99 at 1,000 requests/s).

One service per mode runs as its own process (`advisor serve BUNDLE --port P -q`, one uvicorn
worker): `--log-sync async` (the line is queued after the answer), `process` (written to the OS
before it), `disk` (also fsynced before it), each with `--log` to a folder of its own, and `off`
(no log) when asked for. An aiohttp client sends one-record `POST /decide` requests on a fixed
schedule, request i at t0 + i / rate, whatever the answers before it: a slow answer does not
slow the sending (open loop), and each latency is measured from the request's scheduled time, so
time spent queueing in the client or the server counts. The modes take turns at each rate (the
order reversed every other round), so that the neighbours' load falls on all of them alike. The
records are the case's test rows in a seeded order, missing values included.

Per mode and rate it prints p50, p99, p99.9 and the maximum in milliseconds, the error rate (any
status but 200, a timeout or a refused connection), the rate achieved, the in-service p50 and
p99 (the `Server-Timing` header: from the request's arrival in the application to its answer,
the log's write included), how late the client sent, the p99 from the moment the client
actually sent (without the client's own lateness, which on a shared machine can dominate the
tail), the service's CPU seconds per request and
the load average (the machine has 2 cores shared with other work: the client runs on them
too). Beside them, from the service's `/metrics` read right after each run (over its last
15 s, `serve.stalls.WINDOW_SECONDS`): the event loop's lag (p50/p99/max: how late the loop woke
a timer, the time a request can wait unread while the loop is held), the longest pause of the
cycle collector, and the longest log write from a request and from the writer thread. Last, per
rate, round and disk, each mode's in-service and end-to-end p99 (from the schedule and from
the actual send) and loop lag p99 and maximum minus the asynchronous log's, the highest rate
each mode held (no error and p99 under the case's latency budget and 20 ms), and the lines
each log holds against the requests its service answered.

`--busy-disk` runs every rate and mode twice, quiet and then beside a busy disk:
`benchmarks/busy_disk.py`'s process (at nice 10) writing and fsyncing a large file, appending
and fsyncing a small one, and reading a third back from the disk, in the logs' file system,
for the busy turns; its files are removed after them.

    uv run --all-extras python benchmarks/serve_load.py [--case credit-scoring]
        [--bundle PATH] [--rates 500,1000] [--seconds 30] [--modes async,process,disk]
        [--rounds 1] [--log-dir DIR] [--busy-disk] [--reasons K]
        [--treatment BUNDLE [--share 0.5]] [--shadow BUNDLE]

`--reasons 3` asks every request for three reasons (exact TreeSHAP on the one record; issue
28's target: p99 under 20 ms at 200 requests/s). `--treatment` serves an A/B test (every
service runs `--treatment BUNDLE --share S`): both arms' policies decide every unit before the
answer (issue 23's target: p99 under 20 ms at 500 requests/s). `--shadow` adds a shadow policy.
A bundle given by a bare name (`rules`, `expert-rules`, `ml`) is that policy of the analysed
case. Before the load, the decision's own cost per one-record request is timed in this process
with the same bundles (`Decider.decide`, median and p99 of 2,000 calls): the control alone, with
the second arm's decision when a treatment is set, and with the reasons when asked: the
difference is what the second arm (or the reasons) adds to every request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from busy_disk import BusyDisk

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 20.0
TIMEOUT_SECONDS = 5.0
START_SECONDS = 300.0
BUSY_START_SECONDS = 3.0  # the busy disk's read file is written and its churn under way
BUSY_STOP_SECONDS = 10.0  # after it, the disk writes back what it left before a quiet turn


def ml_bundle(case: str, tmp: Path) -> Path:
    """The case's ML bundle, from a fresh analysis into `tmp` (its other policies beside it)."""
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
    service's own time to each answer (`Server-Timing`), and how late the client sent (its own
    lag on a busy machine)."""
    import aiohttp

    n = int(rate * seconds)
    latency, inside, late = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    sent = np.full(n, np.nan)
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
            started = time.perf_counter()
            late[i] = started - due
            try:
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
                    timing = r.headers.get("server-timing", "")
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                done = time.perf_counter()
                latency[i], sent[i] = done - due, done - started
                inside[i] = float(timing.partition("dur=")[2] or "nan")
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
    in50, in99 = np.nanpercentile(inside, [50, 99]) if len(ms) else (np.nan,) * 2
    return {
        "sent": n,
        "errors": errors,
        "achieved": n / elapsed,
        "p50": p50,
        "p99": p99,
        "p999": p999,
        "max": float(ms.max()) if len(ms) else np.nan,
        "inside_p50": float(in50),
        "inside_p99": float(in99),
        "late_p99": float(np.percentile(late, 99) * 1000),
        "sent_p99": float(np.nanpercentile(sent, 99) * 1000) if len(ms) else np.nan,
    }


def stalls(base: str) -> dict[tuple[str, str], float]:
    """The service's recent `..._recent_seconds` gauges from `/metrics`, in milliseconds, keyed
    by (metric, labels): ("lag", "0.99"), ("gc", "1"), ("write request", "1"), ..."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    names = {
        "advisor_event_loop_lag_recent_seconds": "lag",
        "advisor_gc_pause_recent_seconds": "gc",
        "advisor_log_write_recent_seconds": "write",
    }
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name not in names:
            continue
        labels, _, value = rest.rpartition("} ")
        fields = dict(part.split("=", 1) for part in labels.split(","))
        key = " ".join([names[name], *(v.strip('"') for k, v in fields.items() if k == "by")])
        out[key, fields["quantile"].strip('"')] = float(value) * 1000
    return out


def stall_text(s: dict[tuple[str, str], float]) -> str:
    """Loop lag p50/p99/max, the longest GC pause and the longest log writes, in ms."""
    nan = float("nan")

    def get(key: str, q: str) -> float:
        return s.get((key, q), nan)

    lag = "/".join(f"{get('lag', q):.1f}" for q in ("0.5", "0.99", "1"))
    return (
        f"{lag:>19} {get('gc', '1'):>7.1f} "
        f"{get('write request', '1'):>8.2f} {get('write writer', '1'):>8.2f}"
    )


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


MODES = ("off", "async", "process", "disk")


def resolve_bundle(given: str | None, bundle: Path) -> Path | None:
    """A bundle path, or a bare policy name looked up beside the served bundle."""
    if given is None:
        return None
    path = Path(given)
    if "/" not in given and (bundle.parent / given / "bundle.json").is_file():
        return bundle.parent / given
    if not path.exists():
        raise SystemExit(f"no bundle at {given} (nor a policy {given!r} beside {bundle})")
    return path


def decision_cost(bundle: Path, treatment: Path | None, share: float, bodies: list[bytes],
                  reasons: int, n: int = 2000) -> None:  # fmt: skip
    """Print the median and p99 microseconds of `Decider.decide` per one-record request: the
    control alone, with the treatment's second decision, with the reasons."""
    from advisor.serve.app import Served as Loaded
    from advisor.serve.app import Service

    control = Loaded.load(bundle)
    setups = [("control alone", Service(control), 0)]
    if treatment is not None:
        test = Service(control, treatment=Loaded.load(treatment), share=share)
        setups.append((f"A/B test (share {share:g}): both arms decide", test, 0))
    if reasons:
        last = setups[-1]
        setups.append((f"{last[0]}, {reasons} reasons", last[1], reasons))
    for label, service, k in setups:
        requests = [service.reader.read(b) for b in bodies[:n]]
        for r in requests[:50]:
            service.decider.decide(r.items, r.batch, k)
        times = np.empty(len(requests))
        for i, r in enumerate(requests):
            start = time.perf_counter()
            service.decider.decide(r.items, r.batch, k)
            times[i] = time.perf_counter() - start
        p50, p99 = np.percentile(times * 1e6, [50, 99])
        print(f"  decision per request, {label}: median {p50:.0f} us, p99 {p99:.0f} us")
        if label == setups[0][0]:
            base = p50
        else:
            print(f"    {p50 - base:+.0f} us per request (median) over the control alone")


def measure(s: Served, bodies: list[bytes], rate: float, seconds: float, disk: str) -> dict:
    """One run of `s` at `rate`: the client's figures, the service's CPU per request and its
    stalls (`/metrics`), printed as one row."""
    cpu0 = cpu_seconds(s.process.pid)
    r = run(drive(f"{s.base}/decide", bodies, rate, seconds))
    s.sent += r["sent"]
    cpu = (cpu_seconds(s.process.pid) - cpu0) / r["sent"] * 1000
    r["stalls"] = stalls(s.base)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{s.mode:>7} {disk:>5} {rate:>7g} {r['achieved']:>9.1f} {r['p50']:>7.2f} "
        f"{r['p99']:>8.2f} {r['p999']:>9.2f} {r['max']:>8.1f} "
        f"{r['errors'] / r['sent']:>7.2%} {r['inside_p50']:>10.2f} "
        f"{r['inside_p99']:>10.2f} {r['late_p99']:>15.2f} "
        f"{r['sent_p99']:>13.2f} {cpu:>10.2f} "
        f"{stall_text(r['stalls'])}  {load}",
        flush=True,
    )
    return r


def compare(seen: dict[tuple[int, float, str, str], dict]) -> None:
    """Per round, rate and disk, each mode's p99s and loop lag minus the asynchronous log's."""
    nan = float("nan")
    for (round_, rate, disk, mode), r in seen.items():
        if mode in ("async", "off"):
            continue
        a = seen[round_, rate, disk, "async"]
        lag, lag_async = (x["stalls"].get(("lag", "0.99"), nan) for x in (r, a))
        top, top_async = (x["stalls"].get(("lag", "1"), nan) for x in (r, a))
        print(
            f"round {round_ + 1}, {rate:g}/s, {disk} disk: {mode} minus the asynchronous log: "
            f"in-service p99 {r['inside_p99'] - a['inside_p99']:+.2f} ms, end-to-end p99 "
            f"{r['p99'] - a['p99']:+.2f} ms ({r['sent_p99'] - a['sent_p99']:+.2f} ms from the "
            f"actual send), loop lag p99 {lag - lag_async:+.2f} ms (max {top - top_async:+.1f})"
        )


class Served:
    """One `advisor serve` process for a log mode, and what it was sent."""

    def __init__(self, mode: str, bundle: Path, logs: Path, extra: list[str]) -> None:
        self.mode, self.port, self.sent = mode, free_port(), 0
        self.log = None if mode == "off" else logs / mode
        command = [sys.executable, "-m", "advisor.cli", "serve", str(bundle), *extra]
        command += ["--port", str(self.port), "-q"]
        if self.log is not None:
            command += ["--log", str(self.log), "--log-sync", mode]
        self.process = subprocess.Popen(command)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="credit-scoring")
    parser.add_argument("--bundle", type=Path, help="An ML bundle (default: analyse the case).")
    parser.add_argument("--rates", default="500,1000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--modes", default="async,process,disk", help=f"Log modes, of: {', '.join(MODES)}."
    )
    parser.add_argument("--rounds", type=int, default=1, help="Turns of every rate and mode.")
    parser.add_argument(
        "--log-dir", type=Path, help="Where the logs go (default: a temporary folder)."
    )
    parser.add_argument("--reasons", type=int, default=0, help="Ask each request for K reasons.")
    parser.add_argument("--treatment", help="Serve an A/B test with this bundle as treatment.")
    parser.add_argument("--share", type=float, default=0.5, help="Treatment share (0.5).")
    parser.add_argument("--shadow", help="Serve this bundle as a shadow too.")
    parser.add_argument(
        "--busy-disk",
        action="store_true",
        help="Run every rate and mode twice: quiet, then with a busy disk under the logs.",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        parser.error(f"--modes: choose from {', '.join(MODES)}")

    import advisor
    from advisor.core.case import load_case

    budget = load_case(ROOT / "datasets" / f"{args.case}.yaml").decision.latency_budget_ms
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        logs = Path(tempfile.mkdtemp(dir=args.log_dir)) if args.log_dir else tmp / "logs"
        bundle = args.bundle or ml_bundle(args.case, tmp)
        policy = advisor.load_policy(bundle)
        treatment = resolve_bundle(args.treatment, bundle)
        shadow = resolve_bundle(args.shadow, bundle)
        extra: list[str] = []
        columns = list(policy.input_columns())
        for option, other in (("--treatment", treatment), ("--shadow", shadow)):
            if other is not None:
                extra += [option, str(other)]
                columns += advisor.load_policy(other).input_columns()
        if treatment is not None:
            extra += ["--share", f"{args.share:g}"]
        bodies = request_bodies(args.case, 5000, list(dict.fromkeys(columns)), args.reasons)
        print(f"In this process (load average {os.getloadavg()[0]:.2f}):")
        decision_cost(bundle, treatment, args.share, bodies, args.reasons)
        servers = [Served(mode, bundle, logs, extra) for mode in modes]
        try:
            for s in servers:
                wait_ready(s.base, s.process)
            print(
                f"{args.case}: policy {policy.name!r} ({policy.version}), budget {budget:g} ms, "
                f"modes {', '.join(modes)} (logs in {logs}), {args.seconds:g} s per rate and "
                f"mode, {args.rounds} round(s), {os.cpu_count()} CPUs"
                + (f", served with {' '.join(extra)}" if extra else "")
                + (f", {args.reasons} reasons per request" if args.reasons else "")
            )
            gc.collect()
            gc.freeze()  # the client's own full collections would count as service latency
            for s in servers:
                run(drive(f"{s.base}/decide", bodies, 50, 2))  # warm-up, not reported
                s.sent += 100
            print(
                f"{'mode':>7} {'disk':>5} {'rate/s':>7} {'achieved':>9} {'p50 ms':>7} {'p99 ms':>8} "
                f"{'p99.9 ms':>9} {'max ms':>8} {'errors':>7} {'in-svc p50':>10} "
                f"{'in-svc p99':>10} {'client late p99':>15} {'p99 from send':>13} "
                f"{'CPU ms/req':>10} "
                f"{'loop lag p50/99/max':>19} {'GC max':>7} {'write max (req/thread)':>17}  "
                "load average"
            )
            limit = min(budget, TARGET_MS)
            missed: dict[str, set[float]] = {m: set() for m in modes}
            seen: dict[tuple[int, float, str, str], dict] = {}
            disks = ("quiet", "busy") if args.busy_disk else ("quiet",)
            for round_ in range(args.rounds):
                for rate in rates:
                    turn = servers if round_ % 2 == 0 else servers[::-1]
                    for disk in disks:
                        busy = BusyDisk(logs).start() if disk == "busy" else None
                        try:
                            if busy is not None:
                                time.sleep(BUSY_START_SECONDS)
                            for s in turn:
                                r = measure(s, bodies, rate, args.seconds, disk)
                                seen[round_, rate, disk, s.mode] = r
                                if r["errors"] or not r["p99"] < limit:
                                    missed[s.mode].add(rate)
                        finally:
                            if busy is not None:
                                busy.stop()
                                time.sleep(BUSY_STOP_SECONDS)
            if "async" in modes:
                compare(seen)
            for mode in modes:
                held = [rate for rate in rates if rate not in missed[mode]]
                print(
                    f"Highest rate held by {mode} (no error, p99 under {limit:g} ms in every "
                    "round): " + (f"{max(held):g} requests/s" if held else "none of the rates")
                )
            health = {}
            for s in servers:
                if s.log is not None:
                    with urllib.request.urlopen(f"{s.base}/health") as h:
                        health[s.mode] = json.load(h)["log"]
        finally:
            for s in servers:
                s.stop()
            if args.log_dir:
                shutil.rmtree(logs, ignore_errors=True)
        for s in servers:
            if s.log is not None:
                lines = sum(p.read_bytes().count(b"\n") for p in s.log.glob("*.jsonl"))
                h = health[s.mode]
                print(
                    f"Prediction log ({s.mode}): {lines:,} lines for {s.sent:,} requests sent "
                    f"(a request the client gave up on may still be answered and logged), "
                    f"{h['dropped']:,} dropped, {h['refused']:,} refused"
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
