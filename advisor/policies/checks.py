"""`check_policy`: the conformance suite every policy kind passes, as scikit-learn's
`check_estimator` is for estimators.

Given an unfitted policy and small training and validation splits, it checks the protocol
(docs/architecture.md, "The policy protocol"): parameters from `__init__`, fitting that only
adds attributes ending in `_`, the batch and single-record decisions and their parity on every
row (with missing values and categories never seen), the outputs the policy's plugin declares,
the bundle round trip, and a version that stays the same for the same fit. A failed check
raises AssertionError naming the check and the policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from advisor.core.costs import UNDECIDED
from advisor.core.data import Part
from advisor.core.errors import InputError
from advisor.policies.base import Batch, Policy
from advisor.policies.output import decision_columns, decision_record, output_fields
from advisor.policies.registry import PROBABILITIES, RULE, plugin_named, plugin_of

UNSEEN = "__a level never seen__"
Reload = Callable[[Policy], Policy]


class PolicyCheckError(AssertionError):
    """A policy broke the protocol: the message names the check and the policy."""


def check_policy(
    policy: Policy, train: Part, valid: Part, reloads: Sequence[Reload] = ()
) -> list[str]:
    """Run every check on `policy` (unfitted) with the two splits; the names of the checks
    passed. `reloads` are further bundle round trips (e.g. `artefacts.bundle.reloaded`, the
    files written and read as `advisor.load_policy` reads them)."""
    passed: list[str] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        if not ok:
            raise PolicyCheckError(f"{name} failed for policy {policy.name!r}: {detail}")
        if name not in passed:
            passed.append(name)

    plugin = plugin_named(policy.name, policy.kind)
    check("registered", plugin is not None, "no plugin in advisor.policies.registry")
    check("registered", isinstance(policy, plugin.policy_class()), f"not a {plugin.locator}")

    params = policy.get_params()
    check("parameters", list(params) == list(policy.parameter_names()), str(list(params)))
    clone = type(policy)(**params)
    check("parameters", _same(clone.get_params(), params), "a clone has other parameters")
    check("parameters", not hasattr(policy, "version_"), "fitted before fit")
    try:
        _ = policy.version
        check("unfitted has no version", False, "gave a version before fit")
    except AttributeError:
        check("unfitted has no version", True)

    before = set(vars(policy))
    fitted = policy.fit(train, valid)
    check("fit returns self", fitted is policy)
    added = sorted(set(vars(policy)) - before)
    check("fitted attributes end in _", all(a.endswith("_") for a in added), str(added))
    check("fit keeps parameters", _same(policy.get_params(), params), "fit changed them")
    check("version", isinstance(policy.version, str) and bool(policy.version), policy.version)

    description = policy.describe()
    check("describe", {"title", "summary", "details"} <= set(description), str(description))
    check("describe", _json(description), "not JSON")

    rows = awkward(valid.frame, policy)
    batch = policy.decide_batch(rows)
    check_batch(policy, batch, len(rows), check)
    check("decide agrees", list(policy.decide(rows).cat.codes) == list(batch.codes))
    check_parity(policy, rows, batch, check)

    if plugin.evaluated_only:
        check("evaluated only: no bundle", _refuses_bundle(policy))
        return _refit_checks(policy, params, train, valid, rows, batch, check, passed)
    parameters, files = policy.to_bundle()
    check("bundle parameters are JSON", _json(parameters), str(parameters))
    check("bundle files", sorted(files) == sorted(plugin.files), f"{sorted(files)}")
    copies = [type(policy).from_bundle(policy.costs, policy.spec, parameters, files)]
    copies += [reload(policy) for reload in reloads]
    for copy in copies:
        check("bundle round trip", copy.version == policy.version, copy.version)
        check("bundle round trip", _same_batch(copy.decide_batch(rows), batch), "decides otherwise")
        again = copy.to_bundle()
        check("bundle round trip", again == (parameters, files), "writes another bundle")
        check_parity(copy, rows, batch, check)

    return _refit_checks(policy, params, train, valid, rows, batch, check, passed)


def _refit_checks(policy, params, train, valid, rows, batch, check, passed) -> list[str]:
    """A second fit with the same parameters: the same version and the same decisions."""
    refit = type(policy)(**params).fit(train, valid)
    check("version stable", refit.version == policy.version, f"{refit.version}")
    check("version stable", _same_batch(refit.decide_batch(rows), batch), "refit decides otherwise")
    return passed


def _refuses_bundle(policy: Policy) -> bool:
    """An evaluated-only policy refuses to become a bundle, in one line (InputError)."""
    try:
        policy.to_bundle()
    except InputError:
        return True
    return False


def awkward(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """`frame` and a copy of it with the policy's features missing in turn and categories never
    seen (cost columns kept, so every row can be decided)."""
    rng = np.random.default_rng(0)
    odd = frame.copy()
    features = [e for e in policy.spec.encoders_ if e.name not in policy.costs.columns]
    for i, e in enumerate(features):
        hit = rng.random(len(odd)) < 0.3
        if e.kind == "categorical":
            values = odd[e.name].astype(object)
            values[hit] = UNSEEN if i % 2 == 0 else None
            odd[e.name] = values
        else:
            odd[e.name] = odd[e.name].astype(object).where(~hit, None)
    empty = frame.head(1).copy()
    for e in features:
        empty[e.name] = None
    return pd.concat([frame, odd, empty], ignore_index=True)


def check_batch(policy: Policy, batch: Batch, n: int, check: Callable) -> None:
    """A batch's shape: one code a row, each a decision or UNDECIDED, and the outputs the
    plugin declares, in the columns every consumer writes."""
    codes = np.asarray(batch.codes)
    check("batch codes", codes.shape == (n,) and codes.dtype.kind == "i", str(codes.dtype))
    known = (codes >= 0) & (codes < len(policy.costs.decisions))
    check("batch codes", bool((known | (codes == UNDECIDED)).all()), "a code out of range")
    outputs = plugin_of(policy).outputs
    if RULE in outputs:
        rule = np.asarray(batch.rule)
        check("rule output", rule.shape == (n,) and bool((rule >= 0).all()), str(rule[:5]))
    if PROBABILITIES in outputs:
        proba = np.asarray(batch.proba, dtype=float)
        ok = np.allclose(proba.sum(axis=1), 1.0) and bool((proba >= 0).all())
        check("probability output", proba.shape == (n, policy.costs.n_classes) and ok)
    columns = decision_columns(policy, batch)
    check("output columns", [k for k, _ in output_fields(policy)] == list(columns))
    frame = pd.DataFrame(columns)
    check("output columns", len(frame) == n, str(len(frame)))


def check_parity(policy: Policy, rows: pd.DataFrame, batch: Batch, check: Callable) -> None:
    """Every row decided alone (`decide_record`, `decide_one`) as in the batch, with the same
    output; a row the batch left undecided is refused alone with InputError."""
    for i, record in enumerate(rows.to_dict("records")):
        if batch.codes[i] == UNDECIDED:
            try:
                policy.decide_record(record)
                check("record refuses an undecidable row", False, f"row {i} decided")
            except InputError:
                continue
        one = policy.decide_record(record)
        check("record parity", int(one.codes[0]) == int(batch.codes[i]), f"row {i}: {record}")
        check("record parity", policy.decide_one(record).code == int(batch.codes[i]), f"row {i}")
        alone, within = decision_record(policy, one), decision_record(policy, batch, i)
        check("record output parity", _close(alone, within), f"row {i}: {alone} vs {within}")


def _same(a: Mapping, b: Mapping) -> bool:
    return list(a) == list(b) and all(a[k] is b[k] or _equal(a[k], b[k]) for k in a)


def _equal(x: object, y: object) -> bool:
    try:
        return bool(x == y)
    except (TypeError, ValueError):
        return False


def _same_batch(a: Batch, b: Batch) -> bool:
    pairs = [(a.codes, b.codes), (a.rule, b.rule), (a.proba, b.proba)]
    pairs.append((a.expected_costs, b.expected_costs))
    return all(
        (x is None) == (y is None)
        and (x is None or np.allclose(np.asarray(x, float), np.asarray(y, float), equal_nan=True))
        for x, y in pairs
    )


def _close(a: object, b: object) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
    return a == b


def _json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
