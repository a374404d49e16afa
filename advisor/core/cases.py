"""The bundled cases: found by name in the installed package, or in the checkout they come from.

The repository's top-level `datasets/` (case files and data) and `rules/` (expert rule files) are
the readable sources. The wheel carries them as package data, `advisor/cases/datasets/` and
`advisor/cases/rules/` (pyproject's hatch `sources` mapping), side by side as in the checkout, so
a case file's `rules: ../rules/<name>.yaml` resolves the same in both layouts. An editable
install puts the checkout on the path and has no `advisor/cases/`: the checkout's top is used.
"""

from __future__ import annotations

from pathlib import Path

from advisor.core.errors import InputError

PACKAGED = "cases"  # the folder inside the installed `advisor` package


def cases_root() -> Path | None:
    """The folder holding `datasets/` and `rules/`: the package's own copy first, else the
    checkout's top; None when neither is there."""
    from importlib.resources import files

    package = Path(str(files("advisor")))
    packaged = package / PACKAGED
    if (packaged / "datasets").is_dir():
        return packaged
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "datasets").is_dir():
        return checkout
    return None


def bundled_names() -> tuple[str, ...]:
    """The names of the bundled cases, sorted: the case files in `datasets/`."""
    root = cases_root()
    if root is None:
        return ()
    return tuple(sorted(p.stem for p in (root / "datasets").glob("*.yaml")))


def is_bundled(name: str) -> bool:
    """Whether `name` is the name of a bundled case (not a path)."""
    return name in bundled_names()


def bundled_case_file(name: str) -> Path:
    """The case file of the bundled case `name`; an InputError listing the names otherwise."""
    names, root = bundled_names(), cases_root()
    if root is None or name not in names:
        listed = ", ".join(names) or "none installed with this copy of advisor"
        raise InputError(f"neither a file nor a bundled case; bundled cases: {listed}", where=name)
    return root / "datasets" / f"{name}.yaml"
