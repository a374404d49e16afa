"""A policy as a notebook shows it: what it is, its version, its inputs and its decisions."""

from __future__ import annotations

from html import escape


def policy_html(policy) -> str:
    """A small HTML card for `Policy._repr_html_`; every value escaped (names come from data)."""
    about = policy.describe()
    rows = [
        ("policy", f"{policy.name} ({policy.kind})"),
        ("version", policy.version),
        ("decisions", ", ".join(map(str, policy.costs.decisions))),
        ("reads", ", ".join(policy.input_columns()) or "nothing (a constant decision)"),
    ]
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{escape(k)}</th>"
        f"<td style='text-align:left'>{escape(str(v))}</td></tr>"
        for k, v in rows
    )
    rules = getattr(policy, "rules_", None)
    listing = f"<pre>{escape(rules.english())}</pre>" if rules is not None else ""
    return (
        f"<div class='advisor-policy'><strong>{escape(str(about.get('title', policy.name)))}"
        f"</strong><p>{escape(str(about.get('summary', '')))}</p>"
        f"<table>{body}</table>{listing}</div>"
    )
