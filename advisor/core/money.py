"""Money as every page, message and README writes it: one rule for digits, sign and currency."""

from __future__ import annotations

import math
from collections.abc import Mapping

MISSING = "–"


def money(value: float | None, currency: str = "", digits: int | None = None) -> str:
    """12345.6 -> '12,346 USD'; amounts below 100 keep cents; a true minus sign; '–' for none."""
    if value is None or not math.isfinite(value):
        return MISSING
    if digits is None:
        digits = 0 if abs(value) >= 100 else 2
    text = f"{value:,.{digits}f}".replace("-", "−")
    return f"{text} {currency}".strip()


def money_interval(entry: Mapping | None, currency: str = "", per: str = "") -> str | None:
    """An estimate with its 95% interval, in cents: '12.30 USD per decision (95% interval 11.10
    to 13.50)'; None when the entry holds no estimate."""
    if not entry or entry.get("estimate") is None:
        return None
    head = " ".join(p for p in (money(entry["estimate"], currency, 2), per) if p)
    low, high = money(entry["low"], digits=2), money(entry["high"], digits=2)
    return f"{head} (95% interval {low} to {high})"
