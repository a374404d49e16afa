"""Exact (path-dependent) TreeSHAP for a LightGBM model from per-leaf tables, in numpy.

The idea of Fast TreeSHAP v2 (Yang 2021). In one tree, leaf l with value v splits on d unique
features along its path. Feature j's share of that leaf in TreeSHAP is

    v (o_j - z_j) sum over S in M without j of |S|! (d-1-|S|)! / d! * prod(z_i, i off S, i != j)

where z_j is the product of the data fractions of j's splits on the path, o_j is 1 when the
row meets every one of j's conditions on the path (else 0) and M is the set of features with
o = 1. So a leaf's contributions depend on the row only through a d-bit mask, and all 2^d of
them are computed once per model (`LeafTables`). A row's contributions are then the sum of one
table row per leaf: its masks come from one comparison per split (vectorised over rows, as
LightGBM decides: missing values, zero-as-missing, category sets), and the sum is one
sparse-dense product. The results equal LightGBM's `pred_contrib=True` up to rounding (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_PATH_FEATURES = 16  # 2^16 table rows for one leaf at most
MAX_TABLE_BYTES = 512 << 20
CHUNK_CELLS = 1 << 23  # rows per chunk x nodes: bounds the working memory (~40 MB)
ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (zero-as-missing)
MISSING = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True)
class NumericSplits:
    """The numeric splits on one feature: node numbers, thresholds, missing handling."""

    feature: int
    nodes: np.ndarray
    threshold: np.ndarray
    missing: np.ndarray  # 0 none (NaN read as 0), 1 zero is missing, 2 NaN is missing
    default_left: np.ndarray


@dataclass(frozen=True)
class CategorySplits:
    """The category splits on one feature: node numbers and which codes go left."""

    feature: int
    nodes: np.ndarray
    left: np.ndarray  # (nodes, codes + 1): the last column is any code outside the sets


@dataclass(frozen=True)
class Level:
    """The edges from one depth of every tree to the next: the parent's slot at this depth,
    its node number, the side taken, the parent feature's bit in the path's mask; children
    that are internal nodes come first (`internal` of them), then leaves (`leaves`)."""

    parent_slot: np.ndarray
    parent_node: np.ndarray
    want_left: np.ndarray
    bit: np.ndarray
    internal: int
    leaves: np.ndarray


@dataclass(frozen=True)
class LeafTables:
    """Everything TreeSHAP needs of a model, precomputed: the splits, the tree levels, per
    leaf its table offset, full mask and class, the tables and the base value per class."""

    features: int
    classes: int
    n_nodes: int
    numeric: tuple[NumericSplits, ...]
    categories: tuple[CategorySplits, ...]
    levels: tuple[Level, ...]
    roots: int
    offset: np.ndarray
    full: np.ndarray
    leaf_class: np.ndarray
    table: np.ndarray
    base: np.ndarray

    def contributions(self, X: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(contributions (n, classes, features), base (n, classes)), as `pred_contrib`; row
        chunks on `threads` threads (numpy and scipy release the GIL in the heavy steps)."""
        n = len(X)
        out = np.empty((n, self.classes, self.features))
        step = max(1, CHUNK_CELLS // max(self.n_nodes + len(self.offset), 1))
        if threads > 1:
            step = max(1, min(step, -(-n // threads)))
        starts = range(0, n, step)

        def fill(start: int) -> None:
            rows = np.ascontiguousarray(X[start : start + step], dtype=np.float64)
            out[start : start + step] = self._chunk(rows)

        if threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fill, starts))
        else:
            for start in starts:
                fill(start)
        return out, np.broadcast_to(self.base, (n, self.classes)).copy()

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        from scipy import sparse

        n = len(X)
        left = self.goes_left(X)
        index = np.empty((len(self.offset), n), dtype=np.int32)
        state = np.zeros((self.roots, n), dtype=np.int32)
        for level in self.levels:
            missed = left[level.parent_node] ^ level.want_left[:, None]
            child = state[level.parent_slot] | (missed * level.bit[:, None])
            ended = child[level.internal :]
            index[level.leaves] = self.offset[level.leaves, None] + (
                self.full[level.leaves, None] & ~ended
            )
            state = child[: level.internal]
        out = np.empty((n, self.classes, self.features))
        for c in range(self.classes):
            cols = (index if self.classes == 1 else index[self.leaf_class == c]).T.copy()
            per_row = cols.shape[1]
            hits = sparse.csr_matrix(
                (_ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, per_row)),
                shape=(n, len(self.table)),
                copy=False,
            )
            out[:, c, :] = hits @ self.table
        return out

    def goes_left(self, X: np.ndarray) -> np.ndarray:
        """(nodes, rows): whether each row goes left at each split, as LightGBM decides."""
        left = np.empty((self.n_nodes, len(X)), dtype=bool)
        columns = X.T
        for s in self.numeric:
            x = columns[s.feature]
            nan = np.isnan(x)
            x0 = np.where(nan, 0.0, x)
            side = x0[None, :] <= s.threshold[:, None]
            if s.missing.any():
                zero = np.abs(x0) <= ZERO
                absent = ((s.missing == 1)[:, None] & zero) | ((s.missing == 2)[:, None] & nan)
                side = np.where(absent, s.default_left[:, None], side)
            left[s.nodes] = side
        for s in self.categories:
            x = columns[s.feature]
            outside = s.left.shape[1] - 1
            valid = (x > -1.0) & (x < float(outside))  # NaN, negative, unseen: right
            code = np.where(valid, x, outside).astype(np.int64)
            left[s.nodes] = s.left[:, code]
        return left


_ONES = np.ones(0)


def _ones(size: int) -> np.ndarray:
    """A read-only vector of ones, shared by the chunks (it is as long as their entries)."""
    global _ONES
    if len(_ONES) < size:
        _ONES = np.ones(size)
        _ONES.flags.writeable = False
    return _ONES[:size]


def leaf_tables(booster, n_trees: int, features: int, classes: int) -> LeafTables | None:
    """The model's `LeafTables`, cached on the booster; None when a path has more than
    MAX_PATH_FEATURES unique features or the tables would pass MAX_TABLE_BYTES."""
    cached = getattr(booster, "_advisor_leaf_tables", None)
    if cached is not None and cached[0] == n_trees:
        return cached[1]
    built = _build(booster.dump_model(num_iteration=n_trees)["tree_info"], features, classes)
    booster._advisor_leaf_tables = (n_trees, built)
    return built


class _Model:
    """Accumulates nodes, leaves and levels while walking the trees."""

    def __init__(self, features: int, classes: int):
        self.features, self.classes = features, classes
        self.node_feature: list[int] = []
        self.threshold: list[float] = []
        self.missing: list[int] = []
        self.default_left: list[bool] = []
        self.category_sets: dict[int, list[int]] = {}
        self.leaves: list[tuple[int, float, list[int], list[float]]] = []  # class, v, u, z
        self.base = np.zeros(classes)
        self.edges: list[list[tuple]] = []  # per depth: (slot, node, left, bit, child)

    def node(self, split: dict) -> int:
        number = len(self.node_feature)
        self.node_feature.append(split["split_feature"])
        self.missing.append(MISSING[split.get("missing_type", "None")])
        self.default_left.append(bool(split.get("default_left", False)))
        if split["decision_type"] == "==":
            self.category_sets[number] = [int(c) for c in str(split["threshold"]).split("||")]
            self.threshold.append(math.nan)
        else:
            self.threshold.append(float(split["threshold"]))
        return number


def _count(node: dict) -> float:
    return float(node.get("internal_count", node.get("leaf_count", 0)))


def _build(trees: list[dict], features: int, classes: int) -> LeafTables | None:
    model = _Model(features, classes)
    roots = []
    for i, tree in enumerate(trees):
        top = tree["tree_structure"]
        c = i % classes
        if "split_feature" not in top:
            model.base[c] += top.get("leaf_value", 0.0)
            continue
        total = _count(top)
        roots.append((model.node(top), top, c, total))
    # Breadth first over every tree at once: each depth's children, internal nodes first.
    frontier = [(slot, *root, [], []) for slot, root in enumerate(roots)]
    levels_raw = []
    while frontier:
        internal, leaves = [], []
        for slot, number, split, c, total, unique, fractions in frontier:
            f = split["split_feature"]
            count = _count(split)
            for side in ("left_child", "right_child"):
                child = split[side]
                u, z = list(unique), list(fractions)
                share = _count(child) / count if count else 0.0
                if f in u:
                    z[u.index(f)] *= share
                else:
                    u.append(f)
                    z.append(share)
                bit = 1 << u.index(f)
                edge = (slot, number, side == "left_child", bit)
                if "split_feature" in child:
                    internal.append((edge, child, c, total, u, z))
                else:
                    value = child.get("leaf_value", 0.0)
                    value = 0.0 if value is None or math.isnan(value) else float(value)
                    model.base[c] += _count(child) / total * value if total else 0.0
                    if len(u) > MAX_PATH_FEATURES:
                        return None
                    leaves.append((edge, len(model.leaves)))
                    model.leaves.append((c, value, u, z))
        levels_raw.append((internal, leaves))
        frontier = [
            (slot, model.node(child), child, c, total, u, z)
            for slot, (_, child, c, total, u, z) in enumerate(internal)
        ]
    sizes = np.array([2 ** len(u) for _, _, u, _ in model.leaves], dtype=np.int64)
    if sizes.sum() * features * 8 > MAX_TABLE_BYTES:
        return None
    levels = []
    for internal, leaves in levels_raw:
        edges = [e for e, *_ in internal] + [e for e, _ in leaves]
        slot, node, left, bit = (np.array(col) for col in zip(*edges, strict=True))
        levels.append(
            Level(
                slot.astype(np.int64),
                node.astype(np.int64),
                left.astype(bool),
                bit.astype(np.int32),
                len(internal),
                np.array([i for _, i in leaves], dtype=np.int64),
            )
        )
    offset = (np.cumsum(sizes) - sizes).astype(np.int32)
    return LeafTables(
        features,
        classes,
        len(model.node_feature),
        _numeric_splits(model),
        _category_splits(model),
        tuple(levels),
        len(roots),
        offset,
        (sizes - 1).astype(np.int32),
        np.array([c for c, *_ in model.leaves], dtype=np.int64),
        _tables(model.leaves, offset, int(sizes.sum()), features),
        model.base,
    )


def _numeric_splits(model: _Model) -> tuple[NumericSplits, ...]:
    feature = np.array(model.node_feature, dtype=np.int64)
    numeric = np.ones(len(feature), dtype=bool)
    numeric[list(model.category_sets)] = False
    out = []
    for f in np.unique(feature[numeric]):
        nodes = np.flatnonzero(numeric & (feature == f))
        out.append(
            NumericSplits(
                int(f),
                nodes,
                np.array(model.threshold)[nodes],
                np.array(model.missing, dtype=np.int8)[nodes],
                np.array(model.default_left)[nodes],
            )
        )
    return tuple(out)


def _category_splits(model: _Model) -> tuple[CategorySplits, ...]:
    by_feature: dict[int, list[int]] = {}
    for number in model.category_sets:
        by_feature.setdefault(model.node_feature[number], []).append(number)
    out = []
    for f, nodes in sorted(by_feature.items()):
        codes = max(max(model.category_sets[n]) for n in nodes) + 1
        left = np.zeros((len(nodes), codes + 1), dtype=bool)
        for i, n in enumerate(nodes):
            left[i, model.category_sets[n]] = True
        out.append(CategorySplits(f, np.array(nodes, dtype=np.int64), left))
    return tuple(out)


def _tables(leaves: list, offset: np.ndarray, rows: int, features: int) -> np.ndarray:
    """Each leaf's contributions for every mask of its path features, as table rows over all
    features; leaves with the same number of path features are computed together."""
    table = np.zeros((rows, features))
    by_depth: dict[int, list[int]] = {}
    for i, (_, _, u, _) in enumerate(leaves):
        by_depth.setdefault(len(u), []).append(i)
    for d, members in by_depth.items():
        value = np.array([leaves[i][1] for i in members])
        unique = np.array([leaves[i][2] for i in members], dtype=np.int64)
        zero = np.array([leaves[i][3] for i in members])
        masks = np.arange(2**d)
        one = ((masks[:, None] >> np.arange(d)) & 1).astype(np.float64)  # (2^d, d)
        weight = np.array(
            [math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)]
        )
        rows_at = offset[members][:, None] + masks[None, :]
        for j in range(d):
            # coefficients of prod over i != j of (o_i t + z_i), per leaf and mask
            poly = np.zeros((len(members), 2**d, d))
            poly[:, :, 0] = 1.0
            for i in range(d):
                if i == j:
                    continue
                shifted = np.zeros_like(poly)
                shifted[:, :, 1:] = poly[:, :, :-1] * one[None, :, i, None]
                poly = poly * zero[:, i, None, None] + shifted
            share = poly @ weight
            table[rows_at, unique[:, j, None]] = (
                value[:, None] * (one[None, :, j] - zero[:, j, None]) * share
            )
    return table
