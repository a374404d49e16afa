"""How often `advisor monitor` cries wolf, and how fast it sees harm, read every day.

For each bundled case at its own volume (its case file's `decision.volume`, one window a day),
production is the case's test rows drawn with replacement, decided by the run's bundles (when
the run refitted them on every labelled row, the test rows among them, by its fit on the
training split instead, which never saw them, as the shipped policies never saw production's
rows), with the outcomes known at once (the most data the cost check can get, so the hardest case for its
false-alarm rate). Runs are simulated in bulk with numpy and judged by the monitor's own
statistics (`advisor.monitor.family`: the drift p-values with Holm, the cost confidence
sequence, the sequential sample-ratio test, the p99 lower bound), as a daily cron run would
read them: a run "alerts" when any window's test fires at any read.

(a) No change, 30 and 90 days: the share of runs with any alert, for the ML policy alone, for
    the rules served with the ML policy in shadow (the rule list's inputs become important),
    and for a 5 % canary of ML beside the rules (the sample-ratio test joins).
(b) Harm from day 10 of 60: the case's most important numeric feature x3 (drift), outcomes that
    raise the realised cost per decision by 20 % of the offline cost's magnitude (a share of the
    good outcomes turned bad where that costs more), an 8 % canary planned at 5 % (SRM), the
    p99 latency at 1.2 x the budget: the share of runs that catch it, and the days from onset
    to the alert (0: on the first day of harm).

`--rules before` judges the same draws by the rules of the monitor before the family control
(drift: PSI major on an important feature and above the 99.9 % noise level; cost: a window's or
the whole log's 95 % interval above the offline 95 % interval, normal intervals standing in for
the bootstrap; SRM: chi-square p < 0.001 to date; latency: the p99's 95 % interval above budget).
Errors are not simulated: production here has none, so no rule can fire on them.

    uv run python benchmarks/monitor_alarms.py --runs RUNS [--sims 200] [--rules after|before]
        [--seed S]   (S added to every cell's seed; runs at several S pool)

RUNS holds a run folder per case (`advisor analyze datasets/<case>.yaml --out RUNS`); without
it the cases are analysed first (a few minutes).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
CASES = ("credit-scoring", "car-loans", "telco-churn")
ONSET, HARM_DAYS = 9, 60  # harm from day 10 (index 9) of 60
LATENCY_SIGMA = 0.4  # lognormal latencies around 2 ms, as tests/production.py draws them


@dataclass
class Case:
    """A case ready to simulate: per test row, each feature's PSI bin, each policy's realised
    cost, and what the run expects."""

    name: str
    per_day: int
    budget_ms: float
    bins: dict  # feature -> bin index per row of the drift rows
    shifted_bins: np.ndarray  # the harm feature x3, bin index per row of the drift rows
    drift_rows: str  # which split production's inputs are drawn from for drift
    harm_feature: str
    reference: dict  # feature -> training counts
    important: dict  # scenario -> important features
    cost: dict  # policy -> realised cost per test row
    cost_flip: dict  # policy -> extra cost per test row when its outcome turns bad (>= 0)
    offline: dict  # policy -> {estimate, low, high}
    expected: dict  # policy -> the expected cost of its decision per test row (None: no proba)
    gap: dict  # policy -> the run's calibration gap {estimate, low, high} (None: none)


def bin_index(binner, values: pd.Series) -> np.ndarray:
    """Each value's PSI bin, from the binner's counts: numbers by their rank among the
    distinct values (bins follow the order), categories one distinct value at a time."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    if binner.kind == "numeric":
        order = np.argsort(np.asarray(distinct, dtype=float))
        per_bin = binner.counts(pd.Series(np.asarray(distinct, dtype=float)[order]))
        ranked = np.searchsorted(np.cumsum(per_bin), np.arange(len(distinct)), side="right")
        one = np.empty(len(distinct), dtype=np.int64)
        one[order] = ranked
    else:
        one = np.array(
            [int(np.argmax(binner.counts(pd.Series([v], dtype=object)))) for v in distinct],
            dtype=np.int64,
        )
    missing = int(np.argmax(binner.counts(pd.Series([None], dtype=object))))
    return np.where(codes < 0, missing, one[np.maximum(codes, 0)] if len(one) else missing)


