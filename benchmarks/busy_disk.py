"""A busy disk beside a service: a separate process that keeps the file system of a folder busy
until stopped, and what that does to a small appending write such as a prediction log line.

`BusyDisk(folder)` starts the process (at nice 10 and without real-time priority, whatever its
parent's, so that it takes the disk rather than the CPU) and removes its files when stopped. It
writes a `WRITE_MB` MiB file over and over in 1 MiB blocks, fsyncing every `SYNC_MB` MiB;
beside it one thread appends 4 KiB blocks to a small file and fsyncs each (a commit of the
file system's journal each time), and another reads a `READ_MB` MiB file, dropped from the page
cache (`posix_fadvise(DONTNEED)`) before each pass so that every pass reads from the disk. As a
script, it times 300-byte appends at 1,000 per second in the folder, quiet and then busy:

    uv run --all-extras python benchmarks/busy_disk.py [--folder DIR] [--seconds 15]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BLOCK = 1024 * 1024
WRITE_MB = 512  # the written file wraps around at this size
SYNC_MB = 32  # fsync after this many MiB written
READ_MB = 256  # the file read back from the disk
NICE = 10  # its CPU priority, whatever the priority of the process that started it


def _churn(folder: str, stop) -> None:
    """Write, fsync and read in `folder` until `stop` is set (the busy process's body)."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # not its parent's real time
    os.setpriority(os.PRIO_PROCESS, 0, NICE)
    block = os.urandom(BLOCK)
    reading = Path(folder) / "busy-disk-read.bin"
    with open(reading, "wb") as f:
        for _ in range(READ_MB):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())

    def read() -> None:
        while not stop.is_set():
            fd = os.open(reading, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                while not stop.is_set() and os.read(fd, BLOCK):
                    pass
            finally:
                os.close(fd)

    def commit() -> None:
        small = Path(folder) / "busy-disk-small.bin"
        fd = os.open(small, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            n = 0
            while not stop.is_set():
                os.write(fd, block[:4096])
                os.fsync(fd)
                n += 1
                if n % 1024 == 0:
                    os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    helpers = [threading.Thread(target=f, daemon=True) for f in (read, commit)]
    for t in helpers:
        t.start()
    fd = os.open(Path(folder) / "busy-disk-write.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        written = 0
        while not stop.is_set():
            os.pwrite(fd, block, (written % WRITE_MB) * BLOCK)
            written += 1
            if written % SYNC_MB == 0:
                os.fsync(fd)
    finally:
        os.close(fd)
    for t in helpers:
        t.join(5)


class BusyDisk:
    """The busy process over `folder`'s file system, started by `start` and ended (its files
    removed) by `stop`; usable as a context manager."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="busy-disk-", dir=folder))
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(target=_churn, args=(str(self.folder), self._stop))

    def start(self) -> BusyDisk:
        self._process.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._process.join(60)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()

    def __enter__(self) -> BusyDisk:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def append_times(folder: Path, seconds: float, rate: float = 1000.0) -> np.ndarray:
    """Seconds taken by each 300-byte append to a new unbuffered file in `folder`, at `rate`."""
    line = b"x" * 299 + b"\n"
    times = []
    path = folder / "append-probe.jsonl"
    with open(path, "ab", buffering=0) as f:
        start = time.perf_counter()
        for i in range(int(seconds * rate)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            f.write(line)
            times.append(time.perf_counter() - began)
    path.unlink()
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    for condition in ("quiet", "busy"):
        if condition == "busy":
            busy = BusyDisk(args.folder).start()
            time.sleep(2)  # its read file written, the churn under way
        try:
            ms = append_times(args.folder, args.seconds) * 1000
        finally:
            if condition == "busy":
                busy.stop()
        p50, p99, p999 = np.percentile(ms, [50, 99, 99.9])
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{condition:>5}: {len(ms)} appends, p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
            f"p99.9 {p999:.2f} ms, max {ms.max():.1f} ms, over 1 ms: {(ms > 1).sum()}, "
            f"load average {load}",
            flush=True,
        )


if __name__ == "__main__":
    main()
