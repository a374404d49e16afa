"""Jinja2 rendering with autoescape; every section is its own template and shows only what the
result holds, so `advisor render result.json` works on any result."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"

# (key in the payload that must be present, template, title); the order of the report.
SECTIONS: list[tuple[str, str, str]] = [
    ("case", "sections/case.html.j2", "The case"),
    ("data", "sections/data.html.j2", "The data"),
    ("rules", "sections/rules.html.j2", "The rules"),
    ("evaluation", "sections/comparison.html.j2", "Offline comparison"),
    ("shadow", "sections/shadow.html.j2", "Shadow mode"),
    ("experiment", "sections/experiment.html.j2", "The A/B test plan"),
    ("drift", "sections/drift.html.j2", "Drift and decay"),
    ("latency", "sections/latency.html.j2", "Serving latency"),
    ("manifest", "sections/reproducibility.html.j2", "Reproducibility"),
]


def money(value, currency: str = "", digits: int | None = None) -> str:
    """12345.6 -> '12,346 USD'; small amounts keep cents."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 2
    text = f"{value:,.{digits}f}".replace("-", "−")
    return f"{text} {currency}".strip()


def pct(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}%"


def number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
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
    env.globals.update(money=money, pct=pct, number=number)
    return env


def _sections(result: dict) -> list[dict]:
    return [
        {"id": template.split("/")[-1].split(".")[0], "template": template, "title": title}
        for key, template, title in SECTIONS
        if result.get(key) is not None
    ]


def render_report(result: dict) -> str:
    """The full, self-contained report (inline CSS and SVG; nothing loaded from the network)."""
    env = environment()
    return env.get_template("report.html.j2").render(r=result, sections=_sections(result))


def render_summary(result: dict) -> str:
    """The summary card shown in a notebook."""
    return environment().get_template("summary.html.j2").render(r=result)
