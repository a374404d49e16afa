"""The cost matrix against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.core.costs import CostMatrix, LinearCost, label_key, parse_cost_cell, record_tensor
from advisor.core.errors import InputError


def test_binary_expected_cost_decision_matches_the_elkan_threshold():
    costs = CostMatrix.binary("no", "yes", fp=40, fn=600, tp=280)
    # Act when p * 280 + (1-p) * 40 < p * 600, i.e. p > 40 / 360.
    p = np.array([0.0, 0.1, 40 / 360 - 1e-9, 40 / 360 + 1e-9, 0.5, 1.0])
    proba = np.column_stack([1 - p, p])
    assert costs.decide(proba).tolist() == [0, 0, 0, 1, 1, 1]
    expected = costs.expected_costs(proba)
    np.testing.assert_allclose(expected[4], [0.5 * 600, 0.5 * 40 + 0.5 * 280])


def test_three_classes_three_decisions_by_hand():
    costs = CostMatrix.from_mapping(
        {
            "a": {"x": 0, "y": 5, "z": 2},
            "b": {"x": 10, "y": 0, "z": 3},
            "c": {"x": 4, "y": 4, "z": 0},
        },
        decisions=["x", "y", "z"],
    )
    proba = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    # Row 0: x = 0*.2+10*.5+4*.3 = 6.2; y = 5*.2+0+4*.3 = 2.2; z = 2*.2+3*.5+0 = 1.9 -> z
    np.testing.assert_allclose(costs.expected_costs(proba)[0], [6.2, 2.2, 1.9])
    assert costs.decide(proba).tolist() == [2, 0, 2]
    y = np.array([1, 0, 2, 2])
    d = np.array([0, 1, 2, 1])
    assert costs.realised(y, d).tolist() == [10, 5, 0, 4]
    # Totals per decision on these rows: x = 10+0+4+4 = 18, y = 0+5+4+4 = 13, z = 3+2+0+0 = 5.
    assert costs.best_constant(y) == 2


def test_example_dependent_costs_follow_the_column():
    costs = CostMatrix.from_mapping(
        {
            "good": {"approve": "-0.08 * Amount", "decline": 0, "review": "-0.08 * Amount + 25"},
            "bad": {"approve": "0.5 * Amount", "decline": 0, "review": 25},
        },
        decisions=["approve", "decline", "review"],
    )
    frame = pd.DataFrame({"Amount": [1000.0, 200.0]})
    tensor = costs.tensor(frame)
    assert tensor.shape == (2, 2, 3)
    np.testing.assert_allclose(tensor[0], [[-80, 0, -55], [500, 0, 25]])
    # p(bad) = 0.2 on a 1000 loan: approve = .8*-80 + .2*500 = 36; decline 0; review = -44+5 = -39.
    # On a 200 loan: approve = -12.8 + 20 = 7.2; decline 0; review = 7.2 + 5 = 12.2 -> decline.
    proba = np.array([[0.8, 0.2], [0.8, 0.2]])
    assert costs.decide(proba, frame).tolist() == [2, 1]
    np.testing.assert_allclose(costs.expected_costs(proba, frame)[0], [36, 0, -39])
    realised = costs.realised(np.array([1, 0]), np.array([0, 0]), frame)
    np.testing.assert_allclose(realised, [500, -16])
    np.testing.assert_allclose(record_tensor(costs, {"Amount": 1000}), tensor[:1])
    assert costs.columns == ("Amount",)


def test_realised_cost_reads_only_each_rows_cell_and_equals_the_tensors():
    """The realised cost is computed per cell (8 bytes a row, as the monitor needs at ten
    million decisions): bit for bit the full tensor's entry, text and missing amounts included,
    and a negative code counts from the end as an index does."""
    costs = CostMatrix.from_mapping(
        {
            "good": {"approve": "-0.08 * Amount", "decline": 0, "review": "-0.08 * Amount + 25"},
            "bad": {"approve": "0.5 * Amount", "decline": 0, "review": "Fee"},
        },
        decisions=["approve", "decline", "review"],
    )
    rng = np.random.default_rng(4)
    n = 2_000
    amount = rng.lognormal(7, 1, n).astype(object)
    amount[::97] = "n/a"
    amount[::89] = None
    frame = pd.DataFrame({"Amount": amount, "Fee": rng.normal(25, 3, n)})
    y, d = rng.integers(0, 2, n), rng.integers(-3, 3, n)
    expected = costs.tensor(frame)[np.arange(n), y, d]
    found = costs.realised(y, d, frame)
    assert np.array_equal(found, expected, equal_nan=True)
    assert np.isnan(found).any()  # the text and missing amounts stay unknown costs
    with pytest.raises(IndexError):
        costs.realised(np.array([2]), np.array([0]), frame.iloc[:1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5 * amount", LinearCost(0.0, 0.5, "amount")),
        ("-0.08 * amount + 25", LinearCost(25.0, -0.08, "amount")),
        ("amount", LinearCost(0.0, 1.0, "amount")),
        ("25 - amount * 2", LinearCost(25.0, -2.0, "amount")),
        ("`loan amount` * 0.1", LinearCost(0.0, 0.1, "loan amount")),
        ("1e3", LinearCost(1000.0)),
    ],
)
def test_cost_expressions_parse(text, expected):
    assert parse_cost_cell(text, "cell") == expected


@pytest.mark.parametrize(
    "text",
    ["amount * price", "2 +", "* 3", "a + b", "__import__('os')", "1 / amount", float("nan")],
)
def test_bad_cost_expressions_are_input_errors(text):
    with pytest.raises(InputError):
        parse_cost_cell(text, "costs.matrix.x.y")


def test_matrix_validation_names_the_problem():
    with pytest.raises(InputError, match="unknown decision 'maybe'"):
        CostMatrix.from_mapping({"a": {"x": 1, "maybe": 2}, "b": {"x": 0}}, decisions=["x"])
    with pytest.raises(InputError, match="no cost given for decision 'y'"):
        CostMatrix.from_mapping({"a": {"x": 1}, "b": {"x": 0, "y": 1}}, decisions=["x", "y"])
    with pytest.raises(InputError, match="finite"):
        CostMatrix.binary(0, 1, fp=float("inf"), fn=1)


def test_label_keys_match_across_yaml_and_data_types():
    assert label_key(1) == label_key(1.0) == label_key("1") == label_key(np.int64(1))
    assert label_key(True) == label_key("True") == label_key(np.bool_(True))
    assert label_key("Yes") != label_key("yes")
