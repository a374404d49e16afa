"""A model from the user's MLflow registry compared with `--policy NAME=mlflow:MODEL_URI`: the
alias pinned to a version, the bundle's sha256 checked on loading, and bad models refused in
one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import synthetic_frame

import advisor
from advisor.cli.main import main
from advisor.core.errors import InputError

mlflow = pytest.importorskip("mlflow")

COLUMNS = ["age", "income", "plan", "region", "amount"]


class Probabilities(mlflow.pyfunc.PythonModel):
    """A fitted pipeline served as class probabilities, one column per class."""

    def __init__(self, model, columns=None):
        self.model = model
        self.columns = columns

    def predict(self, context, model_input, params=None):
        p = self.model.predict_proba(model_input[COLUMNS])
        names = self.columns or [str(c) for c in self.model.classes_]
        return pd.DataFrame(p, columns=names)


def pipeline():
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    other = synthetic_frame(800, seed=9)
    columns = make_column_transformer(
        (SimpleImputer(), ["age", "income", "amount"]),
        (OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(
        other[COLUMNS], other["outcome"]
    )


def register(name: str, python_model) -> None:
    from mlflow.models import infer_signature

    X = synthetic_frame(50, seed=3)[COLUMNS]
    signature = infer_signature(X, python_model.predict(None, X))
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            signature=signature,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A temporary MLflow store with `scorer` (probabilities) and `wrong` (other columns)."""
    home = tmp_path_factory.mktemp("mlflow")
    patch = pytest.MonkeyPatch()
    patch.chdir(home)
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    model = pipeline()
    register("scorer", Probabilities(model))
    register("wrong", Probabilities(model, columns=["a", "b"]))
    synthetic_frame(900).to_csv(home / "d.csv", index=False)
    case = {
        "data": "d.csv",
        "target": "outcome",
        "costs": {"matrix": {"no": {"no": 0, "yes": 10}, "yes": {"no": 100, "yes": 30}}},
        "options": {"bootstrap_resamples": 200},
    }
    (home / "c.yaml").write_text(yaml.safe_dump(case))
    yield home
    patch.undo()


def analyze(home: Path, out: Path, *policy: str):
    args = ["analyze", str(home / "c.yaml"), "--out", str(out), "-q"]
    for p in policy:
        args += ["--policy", p]
    return CliRunner().invoke(main, args), out / "c"


def test_an_mlflow_model_is_compared_pinned_and_checked_on_loading(store: Path):
    done, run = analyze(store, store / "out", "scorer=mlflow:models:/scorer@champion")
    assert done.exit_code == 0, done.output
    result = json.loads((run / "result.json").read_text())
    assert result["policies"]["scorer"]["kind"] == "mlflow"
    assert "scorer" in result["evaluation"]["policies"]
    pinned = json.loads((run / "policies" / "scorer" / "mlflow.json").read_text())
    assert pinned["uri"] == "models:/scorer/1" and pinned["given"].endswith("@champion")
    assert pinned["output"] == "probabilities" and len(pinned["sha256"]) == 64
    assert pinned["signature"]["inputs"]

    policy = advisor.load_policy(run / "policies" / "scorer")
    assert policy.version == result["evaluation"]["policies"]["scorer"]["version"]
    rows = synthetic_frame(200, seed=21)
    p = Probabilities(pipeline()).predict(None, rows)[["no", "yes"]].to_numpy()
    assert policy.calibrator_ is not None or np.allclose(policy.predict_proba(rows), p)

    # the alias moves to a second version; the bundle still pins version 1
    register("scorer", Probabilities(pipeline(), columns=["no", "yes"]))
    assert advisor.load_policy(run / "policies" / "scorer").version == policy.version

    location = mlflow.MlflowClient().get_model_version_download_uri("scorer", "1")
    model_file = Path(location.removeprefix("file://")) / "MLmodel"
    model_file.write_text(model_file.read_text() + "\n# changed\n")
    with pytest.raises(InputError, match="changed since the run"):
        advisor.load_policy(run / "policies" / "scorer")


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("scorer=mlflow:models:/nope@champion", "does not resolve"),
        ("wrong=mlflow:models:/wrong@champion", "returned columns ['a', 'b']"),
        ("scorer=models:/scorer/1", "expected mlflow:MODEL_URI"),
        ("ml=mlflow:models:/scorer/1", "policy name 'ml' is taken"),
    ],
)
def test_a_bad_mlflow_model_exits_2_with_one_line(
    store: Path, tmp_path: Path, policy: str, says: str
):
    done, run = analyze(store, tmp_path / "out", policy)
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert not run.exists()
