"""docs/walkthrough.ipynb run top to bottom by a real Jupyter kernel, as a user runs it; its
outputs agree with the run folder it saved and with the policy loaded again here."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "walkthrough.ipynb"


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def _text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


@pytest.mark.slow
def test_the_walkthrough_runs_in_a_real_kernel():
    import advisor

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "docs")}}
    ).execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    html = [
        out.data["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for out in c.outputs
        if "data" in out and "text/html" in out.data
    ]
    option = re.search(r"recommendation: (\S+)", text).group(1)
    folder = Path(re.search(r"run folder: (\S+)", text).group(1))
    shipped = re.search(r"shipped policy: (\S+)", text).group(1)
    decisions = ast.literal_eval(re.search(r"decisions: (\[.*\])", text).group(1))
    try:
        saved = json.loads((folder / "result.json").read_text())
        assert option == saved["recommendation"]["option"]
        assert option in {"ship-rules", "batch-ml", "realtime-ml"}
        assert shipped == (
            "ml" if option.endswith("-ml") else saved["recommendation"]["rules_policy"]
        )
        policy = advisor.load_policy(folder / "policies" / shipped)
        rows = pd.read_csv(ROOT / "datasets" / "telco-churn.csv.gz").drop(columns="churn").iloc[:6]
        assert decisions == list(policy.decide(rows).astype(str))
        assert set(decisions) <= {"no_offer", "offer"}
        reasons = ast.literal_eval(re.search(r"reasons: (\[.*\])", text).group(1))
        assert reasons == list(policy.explain(rows, 3).frame()["reason_1"])
        assert any("advisor-policy" in h and policy.version in h for h in html)  # the policy card
        assert any(
            "image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", [])
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
