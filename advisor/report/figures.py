"""The report's figures: each takes a piece of the result payload and draws it with `charts`.

Called from the templates as `fig.<name>(...)`. They select and label numbers the payload
holds; they compute no results (a figure whose numbers are missing is simply not drawn).
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup

from advisor.report import charts


def _money_label(currency: str) -> str:
    return f" ({currency})" if currency else ""


def _intervals_text(rows: list[dict]) -> str:
    """'name: estimate (low to high); ...' for a chart's text alternative."""
    return "; ".join(
        f"{r['name']}: {charts.tick_label(r['estimate'])}"
        + (
            f" ({charts.tick_label(r['low'])} to {charts.tick_label(r['high'])})"
            if r.get("low") is not None
            else ""
        )
        for r in rows
    )


def policy_costs(evaluation: Mapping, currency: str = "") -> Markup:
    """Cost per decision of every policy with its 95 % interval."""
    rows = [{"name": name, **p["cost_per_decision"]} for name, p in evaluation["policies"].items()]
    desc = _intervals_text(rows)
    return charts.interval_dots(
        rows,
        title="Cost per decision by policy, with 95% intervals",
        desc=f"Cost per decision on the test split{_money_label(currency)}: {desc}.",
        x_label=f"cost per decision{_money_label(currency)}; lower is better",
        caption="Cost per decision on the test split; bars are 95% bootstrap intervals.",
    )


def threshold(curve: Mapping, currency: str = "") -> Markup:
    """Cost per decision against the probability threshold, with every policy as a reference."""
    ml_t = curve["ml_threshold"]
    vlines = []
    if ml_t.get("estimate") is not None:
        label = "ML threshold" + (" (median)" if ml_t.get("varies") else "")
        vlines.append({"name": f"{label} {ml_t['estimate']:.2f}", "value": ml_t["estimate"]})
    hlines = [
        {"name": name, "value": cost} for name, cost in curve["policies"].items() if name != "ml"
    ]
    if "ml" in curve["policies"]:
        hlines.append(
            {
                "name": "ml (as deployed)",
                "value": curve["policies"]["ml"],
                "colour": charts.colour("ml"),
            }
        )
    best = curve["best"]
    desc = (
        f"Cost per decision when the decision {curve['decision']} is taken whenever "
        f"P({curve['class']}) is at least t. Cheapest on the validation split at t = "
        f"{best['threshold']:.2f}, which costs {charts.tick_label(best['cost_per_decision'])} "
        "on test. "
        + "; ".join(f"{h['name']}: {charts.tick_label(h['value'])}" for h in hlines)
        + "."
    )
    return charts.line_chart(
        [
            {
                "name": f"{curve['decision']} if P ≥ t",
                "x": curve["grid"],
                "y": curve["cost_per_decision"],
                "colour": charts.PALETTE["black"],
            }
        ],
        hlines=hlines,
        vlines=vlines,
        title=f"Cost per decision against the threshold on P({curve['class']})",
        desc=desc,
        x_label=f"threshold t on P({curve['class']})",
        y_label=f"cost per decision{_money_label(currency)}",
        x_range=(0.0, 1.0),
        caption=(
            f"Test cost per decision if {curve['decision']} is chosen whenever "
            f"P({curve['class']}) ≥ t, else {curve['otherwise']}. Dotted lines: each policy's cost."
        ),
    )


def calibration(cal: Mapping) -> Markup:
    """Reliability diagram: observed frequency against mean predicted probability per bin."""
    bins = cal["bins"]
    what = "probability of the last class" if cal["target"] == "last" else "top-class confidence"
    desc = "; ".join(
        f"predicted {b['mean_predicted']:.2f}, observed {b['observed']:.2f} ({b['count']} rows)"
        for b in bins
    )
    return charts.scatter(
        [b["mean_predicted"] for b in bins],
        [b["observed"] for b in bins],
        sizes=[b["count"] for b in bins],
        diagonal=True,
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        title="Calibration: predicted against observed",
        desc=f"Reliability bins of the {what} on the test split: {desc}.",
        x_label=f"mean predicted ({what})",
        y_label="observed frequency",
        caption="Dots on the dashed diagonal mean the probabilities can be taken at face value; "
        "dot area is the number of rows in the bin.",
    )


def shap_importance(shap: Mapping) -> Markup:
    """Mean |SHAP| per feature, largest first."""
    rows = [{"name": r["feature"], "value": r["mean_abs_shap"]} for r in shap["importance"]]
    desc = "; ".join(f"{r['name']}: {r['value']:.3g}" for r in rows)
    return charts.hbars(
        rows,
        title="Which features move the model's score most (mean |SHAP|)",
        desc=f"Mean absolute SHAP value per feature, {shap['scale']}: {desc}.",
        x_label=f"mean |SHAP| ({shap['scale']})",
        caption=f"Average size of each feature's push on the score for class "
        f"{shap['explained_class']}, over {shap['rows']:,} test rows.",
    )


