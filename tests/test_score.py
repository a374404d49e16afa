"""`advisor score`: CSV, CSV.gz, Parquet and folders in, Parquet out, the bundle's own decisions,
bad input as exit 2, null decisions counted, and the Dask engine agreeing with the local one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import awkward_rows, synthetic_frame

import advisor
from advisor.cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = awkward_rows(synthetic_frame(5000, seed=21), seed=5).drop(columns="outcome")
    frame.insert(0, "customer", [f"c-{i}" for i in range(len(frame))])
    frame["unused"] = "ignored"
    return frame


def expected(folder: Path, name: str, frame: pd.DataFrame) -> pd.Series:
    return advisor.load_policy(folder / "policies" / name).decide(frame).astype(object)


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet", "folder"])
@pytest.mark.parametrize("name", ["rules", "ml"])
def test_score_writes_the_bundles_decisions(small_run, rows, tmp_path: Path, name: str, fmt: str):
    _, folder = small_run
    if fmt == "folder":
        source = tmp_path / "parts"
        source.mkdir()
        for i, part in enumerate(np.array_split(np.arange(len(rows)), 3)):
            rows.iloc[part].to_parquet(source / f"part-{i}.parquet", index=False)
    elif fmt == "parquet":
        source = tmp_path / "rows.parquet"
        rows.to_parquet(source, index=False)
    else:
        source = tmp_path / f"rows.{fmt}"
        rows.to_csv(source, index=False)
    out = tmp_path / "out" / "decisions.parquet"
    result = run("score", folder / "policies" / name, source, "-o", out, "--id", "customer", "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    table = pq.read_table(out)
    got = table.to_pandas()
    assert got["customer"].tolist() == rows["customer"].tolist()
    assert got["decision"].tolist() == expected(folder, name, rows).tolist()
    policy = advisor.load_policy(folder / "policies" / name)
    assert set(got["policy"]) == {name} and set(got["model_version"]) == {policy.version}
    assert table.schema.field("scored_at").type == pa.timestamp("us", tz="UTC")
    assert got["scored_at"].nunique() == 1
    if name == "ml":
        proba = policy.predict_proba(rows)
        assert np.array_equal(got[["p_no", "p_yes"]].to_numpy(), proba)
        costs = policy.costs.expected_costs(proba, rows)
        assert np.allclose(got[["expected_cost_no", "expected_cost_yes"]].to_numpy(), costs)
    else:
        index = policy.match_index(rows)
        assert got["rule"].tolist() == np.where(index == len(policy.rules_), 0, index + 1).tolist()
        # a rule list's probabilities: the class frequencies of the rule that decided
        assert np.array_equal(got[["p_no", "p_yes"]].to_numpy(), policy.proba_[index])
    assert "unused" not in got.columns


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_policy_that_reads_no_column_decides_every_row(small_run, rows, tmp_path, fmt):
    """The constant decision reads no input column; without --id every row still gets one."""
    _, folder = small_run
    source = tmp_path / f"rows.{fmt}"
    rows.to_parquet(source, index=False) if fmt == "parquet" else rows.to_csv(source, index=False)
    out = tmp_path / "decisions.parquet"
    result = run("score", folder / "policies" / "baseline", source, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    got = pq.read_table(out).to_pandas()
    assert len(got) == len(rows)
    assert got["decision"].tolist() == expected(folder, "baseline", rows).tolist()


def test_stray_text_in_a_number_column_reads_as_missing(small_run, rows, tmp_path: Path):
    _, folder = small_run
    frame = rows.head(400).copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[frame.index[350], "age"] = "unknown"
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "d.parquet"
    assert (
        run("score", folder / "policies" / "rules", tmp_path / "rows.csv", "-o", out).exit_code == 0
    )
    want = expected(folder, "rules", frame.assign(age=pd.to_numeric(frame["age"], errors="coerce")))
    assert pd.read_parquet(out)["decision"].tolist() == want.tolist()


def test_a_missing_column_is_exit_2_naming_it(small_run, rows, tmp_path: Path):
    _, folder = small_run
    rows.drop(columns="income").to_parquet(tmp_path / "rows.parquet")
    out = tmp_path / "new" / "folders" / "d.parquet"
    result = run("score", folder / "policies" / "ml", tmp_path / "rows.parquet", "-o", out)
    assert result.exit_code == 2
    assert "no column 'income', which the policy reads" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()
    result = run(
        "score", folder / "policies" / "ml", tmp_path / "rows.parquet", "-o", out, "--id", "nope"
    )
    assert result.exit_code == 2 and "no column 'nope'" in result.stderr


def test_other_bad_input_is_exit_2(small_run, tmp_path: Path):
    _, folder = small_run
    bundle = folder / "policies" / "rules"
    (tmp_path / "rows.txt").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.parquet").write_text("not parquet")
    for source, message in [
        (tmp_path / "nowhere.csv", "no such input"),
        (tmp_path / "rows.txt", "unsupported input"),
        (tmp_path / "empty.csv", "the file is empty"),
        (tmp_path / "broken.parquet", "cannot read Parquet"),
    ]:
        result = run("score", bundle, source, "-o", tmp_path / "d.parquet")
        assert result.exit_code == 2, (source, result.output)
        assert message in result.stderr
    result = run("score", tmp_path, tmp_path / "rows.txt", "-o", tmp_path / "d.parquet")
    assert result.exit_code == 2 and "not a policy bundle" in result.stderr


@pytest.fixture(scope="module")
def amount_bundle(tmp_path_factory) -> Path:
    """An ML bundle whose costs depend on each row's `amount`."""
    costs = {"matrix": {"no": {"no": 0, "yes": "0.01 * amount"}, "yes": {"no": 100, "yes": 30}}}
    result = advisor.advise(
        synthetic_frame(), target="outcome", costs=costs, seed=3, name="amounts"
    )
    return result.save(tmp_path_factory.mktemp("amounts")) / "policies" / "ml"


