"""The prediction log: one JSON line per decision, written by a thread off the request path.

How a line reaches the file depends on `sync`:

- `process` (the default): the request encodes its lines. While the disk is calm, the writer
  is idle and the file has room, the request writes them itself with one call to the operating
  system: a write into the OS's cache takes microseconds, and a hand-over to a thread costs the
  service CPU on every request (0.15 to 0.3 ms, which at 1,000 requests/s on two cores is more
  than the machine has). The disk stops being calm when one write takes `SLOW_WRITE_SECONDS`
  or more, or when the requests' own writes have held the event loop for `HELD_SECONDS` within
  `HELD_WINDOW_SECONDS`; for `CALM_SECONDS` after that, requests hand their lines to the writer
  thread, which takes everything queued (requests that arrive together share one write: group
  commit), writes it with one call and tells the waiting requests: a request whose writer was
  idle waits on its own thread, without the interpreter's lock, for at most
  `HANDOVER_SECONDS` (the writer runs at once and answers through a lock), then, like one that
  found the writer busy, on a future, while the event loop serves other requests. So once the
  disk has stalled, it holds only the requests waiting for it, for as long as it keeps being
  slow and `CALM_SECONDS` after; the write that shows the stall, made from the event loop,
  holds the loop until it returns. A line is in the OS before its answer leaves: a killed
  process loses no answered decision (the OS writes its cache to disk on its own).
- `disk`: as `process`, and each group is fsynced (a new file's folder entry too) before the
  answers: a crash of the machine loses no answered decision either.
- `async`: the line is queued after the answer has gone and the writer wakes every
  `flush_seconds`; a killed process loses what was answered in its last moments.

When lines cannot be written (a write fails: disk full, folder gone, no permission; or the queue
holds `queue_lines` lines already), `on_failure` decides: `refuse` (the default) refuses the
decision (the service answers 503: no decision without its record), `degrade` answers anyway and
counts the line as dropped. A failed write is cut back to the file's last whole line and marks
the log failing; until `retry_seconds` have passed, lines are refused or dropped without a try,
then the next write tries again and a success clears the mark. Lines of one request stay in one
write and one file: a new file is started before a request's lines would take the current one
past `max_bytes` (lines longer than that get a file of their own). New files are created
exclusively, so a restarted process never writes into a file that exists. The format is
described field by field in docs/serving.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from advisor.core.errors import InputError
from advisor.core.predictionlog import FIELDS, FORMAT
from advisor.serve.stalls import Recent

PATTERN = "predictions-*.jsonl"
MAX_FILE_BYTES = 64 * 1024 * 1024
QUEUE_LINES = 20_000
BATCH_LINES = 1_000
FLUSH_SECONDS = 0.05
RETRY_SECONDS = 1.0
DROP_MEMORY_SECONDS = 10.0
SLOW_WRITE_SECONDS = 0.005  # a write this long is a stall ...
HELD_SECONDS = 0.05  # ... and so is this much of the event loop's time spent in writes ...
HELD_WINDOW_SECONDS = 1.0  # ... within this long (5 %),
CALM_SECONDS = 5.0  # after which requests hand their lines to the writer for this long
HANDOVER_SECONDS = 0.0005  # a request waits this long on its thread for an idle writer
SYNC_MODES = ("process", "disk", "async")
ON_FAILURE = ("refuse", "degrade")
FULL = "the queue was full: the disk is slower than the decisions"

Opener = Callable[[Path], BinaryIO]


class Waiter:
    """A request waiting for its lines: on its own thread (`done` is released when they are
    written), or on a future of its event loop; `answer` says whether it may answer."""

    __slots__ = ("answer", "done", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.answer: bool | None = None
        self.done = threading.Lock()
        self.done.acquire()
        self.loop = loop
        self.future: asyncio.Future | None = loop.create_future() if loop else None


Lines = list[Mapping] | bytes  # a request's entries, or their lines already encoded


def _exclusive(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_EXCL, 0o666)


def _open_new(path: Path) -> BinaryIO:
    """A new file for appending, unbuffered (each write goes to the OS); FileExistsError when
    the name is taken."""
    return open(path, "ab", buffering=0, opener=_exclusive)


def timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`: 2024-05-01T12:00:00.123456Z."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def log_line(entry: Mapping) -> bytes:
    """One entry as a JSON line, fields in the documented order, `ts` as ISO 8601 UTC."""
    fields = {name: entry.get(name) for name in FIELDS}
    fields["format"] = FORMAT
    if entry.get("reasons") is not None:  # only when the request asked for reasons
        fields["reasons"] = entry["reasons"]
    fields["ts"] = timestamp(entry["ts"])
    text = json.dumps(fields, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _encoded(entries: list[Mapping]) -> bytes:
    return b"".join(log_line(e) for e in entries)


def _settle(futures: list[asyncio.Future], answer: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(answer)


class PredictionLog:
    """JSON Lines files `predictions-<UTC start>-<pid>-<n>.jsonl` in a folder, rotated by size."""

    def __init__(
        self,
        folder: str | Path,
        *,
        sync: str = "process",
        on_failure: str = "refuse",
        max_bytes: int = MAX_FILE_BYTES,
        queue_lines: int = QUEUE_LINES,
        retry_seconds: float = RETRY_SECONDS,
        flush_seconds: float = FLUSH_SECONDS,
        opener: Opener | None = None,
    ) -> None:
        self.folder = Path(folder)
        if sync not in SYNC_MODES:
            raise InputError(f"must be one of {', '.join(SYNC_MODES)}", where="--log-sync")
        if on_failure not in ON_FAILURE:
            raise InputError(f"must be one of {', '.join(ON_FAILURE)}", where="--on-log-failure")
        if max_bytes < 1:
            raise InputError("the log's file size must be at least one byte", where="--log")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the log folder: {exc.strerror or exc}", where=str(folder)
            ) from None
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise InputError("cannot write into the log folder", where=str(folder))
        self.sync, self.on_failure = sync, on_failure
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self.flush_seconds = flush_seconds
        self._open = opener or _open_new
        self._pending: deque[tuple[Lines, int, Waiter | None]] = deque()
        self._capacity = queue_lines
        self._queued = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._io = threading.Lock()  # held by the writer while it writes
        self._calm_at = 0.0  # requests write their own lines from then on (monotonic time)
        self._held = 0.0  # seconds the requests' own writes held the loop since `_held_from`
        self._held_from = 0.0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._sequence = 0
        self._retry_at = 0.0
        self._failing = False
        self._overflowed_at = float("-inf")
        self.written = 0
        self.dropped = 0
        self.refused = 0
        self.error: str | None = None
        # how long each write (and fsync) took, by who wrote: a request or the writer thread
        self.write_times = {"request": Recent(), "writer": Recent()}
        self.observe_write: Callable[[str, float], None] = lambda by, seconds: None

    @property
    def waits(self) -> bool:
        """Whether a request waits for its lines to be written before it answers."""
        return self.sync != "async"

    @property
    def refuses(self) -> bool:
        return self.on_failure == "refuse"

    def start(self) -> PredictionLog:
        self._thread.start()
        return self

    def put(self, entry: Mapping) -> None:
        """Queue one decision's line without waiting for it (it has been answered already): a
        full queue, or a write failing, drops and counts it."""
        if self._enqueue([entry], 1, None) and self.waits:
            self._wake.set()

    def accepting(self, lines: int = 1) -> bool:
        """Whether a decision of `lines` lines may be answered before its lines are queued (the
        `async` mode): always under `degrade`; under `refuse`, unless writes are failing or the
        queue has no room (such a decision is counted as refused)."""
        if not self.refuses:
            return True
        with self._lock:
            blocked = self._blocked(lines)
            if blocked is not None:
                self._lose(lines, True, blocked or None)
            return blocked is None

    async def record(self, entries: list[Mapping]) -> bool:
        """Hand a decision's lines to the writer and wait until they are written (and fsynced
        under `disk`): True when the decision may be answered (its lines are written, or they
        could not be and the log degrades), False when it must be refused. Under `process`, a
        calm disk lets the request write them itself; when the writer takes them and is idle,
        the first `HANDOVER_SECONDS` of the wait hold the calling thread (not the interpreter's
        lock); the rest is awaited."""
        try:
            data = _encoded(entries)
        except (TypeError, ValueError) as exc:  # not JSON: that request's fault alone
            with self._lock:
                self._lose(len(entries), True, f"not a log line: {exc}")
            return not self.refuses
        written = self._write_here(data, len(entries))
        if written is not None:
            return written
        loop = asyncio.get_running_loop()
        here = self.sync == "process" and not self._pending and not self._io.locked()
        waiter = Waiter(None if here else loop)
        if not self._enqueue(data, len(entries), waiter):
            return not self.refuses
        if not self._wake.is_set():
            self._wake.set()
        if here:
            if waiter.done.acquire(timeout=HANDOVER_SECONDS):
                return bool(waiter.answer)
            with self._lock:  # not written yet: from now on the writer sets a future
                if waiter.answer is not None:
                    return waiter.answer
                waiter.loop, waiter.future = loop, loop.create_future()
        return await waiter.future  # type: ignore[misc]

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer and close the file."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def status(self) -> dict:
        """What /health shows: `refusing` (under refuse) or `degraded` (under degrade) while
        writes fail and for `DROP_MEMORY_SECONDS` after the queue overflowed, else ok; the
        modes; lines written, dropped and refused; the last error."""
        with self._lock:
            recent = time.monotonic() - self._overflowed_at < DROP_MEMORY_SECONDS
            trouble = "refusing" if self.refuses else "degraded"
            return {
                "state": trouble if self._failing or recent else "ok",
                "sync": self.sync,
                "on_failure": self.on_failure,
                "folder": str(self.folder),
                "file": self._path.name if self._path else None,
                "written": self.written,
                "dropped": self.dropped,
                "refused": self.refused,
                "queued": self._queued,
                "error": self.error,
            }

    def _write_here(self, data: bytes, count: int) -> bool | None:
        """Under `process`, while the disk is calm, the writer holds and expects nothing and
        the file has room: write a request's lines from the calling thread and say whether it
        may answer (as `record`); None when the writer must take them."""
        if self.sync != "process" or time.monotonic() < self._calm_at:
            return None
        if not self._io.acquire(blocking=False):
            return None
        try:
            with self._lock:
                if self._pending or self._blocked(count) is not None:
                    return None
            if self._file is None or self._size + len(data) > self.max_bytes:
                return None  # a new file is the writer's to make
            outcome = self._write(data, "request")
            with self._lock:
                if outcome is True:
                    self.written += count
                    self._failing = False
                else:
                    self._lose(count, True, outcome or None)
        finally:
            self._io.release()
        return outcome is True or not self.refuses

    def _blocked(self, lines: int) -> str | None:
        """Why `lines` more lines cannot be queued now (`""`: writes are failing), or None."""
        if self._queued + lines > self._capacity:
            self._overflowed_at = time.monotonic()
            return FULL
        if self._failing and time.monotonic() < self._retry_at:
            return ""
        return None

    def _enqueue(self, lines: Lines, count: int, waiter: Waiter | None) -> bool:
        with self._lock:
            blocked = self._blocked(count)
            if blocked is None:
                self._queued += count
                self._pending.append((lines, count, waiter))
                return True
            self._lose(count, waiter is not None, blocked or None)
            return False

    def _lose(self, lines: int, unanswered: bool, reason: str | None) -> None:
        """Count lines that will not be written: refused when their decision is not answered
        yet and the log refuses, else dropped. Called holding the lock."""
        if unanswered and self.refuses:
            self.refused += lines
        else:
            self.dropped += lines
        if reason:
            self.error = reason

    def _run(self) -> None:
        if self.waits:
            while not self._stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                with self._io:
                    self._drain()
        else:
            while not self._stopping.wait(self.flush_seconds):
                with self._io:
                    self._drain()
        with self._io:
            self._drain()
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def _drain(self) -> None:
        """Write everything queued: requests packed into writes of at most `BATCH_LINES` lines
        (a batch request's lines stay in one write) that fit the current file or a new one."""
        with self._lock:
            groups, self._pending = self._pending, deque()
        chunk: list[tuple[int, Waiter | None, bytes]] = []
        size = lines = room = 0
        for entries, count, waiter in groups:
            try:
                data = entries if isinstance(entries, bytes) else _encoded(entries)
            except (TypeError, ValueError) as exc:  # not JSON: that request's fault alone
                self._settle([(count, waiter, b"")], f"not a log line: {exc}")
                continue
            if chunk and (lines + count > BATCH_LINES or size + len(data) > room):
                self._commit(chunk)
                chunk, size, lines = [], 0, 0
            if not chunk:
                room = self._room(len(data))
            chunk.append((count, waiter, data))
            size, lines = size + len(data), lines + count
        if chunk:
            self._commit(chunk)

    def _room(self, first: int) -> int:
        """The bytes a write starting with `first` bytes may take: what the current file has
        left when they fit in it, else a new file's whole size."""
        if self._file is not None and self._size + first <= self.max_bytes:
            return self.max_bytes - self._size
        return self.max_bytes

    def _commit(self, chunk: list[tuple[int, Waiter | None, bytes]]) -> None:
        """One write (and fsync under `disk`) of the chunk's lines, then its requests told."""
        self._settle(chunk, self._write(b"".join(d for _, _, d in chunk), "writer"))

    def _write(self, data: bytes, by: str) -> bool | str | None:
        """Write `data` to the file (starting a new one when it would pass `max_bytes`; fsynced
        under `disk`), holding `_io`: True when written, the error when the write failed, None
        when writes are paused after a failure. Times it: a failed write, a stall or the loop held
        too long makes the following requests hand their lines to the writer for
        `CALM_SECONDS`."""
        if self._failing and time.monotonic() < self._retry_at:
            return None
        started = time.perf_counter()
        try:
            if self._file is None or (self._size and self._size + len(data) > self.max_bytes):
                self._next_file()
            self._write_all(data)
            if self.sync == "disk":
                os.fsync(self._file.fileno())  # type: ignore[union-attr]
        except Exception as exc:  # the writer must outlive any failure
            self._calm_at = time.monotonic() + CALM_SECONDS
            return self._fail(exc)
        self._size += len(data)
        seconds = time.perf_counter() - started
        self.write_times[by].add(seconds)
        self.observe_write(by, seconds)
        if seconds >= SLOW_WRITE_SECONDS or (by == "request" and self._held_too_long(seconds)):
            self._calm_at = time.monotonic() + CALM_SECONDS
        return True

    def _held_too_long(self, seconds: float) -> bool:
        """Add a request's write to the time writes held the event loop in the current window,
        and say whether that passes `HELD_SECONDS` (many writes that are each quick can still
        hold the loop longer than handing them over would cost)."""
        now = time.monotonic()
        if now - self._held_from > HELD_WINDOW_SECONDS:
            self._held_from, self._held = now, 0.0
        self._held += seconds
        return self._held >= HELD_SECONDS

    def _settle(self, chunk, outcome: bool | str | None) -> None:
        """Count the chunk's lines (written when `outcome` is True, else lost, with the error
        when it is text) and wake its waiting requests with whether they may answer."""
        written = outcome is True
        answer = written or not self.refuses
        waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
        with self._lock:
            for count, waiter, _ in chunk:
                self._queued -= count
                if written:
                    self.written += count
                else:
                    self._lose(count, waiter is not None, outcome or None)
                if waiter is not None:
                    waiter.answer = answer
                    if waiter.future is None:
                        waiter.done.release()
                    else:
                        waiting.setdefault(waiter.loop, []).append(waiter.future)
            if written:
                self._failing = False
        for loop, futures in waiting.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, futures, answer)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]  # type: ignore[union-attr]

    def _next_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        start = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for _ in range(100):
            self._sequence += 1
            path = self.folder / f"predictions-{start}-{os.getpid()}-{self._sequence:06d}.jsonl"
            try:
                self._file = self._open(path)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free file name in {self.folder}")
        self._path, self._size = path, 0
        if self.sync == "disk":
            folder = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    def _fail(self, exc: Exception) -> str:
        """Cut the file back to its last whole line (or let it go), mark the log failing until
        `retry_seconds` have passed, and say what failed."""
        if self._file is not None:
            try:
                self._file.truncate(self._size)
            except (OSError, ValueError):
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
        reason = (
            f"{exc.strerror}: {exc.filename}"
            if isinstance(exc, OSError) and exc.strerror and exc.filename
            else (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
        )
        with self._lock:
            self._failing = True
            self._retry_at = time.monotonic() + self.retry_seconds
        return f"write failed: {reason or type(exc).__name__}"