def shap_dependence(dep: Mapping, shap: Mapping) -> Markup:
    """SHAP value against the feature's value for one feature."""
    categories = None
    if dep["kind"] == "categorical":
        seen: dict[str, int] = {}
        for v in dep["values"]:
            if v is not None:
                seen[str(v)] = seen.get(str(v), 0) + 1
        categories = [c for c, _ in sorted(seen.items(), key=lambda kv: -kv[1])[:8]]
    pairs = [(v, s) for v, s in zip(dep["values"], dep["shap"], strict=True) if v is not None]
    missing = len(dep["values"]) - len(pairs)
    note = f" {missing} rows with a missing value are not shown." if missing else ""
    shown = f" Categories, most frequent first: {', '.join(categories)}." if categories else ""
    return charts.scatter(
        [v for v, _ in pairs],
        [s for _, s in pairs],
        categories=categories,
        title=f"How {dep['feature']} moves the score",
        desc=f"SHAP value of {dep['feature']} against its value for {len(pairs)} sampled "
        f"test rows; above zero pushes towards class {shap['explained_class']}.{note}{shown}",
        x_label=str(dep["feature"]),
        y_label=f"SHAP ({shap['scale']})",
        caption=f"Each dot is a test row: above zero, {dep['feature']} pushes the score towards "
        f"{shap['explained_class']}.{note}",
    )


def confusion(name: str, conf: Mapping, currency: str = "") -> Markup:
    """Rows by actual class and decision, with the total cost written in each cell."""
    notes = [[charts.tick_label(c) for c in row] for row in conf["total_cost"]]
    desc = "; ".join(
        f"actual {cls}, decided {d}: {conf['counts'][i][j]} rows, total cost {notes[i][j]}"
        for i, cls in enumerate(conf["classes"])
        for j, d in enumerate(conf["decisions"])
    )
    return charts.heat_table(
        conf["classes"],
        conf["decisions"],
        conf["counts"],
        notes=notes,
        title=f"{name}: rows by actual class and decision",
        desc=desc + ".",
        caption=f"{name}: number of test rows (top) and their total cost"
        f"{_money_label(currency)} (below) in each cell.",
    )


def options_net(rec: Mapping) -> Markup:
    """Net annual value of each option (value minus upkeep) with its 95 % interval."""
    currency = rec.get("currency", "")
    option_colours = {
        "ship-rules": "blue",
        "batch-ml": "orange",
        "realtime-ml": "vermillion",
        "keep-incumbent": "grey",
    }
    rows = [
        {
            "name": name,
            **o["net"],
            "colour": charts.PALETTE[option_colours.get(name, "grey")],
        }
        for name, o in rec["options"].items()
    ]
    desc = _intervals_text(rows)
    return charts.interval_dots(
        rows,
        title="Net value per year of each option, with 95% intervals",
        desc=f"Annual value minus annual upkeep{_money_label(currency)}: {desc}.",
        x_label=f"net value per year{_money_label(currency)}; higher is better",
        caption="Net value per year: saving over the baseline minus upkeep; "
        "bars are 95% intervals.",
    )


def upkeep(maintenance: Mapping, options: list[str], currency: str = "") -> Markup:
    """Annual cost of keeping each option alive (build amortised)."""
    rows = [{"name": o, "value": maintenance[o]["annual_cost"]} for o in options]
    desc = "; ".join(f"{r['name']}: {charts.tick_label(r['value'])}" for r in rows)
    return charts.hbars(
        rows,
        title="Upkeep per year of each option",
        desc=f"Annual upkeep including amortised build{_money_label(currency)}: {desc}.",
        x_label=f"upkeep per year{_money_label(currency)}",
        caption="People's time, infrastructure and the build cost spread over the horizon.",
        bar_colour=charts.PALETTE["orange"],
    )


def power_curve(experiment: Mapping) -> Markup:
    """Power of the planned A/B test against days of traffic, with the target and the plan."""
    curve = experiment["power_curve"]
    x = [p["days_enrolling"] for p in curve]
    y = [p["power"] for p in curve]
    desc = "; ".join(f"{d:g} days: {p:.0%}" for d, p in zip(x, y, strict=True))
    vlines = []
    if experiment.get("days_enrolling") is not None:
        vlines.append(
            {
                "name": f"plan: {experiment['days_enrolling']:g} days",
                "value": experiment["days_enrolling"],
            }
        )
    return charts.line_chart(
        [{"name": "power", "x": x, "y": y, "colour": charts.PALETTE["blue"]}],
        hlines=[
            {
                "name": f"target {experiment['target_power']:.0%}",
                "value": experiment["target_power"],
                "colour": charts.PALETTE["vermillion"],
            }
        ],
        vlines=vlines,
        markers=True,
        y_range=(0.0, 1.0),
        title="Power of the A/B test against days of traffic",
        desc=f"Chance the test detects the expected difference, by days of traffic: {desc}.",
        x_label="days of traffic (before the label delay)",
        y_label="power",
        caption="Power: the chance the test confirms the expected difference. Add the label "
        "delay to get the days until the answer.",
    )


