"""Policy bundles: the run folder, loading without pickle, identical decisions, and refusing a
damaged, tampered or incompatible bundle (exit 2 naming the file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import awkward_rows, synthetic_frame

import advisor
from advisor.artefacts.bundle import FORMAT, read_bundle
from advisor.cli.main import main
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.policies.base import BaselinePolicy
from advisor.policies.ml import MLPolicy
from advisor.policies.rules.policy import LearnedRulesPolicy
from advisor.stats.psi import Binner, Reference, feature_binners

CLASSES = {"baseline": BaselinePolicy, "rules": LearnedRulesPolicy, "ml": MLPolicy}


def test_run_folder_holds_report_result_and_a_bundle_per_policy(small_run):
    _, folder = small_run
    assert folder.name == "small"
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == sorted(
        [
            "report.html",
            "result.json",
            *(f"policies/{p}/{f}" for p in CLASSES for f in ("bundle.json", "README.md")),
            "policies/rules/rules.yaml",
            "policies/rules/rules.sql",
            "policies/rules/rules.py",
            "policies/ml/model.txt",
            "policies/ml/calibration.json",
        ]
    )
    assert json.loads((folder / "result.json").read_text())["case"]["name"] == "small"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_loaded_policy_decides_exactly_as_the_fitted_one(small_run, name: str):
    result, folder = small_run
    fitted = result.policies[name]
    loaded = advisor.load_policy(folder / "policies" / name)
    assert type(loaded) is CLASSES[name]
    assert loaded.version == fitted.version and loaded.name == fitted.name
    rows = awkward_rows(synthetic_frame(2000, seed=11))
    assert np.array_equal(loaded.decide_codes(rows), fitted.decide_codes(rows))
    assert (loaded.decide(rows) == fitted.decide(rows)).all()
    if fitted.probabilistic:
        assert np.array_equal(loaded.predict_proba(rows), fitted.predict_proba(rows))
    records = rows.head(300).to_dict("records")
    assert [loaded.decide_one(r) for r in records] == [fitted.decide_one(r) for r in records]
    assert loaded.describe() == fitted.describe()


def test_bundle_json_describes_the_policy(small_run):
    result, folder = small_run
    meta = json.loads((folder / "policies" / "ml" / "bundle.json").read_text())
    assert meta["format"] == FORMAT and meta["kind"] == "ml"
    assert meta["version"] == result.policies["ml"].version
    assert meta["case"] == {"name": "small", "question": "", "currency": "USD"}
    assert meta["classes"] == ["no", "yes"] and meta["decisions"] == ["no", "yes"]
    assert meta["costs"]["matrix"]["yes"] == {"no": 100.0, "yes": 30.0}
    evaluated = result.data["evaluation"]["policies"]["ml"]
    assert meta["expected"]["cost_per_decision"] == evaluated["cost_per_decision"]
    assert meta["expected"]["decision_shares"] == evaluated["decision_shares"]
    assert set(meta["reference"]["features"]) == set(result.policies["ml"].spec.names_)
    assert meta["manifest"]["seed"] == 3
    assert sorted(meta["files"]) == ["README.md", "calibration.json", "model.txt"]
    assert meta["features"]["encoders"][2]["levels"] == ["basic", "plus", "premium"]


def test_no_file_is_a_pickle(small_run):
    _, folder = small_run
    for path in (folder / "policies").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not data.startswith(b"\x80"), path
            data.decode("utf-8")


def test_feature_spec_and_binners_round_trip_as_data():
    frame = synthetic_frame(800, seed=2)
    frame["flag"] = np.where(frame["age"] > 40, "true", "false")
    spec = FeatureSpec(_schema(frame)).fit(frame)
    again = FeatureSpec.from_data(json.loads(json.dumps(spec.to_data())))
    rows = awkward_rows(synthetic_frame(500, seed=4).assign(flag="TRUE"))
    assert np.array_equal(again.encode(rows), spec.encode(rows), equal_nan=True)
    binners = feature_binners(spec, frame)
    clean = spec.clean(rows)
    for name, binner in binners.items():
        copy = Binner.from_dict(json.loads(json.dumps(binner.to_dict())))
        assert np.array_equal(copy.counts(clean[name]), binner.counts(clean[name]))


def _schema(frame: pd.DataFrame):
    from advisor.core.data import Schema

    kinds = {"age": "numeric", "income": "numeric", "plan": "categorical"}
    kinds.update(region="categorical", amount="numeric", flag="boolean")
    return Schema(features=kinds, target="outcome")


def test_the_drift_reference_is_fitted_once_and_shared(small_run):
    result, folder = small_run
    bundle = read_bundle(folder / "policies" / "rules")
    assert isinstance(bundle.reference, Reference)
    assert bundle.reference.to_dict() == result.reference.to_dict()
    assert bundle.reference.rows == result.data["data"]["split"]["train"]["rows"]


@pytest.fixture
def bundle_copy(small_run, tmp_path: Path):
    _, folder = small_run

    def copy(name: str) -> Path:
        return Path(shutil.copytree(folder / "policies" / name, tmp_path / name))

    return copy


def _edit_json(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


DAMAGE = {
    "model changed": ("ml", lambda b: _append(b / "model.txt", "\n"), "model.txt: changed since"),
    "calibration gone": ("ml", lambda b: (b / "calibration.json").unlink(), "calibration.json"),
    "rules changed": (
        "rules",
        lambda b: _append(b / "rules.yaml", "  - when: age < 1\n    decide: 'no'\n"),
        "rules.yaml: changed since",
    ),
    "newer format": (
        "rules",
        lambda b: _edit_json(b / "bundle.json", format="advisor-bundle/2"),
        "bundle format 'advisor-bundle/2' is not one this advisor reads",
    ),
    "not json": ("baseline", lambda b: (b / "bundle.json").write_text("{"), "not JSON"),
    "no bundle.json": ("baseline", lambda b: (b / "bundle.json").unlink(), "no bundle.json"),
    "wrong version": (
        "rules",
        lambda b: _edit_json(b / "bundle.json", version="rules-000000000000"),
        "the files give version",
    ),
    "unknown policy": (
        "baseline",
        lambda b: _edit_json(b / "bundle.json", policy="oracle"),
        "unknown policy 'oracle'",
    ),
}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_bundle_is_refused_naming_the_file(bundle_copy, tmp_path: Path, case: str):
    name, damage, message = DAMAGE[case]
    bundle = bundle_copy(name)
    damage(bundle)
    with pytest.raises(InputError, match=message.split(":")[0]) as err:
        advisor.load_policy(bundle)
    assert message in str(err.value) and str(bundle) in str(err.value)
    rows = tmp_path / "rows.csv"
    synthetic_frame(50).to_csv(rows, index=False)
    out = CliRunner().invoke(
        main, ["score", str(bundle), str(rows), "-o", str(tmp_path / "o.parquet")]
    )
    assert out.exit_code == 2, out.output
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("ship-rules", None),
        ("batch-ml", ["advisor score bundle", "0 2 * * *", "p_<class>"]),
        ("realtime-ml", ["advisor serve bundle", "p99", "advisor.load_policy"]),
    ],
)
def test_export_writes_the_options_bundle_and_how_to_run_it(small_run, tmp_path, option, says):
    result, folder = small_run
    out = tmp_path / "shipped"
    done = CliRunner().invoke(main, ["export", str(folder), "--option", option, "-o", str(out)])
    assert done.exit_code == 0, done.output
    policy = result.data["recommendation"]["options"][option]["policy"]
    assert read_bundle(out).policy.version == result.policies[policy].version
    source = folder / "policies" / policy
    for path in source.iterdir():
        assert (out / "bundle" / path.name).read_bytes() == path.read_bytes()
    readme = (out / "README.md").read_text()
    if says is None:  # ship-rules: the rule list, or the constant decision when none beat it
        constant = result.policies[policy].kind == "baseline"
        decision = result.data["evaluation"]["policies"]["baseline"]["description"]["details"]
        says = (
            [f"decide `{decision['decision']}` for every row", "No code is needed"]
            if constant
            else ["rules.sql", "python bundle/rules.py < rows.csv", "1. If "]
        )
    assert all(text in readme for text in says), readme
    assert f"version `{result.policies[policy].version}`" in readme


def test_export_and_analyze_never_replace_a_folder_advisor_did_not_write(small_run, tmp_path):
    _, folder = small_run
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = CliRunner().invoke(main, ["export", str(folder), "-o", str(mine)])
    assert done.exit_code == 2 and "is not a folder advisor wrote" in done.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    again = CliRunner().invoke(main, ["export", str(folder), "-o", str(tmp_path / "ok")])
    assert again.exit_code == 0
    again = CliRunner().invoke(main, ["export", str(folder), "-o", str(tmp_path / "ok")])
    assert again.exit_code == 0, "a folder export wrote is replaced"
    (tmp_path / "runs" / "small").mkdir(parents=True)
    (tmp_path / "runs" / "small" / "notes.txt").write_text("keep me")
    case = tmp_path / "c.yaml"
    synthetic_frame(300).to_csv(tmp_path / "d.csv", index=False)
    case.write_text(
        'name: small\ndata: d.csv\ntarget: outcome\ncosts:\n  matrix:\n    "no": {"no": 0, "yes": 10}\n'
        '    "yes": {"no": 100, "yes": 30}\n'
    )
    done = CliRunner().invoke(main, ["analyze", str(case), "--out", str(tmp_path / "runs"), "-q"])
    assert done.exit_code == 2 and "is not a run folder" in done.stderr
    assert (tmp_path / "runs" / "small" / "notes.txt").read_text() == "keep me"


def test_a_cost_column_that_is_also_a_feature_is_listed_once(tmp_path):
    from advisor.core.costs import CostMatrix
    from advisor.core.data import Schema
    from advisor.core.features import FeatureSpec
    from advisor.policies.ml import MLPolicy

    costs = CostMatrix.from_mapping(
        {"no": {"skip": 0, "call": 10}, "yes": {"skip": "0.1 * amount", "call": 3}},
        ["skip", "call"],
    )
    spec = FeatureSpec(Schema({"amount": "numeric", "plan": "categorical"}, target="y"))
    spec.fit(pd.DataFrame({"amount": [1.0, 2.0], "plan": ["a", "b"]}))
    assert MLPolicy(costs, spec).input_columns() == ("amount", "plan")
