"""One definition, two callers: every bundle of each bundled case, served over HTTP, decides the
case's test rows exactly as `advisor score` writes them, missing values and unseen categories
included; a row `advisor score` leaves undecided (its example-dependent cost missing) is
refused with the cost field named, alone or in a batch.

One analysis per case for the whole session (`bundled_analysis`, shared with the ship tests).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ROOT, Http, awkward_rows, json_records

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")

from advisor.cli.main import main
from advisor.core.case import load_case
from advisor.core.data import load_dataset, split_dataset
from advisor.serve.app import Served, Service
from advisor.serve.server import running

CASES = ["telco-churn", "credit-scoring", "car-loans"]
BATCH = 1000
SINGLES = 300

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=CASES)
def case_rows(request, bundled_analysis, tmp_path_factory):
    """The case's run folder, its test rows with 2,000 awkward ones appended, written as CSV
    (what `advisor score` reads) and read back as a client would (what the service gets)."""
    name = request.param
    tmp = tmp_path_factory.mktemp(f"serve-{name}")
    folder = bundled_analysis(name).save(tmp / "runs")
    case = load_case(ROOT / "datasets" / f"{name}.yaml")
    test = split_dataset(load_dataset(case), case.seed).test.frame
    awkward = awkward_rows(test.sample(2000, random_state=0, replace=len(test) < 2000), seed=3)
    rows = pd.concat([test, awkward], ignore_index=True)
    rows.to_csv(tmp / "rows.csv", index=False)
    client_view = pd.read_csv(tmp / "rows.csv")
    return folder, tmp, json_records(client_view)


def scored(bundle, tmp, name: str) -> pd.DataFrame:
    out = tmp / f"{name}.parquet"
    done = CliRunner().invoke(
        main, ["score", str(bundle), str(tmp / "rows.csv"), "-o", str(out), "-q"]
    )
    assert done.exit_code == 0, done.output
    return pd.read_parquet(out)


def test_http_decides_exactly_as_advisor_score_writes(case_rows):
    folder, tmp, records = case_rows
    rng = np.random.default_rng(0)
    for bundle in sorted((folder / "policies").iterdir()):
        want = scored(bundle, tmp, bundle.name)
        decided = want["decision"].notna().to_numpy()
        cost_columns = Served.load(bundle).policy.costs.columns
        with running(Service(Served.load(bundle))) as url:
            client = Http(url)
            for start in range(0, len(records), BATCH):
                rows = [i for i in range(start, min(start + BATCH, len(records))) if decided[i]]
                status, answer = client.post(
                    {"records": [{"id": i, "record": records[i]} for i in rows]}
                )
                assert status == 200, (bundle.name, answer)
                got = pd.DataFrame(answer["decisions"])
                assert got["id"].tolist() == [str(i) for i in rows]
                expected = want.iloc[rows]
                assert got["decision"].tolist() == expected["decision"].tolist(), bundle.name
                assert set(got["model_version"]) == set(expected["model_version"])
                explained(got, expected, exact=True)
            refused = np.flatnonzero(~decided)
            if cost_columns and bundle.name == "ml":
                assert len(refused) > 0  # the awkward rows lack some example-dependent costs
            if len(refused):
                chunk = refused[:40].tolist() + np.flatnonzero(decided)[:10].tolist()
                status, answer = client.post({"records": [{"record": records[i]} for i in chunk]})
                assert status == 422
                fields = [e["field"] for e in answer["errors"]]
                assert fields == [f"records[{j}].record.{cost_columns[0]}" for j in range(40)]
            picked = rng.choice(len(records), SINGLES, replace=False)
            picked = np.union1d(picked, refused[:20])
            answers = []
            for i in picked:
                status, answer = client.post({"id": int(i), "record": records[i]})
                if decided[i]:
                    assert status == 200, answer
                    answers.append(answer)
                else:
                    assert (status, answer["field"]) == (422, f"record.{cost_columns[0]}")
            got = pd.DataFrame(answers)
            expected = want.iloc[[int(a["id"]) for a in answers]]
            assert got["decision"].tolist() == expected["decision"].tolist(), bundle.name
            explained(got, expected, exact=False)


def explained(got: pd.DataFrame, expected: pd.DataFrame, exact: bool) -> None:
    """The probabilities (ML and rule lists), expected costs (ML) and the deciding rule (rule
    lists) as score wrote them."""
    for field, prefix in (("probabilities", "p_"), ("expected_costs", "expected_cost_")):
        if field not in got:
            assert not any(c.startswith(prefix) for c in expected.columns), field
            continue
        values = pd.DataFrame(got[field].tolist()).add_prefix(prefix)
        theirs = expected[values.columns].to_numpy()
        if exact:
            assert np.array_equal(values.to_numpy(), theirs)
        else:
            np.testing.assert_allclose(values.to_numpy(), theirs, rtol=1e-12, atol=1e-12)
    if "rule" in expected:
        assert got["rule"].tolist() == expected["rule"].tolist()
