"""Simulated production for the monitor tests: a bundled case's test rows, drawn with
replacement over some days, decided by the run's own bundles (`advisor.load_policy`), and
written as `advisor serve --log` writes its prediction log (JSON Lines, the input fields under
`record`, rotated into several files). Outcomes are the rows' true labels, of which only some
have arrived.

The A/B assignment is the service's: a unit is in treatment when the first 8 bytes of
SHA-256 of `salt`, a NUL byte and the unit, read as a big-endian integer over 2^64, fall below
the treatment share.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

import advisor
from advisor.core.case import load_case
from advisor.core.data import load_dataset, split_dataset
from advisor.core.predictionlog import FORMAT

ROOT = Path(__file__).resolve().parent.parent
LOG_FIELDS = ("ts", "id", "unit", "arm", "policy", "model_version", "decision")


def test_rows(case: str) -> pd.DataFrame:
    """The test split of a bundled case, as the analysis made it (its seed)."""
    loaded = load_case(ROOT / "datasets" / f"{case}.yaml")
    return split_dataset(load_dataset(loaded), loaded.seed).test.frame.reset_index(drop=True)


test_rows.__test__ = False  # a helper, not a test


def in_treatment(units: pd.Series, salt: str, share: float) -> np.ndarray:
    """The service's arm assignment (see the module docstring)."""
    draws = [
        int.from_bytes(hashlib.sha256(f"{salt}\0{u}".encode()).digest()[:8], "big") / 2**64
        for u in units
    ]
    return np.asarray(draws) < share


def simulate(
    run: Path,
    rows: pd.DataFrame,
    target: str,
    *,
    days: int = 4,
    per_day: int = 600,
    start: str = "2026-03-02",
    control: str = "rules",
    treatment: str | None = None,
    share: float = 0.5,
    shadow: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """`days` x `per_day` decisions on rows drawn from `rows`: the design's log columns, the
    input fields as columns, and `truth` (the row's label, for `outcomes`). Units are the ids
    (one decision a unit); with `treatment`, units are split by the service's hash."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    drawn = rows.iloc[rng.integers(0, len(rows), n)].reset_index(drop=True)
    seconds = np.sort(
        np.repeat(np.arange(days), per_day) * 86400 + rng.uniform(0, 86400, n).round(3)
    )
    ids = pd.Series([f"r-{seed}-{i}" for i in range(n)])
    arm = np.full(n, "control", dtype=object)
    if treatment is not None:
        arm[in_treatment(ids, f"salt-{seed}", share)] = "treatment"
    log = pd.DataFrame(
        {
            "ts": pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s"),
            "id": ids,
            "unit": ids,
            "arm": arm,
        }
    )
    log["policy"] = np.where(arm == "treatment", treatment or "", control)
    decided = np.full(n, None, dtype=object)
    versions = np.full(n, None, dtype=object)
    for name in {control, treatment} - {None}:
        mine = log["policy"].to_numpy() == name
        decided[mine], versions[mine] = _decide(run, name, drawn[mine])
    log["model_version"], log["decision"] = versions, decided
    if treatment is not None:  # the service has both arms' policies decide every unit
        log["control_decision"], _ = _decide(run, control, drawn)
        log["treatment_decision"], _ = _decide(run, treatment, drawn)
    if shadow is not None:
        log["shadow_policy"] = shadow
        log["shadow_decision"], log["shadow_version"] = _decide(run, shadow, drawn)
    log["latency_ms"] = rng.lognormal(np.log(2.0), 0.4, n).round(3)
    out = pd.concat([log, drawn.drop(columns=[target])], axis=1)
    out["truth"] = drawn[target].to_numpy()
    return out[out["decision"].notna()].reset_index(drop=True)  # the service refuses the rest


def _decide(run: Path, name: str, frame: pd.DataFrame) -> tuple[np.ndarray, str]:
    policy = advisor.load_policy(run / "policies" / name)
    codes = policy.decide_codes(frame)
    labels = np.array(policy.costs.decisions, dtype=object)[np.maximum(codes, 0)]
    return np.where(codes >= 0, labels, None), policy.version


def write_log(log: pd.DataFrame, folder: Path, inputs: list[str], lines: int = 1000) -> Path:
    """The log as `advisor serve` writes it: JSON Lines files of at most `lines` lines, the
    inputs under `record`, a missing value as null."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = [
        *LOG_FIELDS,
        "control_decision",
        "treatment_decision",
        "shadow_policy",
        "shadow_version",
        "shadow_decision",
    ]
    out = log[[c for c in fields if c in log]].copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    records = log[inputs].astype(object).where(log[inputs].notna(), None)
    out["record"] = records.to_dict("records")
    out["latency_ms"] = log["latency_ms"]
    out.insert(0, "format", FORMAT)
    for i, start in enumerate(range(0, len(out), lines)):
        part = out.iloc[start : start + lines]
        path = folder / f"predictions-20260302T000000Z-1-{i + 1:06d}.jsonl"
        text = part.to_json(orient="records", lines=True, force_ascii=False)
        path.write_text(text.rstrip("\n") + "\n")
    return folder


def outcomes(
    log: pd.DataFrame,
    target: str,
    *,
    now: str,
    delay_days: float = 1.0,
    arrived: float = 0.8,
    seed: int = 0,
) -> pd.DataFrame:
    """The outcomes known at `now`: rows older than the delay, of which a share `arrived`."""
    rng = np.random.default_rng(seed + 7)
    old = log["ts"] <= pd.Timestamp(now) - pd.Timedelta(days=delay_days)
    known = old.to_numpy() & (rng.random(len(log)) < arrived)
    return pd.DataFrame({"id": log["id"][known], target: log["truth"][known]})
