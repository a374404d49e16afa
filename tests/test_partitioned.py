"""`advisor analyze DATASET --engine dask`: the same answer as in memory on data that fits, a
sample drawn exactly stratified by hash, bootstrap intervals from per-partition sums that
match the closed form, and bad input as exit 2 with one line and nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import synthetic_frame

import advisor
from advisor.analysis import every_row, partitioned
from advisor.analysis.partitions import (
    KEY,
    PART,
    Blocking,
    draw_limits,
    take_sample,
    unit_hash,
)
from advisor.cli.main import main

distributed = (
    pytest.importorskip("distributed") if not os.environ.get("CI") else __import__("distributed")
)
COSTS = ("--cost-fp", "10", "--cost-fn", "50")


def run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def write_parts(frame: pd.DataFrame, folder: Path, parts: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        frame.iloc[rows].to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as local:
        yield local


def test_on_data_that_fits_the_dask_run_is_the_in_memory_run(cluster, tmp_path: Path):
    """Time-ordered data, a sample as large as the data: the same rows fit the same policies
    and every figure, interval and the recommendation agree with the in-memory analysis."""
    frame = synthetic_frame(3000, seed=4, with_time=True)
    frame["outcome"] = (frame["outcome"] == "yes").astype(int)
    data = tmp_path / "all.parquet"
    frame.to_parquet(data, index=False)
    parts = write_parts(frame, tmp_path / "parts")
    common = ("--target", "outcome", *COSTS, "--time", "when", "-q")
    memory = run("analyze", data, "--out", tmp_path / "memory", *common)
    assert memory.exit_code == 0, memory.output
    dask = run(
        "analyze",
        parts,
        "--engine",
        "dask",
        "--scheduler",
        cluster.scheduler_address,
        "--fit-rows",
        "5000",
        "--out",
        tmp_path / "dask",
        *common,
    )
    assert dask.exit_code == 0, dask.output
    a = json.loads((tmp_path / "memory" / "all" / "result.json").read_text())
    b = json.loads((tmp_path / "dask" / "parts" / "result.json").read_text())
    assert b["recommendation"]["option"] == a["recommendation"]["option"]
    assert b["evaluation"]["n_test"] == a["evaluation"]["n_test"] == 600
    for name, score in a["evaluation"]["policies"].items():
        other = b["evaluation"]["policies"][name]
        for key in ("estimate", "low", "high"):
            assert other["cost_per_decision"][key] == pytest.approx(
                score["cost_per_decision"][key], rel=1e-9
            ), name
        assert other["decision_shares"] == pytest.approx(score["decision_shares"])
        assert other["confusion"]["counts"] == score["confusion"]["counts"]
    assert b["evaluation"]["bootstrap"]["method"] == "blocks"
    fit = b["data"]["scale"]["fit"]
    assert fit["train_rows"] == fit["train_available"] == 1800
    assert fit["test_rows_scored"] == 600
    assert b["data"]["split"]["train"]["to"] == a["data"]["split"]["valid"]["from"]
    curve = b["data"]["scale"]["learning_curve"]
    assert [p["rows"] for p in curve["points"]] == [450, 900, 1800]
    assert all(p["ml"]["low"] <= p["ml"]["estimate"] <= p["ml"]["high"] for p in curve["points"])
    same_shadow(a["shadow"], b["shadow"])
    same_drift(a["drift"], b["drift"])


def same_shadow(a: dict, b: dict) -> None:
    """The shadow summed per partition is the in-memory shadow: the same counts, pairs and
    rules, the same intervals where both resample the same units, overlapping ones elsewhere."""
    assert a["available"] and b["available"]
    for key in ("n", "disagreements", "treatment_right", "control_right", "ties"):
        assert b[key] == a[key], key
    for key in ("pairs", "rules_on_disagreements"):
        assert len(b[key]) == len(a[key]) > 0, key
        for x, y in zip(a[key], b[key], strict=True):
            assert y.keys() == x.keys()
            for field, value in x.items():
                assert y[field] == (pytest.approx(value) if isinstance(value, float) else value)
    for key in ("disagreement_rate", "saving_per_decision"):
        assert b[key] == pytest.approx(a[key], rel=1e-9), key
    for key in ("treatment_right_share", "control_right_share", "saving_per_disagreement"):
        assert b[key]["estimate"] == pytest.approx(a[key]["estimate"], rel=1e-9), key
        assert b[key]["low"] <= a[key]["estimate"] <= b[key]["high"], key
    assert b["disagreements_per_day"] == pytest.approx(a["disagreements_per_day"])


def same_drift(a: dict, b: dict) -> None:
    """The drift windows counted per partition are the in-memory windows: the same rows, spans,
    costs and PSI against the same reference bins, and the cadence chosen on validation."""
    assert a["assessable"] and b["assessable"]
    assert len(b["windows"]) == len(a["windows"]) >= 3
    for x, y in zip(a["windows"], b["windows"], strict=True):
        assert (y["n"], y["start"], y["end"]) == (x["n"], x["start"], x["end"])
        assert y["psi"] == pytest.approx(x["psi"], rel=1e-9, abs=1e-12)
        assert y["prediction_psi"] == pytest.approx(x["prediction_psi"], rel=1e-9)
        assert y["flags"] == x["flags"]
        for name, cost in x["cost_per_decision"].items():
            got = y["cost_per_decision"][name]
            assert got["estimate"] == pytest.approx(cost["estimate"], rel=1e-9), name
            assert got["low"] < cost["estimate"] < got["high"], name
        assert y["ml_advantage"]["estimate"] == pytest.approx(x["ml_advantage"]["estimate"])
    assert b["max_psi"] == pytest.approx(a["max_psi"])
    assert b["cadence"] == a["cadence"]


def test_a_sampled_fit_agrees_within_sampling_error(cluster, tmp_path: Path):
    """Without a time column, on a sample of half the training rows: every test row is still
    scored, the costs agree with the in-memory run within their intervals, and each hash-bucket
    interval is as wide as the closed form from its confusion table (costs constant per cell)."""
    frame = synthetic_frame(4000, seed=9)
    parts = write_parts(frame, tmp_path / "parts", parts=3)
    costs = {"fp": 10, "fn": 50}
    options = {"bootstrap_resamples": 400}
    memory = advisor.advise(frame, target="outcome", costs=costs, **options)
    dask = advisor.advise_partitioned(
        parts,
        target="outcome",
        costs=costs,
        scheduler=cluster.scheduler_address,
        fit_rows=1200,
        **options,
    )
    a, b = memory.data["evaluation"], dask.data["evaluation"]
    assert abs(b["n_test"] - 800) < 4 * np.sqrt(4000 * 0.2 * 0.8)
    assert dask.data["data"]["scale"]["fit"]["train_rows"] == pytest.approx(1200, abs=2)
    assert dask.data["data"]["scale"]["fit"]["test_rows_scored"] == b["n_test"]
    for name in ("baseline", "ml"):
        x, y = a["policies"][name]["cost_per_decision"], b["policies"][name]["cost_per_decision"]
        assert y["low"] <= x["estimate"] <= y["high"] or x["low"] <= y["estimate"] <= x["high"]
        confusion = b["policies"][name]["confusion"]
        counts = np.array(confusion["counts"], dtype=float).ravel()
        totals = np.array(confusion["total_cost"]).ravel()
        n = counts.sum()
        square = (totals[counts > 0] ** 2 / counts[counts > 0]).sum() / n
        closed_form = 2 * 1.96 * np.sqrt((square - (totals.sum() / n) ** 2) / n)
        assert (y["high"] - y["low"]) / closed_form == pytest.approx(1, abs=0.2), name
    assert dask.recommendation.option == memory.recommendation.option
    x, y = memory.data["shadow"], dask.data["shadow"]
    assert y["n"] == b["n_test"]  # the shadow read every test row
    for key in ("disagreement_rate", "saving_per_decision"):
        x, y = memory.data["shadow"][key], dask.data["shadow"][key]
        assert y["low"] <= x["estimate"] <= y["high"] or x["low"] <= y["estimate"] <= x["high"]


def test_bucket_bootstrap_matches_the_closed_form_and_covers():
    """Poisson(1) weights on 1,000 hash buckets: the replicates' spread is the standard error
    sd/sqrt(n), and the 95 % interval covers the true mean 95 % of the time over 300 seeds."""
    blocking = Blocking("buckets", buckets=1000)
    n, seeds = 20_000, 300
    rng = np.random.default_rng(0)
    keys = np.arange(n, dtype=np.uint64)
    covered, ratios = 0, []
    for seed in range(seeds):
        costs = np.where(rng.random(n) < 0.3, 50.0, 0.0)  # true mean 15
        _, at = np.unique(blocking.keys(keys, None, seed), return_inverse=True)
        sums = np.bincount(at, weights=costs)[:, None]
        sizes = np.bincount(at).astype(float)
        reps = every_row.unit_replicates(sums, sizes, blocking, 400, seed)[:, 0]
        low, high = np.percentile(reps, [2.5, 97.5])
        covered += low <= 15.0 <= high
        ratios.append(reps.std() / (costs.std() / np.sqrt(n)))
    assert 0.92 <= covered / seeds <= 0.98
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.05)


def test_the_hash_is_uniform_and_the_sample_exactly_stratified():
    keys = np.arange(200_000, dtype=np.uint64)
    u = unit_hash(keys, seed=3, salt=2)
    assert np.array_equal(u, unit_hash(keys, seed=3, salt=2))
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    assert (np.abs(counts - 10_000) < 5 * 100).all()  # within 5 binomial sds
    assert np.corrcoef(u, unit_hash(keys, seed=4, salt=2))[0, 1] == pytest.approx(0, abs=0.01)
    rng = np.random.default_rng(1)
    y = (rng.random(len(keys)) < 0.1).astype(np.int64)
    part = np.minimum(2, (unit_hash(keys, 3, 1) * 5).astype(int) // 2)
    counts = np.bincount(part * 2 + y, minlength=6).reshape(3, 2)
    keep, limits = draw_limits(counts, np.array([5000, 1000, 1000]))
    chosen = u < limits[part, y]
    candidates = pd.DataFrame({PART: part[chosen], KEY: keys[chosen], "__advisor_draw": u[chosen]})
    sample = take_sample(candidates, keep, y[chosen])
    got = np.bincount(sample[PART] * 2 + y[sample[KEY].to_numpy().astype(int)], minlength=6)
    assert got.reshape(3, 2).tolist() == keep.tolist()
    assert keep[0].tolist() == [round(5000 * counts[0, 0] / counts[0].sum()), keep[0, 1]]
    assert keep[0].sum() == 5000


def _differing(folder: Path) -> None:
    frame = synthetic_frame(200, seed=1)
    write_parts(frame, folder, parts=2)
    frame.assign(age=frame["age"].astype(str)).to_parquet(folder / "part-01.parquet")


def _no_target(folder: Path) -> None:
    frame = synthetic_frame(200, seed=1)
    write_parts(frame, folder, parts=2)
    frame.drop(columns="outcome").to_parquet(folder / "part-01.parquet", index=False)


BAD = {
    "no parquet files": (lambda f: f.mkdir(), "holds no Parquet files"),
    "differing schemas": (_differing, "partitions differ: column 'age' is string here"),
    "target missing": (_no_target, "target column 'outcome' is missing from this partition"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_partitions_exit_2_with_one_line_and_write_nothing(tmp_path: Path, name: str):
    make, says = BAD[name]
    folder = tmp_path / "parts"
    make(folder)
    out = tmp_path / "out"
    result = run(
        "analyze", folder, "--engine", "dask", "--target", "outcome", *COSTS, "--out", out, "-q"
    )
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_an_unreachable_scheduler_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(partitioned, "CONNECT_TIMEOUT", "1s")
    folder = write_parts(synthetic_frame(200, seed=1), tmp_path / "parts", parts=2)
    out = tmp_path / "out"
    result = run(
        "analyze", folder, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9",
        "--target", "outcome", *COSTS, "--out", out, "-q",
    )  # fmt: skip
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.stderr
    assert "tcp://127.0.0.1:9" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--fit-rows", "500"), ("--fit-engine", "lightgbm-dask")])
def test_dask_only_flags_need_the_dask_engine(tmp_path: Path, flag: str, value: str):
    frame = synthetic_frame(200, seed=1)
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = run("analyze", tmp_path / "d.csv", "--target", "outcome", *COSTS, flag, value)
    assert result.exit_code == 2
    assert f"{flag} needs --engine dask" in result.stderr


@pytest.fixture(scope="module")
def process_cluster():
    """Two worker processes: LightGBM's Dask training runs one network member per process."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


