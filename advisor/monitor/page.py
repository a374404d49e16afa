"""monitor.html: the verdict first, then each measure's template (its charts and tables), in the analysis
report's style (its stylesheet, SVG helpers and jinja2 environment with autoescape); one
self-contained file with no JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

from advisor.monitor.calculators import sections
from advisor.monitor.figures import FIGURES
from advisor.report.render import environment


def render_monitor(payload: Mapping) -> str:
    """The page for a monitor.json payload."""
    template = environment().get_template("monitor.html.j2")
    estimated = any(p.get("estimated_cost") for p in payload["overall"]["policies"].values())
    shown = {
        "shadow": payload["overall"]["shadow"],
        "test": payload["overall"]["experiment"],
        "estimated_cost": estimated,
    }
    parts = [
        ("verdict", "Verdict"),
        ("alerts", "Alerts and notes"),
        ("inputs", "What was compared"),
    ]
    parts += [(name, title) for name, title, _ in sections() if shown.get(name, True)]
    return template.render(m=payload, mfig=SimpleNamespace(**FIGURES), sections=parts)
