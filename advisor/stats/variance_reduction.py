"""Regression adjustment (CUPED-style, Lin 2013): a covariate known before treatment in both
arms explains part of each arm's cost, so the effect is read from what it leaves.

The covariates here are the model's expected cost of each arm's decision on the unit: the
service has both policies decide every unit before the response, so both are known whatever
arm the unit is in, and neither depends on the assignment. Each arm's cost is regressed on
them (its own coefficients, centred at the mean over both arms), which keeps the estimate
unbiased and never less precise than the plain difference in large samples:

    Var = σ²(e_c)/n_c + σ²(e_t)/n_t + (β_c − β_t)ᵀ Σ_x (β_c − β_t) / N,

where e_a is arm a's residual, β_a its coefficients, Σ_x the covariates' covariance and N
the units in both arms.
"""

from __future__ import annotations

import numpy as np


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residuals of y on centred x (least squares; collinear columns allowed)."""
    xc = x - x.mean(axis=0)
    beta = np.linalg.lstsq(xc, y - y.mean(), rcond=None)[0]
    return beta, y - y.mean() - xc @ beta


def adjusted_variance_factor(
    control: np.ndarray, treatment: np.ndarray, covariates: np.ndarray, share: float
) -> dict:
    """The adjusted estimate's variance as a share of the plain one's, from per-row costs of
    both arms on the same rows (the test split, where both are known) and the covariates."""
    y_c, y_t = np.asarray(control, dtype=float), np.asarray(treatment, dtype=float)
    x = np.asarray(covariates, dtype=float).reshape(len(y_c), -1)
    beta_c, e_c = _fit(y_c, x)
    beta_t, e_t = _fit(y_t, x)
    gap = beta_c - beta_t
    sigma_x = np.atleast_2d(np.cov(x, rowvar=False))
    # Per control unit analysed: n_t = r n_c and N = n_c / (1 − share).
    ratio = share / (1 - share)
    plain = y_c.var(ddof=1) + y_t.var(ddof=1) / ratio
    adjusted = e_c.var(ddof=1) + e_t.var(ddof=1) / ratio + float(gap @ sigma_x @ gap) * (1 - share)
    factor = min(adjusted / plain, 1.0) if plain > 0 else 1.0
    return {
        "factor": float(factor),
        "variance_reduction": float(1 - factor),
        "r2_control": float(1 - e_c.var() / y_c.var()) if y_c.var() > 0 else 0.0,
        "r2_treatment": float(1 - e_t.var() / y_t.var()) if y_t.var() > 0 else 0.0,
    }


def adjusted_effect(
    cost: np.ndarray, covariates: np.ndarray, treated: np.ndarray
) -> tuple[float, float]:
    """Control's mean cost minus treatment's, regression-adjusted, and its standard error, from
    one experiment's units (`treated` marks the treatment arm)."""
    y = np.asarray(cost, dtype=float)
    x = np.asarray(covariates, dtype=float).reshape(len(y), -1)
    t = np.asarray(treated, dtype=bool)
    mean_x = x.mean(axis=0)
    parts = []
    for arm in (~t, t):
        beta, e = _fit(y[arm], x[arm])
        parts.append((y[arm].mean() - (x[arm].mean(axis=0) - mean_x) @ beta, beta, e))
    (m_c, b_c, e_c), (m_t, b_t, e_t) = parts
    gap = b_c - b_t
    sigma_x = np.atleast_2d(np.cov(x, rowvar=False))
    var = (
        e_c.var(ddof=1) / len(e_c)
        + e_t.var(ddof=1) / len(e_t)
        + float(gap @ sigma_x @ gap) / len(y)
    )
    return float(m_c - m_t), float(np.sqrt(var))
