"""What holds the service's event loop: the lag sampler sees a loop held by blocking work, the
recent window forgets what is older than it, and the collector's pauses are timed."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import numpy as np

from advisor.serve.stalls import GCPauses, LoopLag, Recent


def in_own_loop(coroutine_function):
    """Run a coroutine on a fresh event loop in a thread of its own (an earlier test may have
    left a loop set in the main thread)."""
    out = {}

    def target():
        out["value"] = asyncio.run(coroutine_function())

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    return out["value"]


def test_the_lag_sampler_sees_a_loop_held_by_blocking_work():
    async def held() -> tuple[dict, dict]:
        lag = LoopLag(interval=0.005)
        lag.start()
        await asyncio.sleep(0.2)
        free = lag.recent.summary()
        time.sleep(0.15)  # blocking work on the loop: nothing else runs meanwhile
        await asyncio.sleep(0.05)
        await lag.stop()
        return free, lag.recent.summary()

    free, after = in_own_loop(held)
    assert free["count"] >= 10
    assert free["0.5"] < 0.1  # a free loop wakes its timers roughly on time
    assert after["1"] >= 0.14  # the blocked wake is seen, about as late as the block lasted
    assert after["0.5"] < 0.1  # and it is one sample among on-time ones


def test_the_recent_window_forgets_older_values():
    recent = Recent(window=0.1)
    recent.add(5.0)
    time.sleep(0.15)
    recent.add(1.0)
    recent.add(3.0)
    assert sorted(recent.values().tolist()) == [1.0, 3.0]
    s = recent.summary()
    assert s["count"] == 2 and s["1"] == 3.0 and s["0.5"] == 2.0
    assert np.isnan(Recent().summary()["0.99"])


def test_a_full_collection_is_timed_with_its_generation():
    heard = []
    pauses = GCPauses(observe=lambda generation, seconds: heard.append((generation, seconds)))
    pauses.install()
    try:
        junk = [[i] for i in range(200_000)]
        started = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - started
    finally:
        pauses.remove()
    del junk
    full = [s for g, s in heard if g == 2]
    assert full and 0 < full[-1] <= took
    assert pauses.recent.summary()["1"] >= full[-1]
    count = len(heard)
    gc.collect()
    assert len(heard) == count  # removed: no longer called
