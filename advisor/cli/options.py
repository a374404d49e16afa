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
