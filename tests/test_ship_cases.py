"""Each bundled case from analysis to production: `advisor export` of every option, then
`advisor score`, reproduces the decisions of the analysis's own policies on the test rows; the
bundles decide exactly as the fitted policies; the rule lists' `rules.py` (standard library
only) and `rules.sql` (in SQLite) agree with them, missing values and unseen categories included.

One analysis per case for the whole session (`bundled_analysis`, shared with the browser test).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT, awkward_rows

import advisor
from advisor.cli.main import main
from advisor.core.case import load_case
from advisor.core.data import load_dataset, split_dataset
from advisor.core.errors import InputError
from advisor.ship.export import OPTIONS, option_policy

CASES = ["telco-churn", "credit-scoring", "car-loans"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=CASES)
def shipped(request, bundled_analysis, tmp_path_factory):
    """The case's analysis (shared with the other tests) saved as a run folder, and its test
    rows."""
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    result = bundled_analysis(name)
    folder = result.save(tmp / "runs")
    case = load_case(ROOT / "datasets" / f"{name}.yaml")
    test = split_dataset(load_dataset(case), case.seed).test.frame
    return result, folder, test, tmp


def run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("option", OPTIONS)
def test_export_then_score_reproduces_the_analysis(shipped, option: str):
    result, folder, test, tmp = shipped
    out = tmp / f"export-{option}"
    exported = run("export", folder, "--option", option, "-o", out)
    assert exported.exit_code == 0, exported.output
    policy = result.policies[option_policy(result.data, option)]
    readme = (out / "README.md").read_text()
    assert f"version `{policy.version}`" in readme
    if policy.kind == "rules":
        assert "bundle/rules.sql" in readme and "python bundle/rules.py" in readme
    rows = tmp / "test.csv.gz"
    if not rows.exists():
        test.to_csv(rows, index=False)
    decisions = tmp / f"{option}.parquet"
    scored = run("score", out, rows, "-o", decisions, "-q")
    assert scored.exit_code == 0, scored.output
    got = pd.read_parquet(decisions)
    assert got["decision"].tolist() == policy.decide(test).astype(object).tolist()
    assert set(got["model_version"]) == {policy.version}


def test_the_recommended_option_is_the_default_export(shipped):
    result, folder, _, tmp = shipped
    exported = run("export", folder / "result.json", "-o", tmp / "default")
    assert exported.exit_code == 0, exported.output
    assert exported.output.startswith(result.data["recommendation"]["option"])


def test_every_bundle_decides_exactly_as_its_policy(shipped):
    result, folder, test, _ = shipped
    rows = awkward_rows(test, seed=1)
    for name, fitted in result.policies.items():
        if not result.data["policies"][name]["bundled"]:
            continue  # the incumbent: compared, never bundled
        loaded = advisor.load_policy(folder / "policies" / name)
        assert loaded.version == fitted.version
        assert np.array_equal(loaded.decide_codes(rows), fitted.decide_codes(rows)), name
        if fitted.probabilistic:
            assert np.array_equal(loaded.predict_proba(rows), fitted.predict_proba(rows)), name
        records = rows.head(200).to_dict("records")
        assert [one(loaded, r) for r in records] == [one(fitted, r) for r in records], name


def one(policy, record) -> int | str:
    """One record's decision code, or the error when its example-dependent cost is missing."""
    try:
        return int(policy.decide_record(record).codes[0])
    except InputError as exc:
        return str(exc)


def test_standalone_rules_agree_in_python_and_sqlite(shipped):
    result, folder, test, tmp = shipped
    rows = pd.concat([test, awkward_rows(test, seed=2)], ignore_index=True)
    rows.to_csv(tmp / "rows.csv", index=False)
    with sqlite3.connect(":memory:") as db:
        features = result.policies["rules"].spec.names_
        rows[features].to_sql("input_rows", db, index=False)
        for name in ("rules", "expert-rules"):
            bundle = folder / "policies" / name
            want = result.policies[name].decide(rows).astype(object).tolist()
            with open(tmp / "rows.csv") as stdin:
                done = subprocess.run(
                    [sys.executable, "-I", "-S", str(bundle / "rules.py")],
                    stdin=stdin,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            decided = pd.read_csv(pd.io.common.StringIO(done.stdout), dtype=str)
            assert decided["decision"].tolist() == want, name
            query = (bundle / "rules.sql").read_text()
            got = [row[-1] for row in db.execute(query)]
            assert got == want, name
