"""The outcomes as the monitor's join holds them: read a million rows at a time (Parquet streamed
by row group), kept as sorted key hashes and class codes, found by binary search. The join must
match what a dictionary of the key texts would give, and a bad file must still be one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from advisor.core.costs import CostMatrix
from advisor.core.errors import InputError
from advisor.monitor import logs

COSTS = CostMatrix.from_mapping(
    {"good": {"approve": 0, "decline": 5}, "bad": {"approve": 20, "decline": 0}},
    ["approve", "decline"],
)


def _outcomes(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(3 * n)[:n]
    status = np.where(rng.random(n) < 0.3, "bad", "good").astype(object)
    status[rng.random(n) < 0.05] = None  # not known yet
    return pd.DataFrame({"id": ids.astype(str), "Status": status})


def test_parquet_read_in_small_batches_joins_like_a_dictionary(tmp_path, monkeypatch):
    frame = _outcomes(5000)
    path = tmp_path / "outcomes.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=700)
    monkeypatch.setattr(logs, "OUTCOME_ROWS", 333)  # many batches, cut across row groups
    found = logs.read_outcomes(path, "id", "Status", COSTS)
    truth = {k: v for k, v in zip(frame["id"], frame["Status"], strict=True) if pd.notna(v)}
    assert len(found) == len(truth)
    assert (found.keys[1:] > found.keys[:-1]).all()
    asked = pd.Series([*frame["id"][:2000], "nobody", "r-9", None], dtype=object)
    hashed, missing = logs.key_hashes(asked)
    at = found.find(hashed, missing)
    codes = {"good": 0, "bad": 1}
    expected = [codes[truth[k]] if k in truth else -1 for k in asked]
    got = np.where(at >= 0, found.outcome[np.maximum(at, 0)], -1)
    assert got.tolist() == expected
    assert found.outcome.dtype == np.int8


def test_csv_and_parquet_give_the_same_index(tmp_path):
    frame = _outcomes(3000, seed=1)
    frame.to_csv(tmp_path / "o.csv", index=False)
    frame.to_parquet(tmp_path / "o.parquet")
    a = logs.read_outcomes(tmp_path / "o.csv", "id", "Status", COSTS)
    b = logs.read_outcomes(tmp_path / "o.parquet", "id", "Status", COSTS)
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.outcome, b.outcome)


def test_a_key_repeated_with_the_same_outcome_is_kept_once(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b", "a", "c"], "Status": ["bad", "good", "bad", "good"]})
    frame.to_parquet(tmp_path / "o.parquet")
    found = logs.read_outcomes(tmp_path / "o.parquet", "id", "Status", COSTS)
    assert len(found) == 3 and sorted(found.outcome.tolist()) == [0, 0, 1]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_key_with_two_outcomes_is_named_from_a_later_batch(tmp_path, monkeypatch, suffix):
    frame = _outcomes(2000, seed=2).dropna()
    frame = pd.concat(
        [
            frame,
            frame.iloc[[1500]].assign(
                Status="bad" if frame["Status"].iloc[1500] == "good" else "good"
            ),
        ]
    )
    path = tmp_path / f"o{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    monkeypatch.setattr(logs, "OUTCOME_ROWS", 500)
    with pytest.raises(InputError) as raised:
        logs.read_outcomes(path, "id", "Status", COSTS)
    key = frame["id"].iloc[1500]
    assert str(raised.value) == f"{path}: key {key!r} in column 'id' has two different outcomes"


def test_bad_parquet_outcomes_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "o.parquet"
    pd.DataFrame({"id": ["a", "b"], "Status": ["good", "maybe"]}).to_parquet(path)
    with pytest.raises(InputError, match="column 'Status' holds 'maybe', not a class"):
        logs.read_outcomes(path, "id", "Status", COSTS)
    with pytest.raises(InputError, match="no column 'ref', the key"):
        logs.read_outcomes(path, "ref", "Status", COSTS)
    pd.DataFrame({"id": pd.Series([], dtype=str), "Status": pd.Series([], dtype=str)}).to_parquet(
        path
    )
    with pytest.raises(InputError, match="no rows"):
        logs.read_outcomes(path, "id", "Status", COSTS)
    path.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read"):
        logs.read_outcomes(path, "id", "Status", COSTS)