def prepare(name: str, runs: Path) -> Case:
    import advisor
    from advisor.core.case import load_case
    from advisor.core.data import load_dataset, split_dataset
    from advisor.monitor.expectations import read_expectations

    loaded = load_case(ROOT / "datasets" / f"{name}.yaml")
    data = load_dataset(loaded)
    split = split_dataset(data, loaded.seed)
    test = split.test.frame.reset_index(drop=True)
    run = read_expectations(runs / name)
    unseen = {}
    if (run.result.get("refits") or {}).get("shipped"):
        # the bundles were refitted on every labelled row, the test rows among them: decide
        # the test rows by the run's own fit on the training split, which never saw them, as
        # the shipped policies will not have seen production's rows
        from advisor.analysis.pipeline import fit_policies
        from advisor.core.features import FeatureSpec

        spec = FeatureSpec(data.schema).fit(split.train.frame)
        unseen = fit_policies(loaded, split, spec)
    roles = run.roles
    target = run.target
    y = np.array([run.costs.class_index(v) for v in test[target]])
    cost, flip, offline, expected, gap = {}, {}, {}, {}, {}
    tensor = np.broadcast_to(
        run.costs.tensor(test, len(test)), (len(test), run.costs.n_classes, run.costs.n_decisions)
    )
    for role in ("control", "treatment"):
        policy = roles[role]
        loaded_policy = unseen.get(policy) or advisor.load_policy(runs / name / "policies" / policy)
        codes = loaded_policy.decide_codes(test)
        ok = codes >= 0
        realised = tensor[np.arange(len(test)), y, np.maximum(codes, 0)]
        worst = tensor[np.arange(len(test)), :, np.maximum(codes, 0)].max(axis=1)
        cost[role] = np.where(ok, realised, np.nan)
        flip[role] = np.where(ok, worst - realised, 0.0)
        offline[role] = run.expected(policy)["cost_per_decision"]
        gap[role] = run.expected(policy).get("calibration_gap")
        expected[role] = None
        if gap[role] and getattr(loaded_policy, "probabilistic", False):
            each = run.costs.expected_costs(loaded_policy.predict_proba(test), test)
            expected[role] = np.where(ok, each[np.arange(len(test)), np.maximum(codes, 0)], np.nan)
    keep = np.isfinite(cost["control"]) & np.isfinite(cost["treatment"])
    test = test[keep].reset_index(drop=True)
    cost = {k: v[keep] for k, v in cost.items()}
    flip = {k: v[keep] for k, v in flip.items()}
    expected = {k: None if v is None else v[keep] for k, v in expected.items()}
    # "No change" is production drawn from the population the training rows stand for (their
    # own distribution), judged against a reference that is a fresh sample of that size from it
    # (`drift_alarms`), so the reference's own noise is there, shared by every window. Drawing
    # from the test split instead would add that split's own sampling noise as a standing
    # shift (and a case split by time, car-loans, has a test period that truly drifted).
    inputs = split.train.frame.reset_index(drop=True)
    clean = run.spec.clean(inputs, columns=list(run.reference.binners))
    bins = {f: bin_index(b, clean[f]) for f, b in run.reference.binners.items()}
    rule_inputs = set(run.bundles[roles["control"]].get("inputs") or ())
    important = {
        "ml": run.important(set())["features"],
        "shadow": run.important(rule_inputs)["features"],
        "canary": run.important(rule_inputs)["features"],
    }
    numeric = [
        f for f in run.important(set())["model"] if run.reference.binners[f].kind == "numeric"
    ]
    harm = "Income" if "Income" in numeric else numeric[0]
    raw = inputs[harm] * 3  # production's inputs with the feature tripled
    shifted = bin_index(
        run.reference.binners[harm],
        run.spec.clean(inputs.assign(**{harm: raw}), columns=[harm])[harm],
    )
    volume = run.case["decision"]["volume_per_day"]
    return Case(
        name,
        round(volume),
        float(run.budget_ms),
        bins,
        shifted,
        "training split",
        harm,
        {f: np.asarray(c, dtype=float) for f, c in run.reference.counts.items()},
        important,
        cost,
        flip,
        offline,
        expected,
        gap,
    )


