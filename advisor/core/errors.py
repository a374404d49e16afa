"""The one exception type for bad input: the CLI turns it into exit status 2."""

from __future__ import annotations

import re

_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class InputError(ValueError):
    """Bad input from the user: the message names the file, field or column and what is wrong."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        text = f"{where}: {message}" if where else message
        # One line whatever the user's text holds: a line break in a name or path is escaped.
        super().__init__(_LINE_BREAK.sub(lambda m: repr(m.group())[1:-1], text))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error shows of a library's longer message."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def yaml_error(exc: Exception, where: str) -> InputError:
    """A PyYAML error as one line: where it is (line and column) and what is wrong."""
    mark = getattr(exc, "problem_mark", None)
    position = getattr(exc, "position", None)
    at = (
        f" at line {mark.line + 1}, column {mark.column + 1}"
        if mark
        else f" at character {position + 1}"
        if isinstance(position, int)
        else ""
    )
    problem = getattr(exc, "problem", None) or first_line(exc)
    return InputError(f"not valid YAML{at}: {problem}", where=where)
