"""Does the advice hinge on one split? Each bundled case (and, with --real, each data set of
`benchmarks/real_datasets.py`) analysed at seeds 0-11: the option, p_best and the share of
seeds that agree with the modal option.

    uv run python benchmarks/stability.py                      # the bundled cases
    uv run python benchmarks/stability.py telco-churn          # some of them
    uv run --group data python benchmarks/stability.py --real  # and the real data sets
    uv run python benchmarks/stability.py telco-churn --seeds 4  # seeds 0-3 only (a quick look)
    uv run python benchmarks/stability.py credit-scoring --json runs.jsonl  # and one JSON line a run

Named cases run in the order given.
The seed changes the split (for data without a time column), the learners' seeds and the
bootstrap. `agree` is the share of resamples whose whole procedure gives the procedure's own
option (`recommendation.procedure_agreement`, before the tie rule). `stable` is
`recommendation.stability`, the share of refits (cross-fitting folds x
repeats, or backtest periods) whose own procedure gives the option. Per case it prints one line per seed, then the modal option and how many seeds give
it, and how many of the others the report calls tied (`recommendation.tied`). Each line also
names the options that were not feasible and the top two options' net difference interval,
flagged when it contains zero while p_best is 0.95 or more.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SEEDS = 12  # seeds 0-11 unless --seeds N


def bundled() -> dict[str, Path]:
    return {p.stem: p for p in sorted((ROOT / "datasets").glob("*.yaml"))}


def real_cases(folder: Path, wanted: list[str]) -> dict[str, Path]:
    """Each real data set (those `wanted`, or all when none is named) written as a CSV and a
    case file under `folder`."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from real_datasets import CASES  # the `data` dependency group

    out = {}
    for real in CASES:
        if wanted and real.name not in wanted:
            continue
        where = folder / real.name
        where.mkdir()
        real.load().to_csv(where / "data.csv", index=False)
        case = {"name": real.name, "data": "data.csv", **real.case}
        (where / "case.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
        out[real.name] = where / "case.yaml"
    return out


def figure(value: object) -> str:
    return "-" if value is None else f"{value:.2f}"


def _agreement(rec: dict) -> float | None:
    """The share of resamples whose procedure gives the procedure's own option."""
    return (rec.get("procedure_agreement") or {}).get(rec["procedure_option"])


def _overlap(rec: dict) -> str:
    """The options that were not feasible (a real-time model's latency is measured on this
    machine, so a loaded machine can rule it out) and the top two options' net difference
    interval, flagged when it contains zero while p_best is 0.95 or more."""
    infeasible = [o for o, v in rec["options"].items() if not v["feasible"]]
    out = f"  not feasible: {', '.join(infeasible)}" if infeasible else ""
    pair = rec["top_two"]
    if not pair or pair["net_difference"]["low"] is None:
        return out
    d = pair["net_difference"]
    flag = ""
    if d["low"] <= 0 <= d["high"] and (rec["p_best"] or 0) >= 0.95:
        flag = "  p_best >= 0.95 although the top two overlap"
    top = f"  {pair['options'][0]} - {pair['options'][1]}: {d['low']:,.0f} to {d['high']:,.0f}"
    return out + top + flag


def run(name: str, path: Path, seeds: int, log: Path | None = None) -> tuple[int, int]:
    """Analyse one case at every seed; print its lines (and append one JSON line a run to
    `log`); return (agreeing, tied) seed counts."""
    from advisor.api import advise
    from advisor.core.case import resolve_case

    case = resolve_case(path)
    rows = []
    for seed in range(seeds):
        start = time.perf_counter()
        rec = advise(replace(case, seed=seed)).data["recommendation"]
        rows.append(rec)
        seconds = time.perf_counter() - start
        if log is not None:
            with log.open("a") as out:
                out.write(
                    json.dumps({"case": name, "seed": seed, "seconds": seconds, **rec}, default=str)
                    + "\n"
                )
        print(
            f"{name:<18}{seed:>5}  {rec['option']:<12}{figure(rec['p_best']):>8}"
            f"{figure(_agreement(rec)):>8}{figure(rec.get('stability')):>8}"
            f"{'  tied' if rec['tied'] else '':<7}{seconds:>8.1f} s"
            f"{_overlap(rec)}",
            flush=True,
        )
    modal, count = Counter(r["option"] for r in rows).most_common(1)[0]
    tied = sum(1 for r in rows if r["option"] != modal and r["tied"])
    print(
        f"{name:<18} modal {modal}: {count} of {len(rows)} seeds agree"
        f"{f', {tied} of the others called tied' if tied else ''}\n",
        flush=True,
    )
    return count, tied


def main() -> int:
    argv = sys.argv[1:]
    seeds = SEEDS
    if "--seeds" in argv:
        at = argv.index("--seeds")
        seeds = int(argv[at + 1])
        del argv[at : at + 2]
    log = None
    if "--json" in argv:
        at = argv.index("--json")
        log = Path(argv[at + 1])
        del argv[at : at + 2]
    args = [a for a in argv if not a.startswith("--")]
    with tempfile.TemporaryDirectory(prefix="advisor-stability-") as tmp:
        cases = bundled()
        if "--real" in argv:
            cases.update(real_cases(Path(tmp), args))
        unknown = set(args) - set(cases)
        if unknown:
            print(f"unknown case {sorted(unknown)[0]!r}; choose from {sorted(cases)}")
            return 2
        print(
            f"{'case':<18}{'seed':>5}  {'option':<12}{'p_best':>8}{'agree':>8}{'stable':>8}{'':<7}"
            f"{'time':>8}"
        )
        summary = {n: run(n, cases[n], seeds, log) for n in (args or cases)}
    print(f"{'case':<18}{'agree':>8}{'tied':>6}")
    for name, (count, tied) in summary.items():
        print(f"{name:<18}{count:>5}/{seeds:<2}{tied:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
