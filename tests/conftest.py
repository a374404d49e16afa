"""Shared fixtures: small synthetic cases that run the whole pipeline in seconds."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The suite's knob for fewer refits: a single split unless a test asks for refits (its own
# processes inherit it). Set before advisor reads its option defaults.
os.environ.setdefault("ADVISOR_REFITS", "1")
# The TreeSHAP tables' disk cache: a folder of the test session's, never the user's.
os.environ.setdefault(
    "ADVISOR_CACHE_DIR", tempfile.mkdtemp(prefix="advisor-test-cache-", dir=tempfile.gettempdir())
)


def synthetic_frame(n: int = 1200, seed: int = 0, with_time: bool = False) -> pd.DataFrame:
    """A binary problem with numeric, categorical and missing values and a real signal."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = -1.0 + 0.04 * (age - 50) + 1.2 * (plan == "basic") - 0.5 * np.log(income / 20000)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    income[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "plan": plan,
            "region": region,
            "amount": rng.uniform(100, 5000, n).round(2),
            "outcome": np.where(y, "yes", "no"),
        }
    )
    if with_time:
        frame["when"] = pd.date_range("2024-01-01", periods=n, freq="h").astype(str)
    return frame


def write_small_case(folder: Path) -> Path:
    """The small case: a case YAML plus its CSV written into `folder`; the YAML's path."""
    synthetic_frame().to_csv(folder / "small.csv", index=False)
    (folder / "small.yaml").write_text(
        textwrap.dedent(
            """
            name: small
            question: Should we call this customer?
            data: small.csv
            target: outcome
            currency: EUR
            costs:
              decisions: [skip, call]
              matrix:
                "no":  {skip: 0, call: 10}
                "yes": {skip: 100, call: 30}
            decision:
              volume: 500 per day
              timing: periodic
            seed: 3
            """
        )
    )
    return folder / "small.yaml"


@pytest.fixture
def small_case_file(tmp_path: Path) -> Path:
    """A case YAML plus CSV in a temporary folder."""
    return write_small_case(tmp_path)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The whole pipeline on the small synthetic case, saved as a run folder (once a session)."""
    import advisor

    result = advisor.advise(
        synthetic_frame(),
        target="outcome",
        costs={"fp": 10, "fn": 100, "tp": 30},
        volume="500 per day",
        seed=3,
        name="small",
    )
    return result, result.save(tmp_path_factory.mktemp("runs"))


def awkward_rows(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A copy of `frame` with missing values in every column and categories never seen."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in out.columns:
        hit = rng.random(len(out)) < 0.1
        if out[col].dtype.kind in "fiu":
            out[col] = out[col].astype(float).where(~hit)
        else:
            out[col] = out[col].astype(object).where(~hit, None)
            unseen = rng.random(len(out)) < 0.05
            out.loc[unseen & ~hit, col] = "never seen before"
    return out


@pytest.fixture(scope="session")
def bundled_analysis():
    """Each bundled case analysed at most once a session, when a test first asks for it:
    `bundled_analysis("telco-churn")` -> its Result."""
    import advisor

    results: dict = {}

    def get(name: str):
        if name not in results:
            results[name] = advisor.advise(ROOT / "datasets" / f"{name}.yaml")
        return results[name]

    return get


class Http:
    """A minimal HTTP/1.1 client for the service tests (the standard library's, one keep-alive
    connection); `fresh=True` opens a new connection for each request."""

    def __init__(self, url: str, fresh: bool = False) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port, self.fresh = parts.hostname, parts.port, fresh
        self.connection = None

    def _connection(self):
        import http.client

        if self.fresh or self.connection is None:
            if self.connection is not None:
                self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.connection

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, object]:
        """Status and the answer (JSON decoded when it is JSON, else text)."""
        import json

        connection = self._connection()
        if body is not None and not isinstance(body, bytes | str) and not hasattr(body, "__next__"):
            body = json.dumps(body)
        sent = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers={**sent, **(headers or {})})
        answer = connection.getresponse()
        text = answer.read().decode("utf-8")
        kind = answer.getheader("content-type") or ""
        return answer.status, json.loads(text) if kind.startswith("application/json") else text

    def post(self, body, path: str = "/decide", headers=None) -> tuple[int, object]:
        return self.request("POST", path, body, headers)

    def get(self, path: str) -> tuple[int, object]:
        return self.request("GET", path)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them in JSON: plain Python values, null for a missing value."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [
        {k: v.item() if hasattr(v, "item") else v for k, v in row.items()}
        for row in plain.to_dict("records")
    ]


@pytest.fixture(scope="session")
def credit_run(bundled_analysis, tmp_path_factory) -> Path:
    """The bundled credit-scoring case's run folder (its one analysis of the session)."""
    return bundled_analysis("credit-scoring").save(tmp_path_factory.mktemp("credit-run"))
