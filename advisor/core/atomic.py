"""Atomic writes: a file or a folder appears whole under its name, or not at all.

Everything is written under a temporary name in the target's own folder (the same file system)
and renamed into place; the new file or folder gets the permissions the umask gives, as an
ordinary `open` would (a temporary file is created private).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: str | Path, folder: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write (a file, or with `folder` a folder); on leaving
    the block without error it takes the place of `path`, else it is removed. A folder replaces
    whatever stood at `path` (moved aside first and put back if the rename fails)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if folder:
            for sub in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
                os.chmod(sub, 0o777 & ~umask())
            _swap(tmp, path)
        else:
            os.chmod(tmp, 0o666 & ~umask())
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _swap(tmp: Path, path: Path) -> None:
    """Put the folder `tmp` at `path`, what stood there moved aside and removed after."""
    if not path.exists() and not path.is_symlink():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    try:
        os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old / path.name, path)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text through a temporary file in the same folder and rename: never half a file."""
    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
