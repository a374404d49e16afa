"""Exact (path-dependent) TreeSHAP for a LightGBM model from per-leaf tables, in numpy.

The idea of Fast TreeSHAP v2 (Yang 2021). In one tree, leaf l with value v splits on d unique
features along its path. Feature j's share of that leaf in TreeSHAP is

    v (o_j - z_j) sum over S in M without j of |S|! (d-1-|S|)! / d! * prod(z_i, i off S, i != j)

where z_j is the product of the data fractions of j's splits on the path, o_j is 1 when the
row meets every one of j's conditions on the path (else 0) and M is the set of features with
o = 1. So a leaf's contributions depend on the row only through a d-bit mask, and all 2^d of
them are computed once per model. A row decides every split on a feature by its band: the
feature's distinct thresholds over all trees cut its axis into bands (with separate ones for
zero and NaN when a split reads them as missing; a category code is its own band). A subtree's
leaves share one table (`LeafTables`), keyed by the row's state on each feature the subtree or
the path above it splits on (the bands that decide those splits alike are one state), as long
as its table stays within GROUP_BYTES; a leaf alone always qualifies. A row's contributions
are then the sum of one table row per subtree: its row number is the sum over features of a
lookup by the row's band, and the sum runs subtree by subtree over a chunk of rows (one gather
and add each, while the subtree's table is in cache). The results equal LightGBM's
`pred_contrib=True` up to rounding (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_PATH_FEATURES = 16  # 2^16 table rows for one leaf at most
MAX_TABLE_BYTES = 512 << 20
GROUP_BYTES = 1 << 19  # a subtree shares one table up to this size (half a core's L2)
FEW_CELLS = 1 << 14  # rows x subtrees up to which one gather beats a loop over subtrees
CHUNK_CELLS = 1 << 21  # rows per chunk x subtrees: bounds the working memory (~25 MB)
BATCH_CELLS = 1 << 22  # table rows x leaves per sparse product in the build (~100 MB)
ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (zero-as-missing)
MISSING = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True)
class Bands:
    """How one feature's values fall into bands that decide all of its splits: numeric by
    its distinct thresholds (times a block for zero and one for NaN when some split reads
    them as missing), categorical by code (`outside`: any code no split names)."""

    feature: int
    thresholds: np.ndarray
    zero: bool
    nan: bool
    outside: int  # -1 for a numeric feature

    @property
    def count(self) -> int:
        if self.outside >= 0:
            return self.outside + 1
        return (len(self.thresholds) + 1) * (1 + self.zero + self.nan)

    def of(self, x: np.ndarray) -> np.ndarray:
        """Each value's band."""
        if self.outside >= 0:  # NaN, negative, unseen: the last band
            valid = (x > -1.0) & (x < float(self.outside))
            return np.where(valid, x, self.outside).astype(np.intp)
        nan = np.isnan(x)
        x0 = np.where(nan, 0.0, x)
        band = np.searchsorted(self.thresholds, x0, "left")
        width = len(self.thresholds) + 1
        if self.zero:
            band += width * (np.abs(x0) <= ZERO)
        if self.nan:
            band[nan] = band[nan] % width + width * (1 + self.zero)
        return band

    def goes_left(self, split: dict) -> np.ndarray:
        """Per band, whether a row there goes left at `split`, as LightGBM decides."""
        if self.outside >= 0:
            left = np.zeros(self.count, dtype=bool)
            left[[int(c) for c in str(split["threshold"]).split("||")]] = True
            return left
        width = len(self.thresholds) + 1
        band = np.arange(self.count)
        block, position = band // width, band % width
        at = np.searchsorted(self.thresholds, float(split["threshold"]), "left")
        left = position <= at
        missing = MISSING[split.get("missing_type", "None")]
        if missing == 1:
            absent = block >= 1
        elif missing == 2:
            absent = block == 1 + self.zero
        else:
            return left
        return np.where(absent, bool(split.get("default_left", False)), left)