def test_lightgbm_dask_fits_ml_on_every_training_row(process_cluster, tmp_path: Path):
    """`--fit-engine lightgbm-dask`: ML is refitted on all training rows across the workers at
    the sample's rounds, its gain over the sampled fit has a paired interval, and the bundle
    holds LightGBM's text model, which scores like the run's policy."""
    frame = synthetic_frame(3000, seed=9)
    parts = write_parts(frame, tmp_path / "parts", parts=3)
    result = advisor.advise_partitioned(
        parts,
        target="outcome",
        costs={"fp": 10, "fn": 50},
        scheduler=process_cluster.scheduler_address,
        fit_rows=600,
        fit_engine="lightgbm-dask",
        bootstrap_resamples=200,
    )
    scale = result.data["data"]["scale"]
    fit, every_row = scale["fit"], scale["fit_engine"]
    assert fit["train_rows"] == pytest.approx(600, abs=2)
    assert fit["train_rows"] < fit["train_available"]
    assert every_row["train_rows"] == fit["train_available"]
    ml = result.policies["ml"]
    assert every_row["rounds"] == ml.n_trees_ == ml.sample_fit_.n_trees_
    assert ml.model_text() != ml.sample_fit_.model_text()
    gain = every_row["gain"]
    assert gain["low"] <= gain["estimate"] <= gain["high"]
    assert gain["estimate"] == pytest.approx(
        every_row["valid_cost"]["estimate"] - every_row["sample_valid_cost"]["estimate"]
    )
    _, files = ml.to_bundle()
    assert files["model.txt"].startswith("tree")
    from advisor.policies.ml import MLPolicy

    parameters, _ = ml.to_bundle()
    again = MLPolicy.from_bundle(ml.costs, ml.spec, parameters, files)
    np.testing.assert_allclose(again.predict_proba(frame), ml.predict_proba(frame))


