"""`advisor rules ...`: learn, check and render rule files."""

from __future__ import annotations

import click


@click.group()
def rules() -> None:
    """Learn, check and render transparent rule lists."""
