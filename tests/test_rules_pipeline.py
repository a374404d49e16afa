"""Rule policies in the pipeline, the rules stage and `advisor rules ...` on the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.analysis.pipeline import fit_policies
from advisor.cli.main import main
from advisor.core.case import case_from_arguments, load_case
from advisor.core.data import load_dataset, split_dataset
from advisor.core.errors import InputError
from advisor.core.features import FeatureSpec
from advisor.policies.rules import parse_rules
from advisor.policies.rules.policy import ExpertRulesPolicy, RulesPolicy, describe_rule_lists

ROOT = Path(__file__).resolve().parent.parent
CREDIT = ROOT / "datasets" / "credit-scoring.yaml"


@pytest.fixture(scope="module")
def credit():
    case = load_case(CREDIT)
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    return case, data, split, spec


def test_rule_policies_decide_alike_in_batch_and_one_by_one(credit):
    case, _data, split, spec = credit
    policies = fit_policies(case, split, spec)
    assert set(policies) >= {"baseline", "rules", "expert-rules", "ml"}
    test = split.test.frame.head(200)
    for policy in (policies["rules"], policies["expert-rules"]):
        assert isinstance(policy, RulesPolicy) and policy.probabilistic
        batch = policy.decide_codes(test)
        single = [int(policy.decide_record(r).codes[0]) for r in test.to_dict("records")]
        assert batch.tolist() == single
        proba = policy.predict_proba(test)
        assert proba.shape == (len(test), case.costs.n_classes)
        assert np.allclose(proba.sum(axis=1), 1)
        assert policy.version.startswith(policy.name)
        assert set(policy.decide(test).unique()) <= set(case.costs.decisions)


def test_learned_rules_beat_the_constant_on_validation_and_round_trip(credit):
    case, data, split, spec = credit
    rules = fit_policies(case, split, spec)["rules"]
    assert len(rules.rules_) <= 8
    assert all(len(r.conditions) <= 3 for r in rules.rules_)
    reread = parse_rules(
        str(rules.rules_), kinds=data.schema.features, decisions=case.costs.decisions
    )
    clean = spec.clean(split.test.frame)
    assert (reread.decide(clean) == rules.rules_.decide(clean)).all()
    valid = split.valid
    each = case.costs.cost_of_each_decision(valid.y, valid.frame)
    learned = each[np.arange(len(valid)), rules.decide_codes(valid.frame)].mean()
    assert learned <= each.mean(axis=0).min() + 1e-9


def test_rules_stage_payload(credit):
    case, _data, split, spec = credit
    policies = fit_policies(case, split, spec)
    report = describe_rule_lists(policies, split.test, case.costs).to_dict()
    assert set(report) == {"rules", "expert-rules"}
    entry = report["expert-rules"]
    assert entry["name"] == "credit-policy" and entry["default"] == "approve"
    assert {"english", "python", "sql", "version"} <= set(entry)
    assert len(entry["rules"]) == 5
    assert sum(r["coverage"] for r in entry["rules"]) == pytest.approx(1.0)
    assert sum(r["rows"] for r in entry["rules"]) == len(split.test)
    assert entry["rules"][0]["text"] == 'Records == "yes" and Job in ["partime", "others"]'


def test_expert_rules_with_an_unknown_column_fail_at_load(credit, tmp_path):
    case, _data, split, spec = credit
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "default: approve\nrules:\n  - when: Income > 10 and Salary > 3\n    decide: review\n"
    )
    with pytest.raises(InputError, match=r"bad.yaml: rule 1: position 17: unknown column 'Salary'"):
        ExpertRulesPolicy(bad, case.costs, spec).fit(split.train, split.valid)


def test_cli_learn_check_and_sql(tmp_path):
    runner = CliRunner()
    out = tmp_path / "learned.yaml"
    result = runner.invoke(
        main, ["rules", "learn", str(CREDIT), "--max-rules", "3", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Otherwise," in result.output and "Cost per decision" in result.output
    learned = parse_rules(out.read_text())
    assert len(learned) <= 3
    result = runner.invoke(main, ["rules", "check", str(out), str(CREDIT)])
    assert result.exit_code == 0, result.output
    assert "95% interval" in result.output and "coverage" in result.output
    result = runner.invoke(main, ["rules", "sql", str(ROOT / "rules" / "telco-churn.yaml")])
    assert result.exit_code == 0
    assert result.output.startswith("CASE\n  WHEN \"contract\" = 'Month-to-month'")
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: approve\nrules:\n  - when: Records == 1\n    decide: decline\n")
    result = runner.invoke(main, ["rules", "check", str(bad), str(CREDIT)])
    assert result.exit_code == 2
    assert "rule 1: position 12: column 'Records' holds text" in result.output


def test_data_frame_case_without_rule_file():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 600).astype(float),
            "plan": rng.choice(["basic", "plus"], 600),
            "outcome": rng.choice(["no", "yes"], 600),
        }
    )
    case = case_from_arguments(frame, target="outcome", costs={"fp": 1, "fn": 4})
    data = load_dataset(case)
    split = split_dataset(data, 0)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    policies = fit_policies(case, split, spec)
    assert set(policies) == {"baseline", "rules", "ml"}