@dataclass(frozen=True)
class LeafTables:
    """Everything TreeSHAP needs of a model, precomputed: the bands per feature, per feature
    and band each subtree's step in its table (subtrees grouped by class), the tables and the
    base value per class."""

    features: int
    classes: int
    bands: tuple[Bands, ...]
    steps: tuple[np.ndarray, ...]  # per entry of `bands`: (bands, subtrees) int32
    offset: np.ndarray
    class_start: np.ndarray  # subtrees of class c: class_start[c] to class_start[c + 1]
    table: np.ndarray
    base: np.ndarray

    def contributions(self, X: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(contributions (n, classes, features), base (n, classes)), as `pred_contrib`; row
        chunks on `threads` threads (numpy and scipy release the GIL in the heavy steps)."""
        n = len(X)
        out = np.empty((n, self.classes, self.features))
        step = max(1, CHUNK_CELLS // max(len(self.offset), 1))
        if threads > 1:  # a multiple of `threads` chunks of about the same size
            chunks = -(-max(-(-n // step), 1) // threads) * threads
            step = max(1, -(-n // chunks))
        starts = range(0, n, step)

        def fill(start: int) -> None:
            rows = np.asarray(X[start : start + step], dtype=np.float64)
            out[start : start + step] = self._chunk(rows)

        run_each(fill, starts, threads)
        return out, np.broadcast_to(self.base, (n, self.classes)).copy()

    def table_rows(self, X: np.ndarray) -> np.ndarray:
        """(rows, subtrees): the table row each subtree gives each row."""
        index = np.empty((len(X), len(self.offset)), dtype=np.int32)
        index[:] = self.offset
        gathered = np.empty_like(index)
        for bands, steps in zip(self.bands, self.steps, strict=True):
            np.take(steps, bands.of(X[:, bands.feature]), axis=0, out=gathered)
            index += gathered
        return index

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        index = self.table_rows(X)
        out = np.zeros((len(X), self.classes, self.features))
        if index.size <= FEW_CELLS:  # a few rows (the service): one gather, summed in order
            for c in range(self.classes):
                start, stop = self.class_start[c], self.class_start[c + 1]
                out[:, c, :] = self.table[index[:, start:stop]].sum(axis=1)
            return out
        gathered = np.empty((len(X), self.features))
        by_subtree = index.T.astype(np.intp)
        for c in range(self.classes):
            total = out[:, c, :]
            for rows in by_subtree[self.class_start[c] : self.class_start[c + 1]]:
                np.take(self.table, rows, axis=0, out=gathered)
                total += gathered
        return out


@dataclass(frozen=True)
class _Group:
    """A subtree whose leaves share one table: its class, per feature it or the path above
    splits on the state of each band (`state`) and per state whether the row meets the path
    above and goes left at each of the subtree's splits on the feature (`met`, `left`), and
    its leaves with their conditions (split position, side, feature)."""

    c: int
    state: dict[int, np.ndarray]
    met: dict[int, np.ndarray]
    left: dict[int, np.ndarray]  # (splits on the feature, states), rows by `position`
    position: dict[int, int]  # the subtree's split number -> its row in left[feature]
    leaves: list[tuple[int, list[tuple[int, bool, int]]]]

    @property
    def rows(self) -> int:
        return math.prod(len(m) for m in self.met.values())


class _Model:
    """Accumulates leaves and groups while walking the trees."""

    def __init__(self, bands: dict[int, Bands], classes: int, features: int):
        self.bands = bands
        self.group_rows = max(1, GROUP_BYTES // (8 * features))
        self.left: dict[int, np.ndarray] = {}
        self.leaves: list[tuple[int, float, list[int], list[float]]] = []  # class, v, u, z
        self.groups: list[_Group] = []
        self.base = np.zeros(classes)

    def goes_left(self, split: dict) -> np.ndarray:
        key = id(split)
        if key not in self.left:
            self.left[key] = self.bands[split["split_feature"]].goes_left(split)
        return self.left[key]

    def states(self, root: dict, above: list[tuple[dict, bool]], c: int) -> _Group:
        """The group the subtree at `root` would make, without its leaves."""
        splits: list[dict] = []

        def collect(node: dict) -> None:
            if "split_feature" in node:
                splits.append(node)
                collect(node["left_child"])
                collect(node["right_child"])

        collect(root)
        scope = sorted(
            {s["split_feature"] for s, _ in above} | {s["split_feature"] for s in splits}
        )
        state, met, left, position = {}, {}, {}, {}
        for f in scope:
            count = self.bands[f].count
            meets = np.ones(count, dtype=bool)
            for split, want_left in above:
                if split["split_feature"] == f:
                    meets &= self.goes_left(split) == want_left
            own = [i for i, s in enumerate(splits) if s["split_feature"] == f]
            rows = np.stack([meets] + [self.goes_left(splits[i]) & meets for i in own])
            keys = np.ascontiguousarray(rows.T).view(np.dtype((np.void, len(rows))))[:, 0]
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            state[f] = inverse.astype(np.int32).ravel()
            met[f] = meets[first]
            left[f] = rows[1:, first]
            position.update({i: j for j, i in enumerate(own)})
        return _Group(c, state, met, left, position, [])

    def group(self, root: dict, group: _Group, total: float, unique, fractions) -> None:
        """Record the subtree's leaves with their path conditions and its group."""
        c = group.c
        numbers: list[int] = []

        def walk(node: dict, u: list, z: list, conditions: list) -> None:
            if "split_feature" not in node:
                value = node.get("leaf_value", 0.0)
                value = 0.0 if value is None or math.isnan(value) else float(value)
                self.base[c] += _count(node) / total * value if total else 0.0
                group.leaves.append((len(self.leaves), conditions))
                self.leaves.append((c, value, u, z))
                return
            position = len(numbers)
            numbers.append(position)
            f = node["split_feature"]
            count = _count(node)
            for side in ("left_child", "right_child"):
                child = node[side]
                cu, cz = _extend(u, z, f, _count(child) / count if count else 0.0)
                walk(child, cu, cz, [*conditions, (position, side == "left_child", f)])

        walk(root, unique, fractions, [])
        self.groups.append(group)

    def split_tree(self, node: dict, above: list, c: int, total: float, u: list, z: list):
        """Make the subtree at `node` one group if its table fits, else split it further."""
        group = self.states(node, above, c)
        if "split_feature" not in node or group.rows <= self.group_rows:
            self.group(node, group, total, u, z)
            return
        f = node["split_feature"]
        count = _count(node)
        for side in ("left_child", "right_child"):
            child = node[side]
            cu, cz = _extend(u, z, f, _count(child) / count if count else 0.0)
            self.split_tree(child, [*above, (node, side == "left_child")], c, total, cu, cz)


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


def _bands(trees: list[dict]) -> dict[int, Bands] | None:
    """Each split feature's bands from every split on it; None if a feature has both numeric
    and category splits."""
    numeric: dict[int, set[float]] = {}
    codes: dict[int, int] = {}
    zero: set[int] = set()
    nan: set[int] = set()
    stack = [tree["tree_structure"] for tree in trees]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        f = node["split_feature"]
        if node["decision_type"] == "==":
            top = max(int(c) for c in str(node["threshold"]).split("||"))
            codes[f] = max(codes.get(f, 0), top + 1)
        else:
            numeric.setdefault(f, set()).add(float(node["threshold"]))
            missing = MISSING[node.get("missing_type", "None")]
            if missing == 1:
                zero.add(f)
            elif missing == 2:
                nan.add(f)
        stack += [node["left_child"], node["right_child"]]
    if set(numeric) & set(codes):
        return None
    out = {f: Bands(f, np.empty(0), False, False, top) for f, top in codes.items()}
    for f, values in numeric.items():
        out[f] = Bands(f, np.array(sorted(values)), f in zero, f in nan, -1)
    return out


def run_each(work, items, threads: int) -> None:
    """Call `work` on every item, on `threads` threads when there is more than one item (the
    numpy and scipy kernels it runs release the interpreter's lock)."""
    if threads > 1 and len(items) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, items))
    else:
        for item in items:
            work(item)


