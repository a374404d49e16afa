"""Reason codes: why a policy took each decision, as the K main reasons per row.

A rule list's reason is the rule that fired, in words, or its default. An ML decision's
reasons are the features that pushed the most toward the decision taken against the
runner-up, from per-feature contributions to LightGBM's raw score (the score calibration maps
monotonically): exact TreeSHAP (computed from per-leaf tables, `treeshap`, with the same
values as LightGBM's `pred_contrib=True`), or the per-tree path attribution (Saabas), which also
sums exactly to the raw score but agrees with TreeSHAP's top three on fewer than half the rows,
so the command line does not offer it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

METHODS = ("exact", "lightgbm", "paths")


class _Readout:
    """What every kind of reasons offers: per-row records and reason_1..K columns."""

    feature: np.ndarray
    value: np.ndarray
    contribution: np.ndarray
    text: np.ndarray

    def records(self) -> list[list[dict]]:
        """Per row, the reasons as `{feature, value, contribution, text}` (JSON-ready)."""
        out = []
        for i in range(len(self.text)):
            row = []
            for j in range(self.text.shape[1]):
                if not self.text[i, j]:
                    continue
                c = self.contribution[i, j]
                row.append(
                    {
                        "feature": self.feature[i, j],
                        "value": _plain(self.value[i, j]),
                        "contribution": None if math.isnan(c) else float(c),
                        "text": self.text[i, j],
                    }
                )
            out.append(row)
        return out

    def frame(self, index=None) -> pd.DataFrame:
        """`reason_1` ... `reason_K` text columns (empty text: no further reason)."""
        return pd.DataFrame(
            {f"reason_{j + 1}": self.text[:, j] for j in range(self.text.shape[1])}, index=index
        )


@dataclass(frozen=True)
class Reasons(_Readout):
    """K reasons per row as (n, k) arrays: feature names, values, contributions toward the
    decision taken and sentences; a row with fewer reasons has None there (text '')."""

    feature: np.ndarray
    value: np.ndarray
    contribution: np.ndarray
    text: np.ndarray


@dataclass(frozen=True)
class RuleReasons(_Readout):
    """A rule list's one reason per row, kept as the deciding rule's position (`index`, the
    default last) into its sentences, so a million rows need no million strings until asked."""

    index: np.ndarray
    sentences: tuple[str, ...]
    columns: tuple[str | None, ...]
    k: int

    def _column(self, first: np.ndarray, fill) -> np.ndarray:
        out = np.empty((len(self.index), self.k), dtype=object)
        if self.k:
            out[:, 0] = first[self.index]
            out[:, 1:] = fill
        return out

    @property
    def text(self) -> np.ndarray:
        return self._column(np.array(self.sentences, dtype=object), "")

    @property
    def feature(self) -> np.ndarray:
        return self._column(np.array(self.columns, dtype=object), None)

    @property
    def value(self) -> np.ndarray:
        return np.empty((len(self.index), self.k), dtype=object)

    @property
    def contribution(self) -> np.ndarray:
        return np.full((len(self.index), self.k), math.nan)


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def constant_reasons(n: int, k: int, text: str) -> Reasons:
    """Every row decided for one reason (a constant decision, or a rule list's default)."""
    shape = (n, max(k, 1))
    texts = np.full(shape, "", dtype=object)
    texts[:, 0] = text
    return Reasons(
        np.full(shape, None, dtype=object),
        np.full(shape, None, dtype=object),
        np.full(shape, math.nan),
        texts[:, :k] if k else texts[:, :0],
    )


def rule_reasons(rules, index: np.ndarray, k: int) -> RuleReasons:
    """The rule that decided each row (`index`: its position, `len(rules)` for the default):
    one reason, in words; the rule's columns as its feature."""
    sentences = [
        f"rule {i}: " + " and ".join(c.english() for c in rule.conditions)
        for i, rule in enumerate(rules.rules, start=1)
    ]
    sentences.append(f"no rule matched: the default ({rules.default})")
    columns = [" and ".join(rule.columns) for rule in rules.rules] + [None]
    return RuleReasons(np.asarray(index, dtype=np.int64), tuple(sentences), tuple(columns), k)


def raw_contributions(
    booster,
    X: np.ndarray,
    n_trees: int,
    n_classes: int,
    method: str,
    num_threads: int = 0,
    version: str = "",
):
    """(contributions (n, classes, features), base (n, classes)) of LightGBM's raw score, by
    exact TreeSHAP ("exact": from per-leaf tables, `treeshap`, or LightGBM's own when the
    tables would be too large; "lightgbm": always LightGBM's `pred_contrib`) or the per-tree
    path attribution ("paths"); all sum to the raw score exactly. One row runs on one thread
    (no pool start-up on the request path). `version` (the bundle's) keys the tables' disk
    cache (`table_cache`); without it they are built in each process."""
    threads = {"num_threads": 1 if len(X) == 1 else num_threads}
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    k = 1 if n_classes == 2 else n_classes
    features = X.shape[1]
    if method == "exact":
        from advisor.policies.table_cache import leaf_tables

        pool = num_threads or os.cpu_count() or 1
        tables = leaf_tables(booster, n_trees, features, k, pool, version)
        if tables is not None:
            return tables.contributions(X, 1 if len(X) == 1 else pool)
        method = "lightgbm"
    if method == "lightgbm":
        raw = booster.predict(X, pred_contrib=True, num_iteration=n_trees, **threads)
        raw = np.asarray(raw).reshape(len(X), k, features + 1)
        return raw[:, :, :features], raw[:, :, features]
    table, offsets, roots = path_table(booster, n_trees, features)
    leaves = booster.predict(X, pred_leaf=True, num_iteration=n_trees, **threads)
    leaves = leaves.astype(np.int64)
    leaves = leaves.reshape(len(X), -1) + offsets
    from scipy import sparse

    n = len(leaves)
    contrib = np.empty((n, k, features))
    for c in range(k):
        cols = leaves[:, c::k]
        hits = sparse.csr_matrix(
            (np.ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, cols.shape[1])),
            shape=(n, len(table)),
        )
        contrib[:, c, :] = hits @ table
    base = np.broadcast_to(np.array([roots[c::k].sum() for c in range(k)]), (n, k))
    return contrib, np.array(base)


