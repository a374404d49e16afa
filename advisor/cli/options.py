"""One vocabulary for the options every command shares, so a name means the same everywhere.

- `-o/--output FILE`: the one file a command writes (a report, a rule file, a case file, the
  decisions of `score`, which are a Parquet dataset folder with `--engine dask`).
- `--out DIR`: the folder a command fills with several files (a run folder, an export, a
  monitoring page).
- `-q/--quiet`: no progress messages; `--seed N`: overrides the case's seed.

Old spellings stay accepted as hidden aliases (`export -o/--output` for its folder), so
scripts written against earlier versions keep working while `--help` shows one name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


class AliasedOption(click.Option):
    """A click option whose extra spellings are accepted but left out of `--help`."""

    def __init__(self, *args, hidden_aliases: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = tuple(hidden_aliases)

    def get_help_record(self, ctx: click.Context):
        shown = self.opts
        self.opts = [name for name in shown if name not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def output_file(help: str, required: bool = False, dir_okay: bool = False) -> Callable:
    """`-o/--output FILE`: the one file the command writes."""
    return click.option(
        "-o",
        "--output",
        "output",
        required=required,
        type=click.Path(dir_okay=dir_okay, path_type=Path),
        help=help,
    )


def out_folder(help: str, default: Path | None = None, old: tuple[str, ...] = ()) -> Callable:
    """`--out DIR`: the folder the command fills; `old` spellings are hidden aliases."""
    return click.option(
        "--out",
        *old,
        "out",
        cls=AliasedOption,
        hidden_aliases=old,
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help,
    )


def quiet(help: str = "No progress messages.") -> Callable:
    """`-q/--quiet`."""
    return click.option("-q", "--quiet", "quiet", is_flag=True, help=help)


def seed(help: str = "Override the case's seed (a non-negative whole number).") -> Callable:
    """`--seed N`; `with_seed` checks it, so a bad seed is one line like any bad input."""
    return click.option("--seed", "seed", type=int, default=None, help=help)


def with_seed(case, seed: int | None):
    """The case with `--seed` applied, when given."""
    from dataclasses import replace

    from advisor.core.errors import InputError

    if seed is None:
        return case
    if seed < 0:
        raise InputError("--seed must be a non-negative whole number")
    return replace(case, seed=seed)


def with_incumbent(case, column: str | None, missing: str | None):
    """The case with `--incumbent COLUMN` / `--incumbent-missing` applied, when given: the
    column replaces the case file's (its stated upkeep is kept)."""
    from dataclasses import replace

    from advisor.core.incumbent import parse_incumbent

    if column is None and missing is None:
        return case
    current = case.incumbent
    if column is None and current is None:
        from advisor.core.errors import InputError

        raise InputError("--incumbent-missing needs an incumbent column (--incumbent)")
    raw = {
        "column": column or current.column,
        "annual_upkeep": current.annual_upkeep if current else 0.0,
    }
    missing = missing or (current.missing if current else None)
    return replace(case, incumbent=parse_incumbent(raw, missing, where="--incumbent"))


def with_policies(case, given: tuple[str, ...]):
    """The case with each `--policy NAME=mlflow:MODEL_URI` added to its ready-made models."""
    from dataclasses import replace

    from advisor.core.case import parse_policies
    from advisor.core.errors import InputError

    if not given:
        return case
    added = {}
    for text in given:
        name, sep, uri = text.partition("=")
        if not sep or not name:
            raise InputError(f"expected NAME=mlflow:MODEL_URI, got {text!r}", where="--policy")
        added[name] = uri
    return replace(case, models={**case.models, **parse_policies(added, where="--policy")})
