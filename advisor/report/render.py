"""Jinja2 rendering with autoescape; every section is its own template and shows only what the
result holds, so `advisor render result.json` works on any result."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from advisor.core.money import money
from advisor.report.figures import FIGURES

TEMPLATES = Path(__file__).parent / "templates"

# (key in the payload that must be present, template, title). Entries may be appended in any
# order: the report sorts them by ORDER (unknown keys go just before reproducibility).
SECTIONS: list[tuple[str, str, str]] = [
    ("recommendation", "sections/summary.html.j2", "Executive summary"),
    ("incumbent", "sections/incumbent.html.j2", "What runs today"),
    ("case", "sections/case.html.j2", "The case"),
    ("rules", "sections/rules.html.j2", "The rules"),
    ("model", "sections/model.html.j2", "The ML model"),
    ("evaluation", "sections/comparison.html.j2", "Offline comparison"),
    ("maintenance", "sections/maintenance.html.j2", "Maintenance"),
    ("shadow", "sections/shadow.html.j2", "Shadow mode"),
    ("experiment", "sections/experiment.html.j2", "The A/B test plan"),
    ("drift", "sections/drift.html.j2", "Drift and decay"),
    ("latency", "sections/latency.html.j2", "Serving latency"),
    ("manifest", "sections/reproducibility.html.j2", "Reproducibility"),
]

# The order of the report, by payload key.
ORDER: list[str] = [
    "recommendation",
    "incumbent",
    "case",
    "rules",
    "model",
    "evaluation",
    "shadow",
    "experiment",
    "drift",
    "latency",
    "maintenance",
    "manifest",
]


def pct(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%"


def number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) >= 1000
    ):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def interval(entry, fmt=money, *args) -> str:
    if not entry or entry.get("estimate") is None:
        return "–"
    if entry.get("low") is None:
        return fmt(entry["estimate"], *args)
    return f"{fmt(entry['estimate'], *args)} ({fmt(entry['low'], *args)} to {fmt(entry['high'], *args)})"


@lru_cache(maxsize=1)
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, pct=pct, number=number, interval=interval)
    env.globals.update(money=money, pct=pct, number=number, fig=SimpleNamespace(**FIGURES))
    return env


def _rank(key: str) -> int:
    return ORDER.index(key) if key in ORDER else ORDER.index("manifest") - 1


def _sections(result: dict) -> list[dict]:
    """The sections whose payload key is present, in report order."""
    present = [entry for entry in SECTIONS if result.get(entry[0]) is not None]
    return [
        {"id": template.split("/")[-1].split(".")[0], "template": template, "title": title}
        for key, template, title in sorted(present, key=lambda entry: _rank(entry[0]))
    ]


def render_report(result: dict) -> str:
    """The full, self-contained report (inline CSS and SVG; nothing loaded from the network)."""
    env = environment()
    return env.get_template("report.html.j2").render(r=result, sections=_sections(result))


def render_summary(result: dict) -> str:
    """The summary card shown in a notebook."""
    return environment().get_template("summary.html.j2").render(r=result)
