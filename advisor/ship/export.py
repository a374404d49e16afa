"""`advisor export`: the chosen option's policy bundle, copied from a run folder, with a README
that says how to run it (SQL or Python for the rules, `advisor score` on a schedule for batch
ML, `advisor serve` for real-time ML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from advisor.artefacts.bundle import META, bundle_bytes, from_bytes, meta_plugin
from advisor.artefacts.payload import ResultData
from advisor.artefacts.run import RunFolder, open_run, write_folder
from advisor.core.assumptions import OPTIONS
from advisor.core.errors import InputError
from advisor.core.incumbent import KEEP
from advisor.core.money import money_interval

BUNDLE = "bundle"


@dataclass(frozen=True)
class Exported:
    """Where the export went, for which option, and the policy it carries."""

    path: Path
    option: str
    policy: str
    version: str


def option_policy(result: Mapping, option: str) -> str:
    """The policy that stands for an option in a run: the control rule list for ship-rules,
    the ML treatment for the two ML options."""
    policy = ResultData(result).option_policy(option)
    if not policy:
        raise InputError(f"the run has no policy for {option!r} (no ML model was fitted)")
    return policy


def export(
    run: str | Path,
    option: str | None = None,
    out: str | Path | None = None,
    policy: str | None = None,
) -> Exported:
    """Write `out/README.md` and `out/bundle/` (the option's bundle, checked, byte for byte);
    `policy` exports a compared policy by its name instead (a user's own model)."""
    folder = open_run(run)
    rec = folder.view.recommendation
    if policy is not None:
        option = option or "batch-ml"
        check_bundled(folder.result, policy)
    else:
        option = option or (rec.option if rec else None)
        if option is None:
            raise InputError("the run has no recommendation; say which --option to export")
        if option == KEEP:
            raise InputError(
                "the run recommends keeping what runs today (keep-incumbent): the incumbent is "
                "not a bundle, so there is nothing to export; export a replacement with --option"
            )
        if option not in OPTIONS:
            raise InputError(f"unknown option {option!r}; options are {list(OPTIONS)}")
        policy = option_policy(folder.result, option)
    files = bundle_bytes(folder.bundle(policy))
    bundle = from_bytes(files, folder.bundle(policy))
    target = Path(out) if out is not None else Path(f"{folder.name}-{option}")
    readme = option_readme(option, folder, bundle.meta)
    contents = {"README.md": readme, **{f"{BUNDLE}/{k}": v for k, v in files.items()}}
    write_folder(target, contents, marker=f"{BUNDLE}/{META}")
    return Exported(target, option, policy, bundle.meta["version"])


def check_bundled(result: Mapping, policy: str) -> None:
    """A policy named for export must be one the run compared and bundled."""
    compared = result.get("policies") or {}
    if policy not in compared:
        raise InputError(
            f"the run compared no policy {policy!r}; it compared {sorted(compared)}",
            where="--policy",
        )
    if not compared[policy].get("bundled", True):
        raise InputError(
            f"policy {policy!r} is evaluated only: advisor compares it but does not export, "
            "score or serve it",
            where="--policy",
        )


def option_readme(option: str, run: RunFolder, meta: Mapping) -> str:
    """How to run the exported option, with what the run measured of it."""
    result = run.result
    case = result["case"]
    currency = case.get("currency", "")
    expected = meta.get("expected") or {}
    shares = expected.get("decision_shares") or {}
    rec = run.view.recommendation
    ids = case.get("ignore") or []
    id_flag = f"--id {ids[0]}" if ids else "--id YOUR_ID_COLUMN"
    chosen = rec.option if rec else None
    verdict = (
        f"advisor recommended `{option}` for this case."
        if chosen == option
        else f"advisor recommended `{chosen}`, not `{option}`, for this case."
    )
    question = [case["question"], ""] if case.get("question") else []
    cost = money_interval(expected.get("cost_per_decision"), currency, "per decision")
    head = [
        f"# {case['name']}: {option}",
        "",
        *question,
        verdict,
        "",
        f"- policy: `{meta['policy']}`, version `{meta['version']}` (in `{BUNDLE}/`)",
        f"- expected cost on the run's test split: {cost or 'not measured'}",
        "- decision shares there: "
        + (", ".join(f"{d} {s:.0%}" for d, s in shares.items()) or "not measured"),
        f"- reads the columns: {', '.join(meta.get('inputs') or []) or 'none'}",
        "",
    ]
    body = {"ship-rules": _rules_body, "batch-ml": _batch_body, "realtime-ml": _realtime_body}
    return "\n".join(head + body[option](result, meta, id_flag)) + "\n"


def _rules_body(result: Mapping, meta: Mapping, id_flag: str) -> list[str]:
    if not meta_plugin(meta, BUNDLE).transparent:
        decision = meta["parameters"].get("decision")
        return [
            "## Run it",
            "",
            f"No rule list beat the best constant decision: decide `{decision}` for every row. "
            "No code is needed; the bundle records the choice and its version.",
        ]
    english = ((result.get("rules") or {}).get(meta["policy"]) or {}).get("english", "")
    return [
        "## The rules",
        "",
        "```",
        english,
        "```",
        "",
        "## Run them in SQL",
        "",
        f"`{BUNDLE}/rules.sql` is one `CASE` expression inside a ready `SELECT`. Replace "
        "`input_rows` with your table or view and run it where the data lives, e.g.",
        "",
        "```bash",
        f"sqlite3 rows.db < {BUNDLE}/rules.sql",
        "```",
        "",
        "## Run them in Python (standard library only)",
        "",
        "```bash",
        f"python {BUNDLE}/rules.py < rows.csv > decided.csv",
        "```",
        "",
        f"or `from rules import decide` (with `{BUNDLE}/` on the path) and "
        '`decide({"column": value, ...})` for one row.',
        "",
        "## Or with advisor",
        "",
        "```bash",
        f"advisor score {BUNDLE} rows.parquet -o decisions.parquet {id_flag}",
        "```",
        "",
        "The `rule` column says which rule decided each row (0: the default).",
    ]


def _batch_body(result: Mapping, meta: Mapping, id_flag: str) -> list[str]:
    volume = result["case"].get("decision", {}).get("volume", "")
    drift = ResultData(result).drift
    cadence = drift.cadence if drift else None
    return [
        "## Score a batch",
        "",
        "```bash",
        f"advisor score {BUNDLE} rows.parquet -o decisions.parquet {id_flag}",
        "```",
        "",
        "The input may be CSV, CSV.gz, Parquet or a folder of Parquet files; extra columns are "
        "ignored. Each output row carries `decision`, `policy`, `model_version`, `scored_at`, "
        "the class probabilities `p_<class>` and the expected cost of each decision "
        "`expected_cost_<decision>`.",
        "",
        "## On a schedule",
        "",
        f"The case makes {volume or 'its'} decisions. A nightly cron entry, for example:",
        "",
        "```cron",
        f"0 2 * * * cd /srv/{result['case']['name']} && advisor score {BUNDLE} "
        f"incoming/$(date +\\%F).parquet -o decisions/$(date +\\%F).parquet {id_flag} -q",
        "```",
        "",
        "For partitions spread over many machines: `--engine dask --scheduler tcp://HOST:8786` "
        "(install `advisor-ship[dask]`).",
        "",
        "## Keep it fresh",
        "",
        (
            f"The run suggests retraining {cadence.retrains_per_month:g} times a month "
            f"({cadence.reason.rstrip('.')})."
            if cadence
            else "Retrain on a schedule; the run's report gives the cadence."
        ),
    ]


def _realtime_body(result: Mapping, meta: Mapping, id_flag: str) -> list[str]:
    figures = ResultData(result).latency
    latency = figures.policies.get(meta["policy"]) if figures else None
    http = ((figures.service if figures else None) or {}).get(meta["policy"]) or {}
    budget = figures.budget_ms if figures else None
    against = f" against a budget of {budget:g} ms" if budget else ""
    measured = (
        f"Measured in the run, one request at a time in one process: p50 "
        f"{latency.p50_ms:.2f} ms, p95 {latency.p95_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms"
        + against
        + "."
        if latency is not None
        else "The run did not measure this policy's latency."
    )
    if http.get("p99_ms") is not None:
        measured += (
            f" Through `advisor serve` over HTTP on localhost: p50 {http['p50_ms']:.2f} ms, "
            f"p99 {http['p99_ms']:.2f} ms. The network and feature lookups come on top."
        )
    else:
        measured += (
            " The network and feature lookups come on top; `advisor analyze --measure-service` "
            "times the service over HTTP too."
        )
    return [
        "## Serve it",
        "",
        "```bash",
        f"advisor serve {BUNDLE} --log predictions/",
        "```",
        "",
        '`POST /decide` with `{"id": ..., "record": {...}}` (or up to 1,000 as '
        '`{"records": [...]}`) returns the decision, `model_version`, the probabilities and '
        "the expected costs; `GET /health`, `/version` and `/metrics` (Prometheus) watch it. "
        "`--shadow BUNDLE` runs another bundle beside it, logged only; `--treatment BUNDLE "
        "--share 0.05` sends a share of units to another bundle for an A/B test. Install the "
        "extra: `pip install 'advisor-ship[serve]'`.",
        "",
        measured,
        "",
        "In a Python service, without HTTP:",
        "",
        "```python",
        "import advisor",
        f'policy = advisor.load_policy("{BUNDLE}")',
        "policy.decide_one(record)   # Decision(decision, code, policy, version)",
        "```",
        "",
        "Batch scoring works too, e.g. for a backfill:",
        "",
        "```bash",
        f"advisor score {BUNDLE} rows.parquet -o decisions.parquet {id_flag}",
        "```",
    ]
