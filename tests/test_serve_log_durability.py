"""The prediction log under faults: nothing answered goes unlogged.

`advisor serve` is started by each test on a free localhost port (as its own process where a
signal must kill it, in this process where the disk must fail on cue), driven by concurrent
clients, and then killed with SIGKILL, run out of disk or out of queue. Every request answered
200 must have its line (by id), every line must be whole JSON, a restarted service must write a
new file beside the old ones and leave them as they were; under `--on-log-failure refuse` a
decision that cannot be recorded is answered 503, under `degrade` it is answered and counted.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Http, json_records, synthetic_frame

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")

from advisor.cli.main import main
from advisor.core.predictionlog import FIELDS
from advisor.serve import predictionlog
from advisor.serve.app import Served, Service
from advisor.serve.predictionlog import PredictionLog
from advisor.serve.server import describe, running

CLIENTS = 16
RECORDS = json_records(synthetic_frame(200, seed=5)[["age", "income", "plan", "region", "amount"]])


@pytest.fixture(scope="module")
def ml(small_run) -> Path:
    return small_run[1] / "policies" / "ml"


def body(i: int, prefix: str = "r") -> dict:
    return {"id": f"{prefix}-{i}", "record": RECORDS[i % len(RECORDS)]}


def read_log(folder: Path) -> tuple[dict[str, dict], list[bytes]]:
    """Every whole line of the folder's files by id (each line must be JSON with the documented
    fields, each id once), and the unterminated tails a killed writer may leave."""
    lines: dict[str, dict] = {}
    tails = []
    for path in sorted(folder.glob("predictions-*.jsonl")):
        *whole, tail = path.read_bytes().split(b"\n")
        if tail:
            tails.append(tail)
        for raw in whole:
            line = json.loads(raw)
            assert tuple(line) == FIELDS, path.name
            assert line["id"] not in lines, f"{line['id']} logged twice"
            lines[line["id"]] = line
    return lines, tails


def start(bundle: Path, log: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`advisor serve` in its own process on a free port; the process and its URL."""
    command = [sys.executable, "-m", "advisor.cli", "serve", str(bundle), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--log", str(log), *options],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = []
    for line in process.stderr:  # type: ignore[union-attr]
        said.append(line)
        found = re.search(r" at (http://\S+)", line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()  # type: ignore[union-attr]
            return process, found.group(1)
    process.wait(30)
    raise AssertionError(f"advisor serve did not start: {''.join(said)[-500:]}")


class Load:
    """`CLIENTS` threads, each on its own keep-alive connection, posting distinct ids until
    stopped or the service goes away; what was answered, by id."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self.answered: dict[str, str] = {}
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(CLIENTS)
        ]
        for t in self.threads:
            t.start()

    def _client(self, k: int) -> None:
        client = Http(self.url)
        i = k
        while not self.stop.is_set():
            try:
                status, answer = client.post(body(i, self.prefix))
            except (
                OSError,
                http.client.HTTPException,
            ):  # the service is gone: what was in flight stays unanswered
                return
            self.statuses.append(status)
            if status == 200:
                self.answered[answer["id"]] = answer["decision"]
            i += CLIENTS

    def wait_for(self, answers: int, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.answered) < answers:
            assert time.monotonic() < deadline, f"only {len(self.answered)} answers"
            time.sleep(0.005)

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_killed_mid_load_every_answer_is_logged_and_a_restart_adds_a_file(ml: Path, tmp_path: Path):
    folder = tmp_path / "log"
    answered: dict[str, str] = {}
    for sync in ("process", "disk"):  # the second run is also the restart on the same folder
        before = {p.name: p.read_bytes() for p in folder.glob("*")}
        process, url = start(ml, folder, "--log-sync", sync)
        load = Load(url, sync)
        try:
            load.wait_for(300)
        finally:
            process.send_signal(signal.SIGKILL)  # mid-load: every client has a request in flight
            process.wait(30)
            load.join()
        assert process.returncode == -signal.SIGKILL
        after = {p.name: p.read_bytes() for p in folder.glob("*")}
        assert {name: after[name] for name in before} == before  # earlier files untouched
        assert set(after) - set(before), f"the {sync} run wrote no file of its own"
        logged, _ = read_log(folder)  # whole lines only; a killed write may leave a tail
        answered.update(load.answered)
        missing = set(answered) - set(logged)
        assert not missing, f"{len(missing)} of {len(answered)} answers unlogged ({sync})"
        assert all(logged[i]["decision"] == d for i, d in answered.items())
        # beyond the answers: only requests in flight when it died, one per client at most
        extra = set(logged) - set(answered)
        assert len({i for i in extra if i.startswith(f"{sync}-")}) == len(extra) <= CLIENTS
        answered.update({i: logged[i]["decision"] for i in extra})


class Disk:
    """Opens log files that can fail like a full disk (half of a write lands, then ENOSPC),
    block a write until released, and count the writes and their lines."""

    def __init__(self) -> None:
        self.full = False
        self.blocking = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writes: list[int] = []

    def __call__(self, path: Path):
        disk, raw = self, predictionlog._open_new(path)

        class File:
            def write(self, data) -> int:
                if disk.blocking:
                    disk.entered.set()
                    disk.release.wait(30)
                if disk.full:
                    raw.write(bytes(data[: len(data) // 2]))
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.writes.append(bytes(data).count(b"\n"))
                return raw.write(data)

            def truncate(self, size: int) -> int:
                return raw.truncate(size)

            def fileno(self) -> int:
                return raw.fileno()

            def close(self) -> None:
                raw.close()

        return File()


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def burst(url: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """The bodies posted at once, one connection each; the statuses and answers in order."""
    out: list = [None] * len(bodies)

    def one(k: int) -> None:
        out[k] = Http(url, fresh=True).post(bodies[k])

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@pytest.mark.parametrize("on_failure", ["refuse", "degrade"])
def test_a_full_disk_refuses_or_degrades_as_chosen(ml: Path, tmp_path: Path, on_failure: str):
    disk, folder = Disk(), tmp_path / "log"
    log = PredictionLog(folder, on_failure=on_failure, opener=disk, retry_seconds=0.2)
    with running(Service(Served.load(ml), log=log)) as url:
        client = Http(url)
        assert all(s == 200 for s, _ in burst(url, [body(i, "before") for i in range(20)]))
        disk.full = True
        during = burst(url, [body(i, "full") for i in range(20)])
        status, health = client.get("/health")
        _, metrics = client.get("/metrics")
        disk.full = False
        time.sleep(0.25)  # past the retry pause: the next write tries again
        after = burst(url, [body(i, "after") for i in range(20)])
        _, healed = client.get("/health")
    lines, tails = read_log(folder)
    assert not tails and healed["status"] == "ok" and healed["log"]["state"] == "ok"
    assert all(s == 200 for s, _ in after)
    assert {i for i in lines if not i.startswith("full-")} == {
        f"{p}-{i}" for p in ("before", "after") for i in range(20)
    }
    assert not [i for i in lines if i.startswith("full-")]  # the failed writes were cut back
    assert f'advisor_log_info{{on_failure="{on_failure}",sync="process"}} 1.0' in metrics
    if on_failure == "refuse":
        assert all(s == 503 for s, _ in during)
        assert {a["field"] for _, a in during} == {"log"}
        assert "No space left on device" in during[0][1]["message"]
        assert (status, health["status"], health["log"]["state"]) == (503, "refusing", "refusing")
        assert health["log"]["refused"] == 20 and health["log"]["dropped"] == 0
        assert metric(metrics, "advisor_log_refusing") == 1.0
        assert metric(metrics, 'advisor_log_lines_total{outcome="refused"}') == 20
        assert metric(metrics, "advisor_log_degraded") == 0.0
        assert metric(metrics, 'advisor_requests_total{endpoint="/decide",status="503"}') == 20
    else:
        assert all(s == 200 for s, _ in during)
        assert (status, health["status"], health["log"]["state"]) == (200, "degraded", "degraded")
        assert health["log"]["dropped"] == 20 and health["log"]["refused"] == 0
        assert "No space left on device" in health["log"]["error"]
        assert metric(metrics, "advisor_log_degraded") == 1.0
        assert metric(metrics, 'advisor_log_lines_total{outcome="dropped"}') == 20
        assert metric(metrics, "advisor_log_refusing") == 0.0


@pytest.mark.parametrize("on_failure", ["refuse", "degrade"])
def test_a_full_queue_refuses_under_refuse_and_drops_under_degrade(
    ml: Path, tmp_path: Path, on_failure: str
):
    disk, folder = Disk(), tmp_path / "log"
    log = PredictionLog(folder, on_failure=on_failure, opener=disk, queue_lines=3)
    with running(Service(Served.load(ml), log=log)) as url:
        disk.blocking = True
        first = threading.Thread(target=lambda: burst(url, [body(0, "queued")]))
        first.start()
        assert disk.entered.wait(30)  # the writer holds the first line in a write that waits
        queued = threading.Thread(target=lambda: burst(url, [body(1, "queued"), body(2, "queued")]))
        queued.start()
        deadline = time.monotonic() + 30
        while log.status()["queued"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        status, answer = Http(url).post(body(0, "over"))
        health_status, health = Http(url).get("/health")
        disk.blocking = False
        disk.release.set()
        first.join(30)
        queued.join(30)
    lines, _ = read_log(folder)
    assert set(lines) == {"queued-0", "queued-1", "queued-2"}
    if on_failure == "refuse":
        assert (status, answer["field"]) == (503, "log")
        assert "the queue was full" in answer["message"]
        assert (health_status, health["status"]) == (503, "refusing")
        assert (log.refused, log.dropped) == (1, 0)
    else:
        assert status == 200 and answer["id"] == "over-0"
        assert (health_status, health["status"]) == (200, "degraded")
        assert (log.refused, log.dropped) == (0, 1)


def test_requests_that_arrive_together_share_one_write(ml: Path, tmp_path: Path):
    disk = Disk()
    log = PredictionLog(tmp_path / "log", opener=disk)
    with running(Service(Served.load(ml), log=log)) as url:
        disk.blocking = True
        first = threading.Thread(target=lambda: burst(url, [body(0, "g")]))
        first.start()
        assert disk.entered.wait(30)
        rest = threading.Thread(target=lambda: burst(url, [body(i, "g") for i in range(1, 25)]))
        rest.start()
        deadline = time.monotonic() + 30
        while log.status()["queued"] < 25:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        disk.blocking = False
        disk.release.set()
        first.join(30)
        rest.join(30)
    assert disk.writes == [1, 24]  # the 24 waiting requests: one write
    assert len(read_log(tmp_path / "log")[0]) == 25


def test_disk_mode_answers_only_after_the_fsync_of_its_line(ml: Path, tmp_path: Path, monkeypatch):
    synced: list[tuple[bool, int]] = []
    fsync = os.fsync

    def recording(fd: int) -> None:
        fsync(fd)
        info = os.fstat(fd)
        synced.append((stat.S_ISDIR(info.st_mode), info.st_size))

    monkeypatch.setattr(predictionlog.os, "fsync", recording)
    folder = tmp_path / "log"
    log = PredictionLog(folder, sync="disk", max_bytes=2000)
    with running(Service(Served.load(ml), log=log)) as url:
        client = Http(url)
        for i in range(12):
            assert client.post(body(i, "d"))[0] == 200
            path = folder / log.status()["file"]
            assert f'"d-{i}"' in path.read_text()
            files = [size for is_dir, size in synced if not is_dir]
            assert files[-1] == path.stat().st_size  # the last fsync holds the answered line
    files = sorted(folder.glob("predictions-*.jsonl"))
    assert len(files) > 1  # rotated, and each new file's folder entry was fsynced too
    assert sum(is_dir for is_dir, _ in synced) == len(files)


def test_the_log_options_need_a_log_and_the_start_up_message_says_the_modes(
    ml: Path, tmp_path: Path
):
    for option in (["--log-sync", "disk"], ["--on-log-failure", "degrade"]):
        done = CliRunner().invoke(main, ["serve", str(ml), *option])
        assert done.exit_code == 2
        assert done.output.strip() == "advisor: error: --log-sync and --on-log-failure need --log"
    said = {
        (sync, on_failure): describe(
            Service(Served.load(ml), log=PredictionLog(tmp_path, sync=sync, on_failure=on_failure)),
            "http://127.0.0.1:1",
        ).splitlines()[-1]
        for sync, on_failure in [("process", "refuse"), ("disk", "degrade"), ("async", "refuse")]
    }
    assert (
        "written before each answer; a decision it cannot record is refused (503)"
        in said[("process", "refuse")]
    )
    assert (
        "before each answer, fsynced; a decision it cannot record is answered"
        in said[("disk", "degrade")]
    )
    assert "written after each answer" in said[("async", "refuse")]


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 64 KiB tmpfs mounted for the test (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:100]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("on_failure", ["refuse", "degrade"])
def test_a_real_disk_that_fills_up_and_frees(ml: Path, tiny_disk: Path, on_failure: str):
    filler = tiny_disk / "filler"
    filler.write_bytes(b"x" * 48 * 1024)  # about 16 KiB left: some 60 lines
    folder = tiny_disk / "log"
    log = PredictionLog(folder, on_failure=on_failure, retry_seconds=0.2)
    sent: list[tuple[str, int]] = []
    with running(Service(Served.load(ml), log=log)) as url:
        client = Http(url)
        for round_ in range(40):
            bodies = [body(i, f"fill{round_}") for i in range(CLIENTS)]
            sent += [(b["id"], s) for b, (s, _) in zip(bodies, burst(url, bodies), strict=True)]
            health_status, health = client.get("/health")
            if health["log"]["state"] != "ok":
                break
        filler.unlink()
        time.sleep(0.25)  # past the retry pause
        after = [client.post(body(i, "after")) for i in range(20)]
        _, healed = client.get("/health")
        client.close()
    assert "No space left on device" in health["log"]["error"]
    assert all(s == 200 for s, _ in after) and healed["log"]["state"] == "ok"
    lines, tails = read_log(folder)
    assert not tails
    answered = {i for i, s in sent if s == 200}
    if on_failure == "refuse":
        assert (health_status, health["status"]) == (503, "refusing")
        refused = {i for i, s in sent if s == 503}
        assert refused and answered | refused == {i for i, _ in sent}
        assert answered <= set(lines) and not refused & set(lines)
        assert (log.refused, log.dropped) == (len(refused), 0)
    else:
        assert (health_status, health["status"]) == (200, "degraded")
        assert answered == {i for i, _ in sent}
        assert log.dropped > 0 and log.written + log.dropped == len(sent) + 20
        assert log.refused == 0
    assert log.written == len(lines) and {f"after-{i}" for i in range(20)} <= set(lines)


class ThreadNoting:
    """Opens log files whose writes note the thread that made them; `slow` makes the next
    write take `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.threads: list[str] = []
        self.slow, self.seconds = False, seconds

    def __call__(self, path: Path):
        disk, raw = self, predictionlog._open_new(path)

        class File:
            def write(self, data) -> int:
                disk.threads.append(threading.current_thread().name)
                if disk.slow:
                    disk.slow = False
                    time.sleep(disk.seconds)
                return raw.write(data)

            def truncate(self, size: int) -> int:
                return raw.truncate(size)

            def fileno(self) -> int:
                return raw.fileno()

            def close(self) -> None:
                raw.close()

        return File()


def line(i: int) -> dict:
    return {"ts": 1.7e9 + i, "id": f"q-{i}", "unit": f"q-{i}", "arm": "control", "policy": "ml",
            "model_version": "ml-0", "decision": "skip", "record": {"age": i}, "latency_ms": 1.0}  # fmt: skip


def on_own_loop(requests) -> list[bool]:
    """Run a coroutine on a fresh event loop in a thread named "event-loop", as the service's
    loop runs (and whatever loop an earlier test left in this thread stays out of it)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(requests())), name="event-loop")
    thread.start()
    thread.join()
    return out[0]


def test_a_calm_disk_lets_a_request_write_its_own_line_and_a_slow_write_hands_over_for_a_while(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(predictionlog, "SLOW_WRITE_SECONDS", 0.5)  # slow only when made slow
    monkeypatch.setattr(predictionlog, "HELD_SECONDS", 10.0)
    monkeypatch.setattr(predictionlog, "CALM_SECONDS", 2.0)
    disk = ThreadNoting(0.6)
    log = PredictionLog(tmp_path, opener=disk).start()
    here, writer = "event-loop", "prediction-log"

    def answered(first: int, n: int) -> list[bool]:
        async def requests() -> list[bool]:
            return [await log.record([line(i)]) for i in range(first, first + n)]

        return on_own_loop(requests)

    assert all(answered(0, 3))
    assert disk.threads == [writer, here, here]  # the writer makes the file, then requests write
    disk.slow = True
    assert all(answered(3, 4))  # a slow write here: the writer takes the next ones ...
    assert disk.threads[3:] == [here, writer, writer, writer]
    time.sleep(2.1)
    assert all(answered(7, 2))  # ... until CALM_SECONDS have passed without a slow write
    assert disk.threads[7:] == [here, here]
    log.close()
    ids = [json.loads(x)["id"] for f in sorted(tmp_path.glob("*.jsonl")) for x in f.open()]
    assert ids == [f"q-{i}" for i in range(9)] and log.written == len(ids)


def test_writes_each_quick_that_together_hold_the_loop_too_long_hand_over(
    tmp_path: Path, monkeypatch
):
    """No single write is a stall, but the requests' own writes add up past `HELD_SECONDS`
    within the window: the next requests hand their lines to the writer (group commit keeps
    the throughput a disk of steadily slowish writes would cap)."""
    monkeypatch.setattr(predictionlog, "SLOW_WRITE_SECONDS", 0.5)
    monkeypatch.setattr(predictionlog, "HELD_SECONDS", 0.02)
    monkeypatch.setattr(predictionlog, "HELD_WINDOW_SECONDS", 60.0)
    disk = ThreadNoting(0.006)
    log = PredictionLog(tmp_path, opener=disk).start()

    async def requests() -> list[bool]:
        answers = []
        for i in range(8):
            disk.slow = True  # every write takes at least 6 ms: four of them pass 20 ms
            answers.append(await log.record([line(i)]))
        return answers

    assert all(on_own_loop(requests))
    log.close()
    here, writer = "event-loop", "prediction-log"
    assert disk.threads[:5] == [writer, here, here, here, here]
    assert set(disk.threads[5:]) == {writer}
    assert log.written == 8


def test_disk_mode_always_writes_from_the_writer_thread(tmp_path: Path):
    disk = ThreadNoting(0.0)
    log = PredictionLog(tmp_path, sync="disk", opener=disk).start()

    async def requests() -> list[bool]:
        return [await log.record([line(i)]) for i in range(11)]

    assert all(on_own_loop(requests))
    log.close()
    assert set(disk.threads) == {"prediction-log"}


def test_after_a_slow_write_a_stuck_one_holds_the_requests_waiting_for_it_not_the_event_loop(
    tmp_path: Path, monkeypatch
):
    """Once writes have been slow (here: every write counts as slow), a write that gets stuck
    in the disk holds only the request whose line it carries: the event loop runs on, later
    requests queue and share one write once it returns, and each answers only after its own
    line is written."""
    monkeypatch.setattr(predictionlog, "SLOW_WRITE_SECONDS", 0.0)
    disk = Disk()
    log = PredictionLog(tmp_path, opener=disk).start()
    rescue = threading.Timer(10, disk.release.set)  # a loop stuck in the write gets out

    async def requests():
        quick = [await log.record([line(i)]) for i in range(16)]
        disk.blocking = True
        rescue.start()
        stuck = asyncio.ensure_future(log.record([line(100)]))
        while not disk.entered.is_set():
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(log.record([line(200 + i)])) for i in range(5)]
        for _ in range(50):  # the loop keeps turning while the write is stuck
            await asyncio.sleep(0)
        while log.status()["queued"] < 6 and not disk.release.is_set():
            await asyncio.sleep(0.001)
        held = (disk.release.is_set(), stuck.done(), [f.done() for f in later])
        disk.blocking = False
        disk.release.set()
        return quick, held, await stuck, await asyncio.gather(*later)

    quick, held, stuck, later = on_own_loop(requests)
    rescue.cancel()
    log.close()
    assert all(quick) and stuck and all(later)
    assert held == (False, False, [False] * 5)  # seen from the loop while the write was stuck
    assert disk.writes[-2:] == [1, 5]  # the stuck line, then the five queued behind it at once
    lines, tails = read_log(tmp_path)
    assert not tails and len(lines) == 16 + 6 == log.written
