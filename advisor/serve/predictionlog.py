"""The prediction log: one JSON line per decision, written by a thread off the request path.

The request path only appends an entry to a bounded queue and never waits: when the queue is
full the entry is dropped and counted. The writer thread wakes every `flush_seconds` (it is not
woken per entry, so it seldom takes the interpreter from a request), turns what is queued into
JSON lines, writes them with one call per `BATCH_LINES` and moves to a new file when the next
write would take the current one past `max_bytes`. A write that fails (disk full, folder gone, no
permission) drops its lines, counts them, cuts the file back to its last whole line and marks
the log degraded; the writer tries again after `retry_seconds` (lines arriving before then are
dropped and counted), and a write that succeeds clears the mark. The service decides on
regardless. The format is described field by field in docs/serving.md.
"""

from __future__ import annotations

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

PATTERN = "predictions-*.jsonl"
MAX_FILE_BYTES = 64 * 1024 * 1024
QUEUE_LINES = 20_000
BATCH_LINES = 1_000
FLUSH_SECONDS = 0.05
RETRY_SECONDS = 1.0
DROP_MEMORY_SECONDS = 10.0

Opener = Callable[[Path], BinaryIO]


def _open_append(path: Path) -> BinaryIO:
    return open(path, "ab", buffering=0)


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


class PredictionLog:
    """JSON Lines files `predictions-<UTC start>-<pid>-<n>.jsonl` in a folder, rotated by size."""

    def __init__(
        self,
        folder: str | Path,
        *,
        max_bytes: int = MAX_FILE_BYTES,
        queue_lines: int = QUEUE_LINES,
        retry_seconds: float = RETRY_SECONDS,
        flush_seconds: float = FLUSH_SECONDS,
        opener: Opener | None = None,
    ) -> None:
        self.folder = Path(folder)
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
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self.flush_seconds = flush_seconds
        self._open = opener or _open_append
        self._pending: deque = deque()
        self._capacity = queue_lines
        self._stopping = threading.Event()
        self._lock = threading.Lock()
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
        self.error: str | None = None

    def start(self) -> PredictionLog:
        self._thread.start()
        return self

    def put(self, entry: Mapping) -> None:
        """Queue one decision for the writer; never blocks (a full queue drops and counts it)."""
        if len(self._pending) >= self._capacity:
            self._drop(1, "the queue was full: the disk is slower than the decisions")
            self._overflowed_at = time.monotonic()
        else:
            self._pending.append(entry)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer and close the file."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def status(self) -> dict:
        """What /health shows: degraded while writes fail or for `DROP_MEMORY_SECONDS` after the
        queue overflowed, else ok; lines written and dropped; the last error."""
        with self._lock:
            recent = time.monotonic() - self._overflowed_at < DROP_MEMORY_SECONDS
            return {
                "state": "degraded" if self._failing or recent else "ok",
                "folder": str(self.folder),
                "file": self._path.name if self._path else None,
                "written": self.written,
                "dropped": self.dropped,
                "queued": len(self._pending),
                "error": self.error,
            }

    def _drop(self, lines: int, reason: str | None) -> None:
        with self._lock:
            self.dropped += lines
            if reason:
                self.error = reason

    def _run(self) -> None:
        while not self._stopping.wait(self.flush_seconds):
            self._drain()
        self._drain()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()

    def _drain(self) -> None:
        """Write everything queued, `BATCH_LINES` at a time."""
        pending = self._pending
        while pending:
            batch = []
            while pending and len(batch) < BATCH_LINES:
                batch.append(pending.popleft())
            self._write(batch)

    def _write(self, entries: list[Mapping]) -> None:
        """Write the entries' lines, starting a new file before a line that would take the
        current one past `max_bytes` (a line longer than that gets a file of its own)."""
        if self._failing and time.monotonic() < self._retry_at:
            self._drop(len(entries), None)
            return
        done = 0
        try:
            lines = [log_line(e) for e in entries]
            while done < len(lines):
                if self._file is None or (
                    self._size and self._size + len(lines[done]) > self.max_bytes
                ):
                    self._next_file()
                end, size = done, 0
                while end < len(lines) and (
                    end == done or self._size + size + len(lines[end]) <= self.max_bytes
                ):
                    size += len(lines[end])
                    end += 1
                self._write_all(b"".join(lines[done:end]))
                self._size += size
                done = end
        except Exception as exc:  # the writer must outlive any failure: the service decides on
            self._count_written(done)
            self._fail(exc, len(entries) - done)
            return
        self._count_written(done)
        with self._lock:
            self._failing = False

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]  # type: ignore[union-attr]

    def _count_written(self, lines: int) -> None:
        with self._lock:
            self.written += lines

    def _next_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._sequence += 1
        start = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.folder / f"predictions-{start}-{os.getpid()}-{self._sequence:06d}.jsonl"
        self._file = self._open(path)
        self._path, self._size = path, 0

    def _fail(self, exc: Exception, lines: int) -> None:
        """Drop the lines, cut the file back to its last whole line (or let it go), and retry
        after `retry_seconds`."""
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
        self._drop(lines, f"write failed: {reason or type(exc).__name__}")
        with self._lock:
            self._failing = True
        self._retry_at = time.monotonic() + self.retry_seconds
