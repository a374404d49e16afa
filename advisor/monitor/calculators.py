"""The monitor's measures as objects: each is fitted once on the run's expectations
(`fit(expectations)`) and then calculates a typed result for one window of log rows, or the
whole log (`calculate(window)`); each names the template that shows its results.

The split follows NannyML's calculators (fit on the reference, calculate per chunk, a result
object per calculation) and Evidently's metric / renderer split: the results hold figures,
`advisor/report/templates/monitor/<name>.html.j2` shows them, and the alerts read the results.
A new measure is a class here with a result, a template and, if it can alert, a check in
`advisor.monitor.alerts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from advisor.artefacts.bundle import decides_by_expected_cost
from advisor.monitor import arms, arrival, estimate, family, measures
from advisor.monitor.expectations import Expectations
from advisor.stats.psi import NoiseLevels


@dataclass(frozen=True)
class Window:
    """Rows to calculate on: one time window (`index` from 0 in time order, `number` its count of
    widths since 1970) or the whole log (`index` and `number` None); `seed` seeds its bootstrap
    intervals."""

    label: str
    rows: pd.DataFrame
    index: int | None
    seed: int
    number: int | None = None


@dataclass(frozen=True)
class OperationsResult:
    """Requests, the error rate and the latency percentiles of a window."""

    requests: int
    errors: Mapping
    latency: Mapping | None

    def to_dict(self) -> dict:
        out = {"requests": self.requests, "errors": dict(self.errors)}
        return out | ({"latency": dict(self.latency)} if self.latency else {})


@dataclass(frozen=True)
class DriftResult:
    """Each logged feature's PSI, its noise level, flag and chi-square p-value."""

    features: Mapping[str, Mapping]

    def to_dict(self) -> dict:
        return {name: dict(d) for name, d in self.features.items()}


@dataclass(frozen=True)
class PolicyFigures:
    """One policy's rows in a window, and a figure (its decision mix or its cost) on them."""

    version: str
    rows: int
    figure: Mapping


@dataclass(frozen=True)
class MixResult:
    """Each logged policy's decision mix against the test split."""

    policies: Mapping[str, PolicyFigures]

    def to_dict(self) -> dict:
        return {name: dict(p.figure) for name, p in self.policies.items()}


@dataclass(frozen=True)
class CostResult:
    """Each logged policy's realised cost per decision on the rows with outcomes."""

    policies: Mapping[str, PolicyFigures]

    def to_dict(self) -> dict:
        return {name: dict(p.figure) for name, p in self.policies.items()}


@dataclass(frozen=True)
class ShadowResult:
    """Per served / shadow pair: disagreement and who was right."""

    pairs: tuple[Mapping, ...]

    def to_dict(self) -> list[dict]:
        return [dict(p) for p in self.pairs]


@dataclass(frozen=True)
class TestResult:
    """The canary or A/B test: the split and power to date, and this window's effect."""

    to_date: Mapping
    effect: Mapping | None

    __test__ = False  # a result, not a pytest class

    def to_dict(self) -> dict:
        return {**self.to_date, "effect": None if self.effect is None else dict(self.effect)}


class Measure:
    """Fitted on the expectations, then calculates a result per window from the log columns it
    reads (`COLUMNS`, and the columns the costs depend on when `COSTS`)."""

    name: str = ""
    title: str = ""
    COLUMNS: tuple[str, ...] = ()
    COSTS = False

    def reads(self) -> tuple[str, ...]:
        """The log columns `prepare` and `calculate` read."""
        return self.COLUMNS + (self.expectations_.costs.columns if self.COSTS else ())

    @property
    def template(self) -> str:
        return f"monitor/{self.name}.html.j2"

    def fit(self, expectations: Expectations) -> Measure:
        self.expectations_ = expectations
        return self

    def prepare(self, frame: pd.DataFrame, ends: Sequence[int]) -> None:
        """Once before the windows: `ends` is one past each window's last row (time order)."""

    def calculate(self, window: Window):
        raise NotImplementedError


class Operations(Measure):
    """Requests, errors and latency against the case's budget."""

    name, title = "operations", "Operations"
    COLUMNS = ("decision", "error", "latency_ms", "request_records")

    def calculate(self, window: Window) -> OperationsResult:
        out = measures.operations(window.rows, self.expectations_.budget_ms)
        return OperationsResult(out["requests"], out["errors"], out.get("latency"))


