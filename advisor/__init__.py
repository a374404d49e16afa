"""advisor: ship rules, a batch model or a real-time model? Answered with costs and intervals."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# LightGBM's OpenMP threads spin while they wait by default; on a busy laptop that makes
# training hundreds of times slower. Passive waiting costs nothing measurable when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = [
    "Case",
    "CostMatrix",
    "InputError",
    "Result",
    "advise",
    "advise_partitioned",
    "load_case",
    "load_policy",
]

if TYPE_CHECKING:
    from advisor.api import advise, advise_partitioned
    from advisor.artefacts.bundle import load_policy
    from advisor.artefacts.result import Result
    from advisor.core.case import Case, load_case
    from advisor.core.costs import CostMatrix
    from advisor.core.errors import InputError

_LAZY = {
    "Case": "advisor.core.case",
    "load_case": "advisor.core.case",
    "CostMatrix": "advisor.core.costs",
    "InputError": "advisor.core.errors",
    "advise": "advisor.api",
    "advise_partitioned": "advisor.api",
    "load_policy": "advisor.artefacts.bundle",
    "Result": "advisor.artefacts.result",
}


def __getattr__(name: str):
    """Import on first use, so `import advisor` and `advisor --help` stay fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")
