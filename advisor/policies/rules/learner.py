"""A cost-aware rule-list learner, and its scikit-learn face `RuleListClassifier`.

The learner minimises the realised cost of a decision list:

1. Features are binned once: numbers into at most 32 quantile bins plus a missing bin,
   categories into their most frequent levels plus "other" plus missing (uint8 codes).
2. Candidate lists are grown (SOURCES): by sequential covering, each rule a conjunction of
   at most `max_conditions` conditions grown by a small beam search, and by flattening small
   trees split by class purity or by cost; each also with at most two conditions a rule.
   Every candidate condition of every feature is scored at once from per-bin cost sums
   (`np.bincount` over bin codes).
3. The list and its length (a prefix, with the default decision re-chosen on the rows it
   leaves undecided) are chosen by their cost on held-out rows: the caller's validation
   rows, or else cross-validation on the training rows, after which the chosen kind of list
   is grown on every row and cut to the chosen length. A list with rules must beat the
   constant decision by more than noise.
4. The kept list is tidied for reading: conditions dropped, thresholds rounded and bounds
   shared where that costs nothing measurable on the training rows, rules grouped by decision
   where no decision can change.

Costs may be per class (a matrix) or per row (example-dependent), with any number of classes
and decisions.

Step 1 lives in `binning`, step 2 in `search` and `trees`, step 3 in `selection`, step 4 in
`readable`; this module joins them into `learn_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from advisor.policies.rules.binning import BinnedFeature, bin_frame
from advisor.policies.rules.conditions import Rule, RuleList
from advisor.policies.rules.readable import Tidier, condition, merge_bounds, nice_threshold
from advisor.policies.rules.search import DecisionCosts, Found, RuleSearch, match_bins
from advisor.policies.rules.selection import Heldout, choose_prefix, stratified_folds
from advisor.policies.rules.trees import TreeRules

__all__ = ["LearnedRules", "RuleListClassifier", "learn_rules", "nice_threshold"]

# Candidate lists, chosen among by held-out cost: measured on benchmarks/rules_quality.py,
# the shallower lists ("/2") help on several data sets, an "sse" tree on none.
SOURCES = ("search", "gini", "cost", "search/2", "cost/2")
MIN_CV_ROWS = 50  # fewer rows than this: the training cost picks the length
CV_ROWS = 1_000_000  # large data get fewer folds (at least 2): about this many rows / fold count
TIDY_ROWS = 200_000  # tidying checks its changes on a sample of at most this many rows


def class_frequencies(
    outcome: np.ndarray, y: np.ndarray, n_outcomes: int, n_classes: int
) -> np.ndarray:
    """Class frequencies of the rows of each outcome (rows: rules, then the default).

    `outcome` is the rule (or `n_outcomes - 1`, the default) deciding each row, `y` its class
    code; an outcome that decides no row gets the overall class frequencies.
    """
    counts = np.bincount(outcome * n_classes + y, minlength=n_outcomes * n_classes)
    counts = counts.reshape(n_outcomes, n_classes).astype(float)
    overall = np.bincount(y, minlength=n_classes) / max(len(y), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.maximum(totals, 1.0), overall)


@dataclass
class LearnedRules:
    """A learned rule list with its training class frequencies and the prefix costs."""

    rules: RuleList
    proba: np.ndarray
    train_costs: list[float]
    valid_costs: list[float] | None
    all_rules: RuleList
    source: str = "search"
    length: int = 0  # the prefix length chosen (before tidying, which may merge rules)


def candidate_lists(search: RuleSearch, max_rules: int, sources: Sequence[str]) -> dict:
    """Source -> rule list (bin sets, pruned) grown by the beam search or a kind of tree.

    A source is "search" or a tree criterion ("gini", "cost"), optionally with "/d": at most d conditions
    a rule (sources allowing no fewer conditions than the search's own are skipped).
    """
    out = {}
    for source in sources:
        kind, _, depth = source.partition("/")
        s = search
        if depth:
            if int(depth) >= search.max_conditions:
                continue
            s = search.shallower(int(depth))
        if kind == "search":
            found = s.run(max_rules)
        elif s.max_conditions > 0 and max_rules > 0:
            found = TreeRules(s, kind).rules(max_rules)
        else:
            found = []
        out[source] = search.prune(found)
    return out


def _rule_list(
    found: Found, features: list[BinnedFeature], decisions: Sequence[str], name: str = "rules"
) -> RuleList:
    """Found rules (bin sets) as a RuleList of readable conditions, with its final default."""
    rules = tuple(
        Rule(merge_bounds([condition(features[c.feature], c) for c in conds]), decisions[d])
        for conds, d in found
    )
    return RuleList(rules, decisions[0], name)


def _cross_validated(
    features: list[BinnedFeature],
    costs: DecisionCosts,
    folds: np.ndarray,
    settings: tuple,
    max_rules: int,
    sources: Sequence[str],
) -> dict[str, list[Heldout]]:
    """Per source, each fold's rows scored by the list learned on the other folds."""
    out: dict[str, list[Heldout]] = {s: [] for s in sources}
    for k in range(int(folds.max()) + 1):
        inside, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        sub = RuleSearch([f.take(inside) for f in features], costs.take(inside), *settings)
        for source, found in candidate_lists(sub, max_rules, sources).items():
            _, defaults = sub.index(found)
            codes = np.array([d for _, d in found], dtype=np.int64)
            out[source].append(Heldout(held, match_bins(found, features, held), codes, defaults))
    return {source: pieces for source, pieces in out.items() if pieces}


def fold_count(folds: int, rows: int) -> int:
    """Cross-validation folds for `rows` rows: `folds`, fewer (at least 2) on large data, where
    a held-out fold is large anyway and every fold costs a search."""
    return int(min(folds, max(2, round(CV_ROWS / max(rows, 1)))))


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
    binned: list[BinnedFeature] | None = None,
    sources: Sequence[str] | None = None,
    folds: int = 0,
    noise_se: float = 1.0,
    slack: float = 1e-2,
    length: int | None = None,
) -> LearnedRules:
    """Learn a cost-minimising decision list.

    `class_costs` is (classes x decisions) or `row_costs` is (rows x decisions): the realised
    cost of each decision for each training row. The kind of list and its length are chosen
    on held-out rows: `valid` = (frame, per-row costs of each decision) when given, else
    `folds`-fold cross-validation on the training rows (every row is held out once; the
    chosen kind of list is then grown on all of them), else the training cost. A list with
    rules must beat the constant decision by more than `noise_se` standard errors there
    (see `choose_prefix`). The kept list is then tidied (`Tidier`) while the training cost
    rises by at most `slack` of what the list saves over the constant decision. `binned`
    holds the features already binned (rows as in `frame`); `sources` limits the candidate
    lists (SOURCES) to those named. `length` given (with one source) chooses nothing: the
    list of that source is grown and cut to `length` rules, as when a procedure whose choices
    were made on held-out rows is refitted on all of them.
    """
    y = np.asarray(y, dtype=np.intp)
    costs = DecisionCosts(y, n_classes, matrix=class_costs, rows=row_costs)
    features = binned if binned is not None else bin_frame(frame, kinds, random_state)
    min_count = math.ceil(min_support * len(y)) if min_support < 1 else int(min_support)
    settings = (max_conditions, min_count, beam_width)
    wanted = SOURCES if sources is None else tuple(sources)
    max_rules = max(int(max_rules), 0)
    search = RuleSearch(features, costs, *settings)
    everything = np.arange(len(y))

    def scored(found: Found, rows: np.ndarray, index: np.ndarray | None = None) -> Heldout:
        covered_by, defaults = search.index(found)
        codes = np.array([d for _, d in found], dtype=np.int64)
        return Heldout(rows, covered_by if index is None else index, codes, defaults)

    cv = valid is None and folds >= 2 and len(y) >= MIN_CV_ROWS and length is None
    lists: dict[str, Found] = {}
    if length is not None:
        lists = candidate_lists(search, max_rules, wanted[:1])
        source, chosen, held_costs = wanted[0], int(length), None
    elif valid is not None:
        lists = candidate_lists(search, max_rules, wanted)
        each, rows = np.asarray(valid[1], dtype=float), np.arange(len(valid[1]))
        heldout = {
            s: [scored(f, rows, _rule_list(f, features, decisions).match_index(valid[0]))]
            for s, f in lists.items()
        }
    elif cv:
        each = costs.per_row()
        split = stratified_folds(y, fold_count(folds, len(y)), random_state)
        heldout = _cross_validated(features, costs, split, settings, max_rules, wanted)
    else:
        lists = candidate_lists(search, max_rules, wanted)
        each = costs.per_row()
        heldout = {s: [scored(f, everything)] for s, f in lists.items()}
    if length is None:
        source, chosen, held_costs = choose_prefix(heldout, each, max_rules, se_rule, noise_se)
    found = candidate_lists(search, max_rules, (source,))[source] if cv else lists[source]
    full = _rule_list(found, features, decisions, name)
    train = scored(found, everything)
    chosen = min(chosen, len(found))
    kept, default = list(full.rules[:chosen]), decisions[train.defaults[chosen]]
    if chosen:
        sample = everything
        if len(y) > TIDY_ROWS:
            sample = np.sort(np.random.default_rng(random_state).choice(len(y), TIDY_ROWS, False))
        tidier = Tidier(frame.iloc[sample], costs.per_row(sample), decisions)
        kept, default = tidier.tidy(kept, slack)
    final = RuleList(tuple(kept), default, name)
    per_row = costs.per_row()
    return LearnedRules(
        rules=final,
        proba=class_frequencies(final.match_index(frame), y, len(kept) + 1, n_classes),
        train_costs=[float(train.row_costs(per_row, n).sum()) for n in range(len(found) + 1)],
        valid_costs=held_costs if valid is not None or cv else None,
        all_rules=RuleList(full.rules, decisions[train.defaults[-1]], name),
        source=source,
        length=chosen,
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
    cv : int
        Folds of the cross-validation that chooses the kind of list and its length when `fit`
        is not given `X_valid` (fewer, at least 2, above 100,000 rows); the chosen list is
        then grown on every row and cut to that length.
    feature_kinds : dict or None
        Column -> "numeric", "boolean" or "categorical"; None infers each from its dtype.
    random_state : int or None
        Seeds the cross-validation folds and the quantile sample for binning.
    source, length : str or None, int or None
        Both given: no choice on held-out rows; the list of that kind (one of `SOURCES`) is
        grown and cut to `length` rules (refitting a chosen list on more rows).

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
        cv: int = 10,
        feature_kinds: Mapping[str, str] | None = None,
        random_state: int | None = None,
        source: str | None = None,
        length: int | None = None,
    ) -> None:
        self.costs = costs
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.min_support = min_support
        self.beam_width = beam_width
        self.cv = cv
        self.feature_kinds = feature_kinds
        self.random_state = random_state
        self.source = source
        self.length = length

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
            return pd.DataFrame(  # the caller's columns renamed, not copied
                {n: X.iloc[:, i] for i, n in enumerate(self.feature_columns_)},
                index=X.index,
                copy=False,
            )
        arr = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype="numeric")
        if reset:
            self.feature_columns_ = [f"x{i}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=self.feature_columns_)

    def _cost_matrix(self, classes: np.ndarray):
        from advisor.core.costs import CostMatrix

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

    def _row_costs(self, frame: pd.DataFrame, X, y: np.ndarray, given=None) -> np.ndarray:
        """Per-row cost of each decision, (rows x decisions), for class codes `y`; `given`
        (the caller's own per-row costs) is checked and used as it is."""
        if given is not None:
            given = np.asarray(given, dtype=float)
            if given.shape != (len(y), self.costs_.n_decisions):
                raise ValueError(
                    f"sample costs must have shape {(len(y), self.costs_.n_decisions)}, "
                    f"got {given.shape}"
                )
            return given
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
        if self.feature_kinds is not None:
            missing = [c for c in frame.columns if c not in self.feature_kinds]
            if missing:
                raise ValueError(f"feature_kinds gives no kind for column {missing[0]!r}")
            return {c: self.feature_kinds[c] for c in frame.columns}
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

    def fit(
        self, X, y, X_valid=None, y_valid=None, *, sample_costs=None, valid_costs=None
    ) -> RuleListClassifier:
        """Learn the rule list; `X_valid`, `y_valid` (optional) choose the number of rules.

        `sample_costs` and `valid_costs` (rows x decisions: the realised cost of every decision
        for each row) replace the costs computed from `costs`, for callers whose costs read
        columns that are not features.
        """
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
        if X_valid is not None:
            vframe = self._frame(X_valid, reset=False)
            vcodes = self._codes(column_or_1d(y_valid))
            valid = (vframe, self._row_costs(vframe, X_valid, vcodes, valid_costs))
        row_costs = (
            self._row_costs(frame, X, codes, sample_costs)
            if sample_costs is not None or self.costs_.example_dependent
            else None
        )
        kw = (
            {"row_costs": row_costs}
            if row_costs is not None
            else {"class_costs": self.costs_.tensor()[0][self.matrix_index_]}
        )
        fixed = {}
        if self.length is not None:
            if self.source not in SOURCES:
                raise ValueError(
                    f"source must be one of {SOURCES} with length, not {self.source!r}"
                )
            fixed = {"sources": (self.source,), "length": int(self.length)}
        learned = learn_rules(
            frame,
            kinds,
            codes,
            len(self.classes_),
            self.costs_.decisions,
            valid=valid,
            max_rules=int(self.max_rules),
            max_conditions=int(self.max_conditions),
            min_support=self.min_support,
            beam_width=int(self.beam_width),
            random_state=self.random_state,
            folds=int(self.cv),
            **fixed,
            **kw,
        )
        self.source_, self.length_ = learned.source, learned.length
        self.rules_ = learned.rules
        self.rule_proba_ = learned.proba
        self.decision_codes_ = learned.rules.decision_codes(self.costs_.decisions)
        return self

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
