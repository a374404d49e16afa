"""Units counted by sorting (`advisor.monitor.units`) against pandas' hashing: the first row of
each unit is the row `drop_duplicates` keeps, the codes are `factorize`'s, and the test's split
to date and readout built on them equal the pandas computation, with repeated and missing units;
the shadow's pairs, read by category codes, equal grouping the text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.core.costs import CostMatrix
from advisor.monitor import arms, units
from advisor.monitor.logs import key_hashes

COSTS = CostMatrix.from_mapping(
    {"good": {"approve": -10, "decline": 5}, "bad": {"approve": 100, "decline": 0}},
    decisions=["approve", "decline"],
)


def _units(rng: np.random.Generator, n: int, distinct: int, missing: float) -> pd.Series:
    """Unit hashes as the scan keeps them: a nullable UInt64 column with some missing."""
    hashed, _ = key_hashes(pd.Series(rng.integers(0, distinct, n).astype(str)))
    out = pd.array(hashed, dtype="UInt64")
    out[rng.random(n) < missing] = pd.NA
    return pd.Series(out)


@pytest.mark.parametrize("seed", range(5))
def test_first_rows_and_codes_equal_pandas_hashing(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    unit = _units(rng, n, int(rng.integers(50, 3000)), 0.05 * (seed % 2))
    keys, missing = units.keys(unit)
    rows = np.flatnonzero(rng.random(n) < 0.6)
    frame = pd.DataFrame({"unit": unit.iloc[rows].to_numpy(), "row": rows})
    expected = frame.drop_duplicates("unit")["row"].to_numpy()
    np.testing.assert_array_equal(units.first_rows(keys, missing, rows), expected)
    codes, n_units = units.codes(unit)
    pandas_codes, uniques = pd.factorize(unit)
    np.testing.assert_array_equal(codes, pandas_codes)
    assert n_units == len(uniques)
    text = pd.Series(np.where(rng.random(n) < 0.1, None, rng.integers(0, 40, n).astype(str)))
    np.testing.assert_array_equal(units.codes(text)[0], pd.factorize(text)[0])


def _log(seed: int, n: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.3, "treatment", "control")
    decision = pd.Series(np.where(rng.random(n) < 0.5, "approve", "decline"))
    decision[rng.random(n) < 0.02] = None
    return pd.DataFrame(
        {
            "policy": np.where(arm == "control", "rules", "ml"),
            "decision": decision,
            "arm": arm,
            "unit": _units(rng, n, 2500, 0.01),
            "outcome": np.where(rng.random(n) < 0.7, rng.integers(0, 2, n), -1),
        }
    )


def _split_by_hashing(frame: pd.DataFrame, ends: list[int]) -> list[tuple]:
    """What the split to date counted with pandas' drop_duplicates and groupby."""
    mask = (frame["decision"].notna() & frame["arm"].notna()).to_numpy()
    decided = frame.loc[mask, ["arm", "unit", "outcome"]].assign(row=np.flatnonzero(mask))
    pairs = decided.drop_duplicates(["unit", "arm"])
    firsts = {a: np.sort(pairs.loc[pairs["arm"] == a, "row"].to_numpy()) for a in arms.ARMS}
    twice = pairs.groupby("unit")["row"].agg(["max", "size"])
    both = np.sort(twice.loc[twice["size"] > 1, "max"].to_numpy())
    known = decided[(decided["outcome"] >= 0) & (decided["arm"] == "control")]
    control = np.sort(known.drop_duplicates("unit")["row"].to_numpy())
    return [
        (
            int(np.searchsorted(firsts["control"], end)),
            int(np.searchsorted(firsts["treatment"], end)),
            int(np.searchsorted(both, end)),
            int(np.searchsorted(control, end)),
        )
        for end in ends
    ]


@pytest.mark.parametrize("seed", range(4))
def test_the_split_to_date_by_sorting_equals_the_hashing_count(seed):
    frame = _log(seed)
    ends = [1000 * k for k in range(1, 7)]
    got = arms.split_to_date(frame, ends, {}, 0.3)
    counted = [
        (
            s["units"]["control"],
            s["units"]["treatment"],
            s["units_in_both_arms"],
            s["control_units_with_outcomes"],
        )
        for s in got
    ]
    assert counted == _split_by_hashing(frame, ends)
    assert got[-1]["policies"] == {"control": "rules", "treatment": "ml"}


