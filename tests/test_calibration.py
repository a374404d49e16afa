"""The calibration's probabilities are scikit-learn's `predict_proba` of the fitted scaling, bit
for bit (the service computes them without scikit-learn's per-call checks), binary and
multiclass, and when the validation rows hold only some of the classes."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.policies.ml import Calibrator


def sklearn_proba(cal: Calibrator, proba: np.ndarray) -> np.ndarray:
    out = np.zeros((len(proba), cal.n_classes))
    out[:, cal.model_.classes_] = cal.model_.predict_proba(cal._features(proba))
    return out


@pytest.mark.parametrize(("classes", "present"), [(2, 2), (3, 3), (5, 5), (3, 2)])
def test_calibration_equals_scikit_learn_bit_for_bit(classes: int, present: int):
    rng = np.random.default_rng(classes * 10 + present)
    proba = rng.dirichlet(np.ones(classes), 4000)
    y = rng.integers(0, present, 4000)
    cal = Calibrator(classes).fit(proba, y)
    assert np.array_equal(cal.transform(proba), sklearn_proba(cal, proba))
    one = cal.transform(proba[:1])
    assert np.array_equal(one, sklearn_proba(cal, proba[:1]))
    np.testing.assert_allclose(cal.transform(proba).sum(axis=1), 1.0, rtol=1e-12)
    restored = Calibrator.from_dict(cal.to_dict())
    assert np.array_equal(restored.transform(proba), cal.transform(proba))
