"""`--track`: one analysis of the small case logged to a temporary MLflow store (SQLite, no
server), read back with MLflow's own client; each logged model loaded and compared with its
bundle; `--register` and the alias `champion`. MLflow is the `advisor-ship[mlflow]` extra, which CI
installs: these tests run there, they do not skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT, awkward_rows, synthetic_frame, write_small_case

import advisor
from advisor.cli.main import main
from advisor.core.errors import InputError
from advisor.track.tracking import CHAMPION, DIGEST_CHARS, track_result

REGISTERED = "small-decision"


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """`advisor analyze small.yaml --track sqlite:///... --register small-decision`, once."""
    home = tmp_path_factory.mktemp("tracking")
    case = write_small_case(home)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.chdir(home)  # MLflow keeps a SQLite store's artefacts in ./mlruns
        out = CliRunner().invoke(
            main,
            ["analyze", str(case), "--out", "runs", "--track", uri, "--register", REGISTERED],
        )
    assert out.exit_code == 0, out.output
    folder = home / "runs" / "small"
    result = json.loads((folder / "result.json").read_text())
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("small")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return {"uri": uri, "folder": folder, "result": result, "run": runs[0], "out": out}


def logged_models(tracked) -> dict:
    """The run's logged models by policy name."""
    run = tracked["run"]
    with mlflow_store(tracked["uri"]):
        models = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
    return {m.tags["policy"]: m for m in models}


def decisions(column) -> list:
    """Decisions as a list, None where a row got none."""
    if isinstance(column, pd.DataFrame):
        column = column["decision"]
    column = column.astype(object)
    return [None if pd.isna(d) else d for d in column]


class mlflow_store:
    """MLflow pointed at a store for a block, then unset again."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *exc) -> None:
        mlflow.set_tracking_uri(None)


def test_the_run_holds_the_analysis_params_metrics_tags_and_artefacts(tracked, tmp_path):
    run, result = tracked["run"], tracked["result"]
    case = result["case"]
    assert run.info.status == "FINISHED"
    assert f"MLflow:   run {run.info.run_id}" in tracked["out"].output

    params = run.data.params
    assert params["case"] == "small" and params["seed"] == "3"
    assert json.loads(params["costs"]) == case["costs"]["matrix"]
    assert params["volume"] == "500 per day" and params["timing"] == "periodic"
    assert params["option.bootstrap_resamples"] == str(case["options"]["bootstrap_resamples"])
    assumptions = result["maintenance"]["assumptions"]
    assert params["assumption.hourly_rate"] == str(assumptions["hourly_rate"]["value"])
    assert params["assumption.realtime-ml.serving_hours"] == str(
        assumptions["realtime-ml.serving_hours"]["value"]
    )

    metrics = run.data.metrics
    for name, scored in result["evaluation"]["policies"].items():
        cost = scored["cost_per_decision"]
        assert metrics[f"{name}/cost_per_decision"] == pytest.approx(cost["estimate"])
        assert metrics[f"{name}/cost_per_decision_low"] == pytest.approx(cost["low"])
        assert metrics[f"{name}/cost_per_decision_high"] == pytest.approx(cost["high"])
        assert metrics[f"{name}/p99_latency_ms"] == pytest.approx(result["latency"][name]["p99_ms"])
    capture = result["evaluation"]["rules_capture"]
    assert metrics["rules_capture_high"] == pytest.approx(capture["high"])
    assert metrics["experiment/n_per_arm"] == result["experiment"]["n_per_arm"]
    assert metrics["experiment/days_needed"] == result["experiment"]["days_needed"]
    for option, values in result["recommendation"]["options"].items():
        assert metrics[f"{option}/net_annual_value"] == pytest.approx(values["net"]["estimate"])
        assert metrics[f"{option}/net_annual_value_low"] == pytest.approx(values["net"]["low"])
    p_best = result["recommendation"]["p_best"]
    assert metrics.get("p_best") == (None if p_best is None else pytest.approx(p_best))
    assert "confidence" not in metrics

    tags, manifest = run.data.tags, result["manifest"]
    assert tags["recommendation"] == result["recommendation"]["option"]
    assert tags["data_sha256"] == manifest["data_sha256"]
    assert tags["git_commit"] == manifest["git_commit"]
    assert tags["advisor_version"] == manifest["advisor_version"]

    client = mlflow.MlflowClient(tracked["uri"])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "result.json"} <= names
    local = client.download_artifacts(run.info.run_id, "result.json", str(tmp_path))
    assert Path(local).read_bytes() == (tracked["folder"] / "result.json").read_bytes()

    (data,) = run.inputs.dataset_inputs
    assert data.dataset.digest == manifest["data_sha256"][:DIGEST_CHARS]
    assert data.dataset.name == "small"
    assert json.loads(data.dataset.source)["uri"].endswith("/small.csv")


def test_each_logged_model_decides_as_its_bundle(tracked, tmp_path):
    folder = tracked["folder"]
    models = logged_models(tracked)
    assert sorted(models) == sorted(p.name for p in (folder / "policies").iterdir())
    rows = awkward_rows(synthetic_frame(300, seed=7)).drop(columns="outcome")
    whole = synthetic_frame(100, seed=8).astype({"age": "int64"})  # an int64 column, as JSON gives
    with mlflow_store(tracked["uri"]):
        for name, model in models.items():
            policy = advisor.load_policy(folder / "policies" / name)
            assert model.tags["model_version"] == policy.version
            loaded = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
            got = loaded.predict(rows)
            assert decisions(got) == decisions(policy.decide(rows))
            assert decisions(loaded.predict(whole)) == decisions(policy.decide(whole))
            assert set(got["model_version"]) == {policy.version}
            if policy.probabilistic:
                proba = policy.predict_proba(rows)
                for j, cls in enumerate(policy.costs.classes):
                    np.testing.assert_allclose(got[f"p_{cls}"], proba[:, j])
            if policy.kind == "rules":
                np.testing.assert_array_equal(got["rule"], policy.decide_batch(rows).rule)
            why = loaded.predict(rows, params={"reasons": 2})
            library = policy.explain(rows, 2).frame()
            assert list(why["reason_1"]) == list(library["reason_1"])
            assert list(why["reason_2"]) == list(library["reason_2"])
            inputs = loaded.metadata.get_input_schema()
            required = {c.name for c in inputs.inputs if c.required}
            assert required == set(policy.input_columns())
            files = Path(
                mlflow.artifacts.download_artifacts(
                    model.artifact_location, dst_path=str(tmp_path / name)
                )
            )
            assert not list(files.rglob("*.pkl")), "a logged model must not be a pickle"


def test_register_points_champion_at_the_recommended_policy(tracked, tmp_path):
    result = tracked["result"]
    option = result["recommendation"]["option"]
    policy = result["recommendation"]["options"][option]["policy"]
    if option == "ship-rules":
        assert policy == result["recommendation"]["rules_policy"]
    client = mlflow.MlflowClient(tracked["uri"])
    version = client.get_model_version_by_alias(REGISTERED, CHAMPION)
    assert version.source == f"models:/{logged_models(tracked)[policy].model_id}"
    assert version.run_id == tracked["run"].info.run_id
    assert f"Champion: models:/{REGISTERED}@{CHAMPION} (version {version.version})" in (
        tracked["out"].output
    )
    rows = synthetic_frame(50, seed=9)
    bundle = advisor.load_policy(tracked["folder"] / "policies" / policy)
    with mlflow_store(tracked["uri"]):
        champion = f"models:/{REGISTERED}@{CHAMPION}"
        got = mlflow.pyfunc.load_model(champion).predict(rows)
        local = mlflow.artifacts.download_artifacts(champion, dst_path=str(tmp_path / "model"))
    assert decisions(got) == decisions(bundle.decide(rows))

    # As on a Spark worker: the model copied to a fresh process where advisor is not
    # installed; the model brings advisor's code with it.
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code = f"""
import sys
sys.path = [p for p in sys.path if p not in ({str(ROOT)!r}, "", ".")]
try:
    import advisor
    sys.exit("advisor was importable before loading the model")
