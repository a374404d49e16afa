"""A user's estimator stored without pickle: `skops.io`, which rebuilds only types it is told
to trust and refuses the rest. advisor trusts scikit-learn, NumPy and SciPy types (and Python's
builtins and collections); an estimator made of anything else cannot be bundled, and a bundle
file naming another type is refused when loaded. The skops archive is kept as base64 text so a
bundle stays a folder of text files with one sha256 each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import zipfile

from advisor.core.errors import InputError, first_line

STORED = "estimator.skops.b64"
TRUSTED_ROOTS = ("sklearn", "numpy", "scipy", "builtins", "collections")
NEEDS = "storing a user's estimator needs skops: pip install 'advisor-ship[estimators]'"


def _skops():
    try:
        import skops.io as sio
    except ImportError:
        raise InputError(NEEDS) from None
    return sio


def _trusted(types: list[str]) -> tuple[list[str], list[str]]:
    """The types advisor trusts among those skops does not by default, and the others."""
    ok = [t for t in types if t.split(".")[0] in TRUSTED_ROOTS]
    return ok, [t for t in types if t not in ok]


def dump_estimator(estimator: object, name: str) -> str:
    """The estimator as base64 text of a skops archive; an estimator with a type advisor
    does not trust (a custom class or function) is an InputError naming it."""
    sio = _skops()
    try:
        data = sio.dumps(estimator)
    except Exception as exc:  # skops refuses what it cannot store safely
        raise InputError(
            f"cannot be stored without pickle by skops: {first_line(exc)}",
            where=f"policy {name!r}",
        ) from None
    _, refused = _trusted(sio.get_untrusted_types(data=data))
    if refused:
        raise InputError(
            f"uses type {refused[0]!r}, which advisor does not trust to load (it trusts "
            f"{', '.join(TRUSTED_ROOTS)}); bundles never use pickle",
            where=f"policy {name!r}",
        )
    return base64.b64encode(data).decode("ascii")


def _archive(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InputError("damaged: not base64 text", where=STORED) from None


def load_estimator(text: str) -> object:
    """The estimator back from `dump_estimator`'s text, trusting only advisor's trusted types."""
    sio = _skops()
    data = _archive(text)
    try:
        allowed, refused = _trusted(sio.get_untrusted_types(data=data))
        if refused:
            raise InputError(
                f"holds type {refused[0]!r}, which advisor does not trust", where=STORED
            )
        return sio.loads(data, trusted=allowed)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"damaged: {first_line(exc)}", where=STORED) from None


def estimator_digest(text: str) -> str:
    """A sha256 of the archive's content that is the same however often the same estimator is
    stored: skops names members by object ids and stamps the zip, so both are left out (ids
    dropped from the schema, each array file replaced by its own hash)."""
    with zipfile.ZipFile(io.BytesIO(_archive(text))) as archive:
        files = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()}
        schema = json.loads(archive.read("schema.json"))

    def canonical(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: (files.get(v, v) if k == "file" else canonical(v))
                for k, v in node.items()
                if k != "__id__"
            }
        if isinstance(node, list):
            return [canonical(v) for v in node]
        return node

    text = json.dumps(canonical(schema), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
