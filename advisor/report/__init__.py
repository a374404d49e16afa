"""The HTML report: renders a result payload (never computes), one template per section."""

from __future__ import annotations

from advisor.report.render import SECTIONS, render_report, render_summary

__all__ = ["SECTIONS", "render_report", "render_summary"]
