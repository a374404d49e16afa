"""monitor.html: the verdict first, then the windows as charts and tables, in the analysis
report's style (its stylesheet, SVG helpers and jinja2 environment with autoescape); one
self-contained file with no JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

from advisor.monitor.figures import FIGURES
from advisor.report.render import environment


def render_monitor(payload: Mapping) -> str:
    """The page for a monitor.json payload."""
    template = environment().get_template("monitor.html.j2")
    return template.render(m=payload, mfig=SimpleNamespace(**FIGURES))