def test_lightgbm_dask_refuses_rows_the_workers_cannot_hold(cluster, tmp_path: Path, monkeypatch):
    """When the training rows would not fit in the workers' memory: exit 2, one line."""
    from advisor.analysis import dask_fit

    monkeypatch.setattr(dask_fit, "HELD_PER_CELL", 10**9)
    parts = write_parts(synthetic_frame(600, seed=1), tmp_path / "parts", parts=2)
    out = tmp_path / "out"
    got = run(
        "analyze", parts, "--engine", "dask", "--scheduler", cluster.scheduler_address,
        "--target", "outcome", *COSTS, "--fit-engine", "lightgbm-dask", "--out", out, "-q",
    )  # fmt: skip
    assert got.exit_code == 2, got.output
    assert "lightgbm-dask" in got.output and "GiB" in got.output
    assert len(got.output.strip().splitlines()) == 1
    assert not (out / "parts").exists()


def test_lightgbm_dask_room_is_checked_worker_by_worker():
    """Each worker's files (round robin) at HELD_PER_CELL bytes a cell, on top of its memory
    now, must stay within MEMORY_SHARE of its limit; the busiest worker decides."""
    from advisor.analysis.dask_fit import HELD_PER_CELL, MEMORY_SHARE, check_room
    from advisor.core.errors import InputError

    mb = 1024**2

    class Client:
        def scheduler_info(self):
            worker = {"memory_limit": 1000 * mb, "metrics": {"memory": 200 * mb}}
            return {"workers": {"tcp://b": dict(worker), "tcp://a": dict(worker)}}

    features = 10
    room = (1000 * MEMORY_SHARE - 200) * mb / (features * HELD_PER_CELL)  # rows a worker holds
    fits = int(room / 2) - 1  # worker a holds files 0 and 2
    check_room(Client(), [fits, fits, fits], features)
    with pytest.raises(InputError, match=f"holding {2 * (fits + 2):,} of the {3 * (fits + 2):,}"):
        check_room(Client(), [fits + 2] * 3, features)
    check_room(Client(), [fits + 2] * 2, features)  # one file each
    # once encoded, the rows' own float64 cells are already in the worker's memory
    encoded = int((1000 * MEMORY_SHARE - 200) * mb / (features * (HELD_PER_CELL - 8)) / 2) - 1
    check_room(Client(), [encoded] * 3, features, encoded=True)
    with pytest.raises(InputError):
        check_room(Client(), [encoded] * 3, features)
