"""A run where the estimated cost raises the alarm before the outcomes can.

credit-scoring's ML policy serves 150 applicants a day for 60 days. From day 21 the applicants
are riskier (the test rows drawn with weights that favour those the model expects to cost more:
the same people, a different mix, so the outcome given the inputs is unchanged). Outcomes
arrive DELAY days after the decision. The script writes the prediction log (CSV: what
`advisor score` joined with its input gives) and the outcomes known on the last day, runs
`advisor monitor` with weekly windows, and prints its summary and, for each alert, the first
window it fired in and the day a daily run could first have read it (the window's end; for the
realised cost, DELAY days later, when those decisions' outcomes had arrived).

    uv run python benchmarks/monitor_early_alarm.py --run RUN --out OUT [--delay 30] [--tilt 1.0]

RUN is the credit-scoring run folder (`advisor analyze datasets/credit-scoring.yaml --out
reports`: reports/credit-scoring). Reproducible: fixed seeds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DAYS, PER_DAY, ONSET = 60, 150, 20  # the mix turns riskier on day 21 (index 20)


def main() -> None:
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=30.0, help="days until an outcome")
    parser.add_argument("--tilt", type=float, default=1.0, help="how much riskier the mix")
    args = parser.parse_args()
    loaded = load_case(ROOT / "datasets" / "credit-scoring.yaml")
    target = loaded.target
    rows = split_dataset(load_dataset(loaded), loaded.seed).test.frame.reset_index(drop=True)
    policy = advisor.load_policy(args.run / "policies" / "ml")
    codes = policy.decide_codes(rows)
    keep = codes >= 0
    rows, codes = rows[keep].reset_index(drop=True), codes[keep]
    expected = policy.costs.expected_costs(policy.predict_proba(rows), rows)
    risk = expected[np.arange(len(rows)), codes]
    z = (risk - risk.mean()) / risk.std()
    riskier = np.exp(args.tilt * z)
    rng = np.random.default_rng(0)
    picks = [
        rng.choice(len(rows), PER_DAY, p=None if day < ONSET else riskier / riskier.sum())
        for day in range(DAYS)
    ]
    idx = np.concatenate(picks)
    seconds = np.repeat(np.arange(DAYS), PER_DAY) * 86400 + rng.uniform(0, 86400, len(idx))
    start = pd.Timestamp("2026-01-05")
    log = rows.iloc[idx].drop(columns=[target]).reset_index(drop=True)
    ids = [f"a-{i}" for i in range(len(idx))]
    log.insert(
        0,
        "ts",
        (start + pd.to_timedelta(np.sort(seconds), unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    log.insert(1, "id", ids)
    log.insert(2, "unit", ids)
    log.insert(3, "policy", "ml")
    log.insert(4, "model_version", policy.version)
    log.insert(5, "decision", np.array(policy.costs.decisions, dtype=object)[codes[idx]])
    args.out.mkdir(parents=True, exist_ok=True)
    log.to_csv(args.out / "log.csv", index=False)
    now = start + pd.Timedelta(days=DAYS)
    arrived = pd.to_datetime(log["ts"]).dt.tz_localize(None) <= now - pd.Timedelta(days=args.delay)
    known = pd.DataFrame({"id": log["id"], target: rows[target].to_numpy()[idx]})[
        arrived.to_numpy()
    ]
    known.to_csv(args.out / "outcomes.csv", index=False)
    command = [
        sys.executable,
        "-m",
        "advisor.cli",
        "monitor",
        str(args.run),
        "--log",
        str(args.out / "log.csv"),
        "--outcomes",
        str(args.out / "outcomes.csv"),
        "--key",
        "id",
        "--window",
        "7d",
        "--out",
        str(args.out / "monitoring"),
    ]
    print("$ advisor monitor", " ".join(command[4:]))
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout.rstrip())
    print(f"exit status {done.returncode}")
    found = json.loads((args.out / "monitoring" / "monitor.json").read_text())
    print(
        f"\nthe mix turns riskier on {(start + pd.Timedelta(days=ONSET)).date()}; outcomes "
        f"arrive {args.delay:g} days late (known up to {(now - pd.Timedelta(days=args.delay)).date()})"
    )
    for alert in found["alerts"]:
        first = alert["windows"][0]
        seen = pd.Timestamp(first) + pd.Timedelta(days=7)
        if alert["kind"] == "cost":  # its outcomes came DELAY days after the decisions
            seen = seen + pd.Timedelta(days=args.delay)
        print(
            f"{alert['kind']:16} {alert['subject']:6} first fired in the window of {first}: "
            f"could be read by {seen.date()}"
        )


if __name__ == "__main__":
    main()