@dataclass
class Drift(Measure):
    """PSI of each logged feature against the training reference, with its test; from the bin
    counts the scan kept per window (`counts(number)`: the counts and rows, None: the log's)."""

    important: set[str] = field(default_factory=set)
    noise: NoiseLevels | None = None
    counts: Callable[[int | None], tuple[Mapping[str, np.ndarray], int]] | None = None
    name = "drift"
    title = "Input drift"

    def calculate(self, window: Window) -> DriftResult:
        run = self.expectations_
        if self.noise is None or run.reference is None or self.counts is None:
            return DriftResult({})
        counts, rows = self.counts(window.number)
        return DriftResult(
            measures.drift_from_counts(counts, rows, run.reference, self.noise, self.important)
        )


def _in_run_policies(rows: pd.DataFrame):
    """(i, (policy, the positions of its in-run rows)) in the policies' text order, as grouping
    by the policy gives them: each measure takes only the columns it reads at them."""
    in_run = rows["in_run"].to_numpy(dtype=bool)
    policy = rows["policy"]
    names = sorted(policy[in_run].dropna().unique())
    for i, name in enumerate(names):
        yield i, (name, np.flatnonzero(in_run & (policy == name).to_numpy()))


class Mix(Measure):
    """Each policy's share of each decision against the test split's."""

    name, title = "mix", "Decision mix"
    COLUMNS = ("in_run", "policy", "decision")

    def calculate(self, window: Window) -> MixResult:
        run = self.expectations_
        out = {}
        for _, (name, pos) in _in_run_policies(window.rows):
            expected = run.expected(name)
            mix = measures.decision_mix(
                window.rows["decision"].iloc[pos],
                run.costs.decisions,
                expected.get("decision_shares"),
                expected.get("rows"),
            )
            out[name] = PolicyFigures(run.bundles[name]["version"], len(pos), mix)
        return MixResult(out)


class Cost(Measure):
    """Each policy's realised cost per decision against its offline interval: per window, and
    to date as a confidence sequence (valid at every re-read) against the offline bar."""

    name, title = "cost", "Realised cost"
    COLUMNS = ("in_run", "policy", "decision", "outcome", "unit", "risk", "est_mean")
    COSTS = True

    def prepare(self, frame: pd.DataFrame, ends: Sequence[int]) -> None:
        run = self.expectations_
        decided = (frame["in_run"] & frame["decision"].notna()).to_numpy()
        outcome = frame["outcome"].to_numpy()
        known = decided & (outcome >= 0)
        names = sorted(set(frame.loc[decided, "policy"]))
        alpha = family.BUDGET["cost"] / max(len(names), 1)
        tuned = family.tuned_rows((run.case.get("decision") or {}).get("volume_per_day"))
        policy = frame["policy"]
        codes = measures.decision_codes(frame["decision"], run.costs.decisions)
        self.to_date_ = {}
        for name in names:
            pos = np.flatnonzero(known & (policy == name).to_numpy())
            values = run.costs.realised(outcome[pos], codes[pos], _taken(frame, pos, run.costs))
            expected = run.expected(name)
            offline = expected.get("cost_per_decision")
            gap = expected.get("calibration_gap")
            own = _own_expected(frame, pos) if gap else None
            # With a pair, both tests share the policy's level: the paired one sees outcomes
            # worse for the same inputs, the unpaired one a costlier mix of inputs. Each
            # sequence carries its reference's own error.
            level = alpha if own is None else alpha * (1 - family.PAIRED)
            steps = to_date(values, pos, ends, level, offline, tuned)
            if own is not None:
                paired = to_date(
                    values - own, pos, ends, alpha * family.PAIRED, gap, tuned, "paired"
                )
                steps = [
                    {
                        **s,
                        "above": s["above"] or p["above"],
                        "test": "paired" if p["above"] else "offline",
                        "paired": {**p, "reference": gap},
                    }
                    for s, p in zip(steps, paired, strict=True)
                ]
            self.to_date_[name] = steps
        self.arrival_ = (
            _arrival(frame, decided, codes, names, ends, list(run.costs.decisions))
            if known.any()
            else {}
        )

    def calculate(self, window: Window) -> CostResult:
        run = self.expectations_
        out = {}
        for i, (name, pos) in _in_run_policies(window.rows):
            offline = run.expected(name).get("cost_per_decision")
            figure = measures.cost(window.rows, run.costs, offline, window.seed + 10 * i, pos)
            step = -1 if window.index is None else window.index
            steps = self.to_date_.get(name)
            if steps:
                figure["to_date"] = steps[step]
            if name in self.arrival_:
                figure["arrival"] = self.arrival_[name].at(step)
                if steps:
                    figure["to_date"] = {**steps[step], "held": figure["arrival"]["held"]}
            out[name] = PolicyFigures(run.bundles[name]["version"], len(pos), figure)
        return CostResult(out)