def build_tables(
    trees: list[dict], features: int, classes: int, threads: int = 1
) -> LeafTables | None:
    bands = _bands(trees)
    if bands is None:
        return None
    model = _Model(bands, classes, features)
    for i, tree in enumerate(trees):
        top = tree["tree_structure"]
        c = i % classes
        if "split_feature" not in top:
            model.base[c] += top.get("leaf_value", 0.0)
            continue
        model.split_tree(top, [], c, _count(top), [], [])
    if any(len(u) > MAX_PATH_FEATURES for *_, u, _ in model.leaves):
        return None
    groups = sorted(model.groups, key=lambda g: g.c)  # stable: each class's subtrees together
    sizes = np.array([g.rows for g in groups], dtype=np.int64)
    leaf_sizes = np.array([2 ** len(u) for _, _, u, _ in model.leaves], dtype=np.int64)
    if max(sizes.sum(), leaf_sizes.sum()) * features * 8 > MAX_TABLE_BYTES:
        return None
    offset = (np.cumsum(sizes) - sizes).astype(np.int32)
    used = sorted(bands)
    steps = []
    for f in used:
        step = np.zeros((bands[f].count, len(groups)), dtype=np.int32)
        for g, group in enumerate(groups):
            stride = 1
            for h, state in group.state.items():
                if h == f:
                    step[:, g] = state * stride
                stride *= len(group.met[h])
        steps.append(step)
    leaf_offset = np.cumsum(leaf_sizes) - leaf_sizes
    leaf_table = _tables(model.leaves, leaf_offset, int(leaf_sizes.sum()), features)
    return LeafTables(
        features,
        classes,
        tuple(bands[f] for f in used),
        tuple(steps),
        offset,
        np.searchsorted([g.c for g in groups], np.arange(classes + 1)).astype(np.int64),
        _group_tables(
            groups, model.leaves, leaf_table, leaf_offset, offset, int(sizes.sum()), threads
        ),
        model.base,
    )


