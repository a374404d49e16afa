"""The rows the A/B plan reads: the control's and the ML treatment's per-row costs, where they
decide differently, and the model's expected cost of each arm's decision (the covariate of the
regression-adjusted readout).

When the run refitted (`advisor.analysis.crossfit`) these are the pooled out-of-fold decisions:
every labelled row scored by a refit that never learnt from it, each refit's control being the
rule list that refit chose. The plan's variances, triggered share and covariate then describe
the whole fitting procedure, as the pooled costs the recommendation weighs do. Without refits
they are the test split's, as scored once by `advisor.analysis.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from advisor.analysis.roles import Roles
from advisor.policies.base import Batch

TEST_SPLIT = "test split"
# columns of one refit's arm block
CONTROL, TREATMENT, CONTROL_CODE, TREATMENT_CODE, EXPECTED_CONTROL, EXPECTED_TREATMENT = range(6)
WIDTH = 6


class MeansResampler(Protocol):
    """Anything that gives bootstrap replicates of column means (`Resampler` and the like)."""

    def means(self, values: np.ndarray, seed_offset: int = 0) -> np.ndarray: ...


@dataclass(frozen=True)
class Arms:
    """Per-row figures of the A/B plan's two arms on the same rows, and how to resample them."""

    rows: str  # "test split", or "out-of-fold (cross-fitting)" / "(rolling-origin backtest)"
    control: np.ndarray
    treatment: np.ndarray
    disagree: np.ndarray
    expected: tuple[np.ndarray, np.ndarray] | None
    resampler: MeansResampler


def arm_block(roles: Roles, batches: Mapping[str, Batch], each: np.ndarray) -> np.ndarray | None:
    """One refit's scored rows x WIDTH: the control's and the treatment's realised cost and
    decision code, and the model's expected cost of each one's decision (NaN without a model);
    None when the refit has no ML treatment."""
    if roles.treatment is None or roles.treatment not in batches:
        return None
    control, treatment = batches[roles.control], batches[roles.treatment]
    rows = np.arange(len(control.codes))
    c_code = np.asarray(control.codes, dtype=int)
    t_code = np.asarray(treatment.codes, dtype=int)
    block = np.full((len(rows), WIDTH), np.nan)
    block[:, CONTROL], block[:, TREATMENT] = each[rows, c_code], each[rows, t_code]
    block[:, CONTROL_CODE], block[:, TREATMENT_CODE] = c_code, t_code
    expected = treatment.expected_costs
    if expected is not None:
        block[:, EXPECTED_CONTROL] = expected[rows, c_code]
        block[:, EXPECTED_TREATMENT] = expected[rows, t_code]
    return block


def arms_from_blocks(block: np.ndarray, rows: str, resampler: MeansResampler) -> Arms:
    """The Arms of stacked arm blocks (rows in the order `resampler` expects)."""
    expected = block[:, [EXPECTED_CONTROL, EXPECTED_TREATMENT]]
    return Arms(
        rows=rows,
        control=block[:, CONTROL].copy(),
        treatment=block[:, TREATMENT].copy(),
        disagree=block[:, CONTROL_CODE] != block[:, TREATMENT_CODE],
        expected=None if np.isnan(expected).any() else (expected[:, 0], expected[:, 1]),
        resampler=resampler,
    )
