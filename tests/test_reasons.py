"""Reason codes: local accuracy of the ML contributions (they sum to LightGBM's raw score),
the direction toward the decision taken, a rule's reason is the rule that decided, and the
same reasons from the library, `advisor score` and `POST /decide`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import awkward_rows, json_records, synthetic_frame

from advisor.cli.main import main
from advisor.policies.ml import MLPolicy
from advisor.policies.reasons import raw_contributions, toward_decision
from advisor.policies.rules.policy import ExpertRulesPolicy

RULES = """
name: two-rules
rules:
  - when: plan == "basic" and age > 50
    decide: "yes"
  - when: income < 20000
    decide: "no"
default: "yes"
"""


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return awkward_rows(synthetic_frame(400, seed=9).drop(columns="outcome"), seed=2)


@pytest.mark.parametrize("method", ["exact", "lightgbm", "paths"])
def test_contributions_sum_to_the_raw_score(small_run, rows, method):
    ml: MLPolicy = small_run[0].policies["ml"]
    X = ml.spec.encode(rows)
    contrib, base = ml.raw_contributions(X, method)
    raw = ml.booster_.predict(X, raw_score=True, num_iteration=ml.n_trees_)
    np.testing.assert_allclose(contrib.sum(axis=2)[:, 0] + base[:, 0], raw, atol=1e-9)


def test_the_reasons_push_toward_the_decision_taken(small_run, rows):
    """Binary: a contribution toward `yes` (the decision a higher probability of `yes`
    favours) is the log-odds contribution itself, toward `no` its negative; the reasons are
    the largest of these, positive, in the bundle's feature names, with the row's values."""
    ml: MLPolicy = small_run[0].policies["ml"]
    X = ml.spec.encode(rows)
    contrib, _ = ml.raw_contributions(X, "exact")
    codes = ml.decide_codes(rows)
    sign = np.where(codes == ml.costs.decisions.index("yes"), 1.0, -1.0)
    toward = contrib[:, 0, :] * sign[:, None]
    reasons = ml.explain(rows, 3)
    for i, row in enumerate(reasons.records()):
        expected = np.sort(toward[i][toward[i] > 0])[::-1][:3]
        if not len(expected):  # nothing pushed toward it: one sentence says so
            assert [r["feature"] for r in row] == [None]
            assert row[0]["text"].startswith("no feature pushed toward")
            continue
        np.testing.assert_allclose([r["contribution"] for r in row], expected)
        for r in row:
            assert r["feature"] in ml.spec.names_
            original = rows.iloc[i][r["feature"]]
            if pd.isna(original):
                assert r["value"] is None and r["text"] == f"{r['feature']} is missing"
            elif r["feature"] in ("age", "income", "amount"):
                assert r["value"] == pytest.approx(float(original))
    texts = {r["text"] for row in reasons.records() for r in row}
    assert any(t.startswith("plan is ") for t in texts)
    assert any(t.endswith(" is missing") for t in texts)


def test_multiclass_contributions_sum_to_the_linearised_score():
    """Three classes: the weights are the gradient of (runner-up's expected cost minus the
    decision's) through the softmax; the weighted contributions plus the weighted base sum to
    the weighted raw scores exactly."""
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbosity": -1, "num_leaves": 7},
        lgb.Dataset(X, y),
        num_boost_round=20,
    )
    for method in ("exact", "lightgbm", "paths"):
        contrib, base = raw_contributions(booster, X, 20, 3, method)
        z = booster.predict(X, raw_score=True)
        np.testing.assert_allclose(contrib.sum(axis=2) + base, z, atol=1e-9)
        p = booster.predict(X)
        tensor = np.array([[[0, 5, 9], [4, 0, 3], [8, 2, 0]]], dtype=float)
        expected = p @ tensor[0]
        codes = expected.argmin(axis=1)
        runner = np.argsort(expected, axis=1)[:, 1]
        toward, toward_base = toward_decision(contrib, base, p, tensor, codes, runner, 1.0)
        gap = tensor[0][:, runner].T - tensor[0][:, codes].T
        weight = p * (gap - (p * gap).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(toward.sum(axis=1) + toward_base, (weight * z).sum(axis=1))


def test_the_paths_method_agrees_with_treeshap_on_most_rows(small_run, rows):
    ml: MLPolicy = small_run[0].policies["ml"]
    exact, paths = ml.explain(rows, 1), ml.explain(rows, 1, "paths")
    assert (exact.feature[:, 0] == paths.feature[:, 0]).mean() > 0.8


def _expert(policy) -> ExpertRulesPolicy:
    return ExpertRulesPolicy.from_bundle(
        policy.costs, policy.spec, {"class_frequencies": [[0.5, 0.5]] * 3}, {"rules.yaml": RULES}
    )


def test_a_rule_lists_reason_is_the_rule_that_decided(small_run, rows):
    rules = _expert(small_run[0].policies["ml"])
    decided = rules.decide_batch(rows).rule
    reasons = rules.explain(rows, 2)
    said = {
        0: "no rule matched: the default (yes)",
        1: "rule 1: plan is basic and age is above 50",
        2: "rule 2: income is below 20000",
    }
    assert sorted(set(decided)) == [0, 1, 2]
    assert list(reasons.text[:, 0]) == [said[n] for n in decided]
    assert (reasons.text[:, 1] == "").all()
    for record, text in zip(json_records(rows[:50]), reasons.text[:50, 0], strict=True):
        assert rules.explain_record(record, 2).text[0, 0] == text


@pytest.mark.parametrize("name", ["ml", "rules", "baseline"])
def test_score_gives_the_librarys_reasons(small_run, rows, tmp_path, name):
    import advisor

    folder = small_run[1] / "policies" / name
    rows.to_parquet(tmp_path / "rows.parquet")
    args = ["score", str(folder), str(tmp_path / "rows.parquet"), "-o", str(tmp_path / "d.parquet")]
    done = CliRunner().invoke(main, [*args, "--id", "region", "--reasons", "3", "-q"])
    assert done.exit_code == 0, done.output
    scored = pd.read_parquet(tmp_path / "d.parquet")
    library = advisor.load_policy(folder).explain(rows, 3).frame()
    for j in (1, 2, 3):
        assert list(scored[f"reason_{j}"]) == list(library[f"reason_{j}"])
    assert scored["reason_1"].str.len().gt(0).all()


def test_the_service_gives_the_librarys_reasons_and_logs_them(small_run, rows, tmp_path):
    pytest.importorskip("fastapi")
    import json
    import time

    from conftest import Http

    import advisor
    from advisor.serve.app import Served, Service
    from advisor.serve.predictionlog import PredictionLog
    from advisor.serve.server import running

    folder = small_run[1] / "policies" / "ml"
    policy = advisor.load_policy(folder)
    records = json_records(rows[:20])
    log = PredictionLog(tmp_path / "log")
    with running(Service(Served.load(folder), log=log)) as url:
        client = Http(url)
        for record in records[:5]:
            status, body = client.post({"record": record, "reasons": 3})
            assert status == 200, body
            assert body["reasons"] == policy.explain_record(record, 3).records()[0]
        status, body = client.post({"records": [{"record": r} for r in records], "reasons": 2})
        assert status == 200, body
        frame = pd.DataFrame(records)
        assert [d["reasons"] for d in body["decisions"]] == policy.explain(frame, 2).records()
        status, body = client.post({"record": records[0]})
        assert "reasons" not in body
        status, body = client.post({"record": records[0], "reasons": "3"})
        assert status == 422 and "reasons" in str(body)
        deadline = time.monotonic() + 30
        while log.written < 26 and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = [
        json.loads(line)
        for path in sorted((tmp_path / "log").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == 26
    asked = [line for line in lines if "reasons" in line]
    assert len(asked) == 25  # the request that did not ask logs none
    assert asked[0]["reasons"] == policy.explain_record(records[0], 3).records()[0]


def test_the_service_explains_a_batch_off_its_event_loop(small_run, rows):
    """While a batch's reasons are computed, the service reads and answers other requests."""
    pytest.importorskip("fastapi")
    import threading
    import time

    from conftest import Http

    import advisor
    from advisor.serve.app import Served, Service
    from advisor.serve.server import running

    folder = small_run[1] / "policies" / "ml"
    policy = advisor.load_policy(folder)
    records = json_records(rows[:2])
    service = Service(Served.load(folder))
    explained, started = service.decider.explained, threading.Event()

    def slow(*args):
        started.set()
        time.sleep(0.5)  # as long attribution work that holds no interpreter lock would
        return explained(*args)

    service.decider.explained = slow
    with running(service) as url:
        answers: list = []
        asking = threading.Thread(
            target=lambda: answers.append(
                Http(url).post({"records": [{"record": records[0]}], "reasons": 3})
            )
        )
        asking.start()
        assert started.wait(10)
        before = time.perf_counter()
        status, body = Http(url).post({"record": records[1]})
        quick = time.perf_counter() - before
        asking.join(30)
    assert status == 200 and "reasons" not in body
    assert quick < 0.4  # answered while the first request's reasons were still being computed
    assert answers[0][0] == 200
    explained = answers[0][1]["decisions"][0]["reasons"]
    assert explained == policy.explain_record(records[0], 3).records()[0]
