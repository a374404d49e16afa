"""Comparing what runs today: the incumbent's column and the user's own fitted model as
policies, the keep-or-replace answer, and the user's model through bundle, export, score,
serve and a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import Http, json_records, synthetic_frame

import advisor
from advisor.analysis.economics import DAYS_PER_YEAR, Inputs
from advisor.analysis.replace import weigh
from advisor.artefacts.schemas import schema
from advisor.cli.main import main
from advisor.core.errors import InputError
from advisor.core.incumbent import KEEP, Incumbent
from advisor.ship.export import export
from advisor.stats.interval import Interval

COSTS = {
    "matrix": {"no": {"ignore": 0, "act": 20}, "yes": {"ignore": 200, "act": 40}},
    "decisions": ["ignore", "act"],
}
COLUMNS = ["age", "income", "plan", "region", "amount"]


def notebook_model(seed: int = 5):
    """A scikit-learn pipeline fitted in a notebook on rows advisor never sees."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    other = synthetic_frame(1500, seed=seed)
    columns = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income", "amount"]),
        (OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=500))
    return model.fit(other[COLUMNS], other["outcome"])


def with_incumbent(frame: pd.DataFrame) -> pd.DataFrame:
    """Today's decisions: a hand-made cut-off on plan and age."""
    today = np.where((frame["plan"] == "basic") & (frame["age"] > 45), "act", "ignore")
    return frame.assign(today=today)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    frame = with_incumbent(synthetic_frame(1200))
    model = notebook_model()
    result = advisor.advise(
        frame,
        target="outcome",
        costs=COSTS,
        name="today",
        incumbent={"column": "today", "annual_upkeep": 5000},
        policies={"scorecard": model},
        bootstrap_resamples=200,
    )
    folder = result.save(tmp_path_factory.mktemp("runs"))
    return result, folder, frame


def test_the_incumbent_is_compared_never_a_feature_and_never_bundled(analysed):
    result, folder, _ = analysed
    assert "today" not in result.data["data"]["schema"]["features"]
    assert {"incumbent", "scorecard"} <= set(result.evaluation.policies)
    kinds = {name: entry["kind"] for name, entry in result.data["policies"].items()}
    assert kinds["incumbent"] == "incumbent" and kinds["scorecard"] == "estimator"
    assert result.data["policies"]["incumbent"]["bundled"] is False
    assert sorted(p.name for p in (folder / "policies").iterdir()) == [
        "baseline",
        "ml",
        "rules",
        "scorecard",
    ]
    keep = result.recommendation.options[KEEP]
    assert keep.policy == "incumbent" and keep.annual_upkeep == 5000
    assert result.data["incumbent"]["answer"] in (KEEP, result.data["incumbent"]["candidate"])
    assert result.recommendation.option == result.data["incumbent"]["answer"]
    import jsonschema

    jsonschema.validate(json.loads((folder / "result.json").read_text()), schema("result"))
    html = (folder / "report.html").read_text()
    assert "What runs today" in html and "scorecard" in html


def test_the_incumbents_cost_is_its_decisions_on_the_test_rows(analysed):
    """Its cost per decision is the realised cost of the column's decisions (an independent
    recount from the confusion matrix of counts)."""
    result, _, _ = analysed
    scored = result.evaluation.policies["incumbent"]
    counts = np.array(scored.confusion.counts)
    unit = np.array([[0, 20], [200, 40]])  # classes no, yes by decisions ignore, act
    assert (counts * unit).sum() / counts.sum() == pytest.approx(scored.cost_per_decision.estimate)


def test_a_ready_made_model_carries_the_warning_that_it_may_have_seen_the_rows(analysed):
    result, _, _ = analysed
    assert "trained on the rows" in result.data["policies"]["scorecard"]["warning"]
    assert "warning" not in result.data["policies"]["ml"]


def test_the_incumbent_is_not_exported_scored_or_served(analysed, tmp_path):
    result, folder, _ = analysed
    with pytest.raises(InputError, match="evaluated only"):
        export(folder, policy="incumbent", out=tmp_path / "x")
    if result.recommendation.option == KEEP:
        with pytest.raises(InputError, match="keep-incumbent"):
            export(folder, out=tmp_path / "y")
    assert not (tmp_path / "x").exists()


