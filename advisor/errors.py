"""The one exception type for bad input: the CLI turns it into exit status 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: the message names the file, field or column and what is wrong."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
