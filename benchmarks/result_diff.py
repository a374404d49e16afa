"""Compare two result.json files field by field: keys only in one of them, and values that
differ, leaving out the fields that never repeat (timings, measured latencies, the manifest,
content-hashed versions). Used to check that a change of the result's form kept its numbers.

    uv run python benchmarks/result_diff.py BEFORE/result.json AFTER/result.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

VOLATILE_SECTIONS = ("timings", "manifest", "latency")
VOLATILE_KEYS = ("version",)
LATENCY_STABLE = ("budget_ms", "requests", "rounds", "test_rows", "throughput_rows", "timing")


def volatile(path: tuple[str, ...]) -> bool:
    """Fields that differ from run to run whatever the code: timings, measured latencies (but
    not the latency stage's settings), the manifest and content-hashed versions."""
    if path and path[-1] in VOLATILE_KEYS:
        return True
    if path[:1] == ("latency",):
        return not (len(path) == 2 and path[1] in LATENCY_STABLE)
    return bool(path) and path[0] in VOLATILE_SECTIONS


def walk(a, b, path=()):
    """(kind, path, before, after) for every difference below `path`."""
    if volatile(path):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() - b.keys():
            yield "only before", (*path, key), a[key], None
        for key in b.keys() - a.keys():
            yield "only after", (*path, key), None, b[key]
        for key in a.keys() & b.keys():
            yield from walk(a[key], b[key], (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from walk(x, y, (*path, str(i)))
    elif not same(a, b):
        yield "changed", path, a, b


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b and (type(a) is type(b) or {type(a), type(b)} <= {int, float})


def main(before: str, after: str) -> int:
    a = json.loads(Path(before).read_text(encoding="utf-8"))
    b = json.loads(Path(after).read_text(encoding="utf-8"))
    found = sorted(walk(a, b), key=lambda d: (d[0], d[1]))
    for kind, path, x, y in found:
        text = ".".join(path)
        if kind == "changed":
            print(f"{kind:12} {text}: {json.dumps(x)[:80]} -> {json.dumps(y)[:80]}")
        else:
            print(f"{kind:12} {text}")
    counts = {k: sum(d[0] == k for d in found) for k in ("only before", "only after", "changed")}
    print(f"{Path(after).parent.name}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
