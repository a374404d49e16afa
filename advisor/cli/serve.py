"""`advisor serve`: the command's options; the service itself is imported only when it runs, so
`advisor --help` needs neither FastAPI nor uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from advisor.cli.console import run_guarded
from advisor.core.errors import InputError
from advisor.serve import NEEDS_EXTRA, missing_extra


@click.command("serve")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--log", "log_dir", type=click.Path(path_type=Path), help="Prediction log folder.")
@click.option(
    "--log-max-mb",
    type=click.FloatRange(min=0.001),
    default=64.0,
    show_default=True,
    help="Start a new log file past this size.",
)
@click.option(
    "--log-sync",
    type=click.Choice(["process", "disk", "async"]),
    help="When an answer may leave: once its log line is written to the OS (process: survives "
    "a killed service), also fsynced (disk: survives a machine crash), or before (async) "
    "[default: process].",
)
@click.option(
    "--on-log-failure",
    type=click.Choice(["refuse", "degrade"]),
    help="When a decision's line cannot be written: answer 503 (refuse) or decide anyway and "
    "count the line dropped (degrade) [default: refuse].",
)
@click.option(
    "--shadow",
    type=click.Path(path_type=Path),
    help="Bundle that decides every request too; its decisions are logged, not returned.",
)
@click.option(
    "--treatment",
    type=click.Path(path_type=Path),
    help="Bundle that decides for the treatment arm of a canary or A/B test.",
)
@click.option(
    "--share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Share of units in treatment [default: 0.05].",
)
@click.option("--salt", help="Salt of the unit hash [default: the treatment's version].")
@click.option("-q", "--quiet", is_flag=True, help="No start-up message.")
def serve(
    bundle: Path,
    log_dir: Path | None,
    log_max_mb: float,
    share: float | None,
    salt: str | None,
    quiet: bool,
    **opts,
) -> None:
    """Serve a policy bundle over HTTP: POST /decide, GET /health, /version and /metrics
    (needs the serve extra: pip install 'advisor-ship[serve]')."""

    def work():
        if opts["treatment"] is None and (share is not None or salt is not None):
            raise InputError("--share and --salt need --treatment")
        if log_dir is None and (opts["log_sync"] or opts["on_log_failure"]):
            raise InputError("--log-sync and --on-log-failure need --log")
        try:
            from advisor.serve.server import serve_bundles
        except ImportError as exc:
            if missing_extra(exc):
                raise InputError(f"advisor serve {NEEDS_EXTRA}") from None
            raise
        serve_bundles(
            str(bundle),
            host=opts["host"],
            port=opts["port"],
            log=str(log_dir) if log_dir else None,
            log_max_bytes=int(log_max_mb * 1024 * 1024),
            log_sync=opts["log_sync"] or "process",
            on_log_failure=opts["on_log_failure"] or "refuse",
            shadow=str(opts["shadow"]) if opts["shadow"] else None,
            treatment=str(opts["treatment"]) if opts["treatment"] else None,
            share=0.05 if share is None else share,
            salt=salt,
            announce=None if quiet else lambda text: click.echo(text, err=True),
        )

    run_guarded(work)
