"""The same inputs and seed give the same numbers; another seed gives another split."""

from __future__ import annotations

from conftest import synthetic_frame

import advisor

MEASURED = {"timings", "latency"}  # wall-clock measurements, different on every run


def _run(seed: int) -> dict:
    result = advisor.advise(
        synthetic_frame(900), target="outcome", costs={"fp": 10, "fn": 100}, seed=seed
    )
    return {k: v for k, v in result.to_dict().items() if k not in MEASURED}


def test_same_inputs_and_seed_give_identical_results():
    a, b = _run(3), _run(3)
    assert a.keys() == b.keys() >= {"evaluation", "rules", "experiment", "recommendation"}
    for key in a:
        assert a[key] == b[key], key
    assert a["manifest"]["data_sha256"] == b["manifest"]["data_sha256"]


def test_another_seed_changes_the_split_but_not_the_data_hash():
    a, c = _run(3), _run(4)
    assert a["manifest"]["data_sha256"] == c["manifest"]["data_sha256"]
    assert a["evaluation"]["policies"]["ml"] != c["evaluation"]["policies"]["ml"]
