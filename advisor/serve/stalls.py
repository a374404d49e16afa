"""What holds the service's event loop, measured while it serves: the loop's lag, the garbage
collector's pauses and the prediction log's writes.

Time in the application (`latency_ms`, `Server-Timing`) starts when a request is read, so it
cannot see the loop being held by other work while requests wait in the socket to be read; the
client sees it. `LoopLag` is a task that asks the loop to wake it every `interval` seconds and
records how late it woke: a loop that is held for 30 ms shows a wake 30 ms late. `GCPauses`
times each collection (`gc.callbacks`); the log times each write (`Recent` per writer). Each
is kept two ways: a Prometheus histogram since the start, and the p50, p99 and maximum over the
last `WINDOW_SECONDS`, which is what `/metrics` shows as `..._recent_seconds{quantile}` and
what `benchmarks/serve_load.py` prints beside the client's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections import deque

import numpy as np

WINDOW_SECONDS = 15.0
LAG_INTERVAL = 0.01  # the lag sampler wakes 100 times a second
QUANTILES = (("0.5", 50.0), ("0.99", 99.0), ("1", 100.0))


class Recent:
    """Values seen over the last `window` seconds (at most `capacity` of them), summarised as
    p50, p99 and maximum; `add` may be called from any thread."""

    def __init__(self, window: float = WINDOW_SECONDS, capacity: int = 65_536) -> None:
        self.window = window
        self._seen: deque[tuple[float, float]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._seen.append((time.monotonic(), value))

    def values(self) -> np.ndarray:
        """The values of the last `window` seconds."""
        since = time.monotonic() - self.window
        with self._lock:
            seen = list(self._seen)
        return np.array([v for t, v in seen if t >= since], dtype=float)

    def summary(self) -> dict[str, float]:
        """`{"count", "0.5", "0.99", "1"}` over the window (quantiles NaN when nothing was
        seen)."""
        values = self.values()
        out: dict[str, float] = {"count": float(len(values))}
        for name, q in QUANTILES:
            out[name] = float(np.percentile(values, q)) if len(values) else float("nan")
        return out


class LoopLag:
    """A task on the service's event loop that wakes every `interval` seconds and records how
    late it woke (`observe` hears each lag in seconds too)."""

    def __init__(self, interval: float = LAG_INTERVAL, observe=None) -> None:
        self.interval = interval
        self.recent = Recent(capacity=int(4 * WINDOW_SECONDS / interval))
        self.observe = observe or (lambda seconds: None)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sample(self) -> None:
        clock = time.perf_counter
        while True:
            due = clock() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(clock() - due, 0.0)
            self.recent.add(lag)
            self.observe(lag)


class GCPauses:
    """The cycle collector's pauses, timed through `gc.callbacks` while installed."""

    def __init__(self, observe=None) -> None:
        self.recent = Recent()
        self.observe = observe or (lambda generation, seconds: None)
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            seconds = time.perf_counter() - self._started
            self.recent.add(seconds)
            self.observe(info["generation"], seconds)

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)
