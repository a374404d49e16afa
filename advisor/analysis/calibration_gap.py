"""The calibration gap: how far a probabilistic policy's realised cost on the test split lies
from the expected cost its own probabilities give the same decisions (realised minus expected,
per decision, with its bootstrap interval).

The monitor compares production with it: realised minus expected cost of the same logged
decisions varies only by the outcomes' noise, not by which inputs arrived, so a change in the
outcomes shows against this gap sooner than against the offline cost; and the estimated cost
before the outcomes arrive is corrected by it (a model that overstates its cost offline
overstates it in production too).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from advisor.core.costs import CostMatrix
from advisor.stats.bootstrap import Resampler, interval
from advisor.stats.interval import Interval

SEED_OFFSET = 17  # its own replicates, so adding it leaves every other interval unchanged


def calibration_gaps(
    realised: Mapping[str, np.ndarray],
    codes: Mapping[str, np.ndarray],
    probas: Mapping[str, np.ndarray],
    costs: CostMatrix,
    frame: pd.DataFrame,
    resampler: Resampler,
) -> dict[str, Interval]:
    """Per probabilistic policy: mean realised minus expected cost of its decisions."""
    names = [n for n in probas if probas[n] is not None and n in realised]
    if not names:
        return {}
    rows = np.arange(len(frame))
    gaps = {}
    for name in names:
        expected = costs.expected_costs(np.asarray(probas[name], dtype=float), frame)
        gaps[name] = realised[name] - expected[rows, codes[name]]
    reps = resampler.means(np.column_stack([gaps[n] for n in names]), SEED_OFFSET)
    return {n: interval(float(gaps[n].mean()), reps[:, i]) for i, n in enumerate(names)}
