"""Candidate conditions on binned features, scored at once, and rules grown from them.

Every candidate condition of every feature is scored from per-bin cost sums (`np.bincount`
over bin codes; a candidate is a set of bins, so its sums are a mask times the per-bin
sums). Rules are found one at a time by sequential covering, each a conjunction grown by a
small beam search; `RuleSearch.prune` drops rules that change no training decision and
`RuleSearch.index` says which rule decides each row and the default after each prefix.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from advisor.policies.rules.binning import PARALLEL_ROWS, BinnedFeature, counting_pool

MAX_SET = 6


@dataclass(frozen=True)
class Candidate:
    """A candidate condition: a feature and the set of its bins the condition covers."""

    feature: int
    op: str
    arg: tuple
    bins: tuple


Found = list[tuple[tuple[Candidate, ...], int]]  # rules as (conditions, decision code)


class DecisionCosts:
    """Per-row costs of each decision: from a (classes x decisions) matrix or per row."""

    def __init__(self, y: np.ndarray, n_classes: int, matrix=None, rows=None) -> None:
        self.y = np.asarray(y, dtype=np.intp)
        self.k = n_classes
        self.matrix = None if matrix is None else np.asarray(matrix, dtype=float)
        self.rows = None if rows is None else np.asarray(rows, dtype=float)

    def take(self, idx: np.ndarray) -> DecisionCosts:
        """The same costs on a subset of the rows."""
        rows = None if self.rows is None else self.rows[idx]
        return DecisionCosts(self.y[idx], self.k, matrix=self.matrix, rows=rows)

    @property
    def n_decisions(self) -> int:
        return (self.matrix if self.matrix is not None else self.rows).shape[1]

    def totals(self, idx: np.ndarray | None) -> np.ndarray:
        if self.matrix is not None:
            y = self.y if idx is None else self.y[idx]
            return np.bincount(y, minlength=self.k) @ self.matrix
        c = self.rows if idx is None else self.rows[idx]
        return c.sum(axis=0)

    def cheapest(self, idx: np.ndarray | None) -> int:
        """The decision with the lowest total cost on the rows `idx` (None: every row)."""
        return int(np.argmin(self.totals(idx)))

    def per_row(self, idx: np.ndarray | None = None) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix[self.y if idx is None else self.y[idx]]
        return self.rows if idx is None else self.rows[idx]


class RuleSearch:
    """Sequential covering with a beam search per rule, on binned features."""

    def __init__(
        self,
        features: list[BinnedFeature],
        costs: DecisionCosts,
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

    def shallower(self, max_conditions: int) -> RuleSearch:
        """The same search with rules of at most `max_conditions` conditions."""
        out = copy.copy(self)
        out.max_conditions = max_conditions
        return out

    @staticmethod
    def _static_candidates(j: int, f: BinnedFeature) -> tuple[list[Candidate], np.ndarray]:
        nv, miss = f.n_values, f.missing_bin
        cands: list[Candidate] = []
        if f.kind == "numeric":
            for k in range(nv - 1):
                cands.append(Candidate(j, "<=", (k,), tuple(range(k + 1))))
                cands.append(Candidate(j, ">", (k,), tuple(range(k + 1, nv))))
        else:
            levels = len(f.levels)
            for k in range(levels):
                cands.append(Candidate(j, "==", (k,), (k,)))
                if nv > 2:
                    cands.append(Candidate(j, "!=", (k,), tuple(b for b in range(nv) if b != k)))
        cands.append(Candidate(j, "is missing", (), (miss,)))
        cands.append(Candidate(j, "is not missing", (), tuple(range(nv))))
        return cands, _bin_masks(cands, f.n_bins)

    def _set_candidates(self, j: int, hist: np.ndarray, base: int) -> list[Candidate]:
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
                out.append(Candidate(j, "in", picked, picked))
            if rest and len(rest) <= MAX_SET:
                others = tuple(b for b in range(f.n_values) if b not in rest)
                out.append(Candidate(j, "not in", tuple(sorted(rest)), others))
        return out

    def histograms(self, idx: np.ndarray | None, classes: bool = False) -> list[tuple]:
        """Per feature: cost sums (bins x decisions), row counts (bins) and, when asked,
        class counts (bins x classes), over the rows `idx` (None: every row).

        Features are counted on two threads: numpy's bincount releases the GIL, and this is
        most of the learner's time on large data.
        """
        c = self.costs
        y = c.y if idx is None else c.y[idx]
        rows = None if c.matrix is not None else c.per_row(idx)

        def one(f: BinnedFeature) -> tuple:
            codes = f.codes if idx is None else f.codes[idx]
            by_class = None
            if c.matrix is not None or classes:
                key = codes.astype(np.intp)
                key *= c.k
                key += y
                by_class = np.bincount(key, minlength=f.n_bins * c.k).reshape(f.n_bins, c.k)
            if c.matrix is not None:
                return by_class @ c.matrix, by_class.sum(axis=1), by_class
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
            return hist, counts, by_class

        if len(y) < PARALLEL_ROWS:
            return [one(f) for f in self.features]
        return list(counting_pool().map(one, self.features))

    def cover(self, cand: Candidate, idx: np.ndarray) -> np.ndarray:
        f = self.features[cand.feature]
        return idx[_bin_masks([cand], f.n_bins, dtype=bool)[0][f.codes[idx]]]

    def best_rule(
        self, alive: np.ndarray
    ) -> tuple[tuple[Candidate, ...], np.ndarray, int, float] | None:
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
            scored: list[tuple[float, float, tuple[Candidate, ...], np.ndarray | None, int]] = []
            for conds, idx, parent_sums, n_state in beam:
                used = {(c.feature, c.op, c.arg) for c in conds}
                rate = (parent_sums[base] - parent_sums) / max(n_state, 1)
                for j, (hist, counts, _) in enumerate(self.histograms(idx)):
                    cands, masks = self.candidates(j, hist, base)
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
                idx = self.cover(conds[-1], all_idx if parent_idx is None else parent_idx)
                beam.append((conds, idx, sums, len(idx)))
                if len(beam) >= self.beam_width:
                    break
            if not beam:
                break
        if best is None:
            return None
        conds, parent_idx, decision, gain = best
        idx = self.cover(conds[-1], all_idx if parent_idx is None else parent_idx)
        return conds, idx, decision, gain

    def candidates(self, j: int, hist: np.ndarray, base: int) -> tuple[list[Candidate], np.ndarray]:
        cands, masks = self.static[j]
        if self.features[j].kind != "categorical":
            return cands, masks
        extra = self._set_candidates(j, hist, base)
        if not extra:
            return cands, masks
        return cands + extra, np.vstack([masks, _bin_masks(extra, hist.shape[0])])

    def index(self, found: list[tuple[tuple[Candidate, ...], int]]) -> tuple[np.ndarray, list[int]]:
        """For a list of rules: the rule deciding each training row, and each prefix's default."""
        covered_by = np.full(self.n, len(found), dtype=np.int64)
        alive = np.ones(self.n, dtype=bool)
        defaults = [self.costs.cheapest(None)]
        for r, (conds, decision) in enumerate(found):
            idx = np.flatnonzero(alive)
            for c in conds:
                idx = self.cover(c, idx)
            covered_by[idx] = r
            alive[idx] = False
            rest = np.flatnonzero(alive)
            defaults.append(self.costs.cheapest(rest) if len(rest) else decision)
        return covered_by, defaults

    def _mask(self, conds: tuple[Candidate, ...]) -> np.ndarray:
        out = np.ones(self.n, dtype=bool)
        for c in conds:
            f = self.features[c.feature]
            out &= _bin_masks([c], f.n_bins, dtype=bool)[0][f.codes]
        return out

    def _decisions(self, masks: list[np.ndarray], codes: list[int]) -> np.ndarray:
        out = np.full(self.n, -1, dtype=np.int64)
        for m, d in zip(masks, codes, strict=True):
            out[(out < 0) & m] = d
        rest = out < 0
        if rest.any():
            out[rest] = self.costs.cheapest(np.flatnonzero(rest))
        return out

    def prune(
        self, found: list[tuple[tuple[Candidate, ...], int]]
    ) -> list[tuple[tuple[Candidate, ...], int]]:
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

    def run(self, max_rules: int) -> list[tuple[tuple[Candidate, ...], int]]:
        """Up to `max_rules` rules, each found on the rows the ones before leave undecided.

        `index` gives which rule decides each row and the default after each prefix.
        """
        alive = np.ones(self.n, dtype=bool)
        rules: list[tuple[tuple[Candidate, ...], int]] = []
        for _ in range(max_rules):
            if alive.sum() < self.min_count:
                break
            found = self.best_rule(alive)
            if found is None:
                break
            conds, idx, decision, _gain = found
            rules.append((conds, decision))
            alive[idx] = False
        return rules


def match_bins(found: Found, features: list[BinnedFeature], rows: np.ndarray) -> np.ndarray:
    """The rule (first match; `len(found)` for none) deciding each of `rows`, from bin codes."""
    out = np.full(len(rows), len(found), dtype=np.int64)
    open_rows = np.ones(len(rows), dtype=bool)
    for r, (conds, _) in enumerate(found):
        hit = open_rows.copy()
        for c in conds:
            f = features[c.feature]
            hit &= _bin_masks([c], f.n_bins, dtype=bool)[0][f.codes[rows]]
        out[hit] = r
        open_rows &= ~hit
    return out


def _bin_masks(cands: list[Candidate], n_bins: int, dtype: type = float) -> np.ndarray:
    """One row per candidate over the bins of its feature: 1 (True) on the bins it covers."""
    masks = np.zeros((len(cands), n_bins), dtype=dtype)
    for i, c in enumerate(cands):
        masks[i, list(c.bins)] = 1
    return masks
