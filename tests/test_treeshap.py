"""TreeSHAP from per-leaf tables against LightGBM's own (`pred_contrib=True`): the same values
on numeric splits with missing values and zero-as-missing, category splits with unseen,
negative and missing codes, and several classes; local accuracy; the same top-3 reasons; the
fallback to LightGBM's when the tables would be too large."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from advisor.policies import table_cache, treeshap
from advisor.policies.reasons import raw_contributions
from advisor.policies.table_cache import leaf_tables


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=n),
            rng.normal(size=n),
            rng.integers(0, 6, n).astype(float),  # a category
            np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),  # zeros read as missing
            rng.normal(size=n),
        ]
    )
    X[rng.random(n) < 0.1, 0] = np.nan
    y = (np.nan_to_num(X[:, 0]) + (X[:, 2] % 3 == 1) + 0.5 * X[:, 3] + X[:, 1] * X[:, 4]) > 0.5
    return X, y.astype(int) + (X[:, 1] > 1.0)


def _booster(objective: str, zero_as_missing: bool, seed: int = 0) -> lgb.Booster:
    X, y = _data(3000, seed)
    params = {
        "objective": objective,
        "verbosity": -1,
        "num_leaves": 15,
        "min_data_in_leaf": 10,
        "cat_smooth": 1,
        "min_data_per_group": 5,
        "zero_as_missing": zero_as_missing,
        "seed": seed,
    }
    if objective == "multiclass":
        params["num_class"] = 3
    else:
        y = (y > 0).astype(int)
    data = lgb.Dataset(X, y, categorical_feature=[2])
    return lgb.train(params, data, num_boost_round=25)


def _awkward(n: int) -> np.ndarray:
    """Rows with what scoring meets: NaN everywhere, unseen, negative and fractional codes,
    exact zeros, values on the thresholds' sides."""
    X, _ = _data(n, 7)
    rng = np.random.default_rng(3)
    for j in range(X.shape[1]):
        X[rng.random(n) < 0.08, j] = np.nan
    X[rng.random(n) < 0.05, 2] = 9.0  # a category not seen in training
    X[rng.random(n) < 0.03, 2] = -1.0
    X[rng.random(n) < 0.03, 2] = 2.5
    X[rng.random(n) < 0.05, 1] = 0.0
    return X