def test_rows_without_their_cost_get_a_null_decision_and_are_counted(amount_bundle, rows, tmp_path):
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    out = tmp_path / "d.parquet"
    result = run("score", amount_bundle, tmp_path / "rows.parquet", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    missing = rows["amount"].isna().to_numpy()
    assert missing.sum() > 0
    assert np.array_equal(got["decision"].isna().to_numpy(), missing)
    assert got["expected_cost_yes"].isna().to_numpy()[missing].all()
    assert got["expected_cost_no"].notna().all()
    assert f"{missing.sum():,} rows got no decision (null): amount missing" in result.stderr
    assert (
        got["decision"][~missing].tolist() == expected_rows(amount_bundle, rows)[~missing].tolist()
    )
    assert "amount" in advisor.load_policy(amount_bundle).input_columns()


def expected_rows(bundle: Path, frame: pd.DataFrame) -> pd.Series:
    return advisor.load_policy(bundle).decide(frame).astype(object)


def test_dask_engine_agrees_with_the_local_engine(small_run, rows, tmp_path: Path):
    distributed = (
        pytest.importorskip("distributed")
        if not os.environ.get("CI")
        else __import__("distributed")
    )
    _, folder = small_run
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(rows)), 4)):
        rows.iloc[part].to_parquet(parts / f"part-{i:02d}.parquet", index=False)
    with distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        for name in ("rules", "ml"):
            bundle = folder / "policies" / name
            local, dask = tmp_path / f"{name}-local.parquet", tmp_path / f"{name}-dask"
            assert run("score", bundle, parts, "-o", local, "--id", "customer", "-q").exit_code == 0
            result = run(
                "score",
                bundle,
                parts,
                "-o",
                dask,
                "--id",
                "customer",
                "--engine",
                "dask",
                "--scheduler",
                cluster.scheduler_address,
                "-q",
            )
            assert result.exit_code == 0, result.output
            written = sorted(p.name for p in dask.iterdir())
            assert written == [f"part-{i:05d}.parquet" for i in range(len(written))]
            a, b = pd.read_parquet(local), pd.read_parquet(dask)
            assert pq.read_schema(dask / "part-00000.parquet") == pq.read_schema(local)
            assert a.drop(columns="scored_at").equals(b.drop(columns="scored_at"))
            assert b["decision"].tolist() == expected(folder, name, rows).tolist()


def test_score_imports_no_dask_and_help_stays_light():
    import subprocess

    code = (
        "import sys; from advisor.cli.main import main; "
        "print(sorted(m for m in ('dask','distributed','sklearn','lightgbm','pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
