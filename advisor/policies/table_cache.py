"""A disk cache of a model's TreeSHAP tables (`treeshap.LeafTables`), so that a new process
(each `advisor score --reasons` command) reads them instead of building them again.

One uncompressed `.npz` file per model, named by a hash of the bundle's version (a hash of its
trees, calibration, features and costs), the trees used and the tables' layout, so a changed
model or a new table layout never meets an old file. Files hold plain arrays only and are read
with `allow_pickle=False`; one is written to a temporary file and renamed into place, so a
reader sees a whole file or none; an unreadable or inconsistent file is ignored (the tables
are built again and the file replaced). At most KEEP files are kept, the least recently used
removed first.

The folder is `ADVISOR_CACHE_DIR`, else `$XDG_CACHE_HOME/advisor/treeshap`, else
`~/.cache/advisor/treeshap`; `ADVISOR_CACHE_DIR=off` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from advisor.policies.treeshap import (
    GROUP_BYTES,
    MAX_PATH_FEATURES,
    Bands,
    LeafTables,
    build_tables,
)

LAYOUT = f"leaf-tables-1/{GROUP_BYTES}/{MAX_PATH_FEATURES}"  # changes when the tables do
KEEP = 8


def leaf_tables(
    booster, n_trees: int, features: int, classes: int, threads: int = 1, version: str = ""
) -> LeafTables | None:
    """The model's `LeafTables` (built on `threads` threads), kept on the booster and, given
    the bundle's `version`, in the disk cache; None when a path has more than
    MAX_PATH_FEATURES unique features or the tables would pass MAX_TABLE_BYTES."""
    cached = getattr(booster, "_advisor_leaf_tables", None)
    if cached is not None and cached[0] == n_trees:
        return cached[1]
    path = cache_path(version, n_trees, features, classes) if version else None
    built = load(path, features, classes) if path is not None else None
    if built is None:
        trees = booster.dump_model(num_iteration=n_trees)["tree_info"]
        built = build_tables(trees, features, classes, threads)
        if built is not None and path is not None:
            save(path, built)
    booster._advisor_leaf_tables = (n_trees, built)
    return built


def cache_folder() -> Path | None:
    """Where the tables are cached, or None when the cache is off."""
    chosen = os.environ.get("ADVISOR_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "advisor" / "treeshap"


def cache_path(version: str, n_trees: int, features: int, classes: int) -> Path | None:
    """The file of one model's tables (None when the cache is off)."""
    folder = cache_folder()
    if folder is None:
        return None
    key = f"{LAYOUT}/{version}/{n_trees}/{features}/{classes}"
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def load(path: Path, features: int, classes: int) -> LeafTables | None:
    """The tables in `path`, or None when it is missing, unreadable or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        tables = _from_arrays(arrays)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile):
        return None
    if not _consistent(tables, features, classes):
        return None
    with contextlib.suppress(OSError):  # a read-only or shared cache still serves
        os.utime(path)  # recently used
    return tables


def save(path: Path, tables: LeafTables) -> None:
    """Write the tables atomically (a temporary file renamed into place); a folder that
    cannot be written leaves the cache unused, never the command failed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **_to_arrays(tables))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError:
        return


def _prune(folder: Path) -> None:
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        old.unlink(missing_ok=True)


def _to_arrays(tables: LeafTables) -> dict[str, np.ndarray]:
    bands = tables.bands
    arrays = {
        "shape": np.array([tables.features, tables.classes], dtype=np.int64),
        "band_feature": np.array([b.feature for b in bands], dtype=np.int64),
        "band_flags": np.array([[b.zero, b.nan] for b in bands], dtype=bool).reshape(-1, 2),
        "band_outside": np.array([b.outside for b in bands], dtype=np.int64),
        "band_cuts": np.cumsum([0] + [len(b.thresholds) for b in bands]).astype(np.int64),
        "thresholds": np.concatenate([b.thresholds for b in bands] or [np.empty(0)]),
        "offset": tables.offset,
        "class_start": tables.class_start,
        "table": tables.table,
        "base": tables.base,
    }
    arrays.update({f"steps_{i}": steps for i, steps in enumerate(tables.steps)})
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray]) -> LeafTables:
    cuts = arrays["band_cuts"]
    bands = tuple(
        Bands(
            int(f),
            arrays["thresholds"][cuts[i] : cuts[i + 1]].astype(np.float64),
            bool(arrays["band_flags"][i, 0]),
            bool(arrays["band_flags"][i, 1]),
            int(arrays["band_outside"][i]),
        )
        for i, f in enumerate(arrays["band_feature"])
    )
    features, classes = (int(v) for v in arrays["shape"])
    return LeafTables(
        features,
        classes,
        bands,
        tuple(arrays[f"steps_{i}"] for i in range(len(bands))),
        arrays["offset"],
        arrays["class_start"],
        arrays["table"],
        arrays["base"],
    )


def _consistent(tables: LeafTables, features: int, classes: int) -> bool:
    """Shapes, types and bounds that every lookup relies on (a damaged file fails here)."""
    subtrees = len(tables.offset)
    checks = [
        tables.features == features and tables.classes == classes,
        tables.table.dtype == np.float64 and tables.table.ndim == 2,
        tables.table.shape[1] == features and tables.base.shape == (classes,),
        tables.offset.dtype == np.int32 and tables.class_start.shape == (classes + 1,),
        all(0 <= b.feature < features for b in tables.bands),
    ]
    if not all(checks):
        return False
    top = np.zeros(subtrees, dtype=np.int64)
    for band, steps in zip(tables.bands, tables.steps, strict=True):
        if steps.dtype != np.int32 or steps.shape != (band.count, subtrees):
            return False
        if subtrees and steps.min() < 0:
            return False
        top += steps.max(axis=0)
    ends = np.append(tables.offset[1:], len(tables.table)).astype(np.int64)
    return bool(subtrees == 0 or (tables.offset.min() >= 0 and (tables.offset + top < ends).all()))
