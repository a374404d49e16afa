"""The learners are fitted on threads at the same time: the policies are those fitted one
after another, and a failure is reported in the policies' order, whichever thread ends first."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from advisor.analysis.pipeline import side_by_side
from advisor.core.data import Part, Split


class Slow:
    """A stand-in learner: waits, then fails or returns itself."""

    def __init__(self, name: str, wait: float, fails: bool = False) -> None:
        self.name, self.wait, self.fails = name, wait, fails

    def fit(self, train: Part, valid: Part) -> Slow:
        time.sleep(self.wait)
        if self.fails:
            raise ValueError(f"{self.name} failed")
        self.fitted_ = len(train.y)
        return self


def parts() -> Split:
    part = Part(pd.DataFrame({"x": np.arange(4.0)}), np.array([0, 1, 0, 1]))
    return Split(train=part, valid=part, test=part, ordered_by=None)


def test_the_first_failure_in_order_is_raised_though_a_later_one_ends_first():
    learners = [Slow("a", 0.0), Slow("b", 0.3, fails=True), Slow("c", 0.0, fails=True)]
    with pytest.raises(ValueError, match="b failed"):
        side_by_side(learners, parts())


def test_every_learner_is_fitted_and_kept_under_its_name():
    learners = [Slow("rules", 0.1), Slow("ml", 0.0), Slow("baseline", 0.0)]
    fitted = side_by_side(learners, parts())
    assert list(fitted) == ["rules", "ml", "baseline"]
    assert all(fitted[p.name] is p and p.fitted_ == 4 for p in learners)