def _arrival(
    frame: pd.DataFrame, decided: np.ndarray, codes: np.ndarray, names, ends, decisions: list
) -> dict:
    """Per policy, whether its outcomes arrive selectively (`advisor.monitor.arrival`), with
    the predicted cost of each row (`risk`: from the run's first ML bundle, which the scan
    computed when the run has one and the log holds its inputs); `codes` are the decision
    codes of every row of the log."""
    policy = frame["policy"]
    arrived_all = frame["outcome"].to_numpy() >= 0
    risk_all = frame["risk"].to_numpy(dtype=float) if "risk" in frame else None
    out = {}
    for name in names:
        pos = np.flatnonzero(decided & (policy == name).to_numpy())
        risk = None if risk_all is None else risk_all[pos]
        window = np.searchsorted(np.asarray(ends), pos, side="right")
        found = arrival.arrival(arrived_all[pos], codes[pos], decisions, risk, window, len(ends))
        out[name] = arrival.Arrival(*found)
    return out


def _taken(frame: pd.DataFrame, pos: np.ndarray, costs) -> pd.DataFrame:
    """The rows at `pos` of the columns the cost matrix reads (not of every column)."""
    return pd.DataFrame({c: frame[c].to_numpy()[pos] for c in costs.columns if c in frame})


def _own_expected(frame: pd.DataFrame, pos: np.ndarray) -> np.ndarray | None:
    """The expected cost of the logged decisions at `pos` under the policy's own bundle, as the
    scan computed it (ML bundles whose inputs the log holds), so it can be paired with the
    realised cost; None when any row lacks it."""
    if "est_mean" not in frame:
        return None
    own = frame["est_mean"].to_numpy(dtype=float)[pos]
    return own if len(own) and np.isfinite(own).all() else None


def to_date(
    values: np.ndarray,
    rows: np.ndarray,
    ends: Sequence[int],
    alpha: float,
    reference: Mapping | None,
    tuned: float = family.CS_TUNED_ROWS,
    test: str = "offline",
) -> list[dict]:
    """The realised cost per decision on the rows with outcomes up to each window's end (rows:
    their positions in the log, ends: one past each window's last row), with a confidence
    sequence at `alpha` that carries the reference's own error (`family.referenced_sequence`),
    and whether it lies above the reference's estimate (`bar`)."""
    window = np.searchsorted(np.asarray(ends), rows, side="right")
    size = len(ends)
    n = np.bincount(window, minlength=size)[:size].cumsum()
    total = np.bincount(window, weights=values, minlength=size)[:size].cumsum()
    squares = np.bincount(window, weights=values**2, minlength=size)[:size].cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        sd = np.sqrt(np.maximum(squares / n - mean**2, 0.0) * n / np.maximum(n - 1, 1))
    se = family.reference_se(reference)
    bar = None if se is None else float(reference["estimate"])
    low, high = family.referenced_sequence(mean, sd, n, se or 0.0, alpha, tuned)
    out = []
    for i in range(size):
        seen = n[i] > 1 and np.isfinite(low[i])
        out.append(
            {
                "n": int(n[i]),
                "estimate": float(mean[i]) if n[i] else None,
                "low": float(low[i]) if seen else None,
                "high": float(high[i]) if seen else None,
                "level": alpha,
                "bar": bar,
                "reference_se": se,
                "tuned_rows": tuned,
                "above": bool(seen and bar is not None and low[i] > bar),
                "test": test,
            }
        )
    return out


class Shadow(Measure):
    """The shadow policy against the served one."""

    name, title = "shadow", "Shadow"
    COLUMNS = ("policy", "decision", "shadow_policy", "shadow_decision", "outcome", "unit")
    COSTS = True

    def calculate(self, window: Window) -> ShadowResult:
        run = self.expectations_
        pairs = arms.shadow(window.rows, run.costs, run.result.get("shadow"), window.seed + 7)
        return ShadowResult(tuple(pairs))


