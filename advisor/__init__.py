"""advisor: ship rules, a batch model or a real-time model? Answered with costs and intervals."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# LightGBM's OpenMP threads spin while they wait by default; on a busy laptop that makes
# training hundreds of times slower. Passive waiting costs nothing measurable when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["Case", "CostMatrix", "InputError", "Result", "advise", "load_case", "load_policy"]

if TYPE_CHECKING:
    from advisor.bundle import load_policy
    from advisor.case import Case, load_case
    from advisor.costs import CostMatrix
    from advisor.errors import InputError
    from advisor.pipeline import advise
    from advisor.result import Result

_LAZY = {
    "Case": "advisor.case",
    "load_case": "advisor.case",
    "CostMatrix": "advisor.costs",
    "InputError": "advisor.errors",
    "advise": "advisor.pipeline",
    "load_policy": "advisor.bundle",
    "Result": "advisor.result",
}


def __getattr__(name: str):
    """Import on first use, so `import advisor` and `advisor --help` stay fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")