def path_table(booster, n_trees: int, features: int):
    """Per leaf of every tree, the change in node value along the path to it, by split
    feature (Saabas): (table (leaves, features), each tree's first row, root values)."""
    cached = getattr(booster, "_advisor_paths", None)
    if cached is not None and cached[0] == n_trees:
        return cached[1]
    trees = booster.dump_model(num_iteration=n_trees)["tree_info"]
    rows: list[np.ndarray] = []
    offsets, roots = [], []
    for tree in trees:
        node = tree["tree_structure"]
        leaves: dict[int, np.ndarray] = {}
        root = node.get("internal_value", node.get("leaf_value", 0.0))
        _walk(node, np.zeros(features), root, leaves)
        offsets.append(len(rows))
        roots.append(root)
        rows.extend(leaves[i] for i in range(len(leaves)))
    built = (np.array(rows), np.array(offsets, dtype=np.int64), np.array(roots))
    booster._advisor_paths = (n_trees, built)
    return built


def _walk(node: dict, acc: np.ndarray, value: float, leaves: dict) -> None:
    if "leaf_index" in node:
        leaves[node["leaf_index"]] = acc
        return
    if "split_feature" not in node:  # a tree of one leaf
        leaves[0] = acc
        return
    feature = node["split_feature"]
    for side in ("left_child", "right_child"):
        child = node[side]
        child_value = child.get("internal_value", child.get("leaf_value"))
        step = acc.copy()
        step[feature] += child_value - value
        _walk(child, step, child_value, leaves)


