"""Loading, typing, warnings and the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_frame

from advisor.core.case import case_from_arguments
from advisor.core.data import MAX_LEVELS, infer_kind, load_dataset, split_dataset, split_releasing
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec


def _case(frame, **kw):
    kw.setdefault("costs", {"fp": 1, "fn": 5})
    return case_from_arguments(frame, target="outcome", **kw)


def test_kinds_are_inferred():
    assert infer_kind(pd.Series([1.0, 2.5, None])) == "numeric"
    assert infer_kind(pd.Series([True, False])) == "boolean"
    assert infer_kind(pd.Series(["true", "false", None])) == "boolean"
    assert infer_kind(pd.Series(["a", "b"])) == "categorical"
    assert infer_kind(pd.Series(["2024-01-05", "2024-02-01"] * 10)) == "datetime"


def test_missing_targets_are_dropped_with_a_count():
    frame = synthetic_frame(300)
    frame.loc[[3, 7, 11], "outcome"] = None
    data = load_dataset(_case(frame))
    assert len(data.frame) == 297
    assert any("3 rows with a missing target" in w for w in data.warnings)


def test_identifier_and_leak_are_flagged():
    frame = synthetic_frame(400)
    frame["customer_id"] = [f"C{i:05d}" for i in range(len(frame))]
    frame["leak"] = np.where(frame["outcome"] == "yes", 1.0, 0.0)
    data = load_dataset(_case(frame))
    assert "customer_id" not in data.schema.features
    assert any("customer_id" in w and "identifier" in w for w in data.warnings)
    assert any("'leak' alone predicts" in w for w in data.warnings)


def test_time_ordered_split_is_ordered_and_stratified_split_is_seeded():
    frame = synthetic_frame(600, with_time=True).sample(frac=1, random_state=1)
    data = load_dataset(_case(frame, time="when"))
    split = split_dataset(data, seed=0)
    assert split.train.frame["when"].max() <= split.valid.frame["when"].min()
    assert split.valid.frame["when"].max() <= split.test.frame["when"].min()
    assert (len(split.train), len(split.valid), len(split.test)) == (360, 120, 120)

    plain = load_dataset(_case(synthetic_frame(600)))
    a, b = split_dataset(plain, 5), split_dataset(plain, 5)
    assert a.test.frame.equals(b.test.frame)
    assert not a.test.frame.equals(split_dataset(plain, 6).test.frame)
    shares = [np.mean(p.y) for p in (a.train, a.valid, a.test)]
    assert max(shares) - min(shares) < 0.02


def test_single_class_and_bad_time_are_errors():
    frame = synthetic_frame(200)
    frame["outcome"] = "no"
    with pytest.raises(InputError, match="single class"):
        load_dataset(
            case_from_arguments(
                frame,
                target="outcome",
                costs={"matrix": {"no": {"no": 0, "yes": 1}, "yes": {"no": 5, "yes": 0}}},
            )
        )
    frame = synthetic_frame(200, with_time=True)
    frame.loc[5, "when"] = "not a date"
    with pytest.raises(
        InputError, match="'when' has a value that is not a timestamp: 'not a date'"
    ):
        load_dataset(_case(frame, time="when"))


def test_data_hash_changes_with_the_data():
    frame = synthetic_frame(200)
    h1 = load_dataset(_case(frame)).sha256
    frame.loc[0, "age"] += 1
    assert load_dataset(_case(frame)).sha256 != h1


def test_a_100000_level_categorical_feature_is_capped_not_refused():
    frame = synthetic_frame(200_000, seed=5)
    frame["shop"] = [f"S{i % 100_000:06d}" for i in range(len(frame))]  # each level twice
    data = load_dataset(_case(frame))
    assert data.schema.features["shop"] == "categorical"
    split = split_dataset(data, seed=0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    shop = next(e for e in spec.encoders_ if e.name == "shop")
    assert len(shop.levels) == MAX_LEVELS


def test_a_data_set_without_its_rows_summarises_as_before_and_holds_no_rows():
    case = _case(synthetic_frame(300))
    data = load_dataset(case)
    lean = data.without_rows()
    assert len(lean.frame) == 0 and list(lean.frame.columns) == list(data.frame.columns)
    assert lean.summary(case.costs) == data.summary(case.costs)
    assert lean.y is data.y and len(data.frame) == 300  # the original is left as it was


@pytest.mark.parametrize("time", [None, "when"])
def test_a_split_that_releases_the_frame_gives_the_same_parts(time):
    """`split_releasing` takes the parts a column at a time and empties the frame it read:
    the same parts, dtypes and index as `split_dataset`, and the data set without its rows."""
    frame = synthetic_frame(600, with_time=time is not None).sample(frac=1, random_state=1)
    frame["band"] = pd.Categorical(np.resize(["low", "mid", "high"], len(frame)))
    case = _case(frame, time=time)
    expected = split_dataset(load_dataset(case), seed=3)
    data = load_dataset(case)
    summary = data.summary(case.costs)
    rowless, split = split_releasing(data, seed=3)
    for name in ("train", "valid", "test"):
        got, want = getattr(split, name), getattr(expected, name)
        pd.testing.assert_frame_equal(got.frame, want.frame)
        np.testing.assert_array_equal(got.y, want.y)
    assert (split.ordered_by, split.time_unit) == (expected.ordered_by, expected.time_unit)
    assert len(rowless.frame) == 0 and rowless.summary(case.costs) == summary
    assert len(data.frame.columns) == 0  # every column was let go once taken
