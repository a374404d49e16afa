"""The sample-ratio check: the observed arm counts against the planned split (a chi-square test;
a mismatch means broken assignment or logging)."""

from __future__ import annotations

import math

from scipy import stats

SRM_THRESHOLD = 0.001


def sample_ratio_mismatch(
    n_control: int, n_treatment: int, treatment_share: float = 0.5, threshold: float = SRM_THRESHOLD
) -> dict:
    """Chi-square test of the observed split against the planned one; flags p < threshold.

    A mismatch means the assignment or the logging is broken: stop and fix it, do not read
    the test.
    """
    total = n_control + n_treatment
    expected = [total * (1 - treatment_share), total * treatment_share]
    chi2, p = stats.chisquare([n_control, n_treatment], f_exp=expected)
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < threshold)}


def srm_tolerance(total: int, treatment_share: float, threshold: float = SRM_THRESHOLD) -> float:
    """How far the treatment count may stray from plan before the SRM check flags it.

    With one degree of freedom, chi² = δ² / (N·s·(1 − s)) for a deviation δ of the treatment
    count, so the check flags |δ| > √(χ²₁(1 − threshold) · N·s·(1 − s)).
    """
    crit = stats.chi2.isf(threshold, 1)
    return math.sqrt(crit * total * treatment_share * (1 - treatment_share))
