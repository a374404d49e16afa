"""Exact (path-dependent) TreeSHAP for a LightGBM model from per-leaf tables, in numpy.

The idea of Fast TreeSHAP v2 (Yang 2021). In one tree, leaf l with value v splits on d unique
features along its path. Feature j's share of that leaf in TreeSHAP is

    v (o_j - z_j) sum over S in M without j of |S|! (d-1-|S|)! / d! * prod(z_i, i off S, i != j)

where z_j is the product of the data fractions of j's splits on the path, o_j is 1 when the
row meets every one of j's conditions on the path (else 0) and M is the set of features with
o = 1. So a leaf's contributions depend on the row only through a d-bit mask, and all 2^d of
them are computed once per model. A subtree's leaves share one table (`LeafTables`): its mask
is the path features above the subtree's root whose conditions the row misses, plus one
decision bit per split inside the subtree, and its rows are the sums of the leaves' table rows
(as long as it stays under GROUP_ROWS rows; a leaf alone always qualifies). A row's
contributions are then the sum of one table row per group: the masks come from one comparison
per split (vectorised over rows, as LightGBM decides: missing values, zero-as-missing, category
sets), and the sum is one sparse-dense product, with a few times fewer terms than one per leaf.
The results equal LightGBM's `pred_contrib=True` up to rounding (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_PATH_FEATURES = 16  # 2^16 table rows for one leaf at most
MAX_TABLE_BYTES = 512 << 20
GROUP_ROWS = 1 << 11  # a subtree shares one table up to this many rows
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
    that are walked further come first (`internal` of them), then group roots (`groups`, with
    the shift that leaves room for their decision bits)."""

    parent_slot: np.ndarray
    parent_node: np.ndarray
    want_left: np.ndarray
    bit: np.ndarray
    internal: int
    groups: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class LeafTables:
    """Everything TreeSHAP needs of a model, precomputed: the splits, the tree levels down to
    the group roots, the groups whose root is a tree's root, per group its table offset and
    class, per decision bit the split nodes of the groups that have it (groups with more
    bits first), the tables and the base value per class."""

    features: int
    classes: int
    n_nodes: int
    numeric: tuple[NumericSplits, ...]
    categories: tuple[CategorySplits, ...]
    levels: tuple[Level, ...]
    roots: int
    root_groups: np.ndarray
    offset: np.ndarray
    decisions: tuple[np.ndarray, ...]
    group_class: np.ndarray
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
        index[self.root_groups] = self.offset[self.root_groups, None]
        state = np.zeros((self.roots, n), dtype=np.int32)
        for level in self.levels:
            missed = left[level.parent_node] ^ level.want_left[:, None]
            child = state[level.parent_slot] | (missed * level.bit[:, None])
            ended = child[level.internal :]
            index[level.groups] = self.offset[level.groups, None] + (ended << level.shift[:, None])
            state = child[: level.internal]
        bits = left.view(np.uint8)
        for i, nodes in enumerate(self.decisions):
            chosen = bits[nodes] if i < 8 else bits[nodes].astype(np.int32)
            index[: len(nodes)] += chosen << chosen.dtype.type(i)
        out = np.empty((n, self.classes, self.features))
        for c in range(self.classes):
            cols = (index if self.classes == 1 else index[self.group_class == c]).T.copy()
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
    """Accumulates nodes, leaves and groups while walking the trees."""

    def __init__(self, features: int, classes: int):
        self.features, self.classes = features, classes
        self.node_feature: list[int] = []
        self.threshold: list[float] = []
        self.missing: list[int] = []
        self.default_left: list[bool] = []
        self.category_sets: dict[int, list[int]] = {}
        self.leaves: list[tuple[int, float, list[int], list[float]]] = []  # class, v, u, z
        self.groups: list[_Group] = []
        self.base = np.zeros(classes)
        self.inner: dict[int, int] = {}

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

    def splits_below(self, node: dict) -> int:
        """How many split nodes the subtree at `node` has (memoised)."""
        key = id(node)
        if key not in self.inner:
            self.inner[key] = (
                0
                if "split_feature" not in node
                else 1
                + self.splits_below(node["left_child"])
                + self.splits_below(node["right_child"])
            )
        return self.inner[key]

    def fits(self, node: dict, unique: list[int]) -> bool:
        """Whether the subtree at `node` becomes one group: a leaf always does, a subtree
        when its table (path masks x decisions of its splits) has at most GROUP_ROWS rows."""
        if "split_feature" not in node:
            return True
        return 2 ** (len(unique) + self.splits_below(node)) <= GROUP_ROWS

    def group(self, root: dict, c: int, total: float, unique: list, fractions: list) -> int:
        """Number the subtree's splits and record its leaves with their path conditions."""
        splits: list[int] = []
        leaves: list[tuple[int, list[tuple[int, bool, int]]]] = []

        def walk(node: dict, u: list, z: list, conditions: list) -> None:
            if "split_feature" not in node:
                value = node.get("leaf_value", 0.0)
                value = 0.0 if value is None or math.isnan(value) else float(value)
                self.base[c] += _count(node) / total * value if total else 0.0
                leaves.append((len(self.leaves), conditions))
                self.leaves.append((c, value, u, z))
                return
            position = len(splits)
            splits.append(self.node(node))
            f = node["split_feature"]
            count = _count(node)
            for side in ("left_child", "right_child"):
                child = node[side]
                cu, cz = _extend(u, z, f, _count(child) / count if count else 0.0)
                walk(child, cu, cz, [*conditions, (position, side == "left_child", f)])

        walk(root, unique, fractions, [])
        self.groups.append(_Group(c, len(unique), splits, leaves))
        return len(self.groups) - 1