@dataclass
class Test(Measure):
    """The canary or A/B test: units and power to date, the always-valid readout to date on the
    units the plan's design analyses (and the power for that design), the effect per window."""

    share: float = 0.5
    name = "test"
    title = "Canary and A/B test"
    COLUMNS = (
        "policy",
        "decision",
        "arm",
        "unit",
        "outcome",
        "control_decision",
        "treatment_decision",
    )
    COSTS = True
    __test__ = False  # a measure, not a pytest class

    def prepare(self, frame: pd.DataFrame, ends: Sequence[int]) -> None:
        run = self.expectations_
        self.to_date_ = arms.split_to_date(frame, list(ends), run.plan, self.share)
        reads = arms.readout_to_date(frame, ends, run.plan, run.costs) if self.to_date_ else None
        for step, read in zip(self.to_date_ or (), reads or (), strict=True):
            step["readout"] = read
            if step["power"] is not None and read["design"] == "triggered":
                step["power"] = arms.power_so_far(
                    run.plan,
                    step["policies"],
                    step["control_units_with_outcomes"],
                    self.share,
                    analysed=read["analysed"]["control"],
                )
            if step["power"] is not None:
                step["power"]["design_read"] = read["design"]
        for step in self.to_date_ or ():
            u = step["units"]
            step["srm_sequential"] = (
                family.srm_sequential(u["control"], u["treatment"], self.share)
                if u["control"] and u["treatment"]
                else None
            )

    def calculate(self, window: Window) -> TestResult | None:
        if self.to_date_ is None:
            return None
        run = self.expectations_
        step = len(self.to_date_) - 1 if window.index is None else window.index
        effect = arms.effect(window.rows, run.costs, run.plan, window.seed + 3)
        return TestResult(self.to_date_[step], effect)


@dataclass(frozen=True)
class EstimatedCostResult:
    """Each ML policy's estimated cost per decision from its probabilities, before outcomes."""

    policies: Mapping[str, Mapping]

    def judged(self, drift: DriftResult, features: set[str]) -> EstimatedCostResult:
        """Marked reliable or not by the window's drift on `features`."""
        return EstimatedCostResult(
            {
                name: estimate.judged(dict(f), drift.features, features)
                for name, f in self.policies.items()
            }
        )


class EstimatedCost(Measure):
    """The expected cost of the decisions an ML bundle made, from its calibrated probabilities:
    the only cost figure before the outcomes arrive. The scan computed each row's expected cost
    and variance with the policy's bundle (`est_mean`, `est_var`) as it read the log."""

    name, title = "estimated_cost", "Estimated cost before outcomes"
    COLUMNS = ("in_run", "policy", "decision", "unit", "est_mean", "est_var")

    def calculate(self, window: Window) -> EstimatedCostResult:
        run = self.expectations_
        out = {}
        if "est_mean" not in window.rows:
            return EstimatedCostResult(out)
        rows = window.rows
        decided = rows["decision"].notna().to_numpy()
        for i, (name, pos) in _in_run_policies(rows):
            if not decides_by_expected_cost(run.bundles[name]):
                continue
            pos = pos[decided[pos]]
            if not len(pos):
                continue
            expected = run.expected(name)
            codes = measures.decision_codes(rows["decision"].iloc[pos], run.costs.decisions)
            out[name] = estimate.estimated_from_row_costs(
                rows["est_mean"].to_numpy(dtype=float)[pos],
                rows["est_var"].to_numpy(dtype=float)[pos],
                rows["unit"].iloc[pos],
                expected.get("cost_per_decision"),
                window.seed + 20 + i,
                expected.get("calibration_gap"),
                expected.get("calibration_bands"),
                (codes, run.costs.decisions),
            )
        return EstimatedCostResult(out)


@dataclass(frozen=True)
class Reading:
    """Every measure's result for one window (or the whole log)."""

    label: str
    operations: OperationsResult
    drift: DriftResult
    mix: MixResult
    cost: CostResult
    shadow: ShadowResult
    test: TestResult | None
    estimated: EstimatedCostResult = EstimatedCostResult({})

    def policies(self) -> dict:
        """`policies.<name>`: version, rows, mix and cost, as monitor.json has them."""
        return {
            name: {
                "version": p.version,
                "rows": p.rows,
                "mix": dict(p.figure),
                "cost": dict(self.cost.policies[name].figure),
            }
            | (
                {"estimated_cost": dict(self.estimated.policies[name])}
                if name in self.estimated.policies
                else {}
            )
            for name, p in self.mix.policies.items()
        }

    def to_dict(self) -> dict:
        return {
            "operations": self.operations.to_dict(),
            "drift": self.drift.to_dict(),
            "policies": self.policies(),
            "shadow": self.shadow.to_dict(),
            "experiment": None if self.test is None else self.test.to_dict(),
        }


MEASURES = (Operations, Cost, EstimatedCost, Mix, Drift, Shadow, Test)


def sections() -> list[tuple[str, str, str]]:
    """(name, title, template) of each measure, in the page's order."""
    return [(m.name, m.title, f"monitor/{m.name}.html.j2") for m in MEASURES]