def _inputs(rules: np.ndarray, ml: np.ndarray, base: np.ndarray) -> Inputs:
    return Inputs(
        base=base,
        rules=rules,
        ml=ml,
        decisions_per_day=100.0,
        upkeep={"ship-rules": 1000.0, "batch-ml": 20000.0, "realtime-ml": 30000.0},
        timing="periodic",
        precomputable=True,
        budget_ms=100.0,
        ml_p99_ms=1.0,
        rules_p99_ms=1.0,
        enrol_days=10.0,
        max_experiment_days=90.0,
        capture_target=0.9,
    )


@pytest.mark.parametrize("worse_by", [0.0, 2.0])
def test_replace_only_when_the_paired_gain_clears_noise(analysed, worse_by: float):
    """The gain of the recommended option over keeping the incumbent is the paired difference
    of their nets over the same resamples; replace only when its 95 % interval is above 0."""
    result, _, _ = analysed
    rec = result.recommendation
    candidate = result.data["incumbent"]["candidate"]
    before = replace(
        rec, option=candidate, options={k: v for k, v in rec.options.items() if k != KEEP}
    )
    rng = np.random.default_rng(0)
    base = 30 + rng.normal(0, 0.5, 2001)
    rules = base - 3 + rng.normal(0, 0.2, 2001)
    inp = _inputs(rules, rules + 0.5, base)
    own = {"ship-rules": rules, "batch-ml": rules + 0.5, "realtime-ml": rules + 0.5}[candidate]
    incumbent_cost = own + worse_by + rng.normal(0, 0.05, 2001)
    upkeep = inp.upkeep[candidate]
    verdict, after = weigh(
        before, inp, incumbent_cost, Interval(1.0, 0.5, 1.5), Incumbent("t", upkeep), "incumbent"
    )
    per_year = 100.0 * DAYS_PER_YEAR
    gain = (incumbent_cost - own) * per_year  # same upkeep on both sides
    assert verdict.net_gain.estimate == pytest.approx(gain[0])
    assert verdict.net_gain.low == pytest.approx(np.percentile(gain[1:], 2.5))
    assert verdict.net_gain.high == pytest.approx(np.percentile(gain[1:], 97.5))
    expected = candidate if np.percentile(gain[1:], 2.5) > 0 else KEEP
    assert verdict.answer == after.option == expected
    assert (worse_by > 0) == (expected == candidate)
    assert after.headline.startswith("Replace" if worse_by else "Keep what runs today")
    assert KEEP in after.options and "control units" in verdict.ab_plan


def test_incumbent_missing_skip_compares_every_policy_on_the_rows_it_decided(tmp_path):
    frame = with_incumbent(synthetic_frame(900, seed=2)).astype({"today": object})
    frame.loc[::9, "today"] = None
    from advisor.core.case import case_from_arguments
    from advisor.core.data import load_dataset

    case = case_from_arguments(
        frame, target="outcome", costs=COSTS, incumbent="today", incumbent_missing="skip"
    )
    data = load_dataset(case)
    assert data.skipped == 100 and len(data.frame) == 800
    assert data.frame["today"].notna().all() and "today" not in data.schema.features
    with pytest.raises(InputError, match="missing on 100 of 900 rows"):
        load_dataset(replace(case, incumbent=Incumbent("today")))


