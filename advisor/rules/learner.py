"""A cost-aware rule-list learner, and its scikit-learn face `RuleListClassifier`.

The learner minimises the realised cost of a decision list on the training rows:

1. Features are binned once: numbers into at most 32 quantile bins plus a missing bin,
   categories into their most frequent levels plus "other" plus missing (uint8 codes).
2. Rules are found one at a time (sequential covering). A rule is a conjunction of at most
   `max_conditions` conditions grown by a small beam search. Every candidate condition of
   every feature is scored at once from per-bin cost sums (`np.bincount` over bin codes,
   cumulative sums for thresholds): the gain of covering rows S with their best decision is
   `min(T) - min(S) - min(T - S)`, where T and S are the per-decision cost totals of the rows
   still undecided and of the covered rows; the rest keep the (re-chosen) default.
3. The covered rows are removed and the search repeats, up to `max_rules` rules.
4. The number of rules is the prefix with the lowest realised cost on held-out rows, with
   the default decision re-chosen on the rows the prefix leaves undecided.

Costs may be per class (a matrix) or per row (example-dependent), with any number of classes
and decisions. Numeric thresholds are written as the shortest round number that splits the
training rows the same way (`tenure < 12`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from advisor.rules.conditions import Condition, Rule, RuleList

MAX_BINS = 32
MAX_LEVELS = 30
MAX_SET = 6
TREE_CRITERIA = ("gini", "sse", "cost")
QUANTILE_SAMPLE = 200_000


@dataclass
class BinnedFeature:
    """One feature's bin codes (uint8) and how to turn a set of bins into a condition."""

    name: str
    kind: str
    codes: np.ndarray
    n_bins: int
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    levels: tuple = ()
    values: np.ndarray | None = None

    @property
    def missing_bin(self) -> int:
        return self.n_bins - 1

    @property
    def n_values(self) -> int:
        """Bins that hold known values (numeric: value bins; categorical: levels + other)."""
        return self.n_bins - 1


def bin_numeric(name: str, values: np.ndarray, rng: np.random.Generator) -> BinnedFeature:
    """Quantile bins (at most MAX_BINS) of known values, then a missing bin."""
    known = values[~np.isnan(values)]
    if len(known) > QUANTILE_SAMPLE:
        known = rng.choice(known, QUANTILE_SAMPLE, replace=False)
    distinct = np.unique(known)
    if len(distinct) <= MAX_BINS:
        edges = distinct[:-1]
    else:
        qs = np.linspace(0, 1, MAX_BINS + 1)[1:-1]
        edges = np.unique(np.quantile(known, qs, method="inverted_cdf"))
        edges = edges[edges < distinct[-1]]
    codes = np.searchsorted(edges, values, side="left").astype(np.uint8)
    n_bins = len(edges) + 2
    codes[np.isnan(values)] = n_bins - 1
    return BinnedFeature(name, "numeric", codes, n_bins, edges=edges, values=values)


def bin_categorical(name: str, column: pd.Series) -> BinnedFeature:
    """The most frequent levels (compared as text), then "other", then missing."""
    raw_codes, uniques = pd.factorize(column, use_na_sentinel=True)
    raw_codes = np.asarray(raw_codes)
    text = [str(u) for u in uniques]
    counts = np.bincount(raw_codes[raw_codes >= 0], minlength=len(text))
    by_text: dict[str, int] = {}
    for t, c in zip(text, counts, strict=True):
        by_text[t] = by_text.get(t, 0) + int(c)
    ranked = sorted(by_text.items(), key=lambda kv: (-kv[1], kv[0]))
    levels = tuple(t for t, c in ranked[:MAX_LEVELS] if c > 0)
    position = {t: i for i, t in enumerate(levels)}
    other, missing = len(levels), len(levels) + 1
    lookup = np.array([position.get(t, other) for t in text] + [missing], dtype=np.uint8)
    codes = lookup[np.where(raw_codes >= 0, raw_codes, len(text))]
    return BinnedFeature(name, "categorical", codes, len(levels) + 2, levels=levels)


def bin_frame(
    frame: pd.DataFrame, kinds: Mapping[str, str], random_state: int | None = 0
) -> list[BinnedFeature]:
    """Bin every feature of `frame` (kinds: numeric, boolean or categorical)."""
    rng = np.random.default_rng(random_state)
    out = []
    for name, kind in kinds.items():
        col = frame[name]
        if kind == "categorical":
            out.append(bin_categorical(name, col))
        else:
            out.append(bin_numeric(name, _as_float(col), rng))
    return out