@dataclass(frozen=True)
class _Group:
    """A subtree whose leaves share one table: its class, path features above its root,
    its split nodes (decision bit i is splits[i]) and its leaves with their conditions."""

    c: int
    above: int
    splits: list[int]
    leaves: list[tuple[int, list[tuple[int, bool, int]]]]


def _extend(u: list, z: list, f: int, share: float) -> tuple[list, list]:
    """The path's unique features and zero fractions after one more split on `f`."""
    u, z = list(u), list(z)
    if f in u:
        z[u.index(f)] *= share
    else:
        u.append(f)
        z.append(share)
    return u, z


def _count(node: dict) -> float:
    return float(node.get("internal_count", node.get("leaf_count", 0)))


def _build(trees: list[dict], features: int, classes: int) -> LeafTables | None:
    model = _Model(features, classes)
    roots, root_groups = [], []
    for i, tree in enumerate(trees):
        top = tree["tree_structure"]
        c = i % classes
        if "split_feature" not in top:
            model.base[c] += top.get("leaf_value", 0.0)
            continue
        total = _count(top)
        if model.fits(top, []):
            root_groups.append(model.group(top, c, total, [], []))
        else:
            roots.append((model.node(top), top, c, total))
    # Breadth first over every tree at once, down to the group roots: each depth's children
    # walked further first, then the group roots.
    frontier = [(slot, *root, [], []) for slot, root in enumerate(roots)]
    levels_raw = []
    while frontier:
        internal, ended = [], []
        for slot, number, split, c, total, unique, fractions in frontier:
            f = split["split_feature"]
            count = _count(split)
            for side in ("left_child", "right_child"):
                child = split[side]
                u, z = _extend(unique, fractions, f, _count(child) / count if count else 0.0)
                edge = (slot, number, side == "left_child", 1 << u.index(f))
                if model.fits(child, u):
                    ended.append((edge, model.group(child, c, total, u, z)))
                else:
                    internal.append((edge, child, c, total, u, z))
        levels_raw.append((internal, ended))
        frontier = [
            (slot, model.node(child), child, c, total, u, z)
            for slot, (_, child, c, total, u, z) in enumerate(internal)
        ]
    if any(len(u) > MAX_PATH_FEATURES for *_, u, _ in model.leaves):
        return None
    groups = model.groups
    splits = np.array([len(g.splits) for g in groups], dtype=np.int64)
    sizes = 2 ** (np.array([g.above for g in groups], dtype=np.int64) + splits)
    leaf_sizes = np.array([2 ** len(u) for _, _, u, _ in model.leaves], dtype=np.int64)
    if max(sizes.sum(), leaf_sizes.sum()) * features * 8 > MAX_TABLE_BYTES:
        return None
    order = np.argsort(-splits, kind="stable")  # groups with more decision bits first
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    levels = []
    for internal, ended in levels_raw:
        edges = [e for e, *_ in internal] + [e for e, _ in ended]
        slot, node, left, bit = (np.array(col) for col in zip(*edges, strict=True))
        ids = np.array([g for _, g in ended], dtype=np.int64)
        levels.append(
            Level(
                slot.astype(np.int64),
                node.astype(np.int64),
                left.astype(bool),
                bit.astype(np.int32),
                len(internal),
                rank[ids],
                splits[ids].astype(np.int32),
            )
        )
    sizes = sizes[order]
    offset = (np.cumsum(sizes) - sizes).astype(np.int32)
    ordered = [groups[i] for i in order]
    decisions = tuple(
        np.array([g.splits[i] for g in ordered if len(g.splits) > i], dtype=np.int64)
        for i in range(int(splits.max(initial=0)))
    )
    leaf_offset = np.cumsum(leaf_sizes) - leaf_sizes
    leaf_table = _tables(model.leaves, leaf_offset, int(leaf_sizes.sum()), features)
    return LeafTables(
        features,
        classes,
        len(model.node_feature),
        _numeric_splits(model),
        _category_splits(model),
        tuple(levels),
        len(roots),
        rank[np.array(root_groups, dtype=np.int64)],
        offset,
        decisions,
        np.array([g.c for g in ordered], dtype=np.int64),
        _group_tables(ordered, model.leaves, leaf_table, leaf_offset, offset, int(sizes.sum())),
        model.base,
    )


def _group_tables(
    groups: list[_Group],
    leaves: list,
    leaf_table: np.ndarray,
    leaf_offset: np.ndarray,
    offset: np.ndarray,
    rows: int,
) -> np.ndarray:
    """Each group's table: row (missed << k) + decisions holds the sum over the group's leaves
    of the leaf's table row for the mask of path features whose conditions the row meets
    (missed: the bits of the path features above the root whose conditions it does not)."""
    table = np.zeros((rows, leaf_table.shape[1]))
    for g, start in zip(groups, offset.tolist(), strict=True):
        k = len(g.splits)
        combos = np.arange(2 ** (g.above + k))
        decided = [((combos >> i) & 1).astype(bool) for i in range(k)]
        kept = [((combos >> (k + j)) & 1) == 0 for j in range(g.above)]
        block = table[start : start + len(combos)]
        for number, conditions in g.leaves:
            unique = leaves[number][2]
            mask = np.zeros(len(combos), dtype=np.int64)
            for j, f in enumerate(unique):
                met = kept[j].copy() if j < g.above else np.ones(len(combos), dtype=bool)
                for position, want_left, feature in conditions:
                    if feature == f:
                        met &= decided[position] == want_left
                mask |= met.astype(np.int64) << j
            block += leaf_table[leaf_offset[number] + mask]
    return table


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
