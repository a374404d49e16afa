"""Alerts on harm, notes on the rest, and the verdict.

An alert fires only on harm beyond what sampling noise explains, each test at its share of the
family's false-alarm rate (`advisor.monitor.family`): a sample-ratio mismatch (sequential), p99
latency over budget, a rising error rate (these say "roll back"), the realised cost to date
above the offline bar (a confidence sequence) or drift on an important feature (Holm within the
window) say "retrain" (a treatment arm costing more says "roll back"). A treatment that costs
more than control (the A/B readout, with its own error rate) says "roll back". Doing better
than expected, or a change that is not harm, is a note; notes marked `watch` make the verdict
"watch". One alert per kind and subject: its latest window, and every window it fired in. Every
alert names its test, the level it ran at and the family's rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scipy import stats

from advisor.core.money import money
from advisor.monitor import family
from advisor.monitor.calculators import Reading
from advisor.stats.psi import PSI_MAJOR, PSI_MODERATE

ERROR_TOLERANCE = 0.01  # an error rate up to 1 % is not an alert
CRITICAL = {"srm", "latency", "errors", "treatment_worse"}
VERDICTS = ("keep", "watch", "retrain", "roll back")


class Findings:
    """Alerts and notes, gathered window by window."""

    def __init__(self) -> None:
        self.alerts: dict[tuple, dict] = {}
        self.notes: list[dict] = []

    def alert(
        self,
        kind: str,
        subject: str,
        window: str,
        message: str,
        action: str,
        test: str,
        level: float,
        family_rate: float | None = family.FAMILY_RATE,
    ) -> None:
        key = (kind, subject)
        entry = self.alerts.setdefault(
            key,
            {
                "kind": kind,
                "subject": subject,
                "severity": "critical" if kind in CRITICAL else "warning",
                "action": action,
                "test": test,
                "level": level,
                "family_rate": family_rate,
                "windows": [],
            },
        )
        entry["windows"].append(window)
        entry.update(window=window, message=message)
        if action == "roll back":
            entry["action"] = action

    def note(self, kind: str, window: str, message: str, watch: bool) -> None:
        self.notes.append(
            {
                "kind": kind,
                "window": window,
                "level": "watch" if watch else "info",
                "message": message,
            }
        )


def review(readings: Sequence[Reading], whole: Reading, run, important: Mapping) -> dict:
    """The alerts, notes and verdict for the measured windows and the whole log."""
    found = Findings()
    currency = run.currency
    treatment_policy = None
    earlier_errors, earlier_rows, slow, drifted = 0, 0, [], {}
    for w in readings:
        name = w.label
        ops = w.operations
        _operations(found, ops.to_dict(), name, earlier_errors, earlier_rows, slow)
        earlier_errors += ops.errors["k"]
        earlier_rows += ops.requests
        _drift(found, w.drift.to_dict(), name, ops.requests, important, drifted)
        if w.test is not None:
            exp = w.test.to_dict()
            treatment_policy = exp["policies"].get("treatment")
            _experiment(found, exp, name, currency)
        _policies(found, w.policies(), name, currency, treatment_policy)
    if whole.test is not None:
        exp = whole.test.to_dict()
        if exp.get("units_in_both_arms"):
            found.note(
                "srm",
                "all",
                f"{exp['units_in_both_arms']:,} units appear in both arms: each unit should "
                "keep one arm.",
                True,
            )
    _policies(found, whole.policies(), "all", currency, treatment_policy, mix=False)
    alerts = sorted(found.alerts.values(), key=lambda a: (a["severity"] != "critical", a["kind"]))
    return {"alerts": alerts, "notes": found.notes, "verdict": verdict(alerts, found.notes)}


def _operations(
    found: Findings, ops: Mapping, window: str, errors: int, rows: int, slow: list[tuple]
) -> None:
    """Errors against the windows before; latency over the last LATENCY_SPAN windows (`slow`:
    each earlier window's requests over budget and requests timed, appended here)."""
    rate = ops["errors"]
    if rate["n"]:
        before = max(errors / rows if rows else 0.0, ERROR_TOLERANCE)
        p = stats.binomtest(rate["k"], rate["n"], before, alternative="greater").pvalue
        level = family.window_level("errors")
        if p < level:
            found.alert(
                "errors",
                "requests",
                window,
                f"{rate['k']:,} of {rate['n']:,} rows failed ({rate['estimate']:.1%}, 95% "
                f"interval {rate['low']:.1%} to {rate['high']:.1%}), above the {before:.1%} "
                f"before it beyond chance (one-sided binomial p = {p:.2g} < {level:.2g}).",
                "roll back",
                "one-sided binomial test against the windows before",
                level,
            )
    lat = ops.get("latency")
    if not lat or lat.get("budget_ms") is None:
        return
    slow.append((lat["over_budget"], lat["n"]))
    recent = slow[-family.LATENCY_SPAN :]
    over, timed = sum(k for k, _ in recent), sum(n for _, n in recent)
    p99, budget = lat["p99_ms"], lat["budget_ms"]
    p = float(family.latency_p_values(over, timed))
    level = family.window_level("latency")
    text = (
        f"p99 latency {p99['estimate']:.1f} ms (95% interval {p99['low']:.1f} to "
        f"{p99['high']:.1f}) against the {budget:g} ms budget over {lat['n']:,} requests"
    )
    if p < level:
        found.alert(
            "latency",
            "p99",
            window,
            text + f"; {over:,} of {timed:,} requests in the last {len(recent)} window"
            f"{'s' if len(recent) != 1 else ''} took longer than the budget, more than the 1% "
            f"a p99 within budget allows (one-sided binomial p = {p:.2g} < {level:.2g}).",
            "roll back",
            f"binomial test of the requests over budget in the last {family.LATENCY_SPAN} windows",
            level,
        )
    elif p99["estimate"] > budget:
        found.note("latency", window, text + ": over budget, not beyond chance yet.", True)


def _drift(
    found: Findings,
    drift: Mapping,
    window: str,
    rows: int,
    important: Mapping,
    history: dict[str, list[bool]],
) -> None:
    """Drift alerts: an important feature whose PSI reaches the major level and whose test
    rejects (Holm within the window) at the window level, or at the larger persisting level in
    PERSIST of the last SPAN windows (`history`: each feature's earlier windows, appended)."""
    shares = important.get("shares") or {}
    level, persisting = family.window_level("drift"), family.persist_level()
    tested = {
        n: d["p_value"] for n, d in drift.items() if d["important"] and d.get("p_value") is not None
    }
    clear, rejected = family.holm(tested, level), family.holm(tested, persisting)
    for name, d in drift.items():
        major = d["psi"] >= PSI_MAJOR
        seen = history.setdefault(name, [])
        seen.append(rejected.get(name, False) and major)
        repeated = seen[-1] and sum(seen[-family.SPAN :]) >= family.PERSIST
        alarm = (clear.get(name, False) and major) or repeated
        if d["flag"] not in ("moderate", "major") and not alarm:
            continue
        share = shares.get(name)
        why = (
            f"carries {share:.0%} of the model's importance"
            if share is not None and name in important.get("model", ())
            else "a rule list reads it"
            if name in important.get("rules", ())
            else "not an important feature"
        )
        if alarm:
            how = (
                f"at {level:.2g}"
                if clear.get(name)
                else f"at {persisting:.2g} in {sum(seen[-family.SPAN :])} of the last "
                f"{min(len(seen), family.SPAN)} windows"
            )
            text = (
                f"{name} drifted: PSI {d['psi']:.2f} over {rows:,} rows, above the major level "
                f"{PSI_MAJOR:g}, and its bins differ from training beyond chance (chi-square p "
                f"= {d['p_value']:.2g}, Holm over {len(tested)} important feature"
                f"{'s' if len(tested) != 1 else ''} {how}) ({why})."
            )
            test = "chi-square vs training, Holm within the window" + (
                "" if clear.get(name) else f", {family.PERSIST} of the last {family.SPAN} windows"
            )
            found.alert(
                "drift",
                name,
                window,
                text,
                "retrain",
                test,
                level if clear.get(name) else persisting,
            )
            continue
        flag = d["flag"]
        noise = d["noise"] or 0.0
        text = (
            f"{name} drifted: PSI {d['psi']:.2f} over {rows:,} rows, above the {flag} level "
            f"{PSI_MAJOR if flag == 'major' else PSI_MODERATE:g} and the {noise:.3f} sampling "
            f"noise reaches at that size ({why})."
        )
        found.note("drift", window, text, watch=d["important"] or flag == "major")


def _experiment(found: Findings, exp: Mapping, window: str, currency: str) -> None:
    srm = exp.get("srm_sequential")
    if srm and srm["mismatch"]:
        u = exp["units"]
        found.alert(
            "srm",
            "arms",
            window,
            f"Sample-ratio mismatch: {u['treatment']:,} treatment and {u['control']:,} control "
            f"units to date ({exp['observed_share']:.1%} in treatment, planned "
            f"{exp['planned_share']:.1%}; sequential p = {srm['p_value']:.2g} < "
            f"{family.BUDGET['srm']:g}, valid at every re-read). The assignment or the "
            "logging is broken: stop, fix it, and do not read the test.",
            "roll back",
            "sequential beta-binomial mixture test of the split",
            family.BUDGET["srm"],
        )
    _effect(found, exp, window, currency)


def _effect(found: Findings, exp: Mapping, window: str, currency: str) -> None:
    """`treatment_worse` from the always-valid readout only, once: at the first window whose
    readout to date excludes zero on the harmful side."""
    read = exp.get("readout")
    if not read or read["decision"] != "worse" or ("treatment_worse", "treatment") in found.alerts:
        return
    e = read["effect"]
    found.alert(
        "treatment_worse",
        "treatment",
        window,
        f"The treatment ({exp['policies']['treatment']}) costs more than control "
        f"({exp['policies']['control']}): control minus treatment is "
        f"{money(e['estimate'], currency, 2)} per decision on the {read['design']} analysed "
        f"to date ({money(e['low'], currency, 2)} to {money(e['high'], currency, 2)}, an "
        f"always-valid {1 - read['alpha']:.0%} interval after {read['looks']} looks).",
        "roll back",
        "confidence sequence of control minus treatment on the analysed units (the A/B readout)",
        read["alpha"],
        None,
    )


def _policies(
    found: Findings,
    policies: Mapping,
    window: str,
    currency: str,
    treatment: str | None,
    mix: bool = True,
) -> None:
    for name, p in policies.items():
        m = p["mix"]
        if mix and m["moved"]:
            shares = ", ".join(
                f"{d} {m['shares'][d]:.0%} (offline {float(m['offline'].get(d) or 0):.0%})"
                for d in m["counts"]
            )
            found.note(
                "decision_mix",
                window,
                f"{name}'s decision mix moved beyond noise (chi-square p = {m['p_value']:.2g}): "
                f"{shares}.",
                True,
            )
        c = p["cost"]
        realised, offline = c["cost_per_decision"], c["offline"]
        if mix and c.get("arrival", {}).get("selective"):
            found.note("arrival", window, _selective(name, c["arrival"]), True)
        if c["position"] in ("above", "below", "within"):
            text = (
                f"{name} realised {money(realised['estimate'], currency, 2)} per decision on "
                f"{c['with_outcomes']:,} rows with outcomes (95% interval "
                f"{money(realised['low'], currency, 2)} to {money(realised['high'], currency, 2)})"
                f"; offline {money(offline['estimate'], currency, 2)} ("
                f"{money(offline['low'], currency, 2)} to {money(offline['high'], currency, 2)})"
            )
            if c["position"] == "above":
                found.note("cost", window, text + ": above the offline interval.", True)
            elif c["position"] == "below":
                found.note("cost", window, text + ": better than expected.", False)
        e = p.get("estimated_cost")
        if mix and e and e.get("estimate") is not None and e["reliable"] and e["above"]:
            found.alert(
                "estimated_cost",
                name,
                window,
                f"{name}'s estimated cost from its probabilities is "
                f"{money(e['estimate'], currency, 2)} per decision on {e['n']:,} decisions (95% "
                f"interval {money(e['low'], currency, 2)} to {money(e['high'], currency, 2)}); its "
                f"lower bound at {e['lower_bound']['level']:.2g} is "
                f"{money(e['lower_bound']['value'], currency, 2)}, above the offline bar "
                f"{money(e['bar'], currency, 2)}, before any outcome could show it.",
                "roll back" if name == treatment else "retrain",
                "bootstrap lower bound of the estimated cost vs the offline bar",
                e["lower_bound"]["level"],
            )
        seq = c.get("to_date")
        if mix and seq and seq["above"] and seq.get("held"):
            found.note(
                "cost",
                window,
                f"{name}'s realised cost to date ({money(seq['estimate'], currency, 2)} per "
                f"decision) lies above what the run expects, but its outcomes arrive selectively "
                "(by decision or predicted risk), so the figure is biased: the cost alert is "
                "held until the outcomes catch up.",
                True,
            )
        elif mix and seq and seq["above"]:
            action = "roll back" if name == treatment else "retrain"
            message, test = _cost_message(name, seq, currency)
            level = seq["paired"]["level"] if seq.get("test") == "paired" else seq["level"]
            found.alert("cost", name, window, message, action, test, level)


def _cost_message(name: str, seq: Mapping, currency: str) -> tuple[str, str]:
    """The cost alert's text and test: paired (realised minus expected cost of the same
    decisions against the calibration gap) or the realised cost against the offline bar."""
    head = (
        f"{name}'s realised cost to date is {money(seq['estimate'], currency, 2)} per "
        f"decision on {seq['n']:,} rows with outcomes"
    )
    paired = seq.get("paired")
    if seq.get("test") == "paired" and paired and paired["above"]:
        gap = paired["reference"]
        return (
            head + f"; it exceeds the expected cost of the same decisions by "
            f"{money(paired['estimate'], currency, 2)} per decision, and the confidence "
            f"sequence of that excess (valid at every re-read and carrying the calibration "
            f"gap's own error, level {paired['level']:.2g}) starts at "
            f"{money(paired['low'], currency, 2)}, above the test split's calibration gap "
            f"{money(gap['estimate'], currency, 2)}: the outcomes are worse than the model's "
            "probabilities say for these inputs.",
            "confidence sequence of realised minus expected cost vs the calibration gap, "
            "carrying the gap's error",
        )
    return (
        head + f"; its confidence sequence (valid at every re-read and carrying the offline "
        f"figure's own error, level {seq['level']:.2g}) starts at "
        f"{money(seq['low'], currency, 2)}, above the offline estimate "
        f"{money(seq['bar'], currency, 2)}.",
        "confidence sequence of the cost to date vs the offline cost, carrying its error",
    )


def _selective(name: str, arrived: Mapping) -> str:
    """What a window whose outcomes are not missing at random says."""
    shares = ", ".join(
        f"{d} {v:.0%}" for d, v in (arrived.get("by_decision") or {}).items() if v is not None
    )
    tests = ", ".join(f"by {k} p = {v:.2g}" for k, v in arrived["p_values"].items())
    return (
        f"{name}'s outcomes are selectively missing: the share arrived differs ({tests}; level "
        f"{arrived['level']:.2g} each); arrived by decision: {shares}. Its realised cost here "
        "is biased and no cost alert is read from it."
    )


def verdict(alerts: Sequence[Mapping], notes: Sequence[Mapping]) -> dict:
    """roll back > retrain > watch > keep, with the reason."""
    for action in ("roll back", "retrain"):
        fired = [a for a in alerts if a["action"] == action]
        if fired:
            more = f" (and {len(fired) - 1} more alert{'s' if len(fired) > 2 else ''})"
            return {
                "verdict": action,
                "reason": f"{fired[0]['window']}: {fired[0]['message']}"
                + (more if len(fired) > 1 else ""),
            }
    watch = [n for n in notes if n["level"] == "watch"]
    if watch:
        return {
            "verdict": "watch",
            "reason": f"No alert; {len(watch)} change{'s' if len(watch) > 1 else ''} to watch, "
            f"e.g. {watch[0]['window']}: {watch[0]['message']}",
        }
    return {
        "verdict": "keep",
        "reason": "No alert and nothing to watch: production matches the offline expectations "
        "within noise.",
    }