def toward_decision(
    contrib: np.ndarray,
    base: np.ndarray,
    proba_raw: np.ndarray | None,
    tensor: np.ndarray,
    codes: np.ndarray,
    runner_up: np.ndarray,
    slope: float,
):
    """Contributions toward the decision taken against the runner-up: per row a weight per
    class's raw score (the change in the runner-up's expected cost minus the decision's per
    unit of raw score), applied to each feature's contribution. Binary: the sign of that
    change times the log-odds contributions (`proba_raw` unused, may be None); multiclass:
    its gradient through the softmax of the uncalibrated probabilities `proba_raw`. Returns (per-feature (n, features), base (n,))."""
    n = len(codes)
    rows = np.arange(n)
    t = np.broadcast_to(tensor, (n, *tensor.shape[1:]))
    gap = t[rows, :, runner_up] - t[rows, :, codes]  # (n, classes): cost runner-up - taken
    if contrib.shape[1] == 1:  # binary: raw score is the log-odds of the second class
        weight = np.sign(slope * (gap[:, 1] - gap[:, 0]))[:, None]
    else:
        mean = (proba_raw * gap).sum(axis=1, keepdims=True)
        weight = proba_raw * (gap - mean)
    toward = np.einsum("nc,ncf->nf", weight, contrib)
    return toward, (weight * base).sum(axis=1)


def top_reasons(
    toward: np.ndarray, X: np.ndarray, encoders, k: int, decided: np.ndarray, labels: np.ndarray
):
    """The k largest positive contributions per row, with the feature's value and a sentence;
    a row no feature pushed toward its decision (`labels`) is told so in one sentence."""
    n = len(toward)
    k_eff = min(k, toward.shape[1])
    order = np.argsort(-toward, axis=1, kind="stable")[:, :k_eff]
    picked = np.take_along_axis(toward, order, axis=1)
    feature = np.full((n, k), None, dtype=object)
    value = np.full((n, k), None, dtype=object)
    contribution = np.full((n, k), math.nan)
    text = np.full((n, k), "", dtype=object)
    if k:
        none = np.flatnonzero(decided & ~(picked[:, 0] > 0))
        text[none, 0] = [
            f"no feature pushed toward {label}: the model's base rate decides"
            for label in np.asarray(labels, dtype=object)[none]
        ]
    # A cell holds a reason while every contribution before it in its row is positive.
    shown = decided[:, None] & np.logical_and.accumulate(picked > 0, axis=1)
    names = np.array([e.name for e in encoders], dtype=object)
    for f, encoder in enumerate(encoders):  # per feature, each distinct value described once
        rows, cols = np.nonzero(shown & (order == f))
        if not len(rows):
            continue
        bits = np.ascontiguousarray(X[rows, f], dtype=np.float64).view(np.int64)  # -0.0 kept
        codes, first = np.unique(bits, return_inverse=True)
        values = np.empty(len(codes), dtype=object)
        texts = np.empty(len(codes), dtype=object)
        for i, c in enumerate(codes.view(np.float64)):
            values[i], texts[i] = describe_value(encoder, float(c))
        feature[rows, cols] = names[f]
        value[rows, cols] = values[first]  # gathered in C, not a list per row
        text[rows, cols] = texts[first]
        contribution[rows, cols] = picked[rows, cols]
    return Reasons(feature, value, contribution, text)


def describe_value(encoder, code: float):
    """(value as the data had it, sentence) for one encoded model input."""
    name = encoder.name
    if math.isnan(code):
        return None, f"{name} is missing"
    if encoder.kind == "categorical":
        i = int(code)
        if i < len(encoder.levels):
            level = _plain(encoder.levels[i])
            return level, f"{name} is {level}"
        return None, f"{name} is a category not seen in training"
    if encoder.kind == "boolean":
        return bool(code), f"{name} is {'true' if code else 'false'}"
    return float(code), f"{name} = {code:g}"