def _group_tables(
    groups: list[_Group],
    leaves: list,
    leaf_table: np.ndarray,
    leaf_offset: np.ndarray,
    offset: np.ndarray,
    rows: int,
    threads: int = 1,
) -> np.ndarray:
    """Each group's table: the row for a tuple of states (mixed radix, the first feature
    fastest) holds the sum over the group's leaves of the leaf's table row for the mask of
    path features whose conditions (above the subtree and in it) the states meet. The sums
    run as sparse products over batches of groups (about BATCH_CELLS leaf rows each), on
    `threads` threads."""
    from scipy import sparse

    table = np.empty((rows, leaf_table.shape[1]))
    batches: list[tuple[int, list[_Group]]] = []
    cells = 0
    for g, start in zip(groups, offset.tolist(), strict=True):
        if not batches or cells + g.rows * len(g.leaves) > BATCH_CELLS:
            batches.append((start, []))
            cells = 0
        batches[-1][1].append(g)
        cells += g.rows * len(g.leaves)

    def fill(batch: tuple[int, list[_Group]]) -> None:
        start, members = batch
        hits = np.concatenate([_hits(g, leaves, leaf_offset) for g in members])
        per_row = np.repeat([len(g.leaves) for g in members], [g.rows for g in members])
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        product = sparse.csr_matrix(
            (np.ones(len(hits)), hits, indptr), shape=(len(per_row), len(leaf_table))
        )
        table[start : start + len(per_row)] = product @ leaf_table

    run_each(fill, batches, threads)
    return table


def _hits(g: _Group, leaves: list, leaf_offset: np.ndarray) -> np.ndarray:
    """Per row of the group's table (its tuple of states), each leaf's table row, flattened
    row by row: the leaf's offset plus its mask, a bit per path feature whose conditions
    the row's state of that feature meets (`met` above, the leaf's sides of the subtree's
    splits in it), summed feature by feature over the mixed-radix grid of states."""
    count = len(g.leaves)
    numbers = [number for number, _ in g.leaves]
    hits = leaf_offset[numbers].reshape((count,) + (1,) * len(g.met))
    sides = {f: np.full((count, len(g.left[f])), -1, dtype=np.int8) for f in g.met}
    for i, (_, conditions) in enumerate(g.leaves):
        for position, want_left, f in conditions:
            sides[f][i, g.position[position]] = want_left
    bit = {f: np.full(count, -1, dtype=np.int64) for f in g.met}
    for i, number in enumerate(numbers):
        for j, f in enumerate(leaves[number][2]):
            bit[f][i] = j
    axes = len(g.met)
    for axis, (f, met) in enumerate(g.met.items()):
        side = sides[f][:, :, None]
        meets = ((side < 0) | (g.left[f][None, :, :] == side.astype(bool))).all(axis=1)
        bits = (meets & met[None, :]).astype(np.int64) << np.maximum(bit[f], 0)[:, None]
        bits[bit[f] < 0] = 0
        shape = [count] + [1] * axes
        shape[axes - axis] = len(met)  # the first feature varies fastest: the last axis
        hits = hits + bits.reshape(shape)
    return np.ascontiguousarray(hits.reshape(count, -1).T).ravel()


def _tables(leaves: list, offset: np.ndarray, rows: int, features: int) -> np.ndarray:
    """Each leaf's contributions for every mask of its path features, as table rows over all
    features; leaves with the same number of path features are computed together. For
    feature j the product over the other features i of (o_i t + z_i) is built for every mask
    of theirs by doubling: one feature at a time, the masks without it (times z_i) and with
    it (times z_i, plus the product shifted by one power)."""
    table = np.zeros((rows, features))
    by_depth: dict[int, list[int]] = {}
    for i, (_, _, u, _) in enumerate(leaves):
        by_depth.setdefault(len(u), []).append(i)
    for d, members in by_depth.items():
        value = np.array([leaves[i][1] for i in members])
        unique = np.array([leaves[i][2] for i in members], dtype=np.int64)
        zero = np.array([leaves[i][3] for i in members])
        masks = np.arange(2**d)
        weight = np.array(
            [math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)]
        )
        rows_at = offset[members][:, None] + masks[None, :]
        for j in range(d):
            poly = np.ones((len(members), 1, 1))  # (leaf, mask of the others so far, power)
            for i in range(d):
                if i == j:
                    continue
                scaled = poly * zero[:, i, None, None]
                off = np.concatenate([scaled, np.zeros_like(scaled[:, :, :1])], axis=2)
                on = off.copy()
                on[:, :, 1:] += poly
                poly = np.concatenate([off, on], axis=1)  # feature i: the next mask bit
            share = poly @ weight  # (leaf, mask of the others)
            others = (masks & ((1 << j) - 1)) | ((masks >> (j + 1)) << j)
            one = (masks >> j) & 1
            table[rows_at, unique[:, j, None]] = (
                value[:, None] * (one[None, :] - zero[:, j, None]) * share[:, others]
            )
    return table