@pytest.mark.parametrize(
    ("objective", "zero_as_missing"),
    [("binary", False), ("binary", True), ("multiclass", False)],
)
@pytest.mark.parametrize("group_bytes", [1, 2048 * 8 * 5, (1 << 20) * 8 * 5])
def test_the_tables_give_lightgbms_treeshap(objective, zero_as_missing, group_bytes, monkeypatch):
    # 5 features: one table per leaf; subtrees of up to 2,048 rows share one; whole trees
    monkeypatch.setattr(treeshap, "GROUP_BYTES", group_bytes)
    booster = _booster(objective, zero_as_missing)
    classes = 3 if objective == "multiclass" else 1
    X = _awkward(1500)
    tables = leaf_tables(booster, booster.num_trees() // classes, X.shape[1], classes)
    assert tables is not None and any(b.outside >= 0 for b in tables.bands)  # category splits
    contrib, base = tables.contributions(X)
    reference = booster.predict(X, pred_contrib=True).reshape(len(X), classes, X.shape[1] + 1)
    np.testing.assert_allclose(contrib, reference[:, :, :-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(base, reference[:, :, -1], rtol=0, atol=1e-12)
    raw = booster.predict(X, raw_score=True).reshape(len(X), classes)
    np.testing.assert_allclose(contrib.sum(axis=2) + base, raw, rtol=0, atol=1e-10)


def test_rows_on_the_thresholds_and_around_zero_give_lightgbms_treeshap():
    # Every threshold of the model, the next float each side, zeros of both signs and values
    # below LightGBM's zero threshold: each band edge decided as LightGBM decides it.
    booster = _booster("binary", True, seed=4)
    tables = leaf_tables(booster, booster.num_trees(), 5, 1)
    X = _awkward(600)
    edges = [b.thresholds for b in tables.bands if b.outside < 0]
    values = np.concatenate(
        [np.concatenate([t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)]) for t in edges]
        + [np.array([0.0, -0.0, 1e-36, -1e-36, treeshap.ZERO, -treeshap.ZERO, np.nan])]
    )
    rng = np.random.default_rng(5)
    for b in tables.bands:
        if b.outside < 0:
            X[:, b.feature] = rng.choice(values, len(X))
    contrib, _ = tables.contributions(X)
    reference = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(contrib[:, 0, :], reference[:, :-1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("missing", ["None", "Zero", "NaN"])
@pytest.mark.parametrize("default_left", [False, True])
def test_a_rows_band_decides_each_split_as_a_comparison_does(missing, default_left):
    thresholds = np.array([-1.5, treeshap.ZERO, 0.25, 3.0])
    bands = treeshap.Bands(0, thresholds, missing == "Zero", missing == "NaN", -1)
    x = np.array([-2.0, -1.5, -0.0, 0.0, 1e-36, -1e-36, 0.25, 0.3, 3.0, 7.0, np.nan])
    x0 = np.nan_to_num(x, nan=0.0)
    for t in thresholds:
        split = {"threshold": t, "missing_type": missing, "default_left": default_left}
        expected = x0 <= t
        if missing == "Zero":
            expected = np.where(np.abs(x0) <= treeshap.ZERO, default_left, expected)
        elif missing == "NaN":
            expected = np.where(np.isnan(x), default_left, expected)
        np.testing.assert_array_equal(bands.goes_left(split)[bands.of(x)], expected)


def test_the_same_top_three_as_lightgbm_on_every_row():
    booster = _booster("binary", False, seed=1)
    X = _awkward(2000)
    fast, _ = raw_contributions(booster, X, booster.num_trees(), 2, "exact")
    slow, _ = raw_contributions(booster, X, booster.num_trees(), 2, "lightgbm")
    top = np.argsort(-fast[:, 0, :], axis=1, kind="stable")[:, :3]
    reference = np.argsort(-slow[:, 0, :], axis=1, kind="stable")[:, :3]
    assert (np.sort(top, axis=1) == np.sort(reference, axis=1)).all()


def test_threads_and_chunks_do_not_change_the_values(monkeypatch):
    booster = _booster("binary", True, seed=2)
    X = _awkward(1000)
    tables = leaf_tables(booster, booster.num_trees(), X.shape[1], 1)
    whole, _ = tables.contributions(X)
    monkeypatch.setattr(treeshap, "CHUNK_CELLS", 50_000)  # a few dozen rows per chunk
    np.testing.assert_array_equal(tables.contributions(X, threads=2)[0], whole)
    np.testing.assert_array_equal(tables.contributions(X[:1])[0], whole[:1])


def test_a_build_in_batches_on_two_threads_gives_the_same_tables(monkeypatch):
    booster = _booster("multiclass", False, seed=5)
    trees = booster.dump_model()["tree_info"]
    whole = treeshap.build_tables(trees, 5, 3)
    monkeypatch.setattr(treeshap, "BATCH_CELLS", 5_000)  # dozens of batches
    batched = treeshap.build_tables(trees, 5, 3, threads=2)
    np.testing.assert_array_equal(batched.table, whole.table)
    np.testing.assert_array_equal(batched.offset, whole.offset)


def test_too_large_tables_fall_back_to_lightgbms(monkeypatch):
    booster = _booster("binary", False, seed=3)
    X = _awkward(300)
    monkeypatch.setattr(treeshap, "MAX_TABLE_BYTES", 1000)
    assert leaf_tables(booster, booster.num_trees() - 1, X.shape[1], 1) is None
    contrib, _ = raw_contributions(booster, X, booster.num_trees() - 1, 2, "exact")
    reference = booster.predict(X, pred_contrib=True, num_iteration=booster.num_trees() - 1)
    np.testing.assert_array_equal(contrib[:, 0, :], reference[:, :-1])


def _cached_policy_tables(booster, folder, monkeypatch, version="v1"):
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(folder))
    booster.__dict__.pop("_advisor_leaf_tables", None)  # as in a new process
    return leaf_tables(booster, booster.num_trees(), 5, 1, 1, version)


def test_the_disk_cache_gives_the_built_tables_and_is_keyed_by_version(tmp_path, monkeypatch):
    booster = _booster("binary", True, seed=6)
    X = _awkward(400)
    built = _cached_policy_tables(booster, tmp_path, monkeypatch)
    (stored,) = tmp_path.glob("*.npz")
    monkeypatch.setattr(table_cache, "build_tables", lambda *a, **k: pytest.fail("built again"))
    read = _cached_policy_tables(booster, tmp_path, monkeypatch)
    assert read is not built
    np.testing.assert_array_equal(read.contributions(X)[0], built.contributions(X)[0])
    with np.load(stored, allow_pickle=False) as arrays:  # plain arrays only
        assert all(arrays[name].dtype != object for name in arrays.files)
    monkeypatch.undo()
    _cached_policy_tables(booster, tmp_path, monkeypatch, version="v2")  # another bundle
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "wrong shape"])
def test_a_damaged_cache_file_is_built_again_and_replaced(tmp_path, monkeypatch, damage):
    booster = _booster("binary", False, seed=7)
    X = _awkward(300)
    reference = booster.predict(X, pred_contrib=True)[:, :-1]
    _cached_policy_tables(booster, tmp_path, monkeypatch)
    (stored,) = tmp_path.glob("*.npz")
    if damage == "truncated":
        stored.write_bytes(stored.read_bytes()[:5000])
    elif damage == "not a zip":
        stored.write_bytes(b"\x93NUMPY not the tables")
    else:
        with np.load(stored, allow_pickle=False) as arrays:
            kept = {name: arrays[name] for name in arrays.files}
        kept["offset"] = kept["offset"] + np.int32(10**6)  # rows past the table's end
        np.savez(stored, **kept)
    tables = _cached_policy_tables(booster, tmp_path, monkeypatch)
    np.testing.assert_allclose(tables.contributions(X)[0][:, 0, :], reference, rtol=0, atol=1e-12)
    booster.__dict__.pop("_advisor_leaf_tables", None)
    monkeypatch.setattr(table_cache, "build_tables", lambda *a, **k: pytest.fail("built again"))
    assert leaf_tables(booster, booster.num_trees(), 5, 1, 1, "v1") is not None  # replaced


def test_the_disk_cache_can_be_turned_off(tmp_path, monkeypatch):
    booster = _booster("binary", False, seed=8)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ADVISOR_CACHE_DIR", "off")
    booster.__dict__.pop("_advisor_leaf_tables", None)
    assert leaf_tables(booster, booster.num_trees(), 5, 1, 1, "v1") is not None
    assert not list(tmp_path.rglob("*.npz"))
    monkeypatch.delenv("ADVISOR_CACHE_DIR")
    booster.__dict__.pop("_advisor_leaf_tables", None)
    leaf_tables(booster, booster.num_trees(), 5, 1, 1, "v1")
    assert len(list((tmp_path / "xdg" / "advisor" / "treeshap").glob("*.npz"))) == 1


def test_a_cache_file_that_cannot_be_touched_still_serves(tmp_path, monkeypatch):
    """A shared or read-only cache folder: the file's use time cannot be set, the tables are
    read all the same (not built again, no error)."""
    booster = _booster("binary", False, seed=9)
    built = _cached_policy_tables(booster, tmp_path, monkeypatch)

    def refused(*args, **kwargs):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(table_cache.os, "utime", refused)
    monkeypatch.setattr(table_cache, "build_tables", lambda *a, **k: pytest.fail("built again"))
    read = _cached_policy_tables(booster, tmp_path, monkeypatch)
    assert read is not None and read is not built