@pytest.mark.parametrize("seed", range(4))
def test_the_readout_reads_each_units_first_row_per_arm_as_drop_duplicates_does(seed):
    frame = _log(seed)
    ends = [2000, 4000, 6000]
    got = arms.readout_to_date(frame, ends, {"alpha": 0.05}, COSTS)
    known = frame[frame["decision"].notna() & (frame["outcome"] >= 0)]
    rows = known.drop_duplicates(["unit", "arm"])
    for read, end in zip(got, ends, strict=True):
        seen = rows[rows.index < end]
        cost = COSTS.realised(
            seen["outcome"].to_numpy(),
            pd.Index(COSTS.decisions).get_indexer(seen["decision"]),
        )
        treated = (seen["arm"] == "treatment").to_numpy()
        assert read["analysed"] == {
            "control": int((~treated).sum()),
            "treatment": int(treated.sum()),
        }
        assert read["effect"]["estimate"] == pytest.approx(
            cost[~treated].mean() - cost[treated].mean(), rel=1e-12
        )


def _shadow_by_text(rows: pd.DataFrame) -> list[tuple]:
    """The shadow's pairs as grouping the text gives them: (served, shadow, rows, disagreements)."""
    paired = rows["shadow_decision"].notna() & rows["decision"].notna()
    paired &= rows["shadow_policy"].astype(object).fillna("") != rows["policy"].astype(object)
    both = rows[paired].astype(object)
    out = []
    for (served, other), group in both.groupby(
        ["policy", both["shadow_policy"].fillna("")], sort=True
    ):
        differ = int((group["shadow_decision"] != group["decision"]).sum())
        out.append((served, other or None, len(group), differ))
    return out


@pytest.mark.parametrize("categorical", [False, True])
def test_the_shadows_pairs_read_by_codes_equal_the_text_grouping(categorical):
    rng = np.random.default_rng(11)
    n = 4000
    policy = pd.Series(rng.choice(["rules", "ml", "expert"], n))
    policy[rng.random(n) < 0.02] = None
    shadow_policy = pd.Series(rng.choice(["ml", "rules", "zeta"], n))
    shadow_policy[rng.random(n) < 0.2] = None
    decide = ["approve", "decline"]
    rows = pd.DataFrame(
        {
            "policy": policy,
            "decision": pd.Series(rng.choice(decide, n)).where(rng.random(n) > 0.02),
            "shadow_policy": shadow_policy,
            "shadow_decision": pd.Series(rng.choice(decide, n)).where(rng.random(n) > 0.1),
            "outcome": rng.integers(-1, 2, n),
            "unit": np.arange(n),
        }
    )
    if categorical:
        rows = rows.astype({c: "category" for c in ("policy", "decision", "shadow_policy")})
    got = arms.shadow(rows, COSTS, None, seed=0)
    found = [(p["policy"], p["shadow_policy"], p["n"], p["disagreement_rate"]["k"]) for p in got]
    assert found == _shadow_by_text(rows)
    for pair in got:
        served = rows["policy"].astype(object) == pair["policy"]
        shadowed = rows["shadow_policy"].astype(object).fillna("") == (pair["shadow_policy"] or "")
        known = rows[served & shadowed & rows["shadow_decision"].notna()]
        known = known[known["decision"].notna() & (known["outcome"] >= 0)]
        index = pd.Index(COSTS.decisions)
        saving = COSTS.realised(
            known["outcome"].to_numpy(), index.get_indexer(known["decision"].astype(object))
        ) - COSTS.realised(
            known["outcome"].to_numpy(), index.get_indexer(known["shadow_decision"].astype(object))
        )
        figure = pair["with_outcomes"]["shadow_saving_per_decision"]
        assert figure["estimate"] == pytest.approx(saving.mean(), rel=1e-12)


def test_units_with_some_missing_hash_as_a_nullable_column_missing_where_they_are():
    from advisor.monitor.scan import unit_hash

    values = pd.Series(["a", None, "b", "a"], dtype=object)
    hashed = unit_hash(values)
    assert str(hashed.dtype) == "UInt64"
    assert list(pd.isna(hashed)) == [False, True, False, False]
    assert hashed[0] == hashed[3] and hashed[0] != hashed[2]
    assert hashed[0] == key_hashes(values)[0][0]
