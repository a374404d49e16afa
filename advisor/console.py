"""What every `advisor` command shares: progress lines on stderr and the exit-status contract
(0 success, 2 bad input with one line, 1 internal error with a short note)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import click

T = TypeVar("T")


class Reporter:
    """Progress messages on stderr, silenced by `-q`."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"· {message}", err=True)


def run_guarded(fn: Callable[[], T]) -> T:
    """Turn InputError into exit 2 with one line; anything else into exit 1 with a short note."""
    from advisor.errors import InputError

    try:
        return fn()
    except InputError as exc:
        click.echo(f"advisor: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("advisor: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # an internal error: say so, keep the trace for a bug report
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(f"advisor: internal error: {type(exc).__name__}: {first}", err=True)
        if "ADVISOR_DEBUG" in os.environ:
            traceback.print_exc()
        else:
            click.echo("advisor: set ADVISOR_DEBUG=1 to see the traceback", err=True)
        sys.exit(1)
