"""The monitor page's charts, drawn with the report's own SVG helpers (`advisor.report.charts`):
they select and label numbers monitor.json holds and compute nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup

from advisor.report import charts


def _unit(currency: str) -> str:
    return f" ({currency})" if currency else ""


def realised_cost(
    name: str, windows: Sequence[Mapping], overall: Mapping, currency: str
) -> Markup | str:
    """One policy's realised cost per decision in each window and overall (95 % intervals),
    against the offline interval drawn as two dashed lines."""
    rows = []
    offline = (overall["policies"].get(name) or {}).get("cost", {}).get("offline")
    if offline and offline.get("low") is not None:
        rows.append({"name": "offline (test)", **offline, "colour": charts.PALETTE["grey"]})
    for w in [*windows, {"label": "all windows", "policies": overall["policies"]}]:
        cost = (w["policies"].get(name) or {}).get("cost") or {}
        value = cost.get("cost_per_decision")
        if value and value.get("low") is not None:
            colour = charts.PALETTE["vermillion" if cost["position"] == "above" else "blue"]
            rows.append({"name": w["label"], **value, "colour": colour})
    if len(rows) < 2:
        return ""
    desc = "; ".join(
        f"{r['name']}: {charts.tick_label(r['estimate'])} ({charts.tick_label(r['low'])} to "
        f"{charts.tick_label(r['high'])})"
        for r in rows
    )
    return charts.interval_dots(
        rows,
        zero=False,
        title=f"{name}: realised cost per decision by window",
        desc=f"Realised cost per decision on rows with outcomes{_unit(currency)}: {desc}.",
        x_label=f"cost per decision{_unit(currency)}; lower is better",
        caption="Dots: realised cost on the rows whose outcome is known, bars its 95% interval "
        "(red: above the offline interval). Grey: the cost on the run's test split.",
    )


def latency(windows: Sequence[Mapping], budget: float | None) -> Markup | str:
    """p50 and p99 latency per window against the budget."""
    points = [(i + 1, w["operations"].get("latency")) for i, w in enumerate(windows)]
    points = [(x, lat) for x, lat in points if lat]
    if not points:
        return ""
    x = [p[0] for p in points]
    series = [
        {
            "name": name,
            "x": x,
            "y": [lat[key]["estimate"] for _, lat in points],
            "colour": charts.PALETTE[colour],
        }
        for name, key, colour in (("p50", "p50_ms", "blue"), ("p99", "p99_ms", "orange"))
    ]
    hlines = []
    if budget is not None:
        hlines = [{"name": f"budget {budget:g} ms", "value": budget, "colour": "#000"}]
    desc = "; ".join(
        f"window {i}: p50 {lat['p50_ms']['estimate']:.3g} ms, p99 {lat['p99_ms']['estimate']:.3g} ms"
        for i, lat in points
    )
    return charts.line_chart(
        series,
        hlines=hlines,
        markers=True,
        title="Latency by window",
        desc=f"Latency per window (1 is the earliest): {desc}.",
        x_label="window (1 = earliest)",
        y_label="milliseconds",
        caption="The service's time per decision; the budget is the case's.",
    )


def power(windows: Sequence[Mapping]) -> Markup | str:
    """The power the outcomes so far give, window by window, against the target."""
    points = [(i + 1, (w.get("experiment") or {}).get("power")) for i, w in enumerate(windows)]
    points = [(x, p) for x, p in points if p]
    if not points:
        return ""
    target = points[-1][1].get("target_power")
    hlines = [] if target is None else [{"name": f"target {target:.0%}", "value": target}]
    return charts.line_chart(
        [
            {
                "name": "power reached",
                "x": [x for x, _ in points],
                "y": [p["reached"] for _, p in points],
                "colour": charts.PALETTE["blue"],
            }
        ],
        hlines=hlines,
        markers=True,
        y_range=(0.0, 1.0),
        title="Power of the test reached so far",
        desc="Power to date by window: "
        + "; ".join(f"window {x}: {p['reached']:.0%}" for x, p in points)
        + ".",
        x_label="window (1 = earliest)",
        y_label="power",
        caption="The chance the test confirms the planned effect with the control units whose "
        "outcome is known by the end of each window.",
    )


FIGURES = {"realised_cost": realised_cost, "latency": latency, "power": power}
