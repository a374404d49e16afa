"""`advisor init DATA`: a case file proposed from the data, with the cost matrix to fill in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from advisor.cli import options
from advisor.cli.console import run_guarded


def interactive() -> bool:
    """Ask questions only when a person is at a terminal; a pipe gets exit 2 instead."""
    return sys.stdin.isatty()


@click.command("init")
@click.argument("data", type=click.Path(path_type=Path))
@options.output_file("Case file to write (default: <data name>.yaml).")
@click.option("--target", help="The column to predict (default: proposed from the data).")
@click.option(
    "--decisions", help="Comma-separated decision names (default: no_action,act for two classes)."
)
@click.option(
    "--cost",
    "costs",
    multiple=True,
    metavar="ACTUAL:DECISION=VALUE",
    help="A cost cell, e.g. Yes:offer=280 (repeatable); cells not given are left null.",
)
@click.option("--time", "time_column", help="Timestamp column (default: proposed).")
@click.option("--force", is_flag=True, help="Replace an existing case file.")
@options.quiet("Print only where the case file went.")
def init(
    data: Path,
    output: Path | None,
    target: str | None,
    decisions: str | None,
    costs: tuple[str, ...],
    time_column: str | None,
    force: bool,
    quiet: bool,
) -> None:
    """Propose a case file for DATA (CSV, CSV.gz or Parquet): the target, the time column,
    identifier columns to ignore, the decisions, and a cost matrix to fill in."""

    def work() -> None:
        from advisor.artefacts.result import write_atomic
        from advisor.core.errors import InputError
        from advisor.core.proposal import (
            SAMPLE_ROWS,
            case_text,
            classes_of,
            default_decisions,
            parse_cost_flags,
            propose,
        )
        from advisor.core.reading import read_frame

        name = data.name.split(".")[0] or "case"
        target_file = output or Path(f"{name}.yaml")
        if target_file.exists() and not force:
            raise InputError("exists; pass --force to replace it", where=str(target_file))
        if target_file.suffix.lower() not in {".yaml", ".yml"}:
            raise InputError("a case file ends in .yaml or .yml", where=str(target_file))
        frame = read_frame(data, nrows=SAMPLE_ROWS)
        proposal = propose(frame)
        chosen = target or proposal.target or _ask_target(proposal, str(data))
        classes = classes_of(frame, chosen, str(data))
        if time_column is not None and time_column not in frame.columns:
            raise InputError(f"no column {time_column!r} for --time", where=str(data))
        time = time_column or (proposal.time if proposal.time != chosen else None)
        names = (
            [d.strip() for d in decisions.split(",")] if decisions else default_decisions(classes)
        )
        if not all(names) or len(set(names)) != len(names):
            raise InputError(
                f"expected distinct, non-empty names, got {decisions!r}", where="--decisions"
            )
        cells = parse_cost_flags(costs, classes, names)
        ignore = [c for c in proposal.ids if c not in (chosen, time)]
        text = case_text(
            name=name,
            data=Path(os.path.relpath(data.resolve(), target_file.resolve().parent)).as_posix(),
            target=chosen,
            classes=classes,
            decisions=names,
            cells=cells,
            time=time,
            ignore=ignore,
        )
        write_atomic(target_file, text)
        missing = len(classes) * len(names) - len(cells)
        if not quiet:
            click.echo(f"Target:    {chosen} ({', '.join(str(c) for c in classes)})")
            click.echo(f"Time:      {time or 'none (a random split)'}")
            click.echo(f"Ignored:   {', '.join(ignore) or 'none'}")
            click.echo(f"Decisions: {', '.join(names)}")
        click.echo(f"Case file: {target_file}")
        if missing:
            click.echo(
                f"Next:      fill in the {missing} cost cell(s) marked null, then "
                f"advisor analyze {target_file}"
            )
        else:
            click.echo(f"Next:      advisor analyze {target_file}")

    run_guarded(work)


def _ask_target(proposal, where: str) -> str:
    """The target chosen by the person at the terminal; in a pipe, exit 2 naming candidates."""
    from advisor.core.errors import InputError

    candidates = list(proposal.target_candidates)
    if not candidates:
        raise InputError(
            "no column looks like a target (2 to 20 distinct values); name it with --target",
            where=where,
        )
    if not interactive():
        raise InputError(
            f"which column is the target? candidates: {', '.join(candidates)}; "
            "name it with --target",
            where=where,
        )
    return click.prompt(
        "Which column is the target?",
        type=click.Choice(candidates),
        default=candidates[0],
        err=True,
    )
