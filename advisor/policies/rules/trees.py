"""Rule lists read off small cost-aware trees: other starting points for the same search."""

from __future__ import annotations

import numpy as np

from advisor.policies.rules.search import Candidate, RuleSearch


class TreeRules:
    """A small tree whose splits are `condition` vs `else`, flattened into a decision list.

    Grown best first up to `max_rules + 1` leaves, with at most `max_conditions` conditions
    on any path (the `else` branch adds none). Each leaf on a path becomes a rule, the last
    leaf is the default. `criterion` "gini" splits by class purity, "cost" by the children's
    realised cost; every leaf decides by minimum cost.
    """

    def __init__(self, search: RuleSearch, criterion: str) -> None:
        self.search = search
        self.criterion = criterion

    def _score(self, sums: np.ndarray, by_class: np.ndarray | None, counts) -> np.ndarray:
        if self.criterion == "cost":
            return -sums.min(axis=-1)
        return (by_class**2).sum(axis=-1) / np.maximum(counts, 1)

    def _split(self, idx: np.ndarray, n_conditions: int) -> tuple | None:
        s = self.search
        if n_conditions >= s.max_conditions or len(idx) < 2 * s.min_count:
            return None
        hists = s.histograms(idx, classes=self.criterion == "gini")
        totals, _, total_classes = hists[0][0].sum(axis=0), None, hists[0][2]
        total_classes = None if total_classes is None else total_classes.sum(axis=0)
        parent = float(self._score(totals, total_classes, len(idx)))
        tol = 1e-9 * max(abs(parent), float(np.abs(totals).max()), 1e-12)
        base = int(np.argmin(totals))
        best = None
        for j, (hist, counts, by_class) in enumerate(hists):
            cands, masks = s.candidates(j, hist, base)
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

    def rules(self, max_rules: int) -> list[tuple[tuple[Candidate, ...], int]]:
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
            inside = s.cover(cand, node[1])
            keep = np.ones(s.n, dtype=bool)
            keep[inside] = False
            outside = node[1][keep[node[1]]]
            path = (*node[0], cand)
            yes = [path, inside, self._split(inside, len(path)), None]
            no = [node[0], outside, self._split(outside, len(node[0])), None]
            node[2], node[3] = None, (yes, no)
            leaves = [x for x in leaves if x is not node] + [yes, no]
        flat: list[tuple[tuple[Candidate, ...], int]] = []

        def walk(node: list) -> None:
            if node[3] is None:
                flat.append((node[0], s.costs.cheapest(node[1])))
                return
            walk(node[3][0])
            walk(node[3][1])

        walk(root)
        default = flat.pop()[1]
        while flat and flat[-1][1] == default:
            flat.pop()
        return flat[:max_rules]
