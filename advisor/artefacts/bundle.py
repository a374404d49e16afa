"""Policy bundles: a fitted policy as a folder of plain files, loadable without pickle.

`bundle.json` holds the format version, the policy's identity, the case's costs, the feature
definition as data, what the policy is expected to cost (the run's pooled out-of-fold decisions
when it refitted, else its test split), the training reference for drift and a sha256 for
every other file. The policy adds its own files (`Policy.to_bundle`: the rule file with SQL
and Python renderings, or LightGBM's text model and the calibration). `load_policy` checks
the format and every checksum, then rebuilds the same policy class (`Policy.from_bundle`), which decides exactly as the one that was fitted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from advisor.artefacts.manifest import advisor_version
from advisor.core.costs import parse_costs
from advisor.core.errors import InputError, first_line
from advisor.core.features import FeatureSpec
from advisor.core.money import money_interval
from advisor.policies.base import Policy
from advisor.policies.registry import EXPECTED_COSTS, PLUGINS, PolicyPlugin, plugin_named, plugin_of
from advisor.stats.psi import Reference

FORMAT = "advisor-bundle/1"
META = "bundle.json"
REQUIRED = ("policy", "kind", "version", "costs", "features", "parameters", "files")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_files(
    policy: Policy,
    *,
    case: Mapping,
    expected: Mapping,
    reference: Reference | None,
    manifest: Mapping,
) -> dict[str, str]:
    """Every file of the policy's bundle (name -> text), `bundle.json` with their checksums."""
    parameters, own = policy.to_bundle()
    files = {**own, "README.md": bundle_readme(policy, case, expected)}
    meta = {
        "format": FORMAT,
        "policy": policy.name,
        "kind": policy.kind,
        "version": policy.version,
        "advisor_version": advisor_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "case": {k: case.get(k) for k in ("name", "question", "currency")},
        "classes": [str(c) for c in policy.costs.classes],
        "decisions": list(policy.costs.decisions),
        "costs": policy.costs.to_case(),
        "inputs": list(policy.input_columns()),
        "features": policy.spec.to_data(),
        "parameters": parameters,
        "expected": dict(expected),
        "reference": reference.to_dict() if reference is not None else None,
        "manifest": dict(manifest),
        "files": {name: sha256(text.encode("utf-8")) for name, text in sorted(files.items())},
    }
    text = json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return {META: text, **files}