def observed_differences(experiment: Mapping, currency: str = "") -> Markup | str:
    """Distribution of the difference the simulated experiments observe."""
    obs = experiment["simulation"]["observed_difference"]
    hist = obs.get("histogram")
    if not hist:
        return ""
    edges, counts = hist["edges"], hist["counts"]
    bins = [{"low": edges[i], "high": edges[i + 1], "count": c} for i, c in enumerate(counts)]
    q = obs.get("quantiles", {})
    desc = (
        f"{experiment['simulation']['simulations']:,} simulated experiments; observed difference "
        f"median {charts.tick_label(q.get('p50', 0))}, 95% of them between "
        f"{charts.tick_label(q.get('p2.5', 0))} and {charts.tick_label(q.get('p97.5', 0))}; "
        f"expected {charts.tick_label(experiment['difference'])}."
    )
    return charts.histogram(
        bins,
        markers=[
            {"name": "no difference", "value": 0.0},
            {"name": "expected", "value": experiment["difference"]},
        ],
        title="What the A/B test would observe",
        desc=desc,
        x_label=f"observed saving per decision, control − treatment{_money_label(currency)}",
        y_label="experiments",
        caption="Each bar counts simulated experiments at the planned size; left of zero the "
        "test would see the wrong sign.",
    )


def drift_costs(drift: Mapping, currency: str = "") -> Markup:
    """Cost per decision of each policy in each time window of the test period."""
    windows = drift["windows"]
    names = list(windows[0]["cost_per_decision"])
    x = [w["index"] + 1 for w in windows]
    series = [
        {
            "name": n,
            "x": x,
            "y": [w["cost_per_decision"][n]["estimate"] for w in windows],
            "colour": charts.colour(n, i),
        }
        for i, n in enumerate(names)
    ]
    desc = "; ".join(
        f"{s['name']}: from {charts.tick_label(s['y'][0])} to {charts.tick_label(s['y'][-1])}"
        for s in series
    )
    return charts.line_chart(
        series,
        markers=True,
        title="Cost per decision in each time window",
        desc=f"Cost per decision by window (1 is the earliest){_money_label(currency)}: {desc}.",
        x_label=f"time window (1 = earliest, {windows[0]['start'][:10]} on)",
        y_label=f"cost per decision{_money_label(currency)}",
        caption="A policy whose line climbs is decaying; the gap between ml and the rules is "
        "ML's advantage.",
    )


def latency(lat: Mapping) -> Markup:
    """p50 to p99 single-request latency of each policy against the budget, on a log axis."""
    http = lat.get("service") or {}
    rows = []
    for n, p in lat.items():
        if isinstance(p, Mapping) and p.get("p99_ms") is not None:
            rows.append(
                {"name": n, "estimate": p["p50_ms"], "low": p["p50_ms"], "high": p["p99_ms"]}
            )
            h = http.get(n)
            if isinstance(h, Mapping) and h.get("p99_ms") is not None:
                name = f"{n} over HTTP"
                rows.append(
                    {"name": name, "estimate": h["p50_ms"], "low": h["p50_ms"], "high": h["p99_ms"]}
                )
    desc = "; ".join(
        f"{r['name']}: p50 {r['estimate']:.3g} ms, p99 {r['high']:.3g} ms" for r in rows
    )
    return charts.interval_dots(
        rows,
        log=True,
        markers=[{"name": f"budget {lat['budget_ms']:g} ms", "value": lat["budget_ms"]}],
        title="Latency of one decision against the budget",
        desc=f"Single-request latency per policy, budget {lat['budget_ms']:g} ms: {desc}.",
        x_label="milliseconds per request (log scale)",
        caption="Dot: median (p50); bar: up to the 99th percentile (p99). Dashed: the budget.",
    )


def shadow_right(shadow: Mapping) -> Markup:
    """On the rows where the two policies disagree: the share where each one was right."""
    t, c = shadow["treatment"], shadow["control"]
    rows = [
        {"name": f"{t} right", **shadow["treatment_right_share"], "colour": charts.colour(t)},
        {"name": f"{c} right", **shadow["control_right_share"], "colour": charts.colour(c, 1)},
    ]
    desc = (
        f"Of {shadow['disagreements']:,} disagreements, {t} chose the cheaper decision on "
        f"{shadow['treatment_right']:,} and {c} on {shadow['control_right']:,}"
        f" ({shadow.get('ties', 0):,} ties)."
    )
    return charts.interval_dots(
        rows,
        title=f"Who was right when {t} and {c} disagreed",
        desc=desc,
        x_label="share of disagreements (95% interval)",
        caption="A policy is right on a row when its decision realised the lower cost.",
    )


FIGURES = {
    "policy_costs": policy_costs,
    "threshold": threshold,
    "calibration": calibration,
    "shap_importance": shap_importance,
    "shap_dependence": shap_dependence,
    "confusion": confusion,
    "options_net": options_net,
    "upkeep": upkeep,
    "power_curve": power_curve,
    "observed_differences": observed_differences,
    "drift_costs": drift_costs,
    "latency": latency,
    "shadow_right": shadow_right,
}
