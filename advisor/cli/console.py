"""What every `advisor` command shares: progress lines on stderr and the exit-status contract
(0 success, 2 bad input with one line, 1 internal error with a short note)."""

from __future__ import annotations

import os
import sys
import time
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


class ProgressBar:
    """Rows done, on stderr: a bar redrawn in place on a terminal (with a share when the total
    is known), nothing on a pipe or a log; silenced by `-q`."""

    WIDTH = 28
    EVERY_SECONDS = 0.2

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet = quiet
        self.label = label
        self.total: int | None = None
        self.done = 0
        self.drawn_at = 0.0
        self.live = not quiet and sys.stderr.isatty()

    def start(self, total: int | None) -> None:
        """Begin (or begin again) with the row count, when known."""
        self.total, self.done = total, 0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.live and now - self.drawn_at >= self.EVERY_SECONDS:
            self.drawn_at = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = round(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"{self.label} [{bar}] {share:4.0%} {self.done:,} of {self.total:,} rows"
        else:
            text = f"{self.label} {self.done:,} rows"
        click.echo(f"\r· {text}", err=True, nl=False)

    def close(self) -> None:
        if self.live:
            self._draw()
            click.echo("", err=True)


def run_guarded(fn: Callable[[], T]) -> T:
    """Turn InputError into exit 2 with one line; anything else into exit 1 with a short note."""
    from advisor.core.errors import InputError, first_line

    try:
        return fn()
    except InputError as exc:
        click.echo(f"advisor: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("advisor: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # an internal error: say so, keep the trace for a bug report
        first = first_line(exc)
        click.echo(f"advisor: internal error: {type(exc).__name__}: {first}", err=True)
        if "ADVISOR_DEBUG" in os.environ:
            traceback.print_exc()
        else:
            click.echo("advisor: set ADVISOR_DEBUG=1 to see the traceback", err=True)
        sys.exit(1)
