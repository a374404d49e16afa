"""The bands of expected cost in which a run measures its calibration gap (the analysis
writes them into the bundle, the monitor reads them): which band a decided row falls in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def band_of(bands: Sequence[Mapping], decision: str, expected: np.ndarray) -> np.ndarray:
    """The position in `bands` of each expected cost of a row whose decision was `decision`
    (-1: no band measured for it)."""
    mine = [i for i, b in enumerate(bands) if b["decision"] == decision]
    if not mine:
        return np.full(len(expected), -1)
    lows = np.array([bands[i]["from"] for i in mine[1:]], dtype=float)
    return np.asarray(mine)[np.searchsorted(lows, expected, side="right")]