def test_a_notebook_pipeline_exports_scores_serves_and_loads_in_a_fresh_process(analysed, tmp_path):
    result, folder, _ = analysed
    policy = result.policies["scorecard"]
    rows = synthetic_frame(300, seed=11)
    want = policy.decide(rows).astype(str).tolist()

    out = export(folder, policy="scorecard", out=tmp_path / "export")
    bundle = out.path / "bundle"
    assert (bundle / "estimator.skops.b64").is_file()
    assert not list(bundle.glob("*.pkl")) and not list(bundle.glob("*.pickle"))

    rows.to_csv(tmp_path / "rows.csv", index=False)
    scored = CliRunner().invoke(
        main, ["score", str(bundle), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "d.parquet")]
    )
    assert scored.exit_code == 0, scored.output
    assert pd.read_parquet(tmp_path / "d.parquet")["decision"].astype(str).tolist() == want

    from advisor.serve.app import Served, Service
    from advisor.serve.server import running

    records = json_records(rows.head(40))
    with running(Service(Served.load(bundle))) as url:
        status, answer = Http(url).post({"records": [{"record": r} for r in records]})
    assert status == 200
    assert [d["decision"] for d in answer["decisions"]] == want[:40]
    assert {d["policy"] for d in answer["decisions"]} == {"scorecard"}

    code = textwrap.dedent(
        f"""
        import pandas as pd, advisor
        policy = advisor.load_policy({str(bundle)!r})
        rows = pd.read_csv({str(tmp_path / "rows.csv")!r})
        print(policy.version)
        print(",".join(policy.decide(rows).astype(str)))
        """
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    version, decisions = fresh.stdout.strip().splitlines()
    assert version == policy.version
    assert decisions.split(",") == want


class Broken:
    """A classifier whose predict_proba raises."""

    classes_ = np.array(["no", "yes"])

    def predict_proba(self, X):
        raise RuntimeError("the feature store is down")


def _wrong_classes():
    from sklearn.dummy import DummyClassifier

    return DummyClassifier().fit(np.zeros((4, 1)), ["a", "b", "a", "b"])


def _custom_function():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    other = synthetic_frame(200, seed=4)
    X = other[["age", "amount"]]
    return make_pipeline(FunctionTransformer(_double), LogisticRegression()).fit(
        X, other["outcome"]
    )


def _double(x):
    return x * 2


BAD_MODELS = {
    "classes not the target's": (_wrong_classes, "predicts classes ['a', 'b'], not the target's"),
    "predict_proba raises": (Broken, "predict_proba failed: RuntimeError: the feature store"),
    "no predict_proba": (lambda: object(), "has no predict_proba"),
    "a type skops is not trusted with": (_custom_function, "which advisor does not trust"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_a_bad_user_model_is_one_input_error_naming_it(name: str, tmp_path):
    make, says = BAD_MODELS[name]
    with pytest.raises(InputError) as caught:
        advisor.advise(
            synthetic_frame(300),
            target="outcome",
            costs=COSTS,
            policies={"mine": make()},
            bootstrap_resamples=100,
        )
    message = str(caught.value)
    assert "\n" not in message and "'mine'" in message and says in message, message


def test_a_policy_name_of_advisors_own_is_refused():
    with pytest.raises(InputError, match="policy name 'ml' is taken"):
        advisor.advise(
            synthetic_frame(300), target="outcome", costs=COSTS, policies={"ml": Broken()}
        )


def test_a_notebook_model_is_monitored_from_its_run_and_tracked_in_mlflow(analysed, tmp_path):
    """From there the user's model is an ordinary policy: `advisor monitor` reads its log
    against its own offline figures (with the estimated cost from its probabilities), and the
    MLflow model logged for it decides as its bundle."""
    import mlflow
    from production import outcomes, simulate, write_log

    from advisor.track.tracking import track_result

    result, folder, _ = analysed
    rows = synthetic_frame(600, seed=21)
    log = simulate(folder, rows, "outcome", days=3, per_day=200, control="scorecard")
    logs = write_log(log, tmp_path / "log", COLUMNS)
    known = outcomes(log, "outcome", now="2026-03-05")
    known.to_csv(tmp_path / "outcomes.csv", index=False)
    args = ["--log", str(logs), "--outcomes", str(tmp_path / "outcomes.csv")]
    done = CliRunner().invoke(main, ["monitor", str(folder), *args, "--out", str(tmp_path / "m")])
    assert done.exit_code in (0, 3), done.output
    found = json.loads((tmp_path / "m" / "monitor.json").read_text())
    assert {p["policy"] for p in found["log"]["policies"]} == {"scorecard"}
    figures = found["overall"]["policies"]["scorecard"]
    assert figures["cost"]["with_outcomes"] == known.shape[0]
    assert figures["cost"]["position"] in ("below", "within")
    estimated = figures["estimated_cost"]
    assert estimated["low"] <= estimated["estimate"] <= estimated["high"]

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.chdir(tmp_path)
        tracked = track_result(result, uri=store)
        assert "scorecard" in tracked.models and "incumbent" not in tracked.models
        loaded = mlflow.pyfunc.load_model(tracked.models["scorecard"])
        got = loaded.predict(rows.head(50))
    want = result.policies["scorecard"].decide(rows.head(50)).astype(str).tolist()
    assert got["decision"].astype(str).tolist() == want