def counts(bins: np.ndarray, size: int) -> np.ndarray:
    """(runs, windows, n) bin indices -> (runs, windows, size) counts."""
    r, w, n = bins.shape
    flat = (np.arange(r * w)[:, None] * size + bins.reshape(r * w, n)).ravel()
    return np.bincount(flat, minlength=r * w * size).reshape(r, w, size)


def drift_alarms(
    case: Case,
    features: list[str],
    idx: np.ndarray,
    rules: str,
    harm: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """(runs, windows): a drift alert on some important feature. Each run's reference is a
    fresh draw of the training counts from the training rows' distribution (the monitor's
    reference is one sample of the population; `before` keeps the run's own)."""
    from advisor.monitor import family
    from advisor.stats.psi import PSI_MAJOR, NoiseLevels, psi_rows

    r, w, n = idx.shape
    after = np.arange(w) >= ONSET
    psis, ps, flags = [], [], []
    noise = NoiseLevels({f: case.reference[f] for f in features}, 0)
    for f in features:
        b = case.bins[f][idx]
        if harm and f == case.harm_feature:
            b = np.where(after[None, :, None], case.shifted_bins[idx], b)
        c = counts(b, len(case.reference[f])).astype(float)
        if rules == "before":
            value = psi_rows(case.reference[f], c.reshape(r * w, -1))
            flags.append(value >= max(PSI_MAJOR, noise.at(f, n)))
            continue
        shares = np.bincount(case.bins[f], minlength=len(case.reference[f])) / len(case.bins[f])
        references = rng.multinomial(int(case.reference[f].sum()), shares, r).astype(float)
        psis.append(np.concatenate([psi_rows(ref, c[i]) for i, ref in enumerate(references)]))
        ps.append(
            np.concatenate([family.drift_p_values(ref, c[i]) for i, ref in enumerate(references)])
        )
    if rules == "before":
        return np.any(flags, axis=0).reshape(r, w)
    p, psi = np.array(ps), np.array(psis)  # features x windows
    clear = holm_rows(p, family.window_level("drift")) & (psi >= PSI_MAJOR)
    hit = holm_rows(p, family.persist_level()) & (psi >= PSI_MAJOR)
    clear, hit = clear.reshape(len(features), r, w), hit.reshape(len(features), r, w)
    repeated = hit & (family.rolling(hit, family.SPAN) >= family.PERSIST)
    return (clear | repeated).any(axis=0)


def holm_rows(p: np.ndarray, level: float) -> np.ndarray:
    """Holm's procedure down each column of p (hypotheses x windows): which are rejected."""
    m = len(p)
    order = np.sort(p, axis=0)
    passed = np.cumprod(order <= level / (m - np.arange(m))[:, None], axis=0).astype(bool)
    count = passed.sum(axis=0)
    cut = np.where(count > 0, order[np.maximum(count - 1, 0), np.arange(p.shape[1])], -1.0)
    return p <= cut[None, :]


UNION = {"cost": 0.0075, "offline": 0.0075}  # the shares of the cost tests before (`--rules union`)


def cost_alarms(
    values: np.ndarray,
    kept: np.ndarray,
    reference: dict,
    rules: str,
    policies: int,
    centre: np.ndarray | float,
    part: float = 1.0,
    tuned: float | None = None,
) -> np.ndarray:
    """(runs, windows): a cost alert for one policy, read at every window. `values`: realised
    cost per row (runs, windows, n), or realised minus expected cost for the paired test with
    `reference` then the calibration gap; `kept`: which rows the policy decided; `centre`: the
    reference's estimate in each run (runs, 1): production's true mean plus a draw of the
    reference's own error; `part`: the test's part of the policy's level (the paired test's
    family.PAIRED, the unpaired one's the rest)."""

    s = np.where(kept, values, 0.0).sum(axis=2)
    q = np.where(kept, values**2, 0.0).sum(axis=2)
    m = kept.sum(axis=2).astype(float)
    if rules == "before":
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s / m
            sd = np.sqrt(np.maximum(q / m - mean**2, 0) * m / np.maximum(m - 1, 1))
            window = (mean - 1.96 * sd / np.sqrt(m) > reference["high"]) & (m >= 30)
            cs, cq, cm = s.cumsum(1), q.cumsum(1), m.cumsum(1)
            cmean = cs / cm
            csd = np.sqrt(np.maximum(cq / cm - cmean**2, 0) * cm / np.maximum(cm - 1, 1))
            whole = (cmean - 1.96 * csd / np.sqrt(cm) > reference["high"]) & (cm >= 30)
        return window | whole
    cs, cq, cm = s.cumsum(1), q.cumsum(1), m.cumsum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = cs / cm
        sd = np.sqrt(np.maximum(cq / cm - mean**2, 0) * cm / np.maximum(cm - 1, 1))
    return sequential_cost(mean, sd, cm, reference, rules, policies, centre, part, tuned)


def sequential_cost(
    mean: np.ndarray,
    sd: np.ndarray,
    n: np.ndarray,
    reference: dict,
    rules: str,
    policies: int,
    centre: np.ndarray | float,
    part: float,
    tuned: float | None,
) -> np.ndarray:
    """The cost test to date as the monitor reads it (`after`: one confidence sequence that
    carries the reference's error, at the cost share), or as it read it before (`union`: a
    confidence sequence at one share against the reference's upper end at another)."""
    from advisor.monitor import family

    se = family.reference_se(reference)
    if rules == "union":
        cs = UNION["cost"] / policies * part
        low, _ = family.confidence_sequence(mean, sd, n, cs)
        return low > centre + stats.norm.isf(UNION["offline"] / policies * part) * se
    alpha = family.BUDGET["cost"] / policies * part
    low, _ = family.referenced_sequence(mean, sd, n, se, alpha, tuned or family.CS_TUNED_ROWS)
    return low > centre


def reference_centre(
    truth: float, reference: dict, sims: int, rng: np.random.Generator
) -> np.ndarray:
    """The reference's estimate in each simulated run (runs, 1): production's true mean (the
    mean over the test rows it is drawn from) plus a draw of the reference's own error, with
    the standard error its interval gives. Production here is the test rows themselves, so
    without the draw the reference would be exact; centring on the truth keeps the bundle's
    own offset (`reference_offsets`) out of the test's error rates."""
    from advisor.monitor import family

    return truth + rng.normal(0.0, family.reference_se(reference), (sims, 1))


def reference_offsets(case: Case, role: str) -> str:
    """How far the bundle's references lie from what its policy does on the test split, in
    their standard errors (the offline cost may pool out-of-fold rows of refits)."""
    from advisor.monitor import family

    out = []
    pairs = [("offline", case.offline[role], case.cost[role])]
    if case.expected[role] is not None:
        pairs.append(("gap", case.gap[role], case.cost[role] - case.expected[role]))
    for label, reference, values in pairs:
        se = family.reference_se(reference)
        off = (reference["estimate"] - values.mean()) / se
        out.append(f"{label} {reference['estimate']:.2f} vs {values.mean():.2f} ({off:+.1f} se)")
    return "; ".join(out)


def turned_share(case: Case, role: str) -> float:
    """The share of rows whose outcome turns bad so that the cost per decision rises by 20 %
    of the offline magnitude (only rows where the worse outcome costs more can turn)."""
    flips, rows = case.cost_flip[role], len(case.cost[role])
    positive = flips[flips > 0]
    return min(0.2 * abs(case.offline[role]["estimate"]) / (positive.sum() / rows), 1.0)


def cost_tests(case: Case, role: str, rules: str) -> list[tuple]:
    """The cost tests of one policy: (values per test row, reference, part of the level)."""
    from advisor.monitor import family

    if rules != "before" and case.expected[role] is not None:
        return [
            (case.cost[role], case.offline[role], 1 - family.PAIRED),
            (case.cost[role] - case.expected[role], case.gap[role], family.PAIRED),
        ]
    return [(case.cost[role], case.offline[role], 1.0)]


def cost_caught(
    case: Case,
    role: str,
    per_day: int,
    sims: int,
    rules: str,
    seed: int,
    days: int = HARM_DAYS,
    harm: bool = True,
) -> float:
    """The share of runs whose cost test catches the +20 % harm (ML alone) at `per_day`
    decisions a day, accumulated day by day so that large volumes fit in memory; without
    `harm`, the share of runs with a cost alert over `days` with no change."""
    from advisor.monitor import family

    rng = np.random.default_rng(seed)
    rows, q = len(case.cost[role]), turned_share(case, role)
    tests = cost_tests(case, role, rules)
    sums = np.zeros((len(tests), sims, days))
    squares = np.zeros((len(tests), sims, days))
    for day in range(days):
        idx = rng.integers(0, rows, size=(sims, per_day))
        turned = np.where(rng.random(idx.shape) < q, case.cost_flip[role][idx], 0.0)
        for i, (values, _, _) in enumerate(tests):
            x = values[idx] + (turned if harm and day >= ONSET else 0.0)
            sums[i, :, day], squares[i, :, day] = x.sum(axis=1), (x**2).sum(axis=1)
    n = per_day * np.arange(1, days + 1)
    mean = sums.cumsum(2) / n
    sd = np.sqrt(np.maximum(squares.cumsum(2) / n - mean**2, 0) * n / (n - 1))
    fired = np.zeros((sims, days), dtype=bool)
    tuned = family.tuned_rows(per_day)
    for i, (values, reference, part) in enumerate(tests):
        centre = reference_centre(values.mean(), reference, sims, rng)
        fired |= sequential_cost(mean[i], sd[i], n, reference, rules, 1, centre, part, tuned)
    return float((fired[:, ONSET:] if harm else fired).any(axis=1).mean())


def cost_seeds(prepared: dict, args: argparse.Namespace) -> None:
    """The cost test alone (ML alone) over `args.cost_seeds` seeds of `args.sims` runs: the
    +20 % harm caught (day 10 of 60) and no-change cost alerts over 90 days, pooled."""
    seeds = range(args.seed, args.seed + args.cost_seeds)
    for case in prepared.values():
        for volume in (case.per_day, *[case.per_day * f for f in args.factors]):
            caught_ = [
                cost_caught(case, "treatment", volume, args.sims, args.rules, s) for s in seeds
            ]
            quiet = [
                cost_caught(case, "treatment", volume, args.sims, args.rules, 50 + s, 90, False)
                for s in seeds
            ]
            print(
                f"{case.name:16} {volume:6,} a day, harm "
                f"{0.2 * abs(case.offline['treatment']['estimate']):.2f} per decision: caught "
                f"{np.mean(caught_):.1%}, no-change cost alert over 90 days {np.mean(quiet):.2%} "
                f"({args.sims * len(seeds):,} runs each)"
            )


def information(case: Case, role: str, rules: str) -> str:
    """What the data can show by day 60 at the case's volume: for each cost test, the +20 %
    harm in standard errors of (the cumulative mean minus the reference), with the onset
    known and only the harmed days read (z) and read from day 1 as the monitor does (z_cum),
    and the power a single read on day 60 at the test's level would have with each (a test
    valid at every daily read pays for that validity)."""
    from advisor.monitor import family

    effect = 0.2 * abs(case.offline[role]["estimate"])
    after, total = case.per_day * (HARM_DAYS - ONSET), case.per_day * HARM_DAYS
    out = []
    for values, reference, part in cost_tests(case, role, rules):
        se = family.reference_se(reference)
        sd = values.std()
        z = effect / math.sqrt(sd**2 / after + se**2)
        z_cum = effect * after / total / math.sqrt(sd**2 / total + se**2)
        bar = stats.norm.isf(family.BUDGET["cost"] * part)
        one, one_cum = stats.norm.sf(bar - z), stats.norm.sf(bar - z_cum)
        name = "paired" if reference is case.gap[role] else "unpaired"
        out.append(
            f"{name}: z {z:.2f} (one read {one:.0%}), z_cum {z_cum:.2f} (one read {one_cum:.0%})"
        )
    return "; ".join(out)


def volume_for(case: Case, sims: int, rules: str, seed: int, target: float = 0.95) -> str:
    """The daily volume (the case's times 1, 2, 4, ... 64) at which the cost harm is caught in
    `target` of runs."""
    for factor in (1, 2, 4, 8, 16, 32, 64):
        if cost_caught(case, "treatment", case.per_day * factor, sims, rules, seed) >= target:
            return f"{case.per_day * factor:,}"
    return f"> {case.per_day * 64:,}"


def srm_alarms(treated: np.ndarray, share: float, rules: str) -> np.ndarray:
    from advisor.monitor import family
    from advisor.stats.sample_ratio import SRM_THRESHOLD

    t = treated.sum(axis=2).cumsum(axis=1).astype(float)
    total = np.arange(1, treated.shape[1] + 1) * treated.shape[2]
    c = total - t
    if rules == "before":
        expected_t = total * share
        chi2 = (t - expected_t) ** 2 / (total * share * (1 - share))
        return stats.chi2.sf(chi2, 1) < SRM_THRESHOLD
    return family.srm_log_evidence(c, t, share) >= math.log(1 / family.BUDGET["srm"])


def latency_alarms(ms: np.ndarray, budget: float, rules: str) -> np.ndarray:
    from advisor.monitor import family

    if rules == "before":
        x = np.sort(ms, axis=2)
        r = int(max(stats.binom.ppf(0.025, x.shape[2], 0.99), 1))
        return x[:, :, r - 1] > budget
    over = (ms > budget).sum(axis=2)
    k, n = family.rolling(over), family.rolling(np.full(over.shape, ms.shape[2]))
    return family.latency_p_values(k, n) < family.window_level("latency")


def simulate(
    case: Case, scenario: str, days: int, sims: int, rules: str, harm: str | None, seed: int
) -> dict:
    """Alarms per run (runs, windows) by kind for one scenario."""
    from advisor.monitor import family

    rng = np.random.default_rng(seed)
    n = case.per_day
    rows = len(case.cost["control"])
    idx = rng.integers(0, rows, size=(sims, days, n))
    after = (np.arange(days) >= ONSET)[None, :, None]
    inputs = rng.integers(0, len(case.shifted_bins), size=idx.shape)
    important = case.important[scenario]
    out = {"drift": drift_alarms(case, important, inputs, rules, harm == "drift", rng)}
    served = "treatment" if scenario == "ml" else "control"
    arms = {served: np.ones(idx.shape, dtype=bool)}
    if scenario == "canary":
        share = 0.05
        p = np.where(after, 0.08, share) if harm == "srm" else share
        treated = rng.random(idx.shape) < p
        arms = {"control": ~treated, "treatment": treated}
        out["srm"] = srm_alarms(treated, share, rules)
    tuned = family.tuned_rows(case.per_day)
    for role, kept in arms.items():
        turned = (rng.random(idx.shape) < turned_share(case, role)) & after
        fired = np.zeros(idx.shape[:2], dtype=bool)
        for values, reference, part in cost_tests(case, role, rules):
            centre = reference_centre(values.mean(), reference, sims, rng)
            x = values[idx]
            if harm == "cost":
                x = x + np.where(turned, case.cost_flip[role][idx], 0.0)
            fired |= cost_alarms(x, kept, reference, rules, len(arms), centre, part, tuned)
        out[f"cost {role}"] = fired
    mu = np.log(2.0)
    ms = rng.lognormal(mu, LATENCY_SIGMA, idx.shape)
    if harm == "latency":
        slow = np.log(1.2 * case.budget_ms) - stats.norm.ppf(0.99) * LATENCY_SIGMA
        ms = np.where(after, rng.lognormal(slow, LATENCY_SIGMA, idx.shape), ms)
    out["latency"] = latency_alarms(ms, case.budget_ms, rules)
    return out


def any_alert(alarms: dict, days: int) -> float:
    fired = np.zeros(next(iter(alarms.values())).shape[0], dtype=bool)
    for a in alarms.values():
        fired |= a[:, :days].any(axis=1)
    return float(fired.mean())


def by_kind(alarms: dict, days: int) -> str:
    """Which tests fired: each kind's share of runs, where above zero."""
    shares = {k: float(a[:, :days].any(axis=1).mean()) for k, a in alarms.items()}
    return ", ".join(f"{k} {v:.1%}" for k, v in shares.items() if v > 0) or "-"


def caught(alarms: np.ndarray) -> tuple[float, float | None, float | None]:
    """Share of runs alerting on or after the onset; median and 90th percentile days."""
    later = alarms[:, ONSET:]
    hit = later.any(axis=1)
    days = np.argmax(later, axis=1)[hit]
    if not hit.any():
        return 0.0, None, None
    return float(hit.mean()), float(np.median(days)), float(np.quantile(days, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--rules", choices=("after", "union", "before"), default="after")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument(
        "--volumes",
        action="store_true",
        help="where the cost harm is caught in fewer than 95 %% of runs, find the daily volume "
        "at which it is (the case's volume times 2, 4, ... 64)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="added to every cell's seed: runs at several seeds pool into more runs per cell",
    )
    parser.add_argument(
        "--cost-seeds",
        type=int,
        default=0,
        help="only the cost test of ML alone, over this many seeds pooled (harm and no change)",
    )
    parser.add_argument(
        "--factors", type=int, nargs="*", default=[], help="with --cost-seeds: volume factors"
    )
    parser.add_argument(
        "--harm-of",
        type=float,
        default=None,
        help="the offline cost per decision the +20 %% harm is taken of (default: the bundle's)",
    )
    parser.add_argument(
        "--tuned-days",
        type=float,
        default=None,
        help="the cost sequences tightest at the volume times this many days (default: 45)",
    )
    args = parser.parse_args()
    runs = args.runs
    if runs is None:
        import tempfile

        import advisor

        runs = Path(tempfile.mkdtemp())
        for name in args.cases:
            advisor.advise(ROOT / "datasets" / f"{name}.yaml").save(runs / name)
    from advisor.monitor import family

    started = time.perf_counter()
    print(
        f"rules: {args.rules}; {args.sims} runs per cell; family target: "
        f"{family.FAMILY_RATE:.0%} over {family.HORIZON} daily windows"
    )
    names = {"ml": "ML alone", "shadow": "rules + ML shadow", "canary": "rules + 5% ML canary"}
    prepared = {name: prepare(name, runs) for name in args.cases}
    if args.tuned_days is not None:
        family.TUNED_DAYS = args.tuned_days
    if args.harm_of is not None:
        for case in prepared.values():
            for role in case.offline:
                case.offline[role] = {**case.offline[role], "estimate": args.harm_of}
    if args.cost_seeds:
        cost_seeds(prepared, args)
        return
    print("\n(a) no change: share of runs with any alert (outcomes known at once)")
    print(
        f"{'case':16} {'per day':>7} {'scenario':22} {'30 days':>8} {'90 days':>8}  which fired (90 days)"
    )
    for name, case in prepared.items():
        print(f"  {name}: inputs drawn from its {case.drift_rows}, costs from its test split")
    for i, case in enumerate(prepared.values()):
        for j, scenario in enumerate(names):
            alarms = simulate(
                case, scenario, 90, args.sims, args.rules, None, args.seed + 100 * i + j
            )
            print(
                f"{case.name:16} {case.per_day:7d} {names[scenario]:22} "
                f"{any_alert(alarms, 30):8.1%} {any_alert(alarms, 90):8.1%}  {by_kind(alarms, 90)}"
            )
    print(f"\n(b) harm from day {ONSET + 1} of {HARM_DAYS}: share caught; days from onset to alert")
    print(
        f"{'case':16} {'harm':34} {'caught':>7} {'median':>7} {'p90':>5}  "
        "cost: decisions a day for 95%"
    )
    harms = {
        "drift": ("ml", "drift"),
        "cost": ("ml", "cost treatment"),
        "srm": ("canary", "srm"),
        "latency": ("ml", "latency"),
    }
    for i, case in enumerate(prepared.values()):
        for j, (harm, (scenario, kind)) in enumerate(harms.items()):
            alarms = simulate(
                case,
                scenario,
                HARM_DAYS,
                args.sims,
                args.rules,
                harm,
                args.seed + 7000 + 10 * i + j,
            )
            share, median, p90 = caught(alarms[kind])
            what = {
                "drift": f"{case.harm_feature} x3",
                "cost": "cost +20% of the offline magnitude",
                "srm": "8% canary, 5% planned",
                "latency": "p99 at 1.2x the budget",
            }[harm]
            volume = ""
            if harm == "cost":
                volume = f"{case.per_day:,}" if share >= 0.95 else "-"
                if share < 0.95 and args.volumes:
                    volume = volume_for(case, args.sims, args.rules, args.seed + 9000 + i)
            print(
                f"{case.name:16} {what:34} {share:7.1%} "
                f"{'-' if median is None else f'{median:.0f}':>7} "
                f"{'-' if p90 is None else f'{p90:.0f}':>5}  {volume}"
            )
            if harm == "cost" and args.rules != "before":
                print(f"{'':18}what day 60 can show: {information(case, 'treatment', args.rules)}")
                print(f"{'':18}the bundle's references: {reference_offsets(case, 'treatment')}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
