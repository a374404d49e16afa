"""advisor serve on a small case whose costs depend on the example: bad requests refused with the
field named, shadow and canary, the prediction log (format, rotation, degraded paths), metrics,
the command itself, and `analyze --measure-service`. Every server is started on a free
localhost port by the test that needs it and stopped by it."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import Http, awkward_rows, json_records, synthetic_frame
from scipy import stats

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")

import advisor
from advisor.cli.main import main
from advisor.serve.app import Served, Service
from advisor.serve.deciding import assign, treatment_score
from advisor.serve.predictionlog import FIELDS, PredictionLog
from advisor.serve.server import running
from advisor.serve.stalls import QUANTILES as WINDOW_QUANTILES

QUANTILES = [q for q, _ in WINDOW_QUANTILES]

COLUMNS = ["age", "income", "plan", "region", "amount"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """The small case analysed by `advisor analyze --measure-service`: its run folder."""
    tmp = tmp_path_factory.mktemp("serve")
    synthetic_frame().to_csv(tmp / "small.csv", index=False)
    (tmp / "small.yaml").write_text(
        textwrap.dedent(
            """
            name: small
            data: small.csv
            target: outcome
            costs:
              decisions: [skip, call]
              matrix:
                "no":  {skip: 0, call: 10}
                "yes": {skip: "0.05 * amount", call: 30}
            decision: {volume: 500 per day, timing: live, precomputable: false,
                       latency_budget_ms: 50}
            seed: 3
            """
        )
    )
    done = CliRunner().invoke(
        main,
        ["analyze", str(tmp / "small.yaml"), "--out", str(tmp / "runs"), "-q", "--measure-service"],
    )
    assert done.exit_code == 0, done.output
    return tmp / "runs" / "small"


def bundle(folder: Path, name: str) -> Path:
    return folder / "policies" / name


def fresh_rows(n: int = 300, seed: int = 11) -> pd.DataFrame:
    """Rows the policies never saw, a quarter of them with missing values and unseen levels."""
    rows = synthetic_frame(n, seed=seed)[COLUMNS]
    awkward = awkward_rows(synthetic_frame(n // 4, seed=seed + 1)[COLUMNS], seed=seed)
    return pd.concat([rows, awkward], ignore_index=True)


def log_lines(folder: Path) -> list[dict]:
    files = sorted(folder.glob("predictions-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


GOOD = {"age": 40.0, "income": 25000.0, "plan": "basic", "region": "north", "amount": 1200.0}


def with_value(**changes) -> dict:
    return {**GOOD, **changes}


def without(field: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != field}


def chunks(total: int, size: int = 16384):
    """A body sent chunked (no Content-Length): `total` bytes of one JSON string."""
    yield b'{"id": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'", "record": {}}'


LIMIT = 256 * 1024
# name, method, path, body, extra headers, status, the field the answer must name
BAD_REQUESTS = [
    ("malformed JSON", "POST", "/decide", b'{"record": {', None, 400, "body"),
    ("an empty body", "POST", "/decide", b"", None, 400, "body"),
    ("NaN, which JSON lacks", "POST", "/decide", b'{"record": {"age": NaN}}', None, 400, "body"),
    ("bytes that are not UTF-8", "POST", "/decide", b"\xff\xfe{", None, 400, "body"),
    ("JSON nested 100,000 deep", "POST", "/decide", b"[" * 100_000 + b"]" * 100_000, None, 400,
     "body"),
    ("a list, not an object", "POST", "/decide", [1, 2], None, 422, "body"),
    ("an unknown field", "POST", "/decide", {"record": GOOD, "colour": "red"}, None, 422, "colour"),
    ("no record", "POST", "/decide", {"id": "r-1"}, None, 422, "record"),
    ("a record that is a list", "POST", "/decide", {"record": [1, 2]}, None, 422, "record"),
    ("a column missing", "POST", "/decide", {"record": without("age")}, None, 422, "record.age"),
    ("text for a number", "POST", "/decide", {"record": with_value(age="old")}, None, 422,
     "record.age"),
    ("true for a number", "POST", "/decide", {"record": with_value(age=True)}, None, 422,
     "record.age"),
    ("a number for a category", "POST", "/decide", {"record": with_value(plan=3)}, None, 422,
     "record.plan"),
    ("an object for a value", "POST", "/decide", {"record": with_value(income={"a": 1})}, None,
     422, "record.income"),
    ("the cost column null", "POST", "/decide", {"record": with_value(amount=None)}, None, 422,
     "record.amount"),
    ("the cost column beyond a float", "POST", "/decide", {"record": with_value(amount=10**400)},
     None, 422, "record.amount"),
    ("an id that is a list", "POST", "/decide", {"id": [1], "record": GOOD}, None, 422, "id"),
    ("an empty id", "POST", "/decide", {"id": "", "record": GOOD}, None, 422, "id"),
    ("an id too long", "POST", "/decide", {"id": "x" * 201, "record": GOOD}, None, 422, "id"),
    ("a unit that is a fraction", "POST", "/decide", {"unit": 1.5, "record": GOOD}, None, 422,
     "unit"),
    ("records not a list", "POST", "/decide", {"records": {"record": GOOD}}, None, 422, "records"),
    ("no records", "POST", "/decide", {"records": []}, None, 422, "records"),
    ("1,001 records", "POST", "/decide", {"records": [{"record": GOOD}] * 1001}, None, 422,
     "records"),
    ("an id beside records", "POST", "/decide", {"records": [{"record": GOOD}], "id": "b"}, None,
     422, "id"),
    ("a bad row in a batch", "POST", "/decide",
     {"records": [{"record": GOOD}, {"record": with_value(age="x")}]}, None, 422,
     "records[1].record.age"),
    ("a row that is not an object", "POST", "/decide", {"records": [{"record": GOOD}, 5]}, None,
     422, "records[1]"),
    ("an undecidable row in a batch", "POST", "/decide",
     {"records": [{"record": GOOD}, {"record": GOOD}, {"record": with_value(amount=None)}]}, None,
     422, "records[2].record.amount"),
    ("a body over the limit", "POST", "/decide", {"id": "x" * LIMIT, "record": GOOD}, None, 413,
     "body"),
    ("a chunked body over the limit", "POST", "/decide", chunks(LIMIT + 50_000), None, 413,
     "body"),
    ("a body declared as text", "POST", "/decide", json.dumps({"record": GOOD}),
     {"content-type": "text/plain"}, 415, "content-type"),
    ("GET on /decide", "GET", "/decide", None, None, 405, "method"),
    ("an unknown path", "POST", "/predict", {"record": GOOD}, None, 404, "path"),
]  # fmt: skip


def test_bad_requests_get_a_4xx_naming_the_field_and_never_a_500(run_folder: Path):
    service = Service(Served.load(bundle(run_folder, "ml")), max_body_bytes=LIMIT)
    with running(service) as url:
        client, fresh = Http(url), Http(url, fresh=True)
        for name, method, path, body, headers, status, field in BAD_REQUESTS:
            got, answer = fresh.request(method, path, body, headers)
            assert (got, answer["field"]) == (status, field), (name, answer)
            assert answer["message"], name
            if got != 404 and got != 405:
                assert answer["errors"][0] == {"field": field, "message": answer["message"]}
            ok, decided = client.post({"id": "still-fine", "record": GOOD})
            assert ok == 200 and decided["id"] == "still-fine", name
        _, metrics = client.get("/metrics")
    assert 'status="500"' not in metrics
    counts = re.findall(r'advisor_requests_total\{[^}]*status="4\d\d"\} ([0-9.]+)', metrics)
    refused = sum(float(m) for m in counts)
    assert refused == len(BAD_REQUESTS)


def test_every_column_error_of_a_request_is_named(run_folder: Path):
    service = Service(Served.load(bundle(run_folder, "ml")))
    with running(service) as url:
        status, answer = Http(url).post(
            {"records": [{"record": with_value(age="x", plan=1)}, {"record": without("income")}]}
        )
    assert status == 422
    assert [e["field"] for e in answer["errors"]] == [
        "records[0].record.age",
        "records[0].record.plan",
        "records[1].record.income",
    ]


def test_one_record_and_a_batch_decide_as_the_bundle_does(run_folder: Path):
    rows = fresh_rows()
    records = json_records(rows)
    policy = advisor.load_policy(bundle(run_folder, "ml"))
    want = policy.decide_batch(rows)
    with running(Service(Served.load(bundle(run_folder, "ml")))) as url:
        client = Http(url)
        decidable = [i for i, r in enumerate(records) if r["amount"] is not None]
        status, batch = client.post(
            {"records": [{"id": i, "record": records[i]} for i in decidable]}
        )
        assert status == 200
        for i, answer in zip(decidable, batch["decisions"], strict=True):
            assert answer["id"] == str(i)
            assert answer["decision"] == policy.costs.decisions[want.codes[i]]
            assert list(answer["probabilities"].values()) == want.proba[i].tolist()
            assert list(answer["expected_costs"].values()) == want.expected_costs[i].tolist()
            assert answer["model_version"] == policy.version and answer["arm"] == "control"
        for i, record in enumerate(records):
            status, answer = client.post({"record": record})
            if record["amount"] is None:
                assert (status, answer["field"]) == (422, "record.amount")
                assert want.codes[i] == -1
            else:
                assert status == 200 and answer["decision"] == policy.costs.decisions[want.codes[i]]
                assert len(answer["id"]) == 32  # generated
                assert answer["latency_ms"] > 0


def test_the_shadow_decides_every_request_and_is_only_logged(run_folder: Path, tmp_path: Path):
    rows = fresh_rows(200, seed=21)
    records = json_records(rows)
    ml = advisor.load_policy(bundle(run_folder, "ml"))
    rules = advisor.load_policy(bundle(run_folder, "rules"))
    service = Service(
        Served.load(bundle(run_folder, "ml")),
        shadow=Served.load(bundle(run_folder, "rules")),
        log=PredictionLog(tmp_path / "log"),
    )
    sent: dict[str, int] = {}
    with running(service) as url:
        client = Http(url)
        for i, record in enumerate(records[:120]):
            status, answer = client.post({"id": f"s-{i}", "unit": f"u-{i % 7}", "record": record})
            if status == 200:
                sent[f"s-{i}"] = i
                assert not [k for k in answer if k.startswith("shadow")]
        batch = [i for i in range(120, len(records)) if records[i]["amount"] is not None]
        status, answer = client.post(
            {"records": [{"id": f"b-{i}", "record": records[i]} for i in batch]}
        )
        assert status == 200 and "shadow" not in json.dumps(answer)
        sent.update({f"b-{i}": i for i in batch})
    lines = log_lines(tmp_path / "log")
    assert len(lines) == len(sent) and {line["id"] for line in lines} == set(sent)
    ml_own = ml.decide(rows).astype(object).tolist()
    rules_own = rules.decide(rows).astype(object).tolist()
    for line in lines:
        i = sent[line["id"]]
        assert tuple(line) == FIELDS
        assert line["shadow_decision"] == rules_own[i]
        assert (line["shadow_policy"], line["shadow_version"]) == ("rules", rules.version)
        assert line["decision"] == ml_own[i]
        assert (line["policy"], line["model_version"], line["arm"]) == ("ml", ml.version, "control")
        assert line["record"] == records[i]
        assert line["unit"] == (f"u-{i % 7}" if line["id"].startswith("s-") else line["id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["ts"])
        assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
        assert line["latency_ms"] > 0
        assert line["request_records"] == (1 if line["id"].startswith("s-") else len(batch))


def test_a_shadow_that_cannot_decide_does_not_fail_the_request(run_folder: Path, tmp_path: Path):
    service = Service(
        Served.load(bundle(run_folder, "rules")),
        shadow=Served.load(bundle(run_folder, "ml")),
        log=PredictionLog(tmp_path / "log"),
    )
    with running(service) as url:
        status, answer = Http(url).post({"id": "no-amount", "record": with_value(amount=None)})
    assert status == 200 and answer["policy"] == "rules"
    # a rule list answers with its rule's number and class frequencies, as `advisor score` writes
    assert {"rule", "probabilities"} <= set(answer) and "expected_costs" not in answer
    (line,) = log_lines(tmp_path / "log")
    assert line["shadow_policy"] == "ml" and line["shadow_decision"] is None
    assert line["decision"] == answer["decision"]


def test_assignment_is_the_documented_salted_hash_within_its_binomial_band():
    units = [f"customer-{i}" for i in range(20_000)]
    for unit in units[:200]:
        digest = hashlib.sha256(b"exp-7\x00" + unit.encode()).digest()
        assert treatment_score("exp-7", unit) == int.from_bytes(digest[:8], "big") / 2**64
    arms = [assign("exp-7", u, 0.05) for u in units]
    assert arms == [assign("exp-7", u, 0.05) for u in units]
    low, high = stats.binom.interval(0.9999, len(units), 0.05)
    assert low <= arms.count("treatment") <= high
    other = [assign("exp-8", u, 0.05) for u in units]
    both = sum(a == b == "treatment" for a, b in zip(arms, other, strict=True))
    low, high = stats.binom.interval(0.9999, len(units), 0.05**2)
    assert low <= both <= high  # another salt reshuffles: overlap as for independent draws


def test_the_canary_sends_each_unit_to_one_arm_and_logs_it(run_folder: Path, tmp_path: Path):
    rows = synthetic_frame(600, seed=31)[COLUMNS]
    records = json_records(rows)
    own = {
        name: advisor.load_policy(bundle(run_folder, name)).decide(rows).astype(object).tolist()
        for name in ("rules", "ml")
    }
    service = Service(
        Served.load(bundle(run_folder, "rules")),
        treatment=Served.load(bundle(run_folder, "ml")),
        share=0.3,
        salt="exp-1",
        log=PredictionLog(tmp_path / "log"),
    )
    units = [f"u-{i % 200}" for i in range(600)]
    seen: dict[str, set] = {}
    with running(service) as url:
        client = Http(url)
        for i, (unit, record) in enumerate(zip(units, records, strict=True)):
            status, answer = client.post({"id": f"r-{i}", "unit": unit, "record": record})
            assert status == 200
            seen.setdefault(unit, set()).add(answer["arm"])
            assert answer["arm"] == assign("exp-1", unit, 0.3)
            policy = "ml" if answer["arm"] == "treatment" else "rules"
            assert answer["policy"] == policy and answer["decision"] == own[policy][i]
        status, batch = client.post(
            {
                "records": [
                    {"id": f"b-{i}", "unit": units[i], "record": records[i]} for i in range(200)
                ]
            }
        )
        assert status == 200
        assert [a["arm"] for a in batch["decisions"]] == [
            assign("exp-1", u, 0.3) for u in units[:200]
        ]
        status, answer = client.post({"id": "only-an-id", "record": records[0]})
        assert answer["arm"] == assign("exp-1", "only-an-id", 0.3)
        _, version = client.get("/version")
    assert all(len(arms) == 1 for arms in seen.values())
    treated = sum(arms == {"treatment"} for arms in seen.values())
    low, high = stats.binom.interval(0.9999, len(seen), 0.3)
    assert low <= treated <= high
    assert version["treatment_share"] == 0.3 and version["arms"]["treatment"] == own_version(
        run_folder, "ml"
    )
    lines = {line["id"]: line for line in log_lines(tmp_path / "log")}
    assert len(lines) == 600 + 200 + 1
    assert all(lines[f"r-{i}"]["arm"] == assign("exp-1", units[i], 0.3) for i in range(600))
    # Both arms decided every unit: the triggered analysis knows where they disagree.
    for i in range(600):
        line = lines[f"r-{i}"]
        assert line["control_decision"] == own["rules"][i]
        assert line["treatment_decision"] == own["ml"][i]
        assert line["decision"] == line[f"{line['arm']}_decision"]
    assert all(lines[f"b-{i}"]["treatment_decision"] == own["ml"][i] for i in range(200))


def own_version(folder: Path, name: str) -> str:
    return json.loads((bundle(folder, name) / "bundle.json").read_text())["version"]


class FailingDisk:
    """Opens log files that fail like a full disk: half of a write lands, then ENOSPC."""

    def __init__(self) -> None:
        self.failing = True

    def __call__(self, path: Path):
        disk = self

        class File:
            def __init__(self) -> None:
                self.raw = open(path, "ab", buffering=0)  # noqa: SIM115

            def write(self, data) -> int:
                if disk.failing:
                    self.raw.write(bytes(data[: len(data) // 2]))
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return self.raw.write(data)

            def truncate(self, size: int) -> int:
                return self.raw.truncate(size)

            def close(self) -> None:
                self.raw.close()

        return File()


@pytest.mark.parametrize("failure", ["disk full", "folder removed"])
def test_a_failing_log_degrades_health_but_the_service_decides_on(
    run_folder: Path, tmp_path: Path, failure: str
):
    folder = tmp_path / "log"
    if failure == "disk full":
        log = PredictionLog(
            folder,
            on_failure="degrade",
            opener=lambda path: open("/dev/full", "wb", buffering=0),  # noqa: SIM115
        )
    else:
        log = PredictionLog(folder, on_failure="degrade", max_bytes=400)
    with running(Service(Served.load(bundle(run_folder, "rules")), log=log)) as url:
        client = Http(url)
        assert client.get("/health")[1]["log"]["state"] == "ok"
        if failure == "folder removed":
            assert client.post({"record": GOOD})[0] == 200
            wait_for(lambda: log.written == 1)
            shutil.rmtree(folder)
        for _ in range(30):
            assert client.post({"record": GOOD})[0] == 200
        wait_for(lambda: log.status()["queued"] == 0 and log.dropped > 0)
        _, health = client.get("/health")
        _, metrics = client.get("/metrics")
        assert client.post({"record": GOOD})[0] == 200
    assert health["status"] == "degraded" and health["log"]["state"] == "degraded"
    assert ("No space left" if failure == "disk full" else "No such file") in health["log"]["error"]
    assert "advisor_log_degraded 1.0" in metrics
    dropped = re.search(r'advisor_log_lines_total\{outcome="dropped"\} ([0-9.]+)', metrics)
    assert float(dropped.group(1)) == health["log"]["dropped"]
    assert log.written + log.dropped == 31 + (failure == "folder removed")


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def entry(i: int) -> dict:
    return {"ts": 1.7e9 + i, "id": f"r-{i}", "unit": f"r-{i}", "arm": "control", "policy": "ml",
            "model_version": "ml-0", "decision": "skip", "record": {"age": i}, "latency_ms": 1.0}  # fmt: skip


def test_the_log_recovers_when_the_disk_does_and_keeps_only_whole_lines(tmp_path: Path):
    disk = FailingDisk()
    log = PredictionLog(
        tmp_path, on_failure="degrade", opener=disk, retry_seconds=0.05, flush_seconds=0.01
    ).start()
    for i in range(10):
        log.put(entry(i))
    wait_for(lambda: log.dropped == 10)
    assert log.status()["state"] == "degraded"
    disk.failing = False
    time.sleep(0.1)
    for i in range(10, 15):
        log.put(entry(i))
    wait_for(lambda: log.written == 5)
    assert log.status()["state"] == "ok" and log.status()["dropped"] == 10
    log.close()
    (file,) = tmp_path.glob("predictions-*.jsonl")
    text = file.read_text()
    assert text.endswith("\n")
    assert [json.loads(line)["id"] for line in text.splitlines()] == [
        f"r-{i}" for i in range(10, 15)
    ]


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path):
    log = PredictionLog(tmp_path, sync="async", on_failure="degrade", queue_lines=5)
    for i in range(8):
        log.put(entry(i))
    assert log.status()["dropped"] == 3 and log.status()["state"] == "degraded"
    log.start().close()
    assert log.written == 5 and len(log_lines(tmp_path)) == 5


def test_the_log_rotates_by_size_into_ordered_files_of_whole_lines(tmp_path: Path):
    log = PredictionLog(tmp_path, max_bytes=1000, flush_seconds=0.01).start()
    for i in range(60):
        log.put(entry(i))
        time.sleep(0.002)
    log.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) > 3
    assert all(re.fullmatch(r"predictions-\d{8}T\d{6}Z-\d+-\d{6}\.jsonl", f.name) for f in files)
    assert all(f.stat().st_size <= 1000 for f in files)
    lines = log_lines(tmp_path)
    assert [line["id"] for line in lines] == [f"r-{i}" for i in range(60)]
    assert lines[0]["ts"] == "2023-11-14T22:13:20.000000Z"


def test_metrics_count_requests_decisions_and_time_per_policy_and_version(run_folder: Path):
    service = Service(
        Served.load(bundle(run_folder, "ml")), shadow=Served.load(bundle(run_folder, "rules"))
    )
    ml, rules = own_version(run_folder, "ml"), own_version(run_folder, "rules")
    records = json_records(synthetic_frame(25, seed=41)[COLUMNS])
    with running(service) as url:
        client = Http(url)
        for record in records[:20]:
            assert client.post({"record": record})[0] == 200
        assert client.post({"records": [{"record": r} for r in records[20:]]})[0] == 200
        for _ in range(3):
            assert client.post({"record": without("age")})[0] == 422
        _, text = client.get("/metrics")
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def total(name: str, **labels) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    assert total("advisor_requests_total", endpoint="/decide", status="200") == 21
    assert total("advisor_requests_total", endpoint="/decide", status="422") == 3
    assert total("advisor_request_seconds_count", endpoint="/decide") == 24
    assert total("advisor_decisions_total", policy="ml", version=ml, arm="control") == 25
    assert total("advisor_decisions_total", policy="rules", version=rules, arm="shadow") == 25
    assert total("advisor_decide_seconds_count", policy="ml", version=ml) == 21
    assert total("advisor_serving_info", role="shadow", policy="rules", version=rules) == 1


def test_metrics_show_the_loop_lag_and_the_log_writes_recent_and_since_the_start(
    run_folder: Path, tmp_path: Path
):
    log = PredictionLog(tmp_path / "log", sync="process")
    service = Service(Served.load(bundle(run_folder, "ml")), log=log)
    records = json_records(synthetic_frame(20, seed=43)[COLUMNS])
    with running(service) as url:
        client = Http(url)
        for record in records:
            assert client.post({"record": record})[0] == 200
        time.sleep(0.1)  # the lag sampler wakes every 10 ms
        _, text = client.get("/metrics")
    from prometheus_client.parser import text_string_to_metric_families

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    named = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert named["advisor_event_loop_lag_seconds_count", ()] >= 5
    lag = [named["advisor_event_loop_lag_recent_seconds", (("quantile", q),)] for q in QUANTILES]
    assert 0 <= lag[0] <= lag[1] <= lag[2]
    writes = sum(v for (name, _), v in named.items() if name == "advisor_log_write_seconds_count")
    assert writes >= 1 and log.written == 20
    recent = [
        v
        for (name, labels), v in named.items()
        if name == "advisor_log_write_recent_seconds" and ("quantile", "1") in labels
    ]
    assert recent and all(v > 0 for v in recent)


def test_version_and_health_describe_what_is_served(run_folder: Path):
    with running(Service(Served.load(bundle(run_folder, "ml")))) as url:
        client = Http(url)
        _, version = client.get("/version")
        _, health = client.get("/health")
    assert version["policy"] == "ml" and version["model_version"] == own_version(run_folder, "ml")
    assert version["case"]["name"] == "small" and version["treatment"] is None
    assert version["fields"] == COLUMNS and version["max_records"] == 1000
    assert health == {
        "status": "ok",
        "policy": "ml",
        "model_version": version["model_version"],
        "log": {"state": "off"},
    }


def test_the_command_serves_logs_and_stops_cleanly_on_sigterm(run_folder: Path, tmp_path: Path):
    command = [sys.executable, "-m", "advisor.cli", "serve", str(bundle(run_folder, "ml"))]
    command += ["--port", "0", "--log", str(tmp_path / "log")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        url = re.search(r" at (http://\S+)", first).group(1)
        status, answer = Http(url).post({"id": "cli-1", "record": GOOD})
        assert status == 200 and answer["model_version"] == own_version(run_folder, "ml")
    finally:
        process.terminate()
        rest = process.communicate(timeout=60)[1]
    # uvicorn finishes what is in flight, then ends as the signal would (-SIGTERM), not with 1
    assert process.returncode in (0, -signal.SIGTERM), rest
    assert "error" not in rest.lower()
    assert [line["id"] for line in log_lines(tmp_path / "log")] == ["cli-1"]


def test_the_command_refuses_bad_arguments_with_one_line(run_folder: Path, small_run, tmp_path):
    ml = str(bundle(run_folder, "ml"))
    (tmp_path / "a-file").write_text("")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        cases = [
            (["serve", str(tmp_path / "nope")], "no such bundle folder"),
            (["serve", ml, "--share", "0.1"], "--share and --salt need --treatment"),
            (["serve", ml, "--treatment", str(small_run[1] / "policies" / "ml")], "--treatment"),
            (["serve", ml, "--log", str(tmp_path / "a-file" / "log")], "cannot create the log"),
            (["serve", ml, "--port", port], f"cannot listen on 127.0.0.1:{port}"),
        ]
        for args, says in cases:
            done = CliRunner().invoke(main, args)
            assert done.exit_code == 2, (args, done.output)
            assert says in done.output and len(done.output.strip().splitlines()) == 1, done.output


def test_the_core_imports_no_web_framework():
    code = (
        "import sys, advisor, advisor.cli.main, advisor.ship.score, advisor.artefacts.bundle, advisor.analysis.pipeline; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'uvicorn', 'prometheus_client', 'pydantic'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_measure_service_puts_the_http_figures_beside_the_in_process_ones(run_folder: Path):
    result = json.loads((run_folder / "result.json").read_text())
    latency = result["latency"]
    http = latency["service"]
    assert http["requests"] == latency["requests"] and "HTTP/1.1" in http["transport"]
    for name in ("baseline", "rules", "ml"):
        assert latency[name]["p99_ms"] > 0  # the in-process figures stay
        assert http[name]["n"] == latency["requests"] and http[name]["p99_ms"] > 0
        assert http[name]["version"] == latency[name]["version"]
        assert http[name]["p50_ms"] <= http[name]["p99_ms"]
    assert latency["realtime_check"] == {
        "policy": "ml",
        "figure": "http",
        "measured_p99_ms": http["ml"]["p99_ms"],
        "budget_ms": 50.0,
        "within_budget": http["ml"]["p99_ms"] <= 50.0,
    }
    report = (run_folder / "report.html").read_text()
    assert "HTTP p99 ms" in report and "over HTTP through the service" in report
    reasons = " ".join(result["recommendation"]["reasons"])
    assert "through the real service over HTTP" in reasons
