"""The `advisor` command: exit 0 on success, 2 on bad input (one line, no traceback), 1 otherwise.

Heavy libraries are imported inside commands so `advisor --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import click

from advisor.cli import options
from advisor.cli.console import Reporter, run_guarded
from advisor.cli.init import init
from advisor.cli.rules import rules
from advisor.cli.serve import serve
from advisor.core.errors import InputError

DEMO_CASE = "telco-churn"
DISTRIBUTION = "advisor-ship"  # the name on the package index; the import and command: advisor


def comparison_table(result) -> str:
    cur = result.currency
    lines = [f"{'policy':<14} {'cost/decision':>14}  95% interval ({cur})"]
    for name, p in result.evaluation.policies.items():
        c = p.cost_per_decision
        lines.append(f"{name:<14} {c.estimate:>14.2f}  {c.low:.2f} to {c.high:.2f}")
    return "\n".join(lines)


def bundled_names(result) -> list[str]:
    """The policies the run folder holds a bundle of (not the incumbent, evaluated only)."""
    compared = result.data.get("policies") or {}
    return [n for n in result.policies if compared.get(n, {}).get("bundled", True)]


def finish(result, out: Path, quiet: bool) -> Path:
    """Write the run folder (report, result.json, a bundle per policy) and print the summary."""
    folder = result.save(out)
    click.echo(comparison_table(result))
    rec = result.recommendation
    if rec:
        best = rec.p_best
        sure = "a tie" if best is None else f"best in {best:.0%} of resamples"
        if rec.tied and best is not None:
            sure = f"tied; {sure}"
        if rec.stability is not None:
            sure = f"{sure}; the same answer in {rec.stability:.0%} of refits"
        click.echo(f"\nRecommendation: {rec.option} ({sure})")
        click.echo(rec.headline)
        for option, o in rec.options.items():
            net = o.net
            note = f"  [{o.note}]" if o.note else ""
            click.echo(
                f"  {option:<14} net {net.estimate:>14,.0f} {result.currency} a year "
                f"({net.low:,.0f} to {net.high:,.0f}){note}"
            )
    click.echo(
        f"\nReport:   {folder / 'report.html'}\nResult:   {folder / 'result.json'}\n"
        f"Policies: {folder / 'policies'}/ ({', '.join(bundled_names(result))})"
    )
    if rec:
        click.echo(f"Ship it:  advisor export {folder}")
    return folder


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION)
def main() -> None:
    """Should you ship rules, a batch ML model or a real-time ML model, and at what upkeep?"""


@main.command()
@options.out_folder("Folder for the run folder.", default=Path("reports"))
@options.seed()
@options.quiet()
def demo(out: Path, seed: int | None, quiet: bool) -> None:
    """Run the bundled telco-churn case; its run folder (report, result, bundles) goes to
    ./reports/telco-churn/ in the current folder."""
    _analyze(DEMO_CASE, out=out, seed=seed, quiet=quiet, bundled=True)


@main.command("cases")
def cases_command() -> None:
    """List the bundled cases (run one by name: advisor analyze NAME)."""

    def work():
        from advisor.core.case import load_case
        from advisor.core.cases import bundled_case_file, bundled_names
        from advisor.core.reading import read_frame

        names = bundled_names()
        if not names:
            raise InputError("no bundled cases are installed with this copy of advisor")
        click.echo(f"{'case':<16} {'rows':>9} {'columns':>7} {'data file':>9}  question")
        for name in names:
            case = load_case(bundled_case_file(name))
            rows, columns = read_frame(case.data_path).shape
            size = case.data_path.stat().st_size
            click.echo(f"{name:<16} {rows:>9,} {columns:>7} {_file_size(size):>9}  {case.question}")
        folder = bundled_case_file(names[0]).parent
        click.echo(f"\nRun one by name: advisor analyze {DEMO_CASE}   (case files: {folder})")

    run_guarded(work)


def _file_size(size: int) -> str:
    """Bytes as a reader says them: 91 kB, 3.5 MB."""
    if size < 1000 * 1000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1000 / 1000:.1f} MB"


@main.command()
@click.argument("source", type=click.Path())
@click.option("--target", help="Target column (when SOURCE is a data file).")
@click.option("--cost-fp", type=float, help="Cost of acting on a negative (false positive).")
@click.option("--cost-fn", type=float, help="Cost of missing a positive (false negative).")
@click.option("--cost-tp", type=float, default=0.0, show_default=True)
@click.option("--cost-tn", type=float, default=0.0, show_default=True)
@click.option("--positive", help="The positive class (default: the last of the sorted values).")
@click.option("--volume", default="1000 per day", show_default=True, help='e.g. "2000 per day".')
@click.option(
    "--timing", type=click.Choice(["periodic", "live"]), default="periodic", show_default=True
)
@click.option("--precomputable/--not-precomputable", default=True, show_default=True)
@click.option("--latency-budget-ms", type=float, default=100.0, show_default=True)
@click.option("--label-delay-days", type=float, default=30.0, show_default=True)
@click.option("--time", "time_column", help="Timestamp column: time-ordered split and drift.")
@click.option(
    "--time-unit",
    help="Unit of a numeric time column: day, week, month, quarter, year, period, "
    "epoch_seconds or epoch_milliseconds.",
)
@click.option(
    "--keep-time-features",
    is_flag=True,
    help="Keep features that only encode the date (calendar parts of the time column, values "
    "that move on with time); by default they are left out.",
)
@click.option("--ignore", multiple=True, help="Column never used as a feature (repeatable).")
@click.option("--rules", "rules_file", type=click.Path(), help="Expert rule file.")
@click.option(
    "--incumbent",
    metavar="COLUMN",
    help="Column of the decisions the system running today made: compared, never a feature; "
    "the answer says whether to keep it or replace it.",
)
@click.option(
    "--incumbent-missing",
    type=click.Choice(["refuse", "skip"]),
    help="Rows where the incumbent decided nothing: refuse them (default) or compare every "
    "policy on the rows it decided.",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="NAME=mlflow:MODEL_URI",
    help="Also compare a model from your MLflow registry under NAME (repeatable). It returns "
    "class probabilities (columns named by class) or decisions; an alias is pinned to its "
    "version. Loading it runs MLflow's loader, which may unpickle: advisor's one exception to "
    "its no-pickle rule, for a registry you trust.",
)
@click.option("--currency", default="USD", show_default=True)
@options.out_folder("Folder for the run folder.", default=Path("reports"))
@options.seed()
@click.option(
    "--track",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URI]",
    help="Log the run to MLflow: this tracking URI, or MLflow's default when none is given.",
)
@click.option(
    "--register",
    metavar="NAME",
    help="With --track: register the recommended policy's model as NAME, alias 'champion'.",
)
@click.option(
    "--measure-service",
    is_flag=True,
    help="Also time each policy through advisor serve over HTTP on localhost (serve extra).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="dask: SOURCE is a folder (or glob) of Parquet partitions analysed on a Dask cluster.",
)
@click.option("--scheduler", help="With --engine dask: the scheduler's address (default: local).")
@click.option(
    "--fit-rows",
    type=click.IntRange(min=100),
    help="With --engine dask: training rows the policies are fitted on (default: from the "
    "workers' memory).",
)
@click.option(
    "--fit-engine",
    type=click.Choice(["sample", "lightgbm-dask"]),
    help="With --engine dask: lightgbm-dask refits the ML policy on every training row "
    "across the workers (default: sample).",
)
@options.quiet()
def analyze(source: str, **opts) -> None:
    """Analyse a case file, or a data file with --target and --cost-fp/--cost-fn.

    With --engine dask, SOURCE is a folder (or glob) of Parquet partitions: the policies are
    fitted on a seeded sample and every test row is scored on the Dask workers."""
    _analyze(source, **opts)


def _analyze(
    source: str,
    out: Path,
    seed: int | None,
    quiet: bool,
    track: str | None = None,
    register: str | None = None,
    bundled: bool = False,
    **opts,
) -> None:
    def work():
        nonlocal source
        from advisor.api import advise
        from advisor.core.case import resolve_case

        if track is not None or register is not None:
            from advisor.track.tracking import check_request

            check_request(track is not None, register)

        if opts.get("engine") == "dask":
            _analyze_partitioned(source, out, seed, quiet, opts)
            return
        for flag in ("scheduler", "fit_rows", "fit_engine"):
            if opts.get(flag) is not None:
                raise InputError(f"--{flag.replace('_', '-')} needs --engine dask")
        if bundled:
            from advisor.core.cases import bundled_case_file

            source = str(bundled_case_file(source))
        given = [k for k, v in opts.items() if v not in (None, (), False) and k in _DATA_ONLY]
        # a case file, or a bundled case's name: not a file, and no data-file options
        is_case = Path(source).suffix.lower() in {".yaml", ".yml"} or not (
            Path(source).is_file() or given
        )
        if is_case:
            if given:
                raise InputError(
                    f"--{given[0].replace('_', '-')} applies to a data file, not a case file",
                    where=source,
                )
            case = resolve_case(source)
        else:
            if not opts.get("target"):
                raise InputError("--target is needed with a data file", where=source)
            if opts.get("cost_fp") is None or opts.get("cost_fn") is None:
                raise InputError(
                    "--cost-fp and --cost-fn are needed with a data file", where=source
                )
            case = resolve_case(source, **quick_case(opts))
        if opts.get("keep_time_features"):
            from dataclasses import replace

            case = replace(case, time_features="keep")
        case = options.with_incumbent(case, opts.get("incumbent"), opts.get("incumbent_missing"))
        case = options.with_policies(case, opts.get("policies") or ())
        case = options.with_seed(case, seed)
        from advisor.artefacts.run import RESULT, replaceable

        if not replaceable(out / case.name, RESULT):
            raise InputError(
                f"exists and is not a run folder (no {RESULT}); choose another --out",
                where=str(out / case.name),
            )
        result = advise(
            case, progress=Reporter(quiet), measure_service=opts.get("measure_service", False)
        )
        folder = finish(result, out, quiet)
        if track is not None:
            from advisor.track.tracking import track_run

            tracked = track_run(
                folder,
                result.examples,
                uri=track or None,
                register=register,
                progress=Reporter(quiet),
            )
            click.echo(f"MLflow:   run {tracked.run_id} in {tracked.uri}")
            if tracked.uri.startswith(("sqlite:", "file:")):
                click.echo(f"See it:   mlflow ui --backend-store-uri {tracked.uri}")
            if tracked.registered:
                click.echo(f"Champion: {tracked.registered} (version {tracked.version})")

    run_guarded(work)


def _analyze_partitioned(source: str, out: Path, seed: int | None, quiet: bool, opts) -> None:
    """`analyze --engine dask`: a folder of Parquet partitions, the case given by flags."""
    from advisor.api import advise_partitioned
    from advisor.artefacts.run import RESULT, replaceable

    if Path(source).suffix.lower() in {".yaml", ".yml"}:
        raise InputError(
            "--engine dask takes a folder of Parquet partitions with --target and "
            "--cost-fp/--cost-fn, not a case file",
            where=source,
        )
    if not opts.get("target"):
        raise InputError("--target is needed with --engine dask", where=source)
    if opts.get("cost_fp") is None or opts.get("cost_fn") is None:
        raise InputError("--cost-fp and --cost-fn are needed with --engine dask", where=source)
    if opts.get("measure_service"):
        raise InputError("--measure-service works with the local engine only")
    name = Path(source.rstrip("/")).name.split(".")[0].split("*")[0] or "analysis"
    if not replaceable(out / name, RESULT):
        raise InputError(
            f"exists and is not a run folder (no {RESULT}); choose another --out",
            where=str(out / name),
        )
    result = advise_partitioned(
        source,
        **quick_case(opts),
        scheduler=opts.get("scheduler"),
        fit_rows=opts.get("fit_rows"),
        fit_engine=opts.get("fit_engine") or "sample",
        progress=Reporter(quiet),
        name=name,
        time_features="keep" if opts.get("keep_time_features") else "drop",
        seed=seed if seed is not None else 0,
    )
    finish(result, out, quiet)


def quick_case(opts: dict) -> dict:
    """The case's fields that `analyze DATA --target … --cost-fp …` gives on the command line,
    as keyword arguments of `resolve_case` (in memory) and `advise_partitioned` (Dask)."""
    return {
        "target": opts["target"],
        "costs": {k: opts[f"cost_{k}"] for k in ("fp", "fn", "tp", "tn")},
        "positive": opts.get("positive"),
        "volume": opts["volume"],
        "timing": opts["timing"],
        "precomputable": opts["precomputable"],
        "latency_budget_ms": opts["latency_budget_ms"],
        "label_delay_days": opts["label_delay_days"],
        "time": opts.get("time_column"),
        "time_unit": opts.get("time_unit"),
        "ignore": tuple(opts.get("ignore") or ()),
        "rules": opts.get("rules_file"),
        "currency": opts["currency"],
    }


_DATA_ONLY = {
    "target",
    "cost_fp",
    "cost_fn",
    "positive",
    "time_column",
    "time_unit",
    "ignore",
    "rules_file",
}


@main.command()
@click.argument("result_json", type=click.Path(dir_okay=False))
@options.output_file("Where to write the report (default: report.html beside RESULT_JSON).")
@options.quiet("Print nothing on success.")
def render(result_json: str, output: Path | None, quiet: bool) -> None:
    """Re-render a report from a result.json (default: report.html beside it), without
    recomputing."""

    def work():
        from advisor.artefacts.result import Result

        result = Result.from_json(result_json)
        target = output or Path(result_json).with_name("report.html")
        result.to_html(target)
        if not quiet:
            click.echo(f"Report: {target}")

    run_guarded(work)


@main.command("schema")
@click.argument("name")
def schema(name: str) -> None:
    """Print a published JSON Schema: result, bundle, monitor or prediction-log."""

    def work():
        from advisor.artefacts.schemas import schema_text

        click.echo(schema_text(name), nl=False)

    run_guarded(work)


@main.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--option",
    type=click.Choice(["ship-rules", "batch-ml", "realtime-ml"]),
    help="Default: the run's recommendation.",
)
@click.option(
    "--policy",
    "policy",
    help="Export a compared policy by its name instead (your own model); not the incumbent.",
)
@options.out_folder("Folder to write (default: ./<case>-<option>).", old=("-o", "--output"))
@options.quiet("Print nothing on success.")
def export_command(
    run: Path, option: str | None, policy: str | None, out: Path | None, quiet: bool
) -> None:
    """Export an option of a run (its folder or result.json): the policy bundle and how to run it."""

    def work():
        from advisor.ship.export import export

        done = export(run, option, out, policy=policy)
        if not quiet:
            click.echo(f"{done.option}: policy {done.policy!r} ({done.version})")
            click.echo(f"Bundle: {done.path / 'bundle'}\nREADME: {done.path / 'README.md'}")

    run_guarded(work)


@main.command("score")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@options.output_file(
    "Parquet file to write (a folder of Parquet files with --engine dask).",
    required=True,
    dir_okay=True,
)
@click.option("--id", "ids", multiple=True, help="Input column copied to the output (repeatable).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", help="Dask scheduler address (default: a local cluster).")
@click.option(
    "--reasons",
    type=click.IntRange(0, 20),
    default=0,
    help="Add reason_1 ... reason_K: why each row got its decision (local engine).",
)
@click.option(
    "--reasons-method",
    type=click.Choice(["exact", "lightgbm"]),
    default="exact",
    show_default=True,
    help="ML contributions: exact TreeSHAP from per-leaf tables, or LightGBM's own (same "
    "values, about 5 times slower).",
)
@options.quiet("No progress bar or closing summary.")
def score_command(
    bundle: Path,
    source: Path,
    output: Path,
    ids: tuple[str, ...],
    engine: str,
    scheduler: str | None,
    reasons: int,
    reasons_method: str,
    quiet: bool,
) -> None:
    """Decide every row of INPUT (CSV, CSV.gz, Parquet or a folder of Parquet files) with a
    policy bundle; write the decisions to Parquet."""

    def work():
        import time

        from advisor.cli.console import ProgressBar

        if scheduler and engine != "dask":
            raise InputError("--scheduler needs --engine dask")
        if reasons and engine == "dask":
            raise InputError("--reasons works with the local engine only, not --engine dask")
        bar = ProgressBar(quiet, "scoring")
        if engine == "dask":
            from advisor.ship.distributed import score_with_dask as run
        else:
            from advisor.ship.score import score as run
        start = time.perf_counter()
        engine_options = (
            {"scheduler": scheduler}
            if engine == "dask"
            else {"reasons": reasons, "reasons_method": reasons_method}
        )
        done = run(
            bundle, source, output, ids, progress=bar.advance, on_start=bar.start, **engine_options
        )
        bar.close()
        seconds = time.perf_counter() - start
        Reporter(quiet)(
            f"{done.rows:,} rows in {seconds:.2f} s ({done.rows / max(seconds, 1e-9):,.0f} rows/s) "
            f"by {done.policy.name!r} ({done.policy.version})"
        )
        if done.undecided:
            columns = ", ".join(done.policy.costs.columns) or "a needed value"
            click.echo(
                f"advisor: {done.undecided:,} rows got no decision (null): {columns} missing or "
                "not a number",
                err=True,
            )
        click.echo(f"Decisions: {done.output}")

    run_guarded(work)


@main.command("monitor")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--log",
    "log",
    required=True,
    type=click.Path(path_type=Path),
    help="Prediction log: a JSON Lines, Parquet or CSV file, or a folder of them.",
)
@click.option(
    "--outcomes",
    type=click.Path(path_type=Path),
    help="CSV or Parquet with the key and the case's target, for the rows known so far.",
)
@click.option("--key", default="id", show_default=True, help="Column joining log and outcomes.")
@click.option("--window", default="1d", show_default=True, help="Window width: 30min, 6h, 1d, 1w.")
@click.option(
    "--share",
    type=float,
    help="Planned treatment share of a canary or A/B test (default: the run's A/B plan).",
)
@options.out_folder("Folder for monitor.json and monitor.html (default: monitoring/<case>).")
@options.quiet("Print only the verdict line.")
def monitor_command(
    run: Path,
    log: Path,
    outcomes: Path | None,
    key: str,
    window: str,
    share: float | None,
    out: Path | None,
    quiet: bool,
) -> None:
    """Compare a prediction log (and the outcomes known so far) with a run folder: drift,
    decision mix, realised cost, shadow and the test. Exit 0: no alert; 3: an alert fired;
    2: bad input."""
    import sys

    def work() -> int:
        from advisor.monitor import monitor, write

        found = monitor(run, log, outcomes, key=key, window=window, share=share)
        target = out or Path("monitoring") / found.payload["run"]["case"]
        folder = write(found, target)
        verdict = found.verdict
        click.echo(f"Verdict: {verdict['verdict']}: {verdict['reason']}")
        if not quiet:
            for alert in found.alerts:
                click.echo(f"  {alert['severity']:<8} {alert['kind']:<15} {alert['window']}")
            click.echo(f"Monitor: {folder / 'monitor.html'}\nJSON:    {folder / 'monitor.json'}")
        return found.exit_status

    sys.exit(run_guarded(work))


main.add_command(init)
main.add_command(rules)
main.add_command(serve)