def _as_float(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(col.astype(object), errors="coerce").to_numpy(dtype=float)


def nice_threshold(low: float, high: float) -> float:
    """The roundest number t with low < t <= high (so `x < t` splits as `x <= low`)."""
    if not math.isfinite(high) or high <= low:
        return float(high)
    for digits in range(-15, 18):
        if digits < 0:
            step = 10 ** (-digits)
            t = float((math.floor(low / step) + 1) * step)
        else:
            step = 10.0**-digits
            t = float(f"{(math.floor(low / step) + 1) * step:.{digits}f}")
        if low < t <= high:
            return t
    return float(high)


@dataclass(frozen=True)
class _Cand:
    """A candidate condition: a feature and the set of its bins the condition covers."""

    feature: int
    op: str
    arg: tuple
    bins: tuple


class _Costs:
    """Per-row costs of each decision: from a (classes x decisions) matrix or per row."""

    def __init__(self, y: np.ndarray, n_classes: int, matrix=None, rows=None) -> None:
        self.y = np.asarray(y, dtype=np.intp)
        self.k = n_classes
        self.matrix = None if matrix is None else np.asarray(matrix, dtype=float)
        self.rows = None if rows is None else np.asarray(rows, dtype=float)

    @property
    def n_decisions(self) -> int:
        return (self.matrix if self.matrix is not None else self.rows).shape[1]

    def totals(self, idx: np.ndarray | None) -> np.ndarray:
        if self.matrix is not None:
            y = self.y if idx is None else self.y[idx]
            return np.bincount(y, minlength=self.k) @ self.matrix
        c = self.rows if idx is None else self.rows[idx]
        return c.sum(axis=0)

    def per_row(self, idx: np.ndarray | None = None) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix[self.y if idx is None else self.y[idx]]
        return self.rows if idx is None else self.rows[idx]


class _Search:
    """Sequential covering with a beam search per rule, on binned features."""

    def __init__(
        self,
        features: list[BinnedFeature],
        costs: _Costs,
        max_conditions: int,
        min_count: int,
        beam_width: int,
    ) -> None:
        self.features = features
        self.costs = costs
        self.max_conditions = max_conditions
        self.min_count = max(1, min_count)
        self.beam_width = max(1, beam_width)
        self.static = [self._static_candidates(j, f) for j, f in enumerate(features)]
        self.n = len(costs.y)

    @staticmethod
    def _static_candidates(j: int, f: BinnedFeature) -> tuple[list[_Cand], np.ndarray]:
        nv, miss = f.n_values, f.missing_bin
        cands: list[_Cand] = []
        if f.kind == "numeric":
            for k in range(nv - 1):
                cands.append(_Cand(j, "<=", (k,), tuple(range(k + 1))))
                cands.append(_Cand(j, ">", (k,), tuple(range(k + 1, nv))))
        else:
            levels = len(f.levels)
            for k in range(levels):
                cands.append(_Cand(j, "==", (k,), (k,)))
                if nv > 2:
                    cands.append(_Cand(j, "!=", (k,), tuple(b for b in range(nv) if b != k)))
        cands.append(_Cand(j, "is missing", (), (miss,)))
        cands.append(_Cand(j, "is not missing", (), tuple(range(nv))))
        masks = np.zeros((len(cands), f.n_bins))
        for i, c in enumerate(cands):
            masks[i, list(c.bins)] = 1.0
        return cands, masks

    def _set_candidates(self, j: int, hist: np.ndarray, base: int) -> list[_Cand]:
        """Level sets that save cost against the current default, one per decision."""
        f = self.features[j]
        levels = len(f.levels)
        if levels < 3:
            return []
        out = []
        for d in range(hist.shape[1]):
            if d == base:
                continue
            saving = hist[:levels, base] - hist[:levels, d]
            chosen = [k for k in np.argsort(-saving, kind="stable") if saving[k] > 0]
            if len(chosen) < 2:
                continue
            rest = [k for k in range(levels) if k not in chosen]
            if len(chosen) <= MAX_SET or len(rest) > MAX_SET:
                picked = tuple(sorted(int(k) for k in chosen[:MAX_SET]))
                out.append(_Cand(j, "in", picked, picked))
            if rest and len(rest) <= MAX_SET:
                others = tuple(b for b in range(f.n_values) if b not in rest)
                out.append(_Cand(j, "not in", tuple(sorted(rest)), others))
        return out

    def _histograms(self, idx: np.ndarray | None, classes: bool = False) -> list[tuple]:
        """Per feature: cost sums (bins x decisions), row counts (bins) and, when asked,
        class counts (bins x classes), over the rows `idx` (None: every row)."""
        c = self.costs
        y = c.y if idx is None else c.y[idx]
        rows = None if c.matrix is not None else c.per_row(idx)
        out = []
        for f in self.features:
            codes = f.codes if idx is None else f.codes[idx]
            by_class = None
            if c.matrix is not None or classes:
                key = codes.astype(np.intp)
                key *= c.k
                key += y
                by_class = np.bincount(key, minlength=f.n_bins * c.k).reshape(f.n_bins, c.k)
            if c.matrix is not None:
                out.append((by_class @ c.matrix, by_class.sum(axis=1), by_class))
                continue
            hist = np.column_stack(
                [
                    np.bincount(codes, weights=rows[:, d], minlength=f.n_bins)
                    for d in range(rows.shape[1])
                ]
            )
            counts = (
                by_class.sum(axis=1)
                if by_class is not None
                else np.bincount(codes, minlength=f.n_bins)
            )
            out.append((hist, counts, by_class))
        return out

    def _cover(self, cand: _Cand, idx: np.ndarray) -> np.ndarray:
        f = self.features[cand.feature]
        inside = np.zeros(f.n_bins, dtype=bool)
        inside[list(cand.bins)] = True
        return idx[inside[f.codes[idx]]]

    def best_rule(
        self, alive: np.ndarray
    ) -> tuple[tuple[_Cand, ...], np.ndarray, int, float] | None:
        """The conjunction with the highest saving on the undecided rows, or None.

        The saving of covering rows S with decision d is `cost(S, default) - cost(S, d)`.
        The beam keeps the children that are purer than their parent (a FOIL-like score:
        the gain in per-row advantage of some other decision over the default, times the
        rows covered), so a rule can grow through conditions that save nothing on their own.
        """
        all_idx = np.flatnonzero(alive)
        whole = len(all_idx) == self.n
        totals = self.costs.totals(None if whole else all_idx)
        base = int(np.argmin(totals))
        tol = 1e-9 * max(float(np.abs(totals).max()), 1e-12)
        best: tuple | None = None
        root = ((), None if whole else all_idx, totals, len(all_idx))
        beam: list[tuple] = [root]
        seen: set = set()
        for _depth in range(self.max_conditions):
            scored: list[tuple[float, float, tuple[_Cand, ...], np.ndarray | None, int]] = []
            for conds, idx, parent_sums, n_state in beam:
                used = {(c.feature, c.op, c.arg) for c in conds}
                rate = (parent_sums[base] - parent_sums) / max(n_state, 1)
                for j, (hist, counts, _) in enumerate(self._histograms(idx)):
                    cands, masks = self._candidates(j, hist, base)
                    sums = masks @ hist
                    n_cov = masks @ counts
                    advantage = sums[:, [base]] - sums
                    gain = advantage.max(axis=1)
                    purity = advantage - n_cov[:, None] * rate[None, :]
                    purity[:, base] = -np.inf
                    score = purity.max(axis=1)
                    ok = (
                        (n_cov >= self.min_count)
                        & (n_cov < n_state)
                        & ((gain > tol) | (score > tol))
                    )
                    for i in np.flatnonzero(ok):
                        c = cands[i]
                        if (c.feature, c.op, c.arg) not in used:
                            scored.append(
                                (float(gain[i]), float(score[i]), (*conds, c), idx, i, sums[i])
                            )
            if not scored:
                break
            for gain, _score, conds, parent_idx, _i, sums in scored:
                if gain > tol and (best is None or gain > best[3] + tol):
                    best = (conds, parent_idx, int(np.argmin(sums)), gain)
            if _depth + 1 == self.max_conditions:
                break
            scored.sort(key=lambda t: -t[1])
            beam = []
            for _gain, score, conds, parent_idx, _i, sums in scored:
                if score <= tol:
                    break
                key = frozenset(conds)
                if key in seen:
                    continue
                seen.add(key)
                idx = self._cover(conds[-1], all_idx if parent_idx is None else parent_idx)
                beam.append((conds, idx, sums, len(idx)))
                if len(beam) >= self.beam_width:
                    break
            if not beam:
                break
        if best is None:
            return None
        conds, parent_idx, decision, gain = best
        idx = self._cover(conds[-1], all_idx if parent_idx is None else parent_idx)
        return conds, idx, decision, gain

    def _candidates(self, j: int, hist: np.ndarray, base: int) -> tuple[list[_Cand], np.ndarray]:
        cands, masks = self.static[j]
        if self.features[j].kind != "categorical":
            return cands, masks
        extra = self._set_candidates(j, hist, base)
        if not extra:
            return cands, masks
        em = np.zeros((len(extra), hist.shape[0]))
        for i, c in enumerate(extra):
            em[i, list(c.bins)] = 1.0
        return cands + extra, np.vstack([masks, em])

    def index(self, found: list[tuple[tuple[_Cand, ...], int]]) -> tuple[np.ndarray, list[int]]:
        """For a list of rules: the rule deciding each training row, and each prefix's default."""
        covered_by = np.full(self.n, len(found), dtype=np.int64)
        alive = np.ones(self.n, dtype=bool)
        defaults = [int(np.argmin(self.costs.totals(None)))]
        for r, (conds, decision) in enumerate(found):
            idx = np.flatnonzero(alive)
            for c in conds:
                idx = self._cover(c, idx)
            covered_by[idx] = r
            alive[idx] = False
            rest = np.flatnonzero(alive)
            defaults.append(int(np.argmin(self.costs.totals(rest))) if len(rest) else decision)
        return covered_by, defaults

    def _mask(self, conds: tuple[_Cand, ...]) -> np.ndarray:
        out = np.ones(self.n, dtype=bool)
        for c in conds:
            f = self.features[c.feature]
            inside = np.zeros(f.n_bins, dtype=bool)
            inside[list(c.bins)] = True
            out &= inside[f.codes]
        return out

    def _decisions(self, masks: list[np.ndarray], codes: list[int]) -> np.ndarray:
        out = np.full(self.n, -1, dtype=np.int64)
        for m, d in zip(masks, codes, strict=True):
            out[(out < 0) & m] = d
        rest = out < 0
        if rest.any():
            out[rest] = int(np.argmin(self.costs.totals(np.flatnonzero(rest))))
        return out

    def prune(
        self, found: list[tuple[tuple[_Cand, ...], int]]
    ) -> list[tuple[tuple[_Cand, ...], int]]:
        """Drop rules whose removal leaves every training decision unchanged."""
        found = list(found)
        masks = [self._mask(conds) for conds, _ in found]
        target = self._decisions(masks, [d for _, d in found])
        changed = True
        while changed and found:
            changed = False
            for r in range(len(found) - 1, -1, -1):
                trial_masks = masks[:r] + masks[r + 1 :]
                trial = found[:r] + found[r + 1 :]
                if np.array_equal(self._decisions(trial_masks, [d for _, d in trial]), target):
                    found, masks, changed = trial, trial_masks, True
                    break
        return found

    def run(
        self, max_rules: int
    ) -> tuple[list[tuple[tuple[_Cand, ...], int]], np.ndarray, list[int]]:
        """Up to `max_rules` rules; which rule covers each row; the default after each prefix."""
        alive = np.ones(self.n, dtype=bool)
        covered_by = np.full(self.n, max_rules, dtype=np.int64)
        rules: list[tuple[tuple[_Cand, ...], int]] = []
        defaults = [int(np.argmin(self.costs.totals(None)))]
        for r in range(max_rules):
            if alive.sum() < self.min_count:
                break
            found = self.best_rule(alive)
            if found is None:
                break
            conds, idx, decision, _gain = found
            rules.append((conds, decision))
            covered_by[idx] = r
            alive[idx] = False
            rest = np.flatnonzero(alive)
            defaults.append(int(np.argmin(self.costs.totals(rest))) if len(rest) else decision)
        covered_by[covered_by == max_rules] = len(rules)
        return rules, covered_by, defaults


class _Tree:
    """A small tree whose splits are `condition` vs `else`, flattened into a decision list.

    Grown best first up to `max_rules + 1` leaves, with at most `max_conditions` conditions
    on any path (the `else` branch adds none). Each leaf on a path becomes a rule, the last
    leaf is the default. `criterion` "gini" splits by class purity, "sse" by the spread of the
    per-row cost vectors (Gini's cost-aware cousin), "cost" by the children's realised cost;
    every leaf decides by minimum cost.
    """

    def __init__(self, search: _Search, criterion: str) -> None:
        self.search = search
        self.criterion = criterion

    def _score(self, sums: np.ndarray, by_class: np.ndarray | None, counts) -> np.ndarray:
        if self.criterion == "cost":
            return -sums.min(axis=-1)
        v = by_class if self.criterion == "gini" else sums - sums.mean(axis=-1, keepdims=True)
        return (v**2).sum(axis=-1) / np.maximum(counts, 1)

    def _split(self, idx: np.ndarray, n_conditions: int) -> tuple | None:
        s = self.search
        if n_conditions >= s.max_conditions or len(idx) < 2 * s.min_count:
            return None
        hists = s._histograms(idx, classes=self.criterion == "gini")
        totals, _, total_classes = hists[0][0].sum(axis=0), None, hists[0][2]
        total_classes = None if total_classes is None else total_classes.sum(axis=0)
        parent = float(self._score(totals, total_classes, len(idx)))
        tol = 1e-9 * max(abs(parent), float(np.abs(totals).max()), 1e-12)
        base = int(np.argmin(totals))
        best = None
        for j, (hist, counts, by_class) in enumerate(hists):
            cands, masks = s._candidates(j, hist, base)
            sums, n_cov = masks @ hist, masks @ counts
            cls = None if by_class is None else masks @ by_class
            rest_cls = None if cls is None else total_classes - cls
            n_rest = len(idx) - n_cov
            score = (
                self._score(sums, cls, n_cov)
                + self._score(totals - sums, rest_cls, n_rest)
                - parent
            )
            score = np.where((n_cov >= s.min_count) & (n_rest >= s.min_count), score, -np.inf)
            i = int(np.argmax(score))
            if score[i] > tol and (best is None or score[i] > best[0]):
                best = (float(score[i]), cands[i])
        return best

    def rules(self, max_rules: int) -> list[tuple[tuple[_Cand, ...], int]]:
        s = self.search
        everything = np.arange(s.n)
        # a leaf: [path conditions, rows, pending split or None, children or None]
        root = [(), everything, self._split(everything, 0), None]
        leaves = [root]
        while len(leaves) < max_rules + 1:
            ready = [leaf for leaf in leaves if leaf[2] is not None]
            if not ready:
                break
            node = max(ready, key=lambda leaf: leaf[2][0])
            cand = node[2][1]
            inside = s._cover(cand, node[1])
            keep = np.ones(s.n, dtype=bool)
            keep[inside] = False
            outside = node[1][keep[node[1]]]
            path = (*node[0], cand)
            yes = [path, inside, self._split(inside, len(path)), None]
            no = [node[0], outside, self._split(outside, len(node[0])), None]
            node[2], node[3] = None, (yes, no)
            leaves = [x for x in leaves if x is not node] + [yes, no]
        flat: list[tuple[tuple[_Cand, ...], int]] = []

        def walk(node: list) -> None:
            if node[3] is None:
                flat.append((node[0], int(np.argmin(s.costs.totals(node[1])))))
                return
            walk(node[3][0])
            walk(node[3][1])

        walk(root)
        default = flat.pop()[1]
        while flat and flat[-1][1] == default:
            flat.pop()
        return flat[:max_rules]


def _condition(f: BinnedFeature, cand: _Cand) -> Condition:
    if f.kind == "numeric":
        if cand.op in ("is missing", "is not missing"):
            return Condition(f.name, cand.op)
        edge = float(f.edges[cand.arg[0]])
        values = f.values
        above = values[values > edge]
        t = nice_threshold(edge, float(above.min())) if len(above) else edge
        return Condition(f.name, "<" if cand.op == "<=" else ">=", t)
    if cand.op in ("is missing", "is not missing"):
        return Condition(f.name, cand.op)
    if cand.op in ("==", "!="):
        return Condition(f.name, cand.op, f.levels[cand.arg[0]])
    return Condition(f.name, cand.op, tuple(f.levels[k] for k in cand.arg))


def _simplify(conditions: list[Condition]) -> tuple[Condition, ...]:
    """Merge same-direction thresholds on one column (keep the tighter one)."""
    out: list[Condition] = []
    for c in conditions:
        twin = next(
            (
                i
                for i, o in enumerate(out)
                if o.column == c.column and o.op == c.op and c.op in ("<", ">=")
            ),
            None,
        )
        if twin is None:
            out.append(c)
        else:
            keep = min if c.op == "<" else max
            out[twin] = Condition(c.column, c.op, keep(out[twin].value, c.value))
    return tuple(out)


def _prefix_rows(option: dict, length: int, each: np.ndarray) -> np.ndarray:
    index = option["valid_index"]
    codes = np.full(len(index), option["defaults"][length], dtype=np.int64)
    hit = index < length
    codes[hit] = option["codes"][index[hit]]
    return each[np.arange(len(index)), codes]


def _choose(options: list[dict], each_valid: np.ndarray | None, se_rule: float) -> tuple[dict, int]:
    """The rule list and prefix length to keep.

    Without held-out rows: the lowest training cost. With them: the one-standard-error rule
    on held-out cost (as in CART pruning): among all lists and prefixes whose held-out cost is
    within `se_rule` paired standard errors of the lowest, the one with the fewest conditions.
    """
    key = "train_costs" if each_valid is None else "valid_costs"
    flat = [(o[key][n], i, n) for i, o in enumerate(options) for n in range(len(o[key]))]
    best_cost, bi, bn = min(flat)
    if each_valid is None or se_rule <= 0:
        return options[bi], bn
    best_rows = _prefix_rows(options[bi], bn, each_valid)
    rows = max(len(best_rows), 1)
    eligible = []
    for total, i, n in flat:
        diff = _prefix_rows(options[i], n, each_valid) - best_rows
        se = float(diff.std()) / math.sqrt(rows)
        if (total - best_cost) / rows <= se_rule * se + 1e-12:
            size = sum(len(r.conditions) for r in options[i]["rules"][:n])
            eligible.append((size, total, i, n))
    _, _, i, n = min(eligible)
    return options[i], n


def prefix_costs(
    index: np.ndarray, rule_codes: np.ndarray, defaults: Sequence[int], each: np.ndarray
) -> list[float]:
    """Total cost of every prefix of a rule list (0..all rules), each with its own default.

    `index` is the rule deciding each row under the full list; `each` is (rows x decisions).
    """
    rows = np.arange(len(index))
    out = []
    for length in range(len(rule_codes) + 1):
        codes = np.full(len(index), defaults[length], dtype=np.int64)
        hit = index < length
        codes[hit] = rule_codes[index[hit]]
        out.append(float(each[rows, codes].sum()))
    return out


@dataclass
class LearnedRules:
    """A learned rule list with its training class frequencies and the prefix costs."""

    rules: RuleList
    proba: np.ndarray
    train_costs: list[float]
    valid_costs: list[float] | None
    all_rules: RuleList


def learn_rules(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    y: np.ndarray,
    n_classes: int,
    decisions: Sequence[str],
    class_costs: np.ndarray | None = None,
    row_costs: np.ndarray | None = None,
    valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    max_rules: int = 8,
    max_conditions: int = 3,
    min_support: float = 0.01,
    beam_width: int = 4,
    random_state: int | None = 0,
    name: str = "rules",
    se_rule: float = 0.0,
) -> LearnedRules:
    """Learn a cost-minimising decision list.

    `class_costs` is (classes x decisions) or `row_costs` is (rows x decisions): the realised
    cost of each decision for each training row. `valid` = (frame, per-row costs of each
    decision) picks the number of rules; without it the training cost picks it.
    """
    y = np.asarray(y, dtype=np.intp)
    costs = _Costs(y, n_classes, matrix=class_costs, rows=row_costs)
    features = bin_frame(frame, kinds, random_state)
    min_count = math.ceil(min_support * len(y)) if min_support < 1 else int(min_support)
    search = _Search(features, costs, max_conditions, min_count, beam_width)
    lists = [search.run(max_rules)[0]]
    if max_conditions > 0 and max_rules > 0:
        lists += [_Tree(search, c).rules(max_rules) for c in TREE_CRITERIA]
    each = costs.per_row()
    options = []
    for found in lists:
        found = search.prune(found)
        covered_by, defaults = search.index(found)
        rules = [
            Rule(_simplify([_condition(features[c.feature], c) for c in conds]), decisions[d])
            for conds, d in found
        ]
        rule_codes = np.array([d for _, d in found], dtype=np.int64)
        option = {
            "rules": rules,
            "codes": rule_codes,
            "covered_by": covered_by,
            "defaults": defaults,
            "train_costs": prefix_costs(covered_by, rule_codes, defaults, each),
            "valid_costs": None,
        }
        if valid is not None:
            full = RuleList(tuple(rules), decisions[defaults[-1]], name)
            option["valid_index"] = full.match_index(valid[0])
            option["valid_costs"] = prefix_costs(
                option["valid_index"], rule_codes, defaults, valid[1]
            )
        options.append(option)
    chosen_option, chosen = _choose(options, None if valid is None else valid[1], se_rule)
    rules, covered_by, defaults = (chosen_option[k] for k in ("rules", "covered_by", "defaults"))
    train_costs, valid_costs = chosen_option["train_costs"], chosen_option["valid_costs"]
    final = RuleList(tuple(rules[:chosen]), decisions[defaults[chosen]], name)
    outcome = np.minimum(covered_by, chosen)
    counts = np.bincount(outcome * n_classes + y, minlength=(chosen + 1) * n_classes)
    counts = counts.reshape(chosen + 1, n_classes).astype(float)
    overall = np.bincount(y, minlength=n_classes) / max(len(y), 1)
    totals = counts.sum(axis=1, keepdims=True)
    proba = np.where(totals > 0, counts / np.maximum(totals, 1), overall)
    return LearnedRules(
        rules=final,
        proba=proba,
        train_costs=train_costs,
        valid_costs=valid_costs,
        all_rules=RuleList(tuple(rules), decisions[defaults[-1]], name),
    )


class RuleListClassifier(ClassifierMixin, BaseEstimator):
    """A cost-aware decision list as a scikit-learn classifier.

    Parameters
    ----------
    costs : CostMatrix, dict or None
        A CostMatrix (its classes matched to the labels of `y`; decisions may differ from
        classes), or for two classes `{"fp": .., "fn": .., "tp": 0, "tn": 0}` with the
        positive class `classes_[1]`; None is 0-1 loss. Example-dependent costs read their
        columns from `X`, which must then be a DataFrame.
    max_rules, max_conditions : int
        At most this many rules, each of at most this many conditions.
    min_support : float or int
        Fewest training rows a rule (and a tree leaf) may cover: a share when below 1.
    beam_width : int
        Beam width of the search for each rule.
    validation_fraction : float
        Share of the rows held out to choose the number of rules when `fit` is not given
        `X_valid`; the rules are then refitted on every row with that length.
    random_state : int or None
        Seeds the hold-out split and the quantile sample for binning.

    `X` may be a DataFrame with categorical (text or pandas category) and missing values,
    or a numeric array (columns named x0, x1, ...). Fitted: `rules_` (a RuleList),
    `classes_`, `costs_`, `rule_proba_`; `predict`, `predict_proba` (class frequencies of
    the matched rule on the training rows) and `decide` (the decisions, by label).
    """

    def __init__(
        self,
        costs=None,
        max_rules: int = 8,
        max_conditions: int = 3,
        min_support: float = 0.01,
        beam_width: int = 4,
        validation_fraction: float = 0.2,
        random_state: int | None = None,
    ) -> None:
        self.costs = costs
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.min_support = min_support
        self.beam_width = beam_width
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def _frame(self, X, reset: bool) -> pd.DataFrame:
        from sklearn.utils.validation import validate_data

        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
            if reset:
                self.feature_columns_ = [str(c) for c in X.columns]
            elif X.shape[1] != len(self.feature_columns_):
                raise ValueError(
                    f"X has {X.shape[1]} features, expected {len(self.feature_columns_)}"
                )
            return pd.DataFrame(
                {n: X.iloc[:, i] for i, n in enumerate(self.feature_columns_)}, index=X.index
            )
        arr = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype="numeric")
        if reset:
            self.feature_columns_ = [f"x{i}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=self.feature_columns_)

    def _cost_matrix(self, classes: np.ndarray):
        from advisor.costs import CostMatrix

        if self.costs is None:
            labels = [c.item() if hasattr(c, "item") else c for c in classes]
            matrix = {c: {str(d): float(c != d) for d in labels} for c in labels}
            return CostMatrix.from_mapping(matrix, [str(c) for c in labels])
        if isinstance(self.costs, CostMatrix):
            return self.costs
        if isinstance(self.costs, Mapping):
            if len(classes) != 2:
                raise ValueError(f"the fp/fn cost shortcut needs two classes, found {len(classes)}")
            neg, pos = (c.item() if hasattr(c, "item") else c for c in classes)
            return CostMatrix.binary(neg, pos, **{k: float(v) for k, v in self.costs.items()})
        raise ValueError("costs must be a CostMatrix, a dict {'fp', 'fn', 'tp', 'tn'} or None")

    def _row_costs(self, frame: pd.DataFrame, X, y: np.ndarray) -> np.ndarray:
        """Per-row cost of each decision, (rows x decisions), for class codes `y`."""
        m = self.costs_
        source = X if isinstance(X, pd.DataFrame) else frame
        missing = [c for c in m.columns if c not in source.columns]
        if missing:
            raise ValueError(f"the costs read column {missing[0]!r}; pass X as a DataFrame with it")
        t = m.tensor(source.reset_index(drop=True) if m.example_dependent else None, len(y))
        t = t[:, self.matrix_index_, :]
        rows = np.arange(len(y)) if t.shape[0] > 1 else np.zeros(len(y), dtype=int)
        return t[rows, y, :]

    def _kinds(self, frame: pd.DataFrame) -> dict[str, str]:
        kinds = {}
        for name in frame.columns:
            col = frame[name]
            numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            kinds[name] = (
                "numeric"
                if numeric and not isinstance(col.dtype, pd.CategoricalDtype)
                else "categorical"
            )
        return kinds

    def fit(self, X, y, X_valid=None, y_valid=None) -> RuleListClassifier:
        """Learn the rule list; `X_valid`, `y_valid` (optional) choose the number of rules."""
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import check_consistent_length, column_or_1d

        frame = self._frame(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(frame, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.costs_ = self._cost_matrix(self.classes_)
        index = [self.costs_.class_index(c) for c in self.classes_]
        if any(i is None for i in index):
            bad = self.classes_[[i is None for i in index]][0]
            raise ValueError(f"class {bad!r} of y is not a class of the cost matrix")
        self.matrix_index_ = np.array(index, dtype=np.intp)
        kinds = self._kinds(frame)
        self.feature_kinds_ = kinds
        valid = None
        fit_rows = np.arange(len(y))
        if X_valid is not None:
            vframe = self._frame(X_valid, reset=False)
            vcodes = self._codes(column_or_1d(y_valid))
            valid = (vframe, self._row_costs(vframe, X_valid, vcodes))
        elif len(y) >= 50 and self.validation_fraction > 0:
            fit_rows, hold = self._holdout(codes)
            valid = (frame.iloc[hold], self._row_costs(frame, X, codes)[hold])
        learned = self._learn(frame, X, codes, fit_rows, valid, self.max_rules)
        if X_valid is None and valid is not None:
            learned = self._learn(frame, X, codes, np.arange(len(y)), None, len(learned.rules), 0.0)
        self.rules_ = learned.rules
        self.rule_proba_ = learned.proba
        self.decision_codes_ = learned.rules.decision_codes(self.costs_.decisions)
        return self

    def _holdout(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(codes))
        counts = np.bincount(codes)
        stratify = codes if counts.min() >= 2 else None
        fit_rows, hold = train_test_split(
            idx,
            test_size=self.validation_fraction,
            random_state=self.random_state,
            stratify=stratify,
        )
        return np.sort(fit_rows), np.sort(hold)

    def _learn(
        self, frame, X, codes, rows, valid, max_rules: int, se_rule: float = 0.0
    ) -> LearnedRules:
        sub = frame.iloc[rows]
        kw = {}
        if self.costs_.example_dependent:
            kw["row_costs"] = self._row_costs(frame, X, codes)[rows]
        else:
            kw["class_costs"] = self.costs_.tensor()[0][self.matrix_index_]
        return learn_rules(
            sub,
            self.feature_kinds_,
            codes[rows],
            len(self.classes_),
            self.costs_.decisions,
            valid=valid,
            max_rules=int(max_rules),
            max_conditions=int(self.max_conditions),
            min_support=self.min_support,
            beam_width=int(self.beam_width),
            random_state=self.random_state,
            se_rule=se_rule,
            **kw,
        )

    def _codes(self, y: np.ndarray) -> np.ndarray:
        position = {v: i for i, v in enumerate(self.classes_.tolist())}
        try:
            return np.array([position[v] for v in np.asarray(y).tolist()], dtype=np.intp)
        except KeyError as exc:
            raise ValueError(f"y_valid holds the unknown class {exc.args[0]!r}") from None

    def _index(self, X) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "rules_")
        return self.rules_.match_index(self._frame(X, reset=False))

    def predict_proba(self, X) -> np.ndarray:
        """Class frequencies (columns: `classes_`) of the training rows of the matched rule."""
        index = self._index(X)
        return self.rule_proba_[index]

    def decide(self, X) -> np.ndarray:
        """The cost-optimal decision of the matched rule, as decision labels."""
        index = self._index(X)
        return np.array(self.rules_.outcome_labels(), dtype=object)[index]

    def predict(self, X) -> np.ndarray:
        """The class the matched rule decides when decisions are the classes; otherwise the
        most frequent class of the matched rule."""
        index = self._index(X)
        classes = [str(c) for c in self.costs_.classes]
        if list(self.costs_.decisions) == classes:
            by_decision = np.full(len(classes), -1, dtype=np.intp)
            for i, m in enumerate(self.matrix_index_):
                by_decision[m] = i
            codes = by_decision[self.decision_codes_]
            if (codes >= 0).all():
                return self.classes_[codes[index]]
        return self.classes_[np.argmax(self.rule_proba_, axis=1)[index]]