def bundle_readme(policy: Policy, case: Mapping, expected: Mapping) -> str:
    """What the bundle decides, its version and how to use it."""
    description = policy.describe()
    cost = expected.get("cost_per_decision")
    currency = case.get("currency") or ""
    question = [case["question"], ""] if case.get("question") else []
    lines = [
        f"# {description['title']}: `{policy.name}` for {case.get('name', 'a case')}",
        "",
        *question,
        description["summary"],
        "",
        f"- version: `{policy.version}` (written with every decision as `model_version`)",
        f"- decisions: {', '.join(policy.costs.decisions)}",
        f"- reads the columns: {', '.join(policy.input_columns()) or 'none'}",
    ]
    cost_text = money_interval(cost, currency)
    if cost_text:
        split = expected.get("split") or "test"
        where = "test split" if split == "test" else f"{split} decisions"
        lines.append(f"- expected cost per decision on the run's {where}: {cost_text}")
    lines += [
        "",
        "## Use it",
        "",
        "`BUNDLE` is this folder.",
        "",
        "```bash",
        "advisor score BUNDLE rows.parquet -o decisions.parquet --id customer_id",
        "advisor serve BUNDLE --log predictions/   # HTTP: POST /decide (advisor-ship[serve])",
        "```",
        "",
        "```python",
        "import advisor",
        'policy = advisor.load_policy("BUNDLE")',
        "policy.decide(frame)            # a Series of decisions",
        "policy.decide_one(record).decision",
        "```",
    ]
    section = plugin_of(policy).readme
    if section:
        lines += ["", section]
    lines += [
        "",
        "## Files",
        "",
        "`bundle.json` describes the policy and holds a sha256 for every other file; "
        "`advisor.load_policy` refuses the bundle if any of them changed. No file is a pickle.",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its folder, what `bundle.json` says and the rebuilt policy."""

    path: Path
    meta: Mapping
    policy: Policy

    @property
    def expected(self) -> Mapping:
        return self.meta.get("expected") or {}

    @property
    def reference(self) -> Reference | None:
        """The training reference for drift, when the bundle carries one."""
        ref = self.meta.get("reference")
        return Reference.from_dict(ref) if ref else None


def bundle_folder(path: str | Path) -> Path:
    """The bundle folder that `path` names: the folder, its bundle.json, or an export folder
    (which keeps the bundle in `bundle/`)."""
    folder = Path(path)
    if folder.name == META and folder.is_file():
        return folder.parent
    if not folder.is_dir():
        raise InputError("no such bundle folder", where=str(folder))
    if not (folder / META).exists() and (folder / "bundle" / META).is_file():
        return folder / "bundle"
    return folder


def bundle_bytes(path: str | Path) -> dict[str, bytes]:
    """The files of a bundle folder as bytes (name -> content): `bundle.json` and every file
    it lists, unchecked; `from_bytes` checks and loads them, here or on another machine."""
    folder = bundle_folder(path)
    try:
        out = {META: (folder / META).read_bytes()}
    except FileNotFoundError:
        raise InputError(f"not a policy bundle: no {META}", where=str(folder)) from None
    meta = check_meta(out[META], str(folder / META))
    for name in meta["files"]:
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            raise InputError(f"lists a file outside the bundle: {name!r}", where=str(folder / META))
        try:
            out[name] = (folder / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise InputError("missing from the bundle", where=str(folder / name)) from None
    return out


def check_meta(data: bytes, where: str) -> dict:
    """`bundle.json`'s content, checked for the format this advisor reads and its required
    fields: the one reader of bundle.json (loading a policy, exporting, the monitor)."""
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"damaged: not JSON ({exc})", where=where) from None
    if not isinstance(meta, dict) or "format" not in meta:
        raise InputError("not a policy bundle: no 'format'", where=where)
    if meta["format"] != FORMAT:
        raise InputError(
            f"bundle format {meta['format']!r} is not one this advisor reads ({FORMAT!r}); "
            "use the advisor version that wrote it",
            where=where,
        )
    missing = [key for key in REQUIRED if key not in meta]
    if missing:
        raise InputError(f"damaged: no field {missing[0]!r}", where=where)
    if not isinstance(meta["files"], Mapping):
        raise InputError("damaged: 'files' is not a mapping", where=where)
    return meta


def read_meta(path: str | Path) -> dict:
    """A bundle's `bundle.json` (the file, or the bundle folder), read and checked."""
    path = Path(path)
    if path.is_dir():
        path = path / META
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the bundle: {first_line(exc)}", where=str(path)) from None
    return check_meta(data, str(path))


def meta_plugin(meta: Mapping, where: str) -> PolicyPlugin:
    """The plugin of the policy a `bundle.json` names; an unknown policy is bad input."""
    plugin = plugin_named(str(meta["policy"]), str(meta["kind"]))
    if plugin is None:
        raise InputError(
            f"unknown policy {meta['policy']!r} of kind {meta['kind']!r}; this advisor reads "
            f"{sorted(PLUGINS)}",
            where=where,
        )
    return plugin


def decides_by_expected_cost(meta: Mapping) -> bool:
    """Whether a `bundle.json`'s policy decides by expected cost from calibrated class
    probabilities (its plugin declares expected costs), so its cost can be estimated from them."""
    plugin = plugin_named(str(meta["policy"]), str(meta["kind"]))
    return plugin is not None and EXPECTED_COSTS in plugin.outputs


def from_bytes(files: Mapping[str, bytes], folder: str | Path = ".") -> Bundle:
    """Check a bundle's files (format, every sha256) and rebuild its policy; `folder` is only
    named in messages."""
    folder = Path(folder)
    meta = check_meta(files[META], str(folder / META))
    texts = {}
    for name, digest in meta["files"].items():
        data = files.get(name)
        if data is None:
            raise InputError("missing from the bundle", where=str(folder / name))
        if sha256(data) != digest:
            raise InputError(
                "changed since the bundle was written (sha256 does not match bundle.json)",
                where=str(folder / name),
            )
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", where=str(folder / name)) from None
    return Bundle(folder, meta, _policy(meta, texts, folder))


def _policy(meta: Mapping, files: Mapping[str, str], folder: Path) -> Policy:
    where = str(folder / META)
    cls = meta_plugin(meta, where).policy_class()
    try:
        costs = parse_costs(meta["costs"], where=f"{META}: costs")
        spec = FeatureSpec.from_data(meta["features"])
        policy = cls.from_bundle(costs, spec, meta["parameters"], files)
    except InputError as exc:
        raise InputError(str(exc), where=str(folder)) from None
    except KeyError as exc:
        raise InputError(f"damaged: no {exc.args[0]!r} where one is needed", where=where) from None
    except (TypeError, ValueError, AttributeError) as exc:
        first = first_line(exc)
        raise InputError(f"damaged: {first}", where=where) from None
    if policy.version != meta["version"]:
        raise InputError(
            f"the files give version {policy.version!r}, not the {meta['version']!r} that "
            f"{META} names",
            where=str(folder),
        )
    return policy


def read_bundle(path: str | Path) -> Bundle:
    """Check and load a bundle folder: format, checksums, then the policy from its files."""
    return from_bytes(bundle_bytes(path), bundle_folder(path))


def load_policy(path: str | Path) -> Policy:
    """The policy in a bundle folder, checked and rebuilt; an InputError names what is wrong."""
    return read_bundle(path).policy


def reloaded(policy: Policy) -> Policy:
    """The policy written as a bundle and read back as `load_policy` reads one (format, every
    checksum, the version), in memory: what `check_policy` calls a round trip via bundles."""
    files = bundle_files(policy, case={"name": "check"}, expected={}, reference=None, manifest={})
    return from_bytes({name: text.encode("utf-8") for name, text in files.items()}).policy