except ImportError:
    pass
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model({local!r})
out = model.predict(pd.read_csv({str(tmp_path / "rows.csv")!r}))
print(out["decision"].astype(object).where(out["decision"].notna(), None).to_json(orient="values"))
"""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == decisions(bundle.decide(rows))


def test_a_notebook_result_is_tracked_and_the_callers_mlflow_is_left_alone(
    small_run, tmp_path, monkeypatch
):
    """`advise(..., track=...)` logs through `track_result`: no run folder on disk; a URI
    given is used for the call only, and without one MLflow's own default store is used
    (here the one MLFLOW_TRACKING_URI names)."""
    result, _ = small_run
    store = f"sqlite:///{tmp_path / 'notebook.db'}"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    given = track_result(result, uri=store)
    assert given.uri == store and not mlflow.is_tracking_uri_set()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    default = track_result(result)
    assert default.uri == store and default.experiment_id == given.experiment_id
    assert default.run_id != given.run_id and default.registered is None
    run = mlflow.MlflowClient(store).get_run(default.run_id)
    assert run.data.tags["recommendation"] == result.recommendation.option
    assert sorted(default.models) == sorted(result.policies)
    rows = synthetic_frame(40, seed=11)
    ml = mlflow.pyfunc.load_model(default.models["ml"])
    assert decisions(ml.predict(rows)) == decisions(result.policies["ml"].decide(rows))


def test_register_without_track_is_refused_before_any_work(tmp_path: Path):
    out = CliRunner().invoke(
        main, ["analyze", "no-such.yaml", "--register", "x", "--out", str(tmp_path / "o")]
    )
    assert out.exit_code == 2
    assert "--register needs --track" in out.stderr
    with pytest.raises(InputError, match="needs --track"):
        advisor.advise(pd.DataFrame({"a": [1]}), register="x")


def test_without_mlflow_track_is_one_line_exit_2(tmp_path: Path, monkeypatch):
    case = write_small_case(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    out = CliRunner().invoke(
        main, ["analyze", str(case), "--out", str(tmp_path / "runs"), "--track"]
    )
    assert out.exit_code == 2
    assert out.stderr.strip().splitlines() == [
        "advisor: error: --track needs MLflow, which is not installed: "
        "pip install 'advisor-ship[mlflow]'"
    ]
    assert not (tmp_path / "runs").exists()
