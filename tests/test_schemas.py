"""The published JSON Schemas: valid draft 2020-12, printed by `advisor schema NAME`, the
result schema in step with the stages' typed values, and every file others read (each bundled
case's result.json, a bundle.json of each policy kind, monitor.json, prediction-log lines)
valid against them; a file that breaks the contract is not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from production import simulate, test_rows, write_log

from advisor.artefacts.payload import SCHEMA_VERSION, ResultData, upgrade
from advisor.artefacts.result import Result
from advisor.artefacts.schemas import NAMES, result_schema_text, schema
from advisor.cli.main import main
from advisor.serve.predictionlog import log_line

ROOT = Path(__file__).resolve().parent.parent
CASES = ("telco-churn", "credit-scoring", "car-loans")


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name))


def errors(name: str, document) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(document)]


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_draft_2020_12_and_printed_by_the_cli(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))
    done = CliRunner().invoke(main, ["schema", name])
    assert done.exit_code == 0
    assert json.loads(done.output) == schema(name)


def test_an_unknown_schema_name_is_one_line_and_exit_2():
    done = CliRunner().invoke(main, ["schema", "results"])
    assert done.exit_code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'results'" in lines[0] and "prediction-log" in lines[0]


def test_the_published_result_schema_is_the_one_the_stage_values_give():
    """A field added to or renamed in a stage value changes the schema; the file must follow."""
    published = (ROOT / "advisor" / "schemas" / "result.schema.json").read_text(encoding="utf-8")
    assert published == result_schema_text(), "regenerate advisor/schemas/result.schema.json"
    assert schema("result")["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_bundled_case_writes_a_valid_result_and_reads_it_back(case, bundled_analysis):
    result = bundled_analysis(case)
    payload = json.loads(result.to_json())
    assert errors("result", payload) == []
    # The typed view read from the JSON writes the same JSON, section by section.
    view = ResultData(payload)
    for key in ("roles", "evaluation", "shadow", "experiment", "drift", "maintenance"):
        assert json.loads(json.dumps(getattr(view, key).to_dict())) == payload[key], key
    assert view.evaluation.policies["ml"].cost_per_decision.low == pytest.approx(
        payload["evaluation"]["policies"]["ml"]["cost_per_decision"]["low"]
    )


@pytest.mark.slow
def test_a_result_that_breaks_the_contract_is_invalid(bundled_analysis):
    payload = json.loads(bundled_analysis("telco-churn").to_json())
    for damage in (
        lambda p: p["evaluation"]["policies"]["ml"]["cost_per_decision"].update(low="cheap"),
        lambda p: p["experiment"].pop("n_per_arm"),
        lambda p: p["drift"].pop("cadence"),
        lambda p: p["recommendation"].update(options={"ship-rules": {"policy": "rules"}}),
        lambda p: p.update(schema_version=2),
    ):
        broken = copy.deepcopy(payload)
        damage(broken)
        assert errors("result", broken), damage


@pytest.mark.slow
def test_a_version_2_result_is_upgraded_and_renders(bundled_analysis, tmp_path):
    """A file written before the duplicated keys were dropped still renders; other versions
    are refused in one line naming their version."""
    payload = json.loads(bundled_analysis("telco-churn").to_json())
    old = copy.deepcopy(payload)
    cadence = old["drift"].pop("cadence")
    old["drift"].update(
        retrains_per_month=cadence["retrains_per_month"],
        cadence_method=cadence["method"],
        cadence_reason=cadence["reason"],
    )
    old["recommendation"].update(
        break_even_volume_per_day=None, confidence=1.0, confidence_label="high"
    )
    old["experiment"]["n_control"] = old["experiment"]["n_per_arm"]
    old["schema_version"] = 2
    assert upgrade(old, "old.json") == payload
    path = tmp_path / "result.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    done = CliRunner().invoke(main, ["render", str(path)])
    assert done.exit_code == 0, done.output
    assert "cannot be assessed" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert Result.from_json(path).drift.cadence.method == cadence["method"]
    # A version-3 file has `confidence` instead of p_best: it reads, p_best marked unmeasured.
    three = copy.deepcopy(payload)
    rec = three["recommendation"]
    for key in ("p_best", "p_best_by_option", "p_best_includes", "tied", "tie_rule"):
        rec.pop(key)
    rec.pop("top_two")
    rec.pop("procedure_option")
    rec["conditions"].pop("capture_interval")
    rec.update(confidence=0.55, confidence_label="low")
    three["schema_version"] = 3
    upgraded = upgrade(three, "three.json")
    assert errors("result", upgraded) == []
    assert upgraded["recommendation"]["p_best"] is None
    assert "confidence" not in upgraded["recommendation"]
    path.write_text(json.dumps(three), encoding="utf-8")
    assert CliRunner().invoke(main, ["render", str(path)]).exit_code == 0
    assert "not measured" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert Result.from_json(path).recommendation.procedure_option == rec["option"]
    old["schema_version"] = 1
    path.write_text(json.dumps(old), encoding="utf-8")
    refused = CliRunner().invoke(main, ["render", str(path)])
    assert refused.exit_code == 2
    assert refused.stderr.strip().count("\n") == 0 and "schema_version 1" in refused.stderr


@pytest.mark.slow
def test_a_plan_written_before_the_cautious_sizing_still_reads_and_renders(
    bundled_analysis, tmp_path
):
    """A schema-3 result.json from before the plan held Welch's variances, the cautious effect,
    the optimistic size and the sequential readout's size reads (those parts None), is valid
    and renders."""
    payload = json.loads(bundled_analysis("telco-churn").to_json())
    new = ("control_var", "treatment_var", "sized_on", "optimistic", "sized_by", "sizing_note")
    for key in (*new, "sequential", "variance_reduction"):
        payload["experiment"].pop(key, None)
    jsonschema.validate(payload, schema("result"))
    path = tmp_path / "result.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    plan = Result.from_json(path).experiment.test
    assert plan.sized_on is None and plan.sequential is None and plan.n_per_arm is not None
    done = CliRunner().invoke(main, ["render", str(path)])
    assert done.exit_code == 0, done.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Two designs" in html and "always-valid readout" not in html


@pytest.mark.slow
def test_a_bundle_of_each_policy_kind_is_valid(credit_run):
    kinds = {}
    for meta_path in sorted((credit_run / "policies").glob("*/bundle.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        assert errors("bundle", meta) == [], meta_path
        kinds[meta["kind"]] = meta
    assert {"baseline", "rules", "ml"} <= set(kinds)
    broken = copy.deepcopy(kinds["ml"])
    broken["files"]["model.txt"] = "not a sha256"
    assert errors("bundle", broken)
    del broken["version"]
    assert any("'version' is a required property" in e for e in errors("bundle", broken))


@pytest.mark.slow
def test_monitor_json_and_the_prediction_log_lines_are_valid(credit_run, tmp_path):
    from advisor.monitor import monitor

    rows = test_rows("credit-scoring")
    meta = json.loads((credit_run / "policies" / "ml" / "bundle.json").read_text())
    log = simulate(credit_run, rows, "Status", days=2, per_day=200, treatment="ml", shadow="ml")
    folder = write_log(log, tmp_path / "log", list(dict.fromkeys(meta["inputs"])))
    lines = [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert lines and all(errors("prediction-log", line) == [] for line in lines)
    found = monitor(credit_run, folder).payload
    assert errors("monitor", json.loads(json.dumps(found))) == []
    assert errors("monitor", {k: v for k, v in found.items() if k != "verdict"})


def test_the_service_log_line_is_valid():
    """The line `advisor serve --log` writes, from the service's own writer."""
    entry = {
        "ts": 1767225600.25,
        "id": "a-1",
        "unit": "a-1",
        "arm": "control",
        "policy": "rules",
        "model_version": "rules-0123456789ab",
        "decision": "approve",
        "record": {"income": 52000, "job": "fixed"},
        "latency_ms": 0.8,
    }
    line = json.loads(log_line(entry))
    assert errors("prediction-log", line) == []
    assert errors("prediction-log", {**line, "ts": "yesterday"})
    assert errors("prediction-log", {k: v for k, v in line.items() if k != "policy"})
