"""Small hand-built SVG charts for the report: no JavaScript, nothing from the network.

Every chart is a `<figure>` holding one `<svg role="img">` with a `<title>` and a `<desc>` (its
text alternative) and a visible caption. Colours come from the Okabe-Ito palette, which stays
distinguishable with the common colour-vision deficiencies; lines also differ by dash pattern.
Every piece of text is escaped here, so a column called `<script>` is drawn as text.

The functions only map numbers the payload already holds to pixels; they compute no results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

# Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#6b7280",
}
CYCLE = ["blue", "orange", "green", "vermillion", "purple", "sky", "black"]
POLICY_COLOURS = {
    "baseline": "grey",
    "rules": "blue",
    "expert-rules": "purple",
    "ml": "vermillion",
}
DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2"]

W, H = 440, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 24, 14, 46  # RIGHT leaves room for a centred tick label
FONT = 13


def colour(name: str, index: int = 0) -> str:
    """A palette colour for a policy name (fixed), or the `index`-th colour of the cycle."""
    key = POLICY_COLOURS.get(name) or CYCLE[index % len(CYCLE)]
    return PALETTE[key]


def _n(value: float) -> str:
    """A coordinate with at most one decimal (keeps the SVG small)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def tick_label(value: float) -> str:
    """Compact tick text: 1,200 -> 1.2k, 0.25 -> 0.25, -3 -> −3."""
    a = abs(value)
    if a >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif a >= 1e4:
        text = f"{value / 1e3:.3g}k"
    elif a >= 100 or value == int(value):
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return text.replace("-", "−")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5 and len(ticks) < 20:
        ticks.append(round(v, 10))
        v += step
    return ticks


class Scale:
    """Linear map from data to pixels."""

    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        if hi == lo:
            hi = lo + 1.0
        self.lo, self.hi, self.a, self.b = lo, hi, a, b

    def __call__(self, v: float) -> float:
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _finite(values: Iterable) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _extent(values: Iterable, pad: float = 0.05, include: Sequence[float] = ()) -> tuple:
    vals = _finite(values) + list(include)
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    span = hi - lo or abs(hi) or 1.0
    # Padding never pushes an axis that starts (or ends) at zero across it.
    return (
        lo - span * pad if lo < 0 or lo - span * pad >= 0 else 0.0,
        hi + span * pad if hi > 0 or hi + span * pad <= 0 else 0.0,
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _marker(x: float, top: float, label_y: float, name: str, col: str, style: str) -> str:
    """A labelled vertical line down to the x axis; the label sits on the roomier side."""
    anchor = "start" if x < (LEFT + W) / 2 else "end"
    dx = 3 if anchor == "start" else -3
    return (
        f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{H - BOTTOM}" stroke="{col}" {style}/>'
        f'<g fill="{col}">{_text(x + dx, label_y, name, anchor)}</g>'
    )


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _figure(svg_body: str, title: str, desc: str, caption: str | None, height: int = H) -> Markup:
    label = escape(title)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" role="img" '
        f'aria-label="{label}" font-size="{FONT}" font-family="system-ui,sans-serif">'
        f"<title>{label}</title><desc>{escape(desc)}</desc>{svg_body}</svg>"
    )
    cap = f"<figcaption>{escape(caption or title)}</figcaption>"
    return Markup(f'<figure class="chart">{svg}{cap}</figure>')


def _axes(
    xs: Scale,
    ys: Scale,
    xticks: Sequence[float],
    yticks: Sequence[float],
    x_label: str,
    y_label: str,
    height: int = H,
    xtick_text: Sequence[str] | None = None,
) -> str:
    parts = ['<g fill="#1d2330">']
    bottom = height - BOTTOM
    for i, t in enumerate(xticks):
        x = xs(t)
        label = xtick_text[i] if xtick_text else tick_label(t)
        parts.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{TOP}" y2="{bottom}" stroke="#e5e8ee"/>')
        parts.append(_text(x, bottom + 15, label))
    for t in yticks:
        y = ys(t)
        parts.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" stroke="#e5e8ee"/>'
        )
        parts.append(_text(LEFT - 5, y + 4, tick_label(t), "end"))
    parts.append(f'<path d="M{LEFT} {TOP}V{bottom}H{W - RIGHT}" fill="none" stroke="#5b6475"/>')
    parts.append(_text((LEFT + W - RIGHT) / 2, height - 8, x_label))
    cy = (TOP + bottom) / 2
    parts.append(_text(14, cy, y_label, extra=f' transform="rotate(-90 14 {_n(cy)})"'))
    parts.append("</g>")
    return "".join(parts)


LEGEND_ROW = 16


def _legend_layout(labels: Sequence[str]) -> list[tuple[float, int]]:
    """(x, row) of each legend entry, wrapping onto new rows when the width runs out."""
    out, x, row = [], LEFT + 6.0, 0
    for label in labels:
        width = 28 + len(_short(label, 22)) * FONT * 0.55
        if x + width > W - RIGHT and x > LEFT + 6:
            x, row = LEFT + 6.0, row + 1
        out.append((x, row))
        x += width
    return out


def _legend(items: Sequence[tuple[str, str, str]], y: float) -> str:
    """Legend entries (label, colour, dash) above the plot area, wrapped into rows."""
    parts = []
    for (label, col, dash), (x, row) in zip(
        items, _legend_layout([i[0] for i in items]), strict=True
    ):
        yy = y + row * LEGEND_ROW
        d = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{_n(x)}" x2="{_n(x + 16)}" y1="{_n(yy)}" y2="{_n(yy)}" '
            f'stroke="{col}" stroke-width="2.5"{d}/>'
        )
        parts.append(_text(x + 20, yy + 4, _short(label, 22), "start"))
    return f'<g fill="#1d2330">{"".join(parts)}</g>'


def line_chart(
    series: Sequence[dict],
    *,
    title: str,
    desc: str,
    x_label: str,
    y_label: str,
    hlines: Sequence[dict] = (),
    vlines: Sequence[dict] = (),
    caption: str | None = None,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    markers: bool = False,
) -> Markup:
    """Lines through points. `series`: [{"name", "x": [...], "y": [...], "colour"?}];
    `hlines` / `vlines`: [{"name", "value", "colour"?}] drawn as labelled dashed references."""
    xs_all = [v for s in series for v in s["x"]] + [v["value"] for v in vlines]
    ys_all = [v for s in series for v in s["y"]] + [h["value"] for h in hlines]
    x0, x1 = x_range or _extent(xs_all, 0)
    y0, y1 = y_range or _extent(ys_all)
    yt = nice_ticks(y0, y1)
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])
    xt = [t for t in nice_ticks(x0, x1) if x0 - 1e-9 <= t <= x1 + 1e-9]
    names = [s["name"] for s in series] + [h["name"] for h in hlines]
    rows = 1 + max((r for _, r in _legend_layout(names)), default=0)
    legend_h = 6 + LEGEND_ROW * rows
    xs = Scale(x0, x1, LEFT, W - RIGHT)
    ys = Scale(y0, y1, H - BOTTOM, TOP + legend_h)
    body = [_axes(xs, ys, xt, yt, x_label, y_label)]
    legend = []
    for i, h in enumerate(hlines):
        col = h.get("colour") or colour(h["name"], i + len(series))
        y = ys(h["value"])
        body.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" stroke="{col}" '
            f'stroke-width="1.5" stroke-dasharray="2 3"><title>{escape(h["name"])}: '
            f"{escape(tick_label(h['value']))}</title></line>"
        )
        legend.append((h["name"], col, "2 3"))
    for v in vlines:
        col = v.get("colour") or PALETTE["black"]
        body.append(
            _marker(
                xs(v["value"]),
                TOP + legend_h,
                TOP + legend_h + 12,
                v["name"],
                col,
                'stroke-dasharray="4 2"',
            )
        )
    for i, s in enumerate(series):
        col = s.get("colour") or colour(s["name"], i)
        pts = [
            (xs(x), ys(y))
            for x, y in zip(s["x"], s["y"], strict=True)
            if x is not None and y is not None
        ]
        if not pts:
            continue
        d = "M" + "L".join(f"{_n(px)} {_n(py)}" for px, py in pts)
        dash = DASHES[i % len(DASHES)]
        da = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<path d="{d}" fill="none" stroke="{col}" stroke-width="2.2"{da}/>')
        if markers:
            dots = "".join(f"M{_n(px)} {_n(py)}h0" for px, py in pts)
            body.append(
                f'<path d="{dots}" stroke="{col}" stroke-width="6" stroke-linecap="round"/>'
            )
        legend.insert(i, (s["name"], col, dash))
    body.append(_legend(legend, TOP + 6))
    return _figure("".join(body), title, desc, caption)


def interval_dots(
    rows: Sequence[dict],
    *,
    title: str,
    desc: str,
    x_label: str,
    caption: str | None = None,
    zero: bool = True,
    log: bool = False,
    markers: Sequence[dict] = (),
) -> Markup:
    """One row per item: a dot at the estimate and a bar over its interval.
    `rows`: [{"name", "estimate", "low"?, "high"?, "colour"?}]; `markers`: [{"name", "value"}]
    drawn as labelled vertical lines (e.g. a budget). `log`: a base-10 axis (positive values)."""
    label_w = min(max((len(str(r["name"])) for r in rows), default=4) * 7 + 10, 150)
    left = max(LEFT, label_w)
    row_h = 28
    top = TOP + (14 if markers else 0)
    height = top + row_h * len(rows) + BOTTOM
    vals = [v for r in rows for v in (r["estimate"], r.get("low"), r.get("high"))]
    vals += [m["value"] for m in markers]
    if log:
        pos = [math.log10(v) for v in _finite(vals) if v > 0] or [0.0]
        lo, hi = math.floor(min(pos)), math.ceil(max(pos))
        hi = hi if hi > lo else lo + 1
        ticks = list(range(lo, hi + 1))
        labels = [tick_label(10.0**t) for t in ticks]

        def tx(v: float) -> float:
            return math.log10(v) if v and v > 0 else lo
    else:
        lo, hi = _extent(vals, 0.08, include=(0.0,) if zero else ())
        ticks = nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        labels = [tick_label(t) for t in ticks]

        def tx(v: float) -> float:
            return v

    scale = Scale(lo, hi, left, W - RIGHT)

    def xs(v: float) -> float:
        return scale(tx(v))

    bottom = height - BOTTOM
    body = ['<g fill="#1d2330">']
    for t, label in zip(ticks, labels, strict=True):
        x = scale(t)
        body.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{bottom}" stroke="#e5e8ee"/>')
        body.append(_text(x, bottom + 15, label))
    if zero and not log and lo < 0 < hi:
        x = xs(0)
        body.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{bottom}" stroke="#5b6475"/>')
    body.append(_text((left + W - RIGHT) / 2, height - 8, x_label))
    for m in markers:
        x = xs(m["value"])
        anchor = "start" if x < (left + W) / 2 else "end"
        body.append(
            f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{TOP}" y2="{bottom}" stroke="#000" '
            f'stroke-width="1.5" stroke-dasharray="4 2"/>'
        )
        body.append(_text(x + (3 if anchor == "start" else -3), TOP + 10, m["name"], anchor))
    for i, r in enumerate(rows):
        col = r.get("colour") or colour(r["name"], i)
        y = top + row_h * (i + 0.5)
        body.append(_text(left - 6, y + 4, _short(r["name"], 20), "end"))
        if r.get("low") is not None and r.get("high") is not None:
            x_lo, x_hi = xs(r["low"]), xs(r["high"])
            body.append(
                f'<path d="M{_n(x_lo)} {_n(y)}H{_n(x_hi)}M{_n(x_lo)} {_n(y - 5)}v10'
                f'M{_n(x_hi)} {_n(y - 5)}v10" stroke="{col}" stroke-width="2"/>'
            )
        body.append(
            f'<circle cx="{_n(xs(r["estimate"]))}" cy="{_n(y)}" r="5" fill="{col}">'
            f"<title>{escape(r['name'])}: {escape(tick_label(r['estimate']))}</title></circle>"
        )
    body.append("</g>")
    return _figure("".join(body), title, desc, caption, height)


def hbars(
    rows: Sequence[dict],
    *,
    title: str,
    desc: str,
    x_label: str,
    caption: str | None = None,
    bar_colour: str = PALETTE["blue"],
) -> Markup:
    """Horizontal bars from zero. `rows`: [{"name", "value"}], drawn in the given order."""
    label_w = min(max((len(str(r["name"])) for r in rows), default=4) * 7 + 10, 170)
    left = max(LEFT, label_w)
    row_h = 22
    height = TOP + row_h * len(rows) + BOTTOM
    hi = max([*_finite(r["value"] for r in rows), 0.0]) or 1.0
    ticks = nice_ticks(0.0, hi)
    xs = Scale(0.0, max(hi, ticks[-1]), left, W - RIGHT)
    bottom = height - BOTTOM
    body = ['<g fill="#1d2330">']
    for t in ticks:
        x = xs(t)
        body.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{TOP}" y2="{bottom}" stroke="#e5e8ee"/>')
        body.append(_text(x, bottom + 15, tick_label(t)))
    body.append(_text((left + W - RIGHT) / 2, height - 8, x_label))
    for i, r in enumerate(rows):
        y = TOP + row_h * i
        w = max(xs(r["value"]) - left, 0.5)
        body.append(_text(left - 6, y + row_h / 2 + 4, _short(r["name"], 24), "end"))
        body.append(
            f'<rect x="{left}" y="{_n(y + 3)}" width="{_n(w)}" height="{row_h - 6}" '
            f'fill="{bar_colour}"><title>{escape(r["name"])}: '
            f"{escape(tick_label(r['value']))}</title></rect>"
        )
    body.append("</g>")
    return _figure("".join(body), title, desc, caption, height)


def scatter(
    x: Sequence,
    y: Sequence,
    *,
    title: str,
    desc: str,
    x_label: str,
    y_label: str,
    caption: str | None = None,
    categories: Sequence[str] | None = None,
    diagonal: bool = False,
    sizes: Sequence[float] | None = None,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    dot_colour: str = PALETTE["blue"],
) -> Markup:
    """Points. With `categories`, `x` holds category labels, placed at even positions with a
    small deterministic jitter. `sizes` scales dot areas (e.g. counts per bin)."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    xtick_text = None
    if categories is not None:
        pos = {c: i for i, c in enumerate(categories)}
        pairs = [
            (pos[str(a)] + ((k * 0.618) % 1 - 0.5) * 0.5, b)
            for k, (a, b) in enumerate(pairs)
            if str(a) in pos
        ]
        x0, x1 = -0.6, len(categories) - 0.4
        xt = list(range(len(categories)))
        limit = max(3, int(40 / max(len(categories), 1)))
        xtick_text = [_short(c, limit) for c in categories]
    else:
        x0, x1 = x_range or _extent([a for a, _ in pairs])
        xt = [t for t in nice_ticks(x0, x1) if x0 - 1e-9 <= t <= x1 + 1e-9]
    y0, y1 = y_range or _extent([b for _, b in pairs])
    yt = [t for t in nice_ticks(y0, y1) if y0 - 1e-9 <= t <= y1 + 1e-9] or [y0]
    xs = Scale(x0, x1, LEFT, W - RIGHT)
    ys = Scale(y0, y1, H - BOTTOM, TOP)
    body = [_axes(xs, ys, xt, yt, x_label, y_label, xtick_text=xtick_text)]
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        body.append(
            f'<line x1="{_n(xs(lo))}" y1="{_n(ys(lo))}" x2="{_n(xs(hi))}" y2="{_n(ys(hi))}" '
            f'stroke="{PALETTE["grey"]}" stroke-dasharray="4 3"/>'
        )
    if sizes is not None:
        top = max([*_finite(sizes), 1.0])
        for (a, b), s in zip(pairs, sizes, strict=False):
            r = 3 + 7 * math.sqrt(max(s, 0) / top)
            body.append(
                f'<circle cx="{_n(xs(a))}" cy="{_n(ys(b))}" r="{_n(r)}" fill="{dot_colour}" '
                f'fill-opacity=".75"><title>{escape(tick_label(s))} rows</title></circle>'
            )
    else:
        dots = "".join(f"M{_n(xs(a))} {_n(ys(b))}h0" for a, b in pairs)
        body.append(
            f'<path d="{dots}" stroke="{dot_colour}" stroke-opacity=".55" stroke-width="5" '
            'stroke-linecap="round"/>'
        )
    return _figure("".join(body), title, desc, caption)


def histogram(
    bins: Sequence[dict],
    *,
    title: str,
    desc: str,
    x_label: str,
    y_label: str = "count",
    markers: Sequence[dict] = (),
    caption: str | None = None,
    bar_colour: str = PALETTE["sky"],
) -> Markup:
    """Bars over given bins. `bins`: [{"low", "high", "count"}]; `markers`: [{"name", "value"}]
    drawn as labelled vertical lines (e.g. zero, the expected difference)."""
    if not bins:
        return _figure("", title, desc, caption)
    x0 = min([b["low"] for b in bins] + [m["value"] for m in markers])
    x1 = max([b["high"] for b in bins] + [m["value"] for m in markers])
    top = max(b["count"] for b in bins) or 1
    yt = nice_ticks(0, top)
    xs = Scale(x0, x1, LEFT, W - RIGHT)
    ys = Scale(0, max(top, yt[-1]), H - BOTTOM, TOP + 16)
    xt = [t for t in nice_ticks(x0, x1) if x0 - 1e-9 <= t <= x1 + 1e-9]
    body = [_axes(xs, ys, xt, yt, x_label, y_label)]
    base = ys(0)
    for b in bins:
        xa, xb = xs(b["low"]), xs(b["high"])
        yv = ys(b["count"])
        body.append(
            f'<rect x="{_n(xa)}" y="{_n(yv)}" width="{_n(max(xb - xa - 0.5, 0.5))}" '
            f'height="{_n(base - yv)}" fill="{bar_colour}"/>'
        )
    for i, m in enumerate(markers):
        col = m.get("colour") or [PALETTE["black"], PALETTE["vermillion"], PALETTE["blue"]][i % 3]
        dash = DASHES[(i + 1) % len(DASHES)]
        body.append(
            _marker(
                xs(m["value"]),
                TOP + 10,
                TOP + 10 + 12 * i,
                m["name"],
                col,
                f'stroke-width="2" stroke-dasharray="{dash}"',
            )
        )
    return _figure("".join(body), title, desc, caption)


def heat_table(
    rows: Sequence[str],
    columns: Sequence[str],
    counts: Sequence[Sequence[float]],
    *,
    title: str,
    desc: str,
    row_label: str = "actual",
    column_label: str = "decision",
    notes: Sequence[Sequence[str]] | None = None,
    caption: str | None = None,
) -> Markup:
    """A confusion-style grid: cell shade by count (share of all rows), with the count and an
    optional note (e.g. the total cost) written in each cell."""
    total = sum(sum(r) for r in counts) or 1
    label_w = min(max((len(str(r)) for r in rows), default=4) * 7 + 14, 140)
    left = max(LEFT, label_w) + 14
    cell_w = (W - RIGHT - left) / max(len(columns), 1)
    cell_h = 44
    top = TOP + 22
    height = top + cell_h * len(rows) + 10
    body = ['<g fill="#1d2330">']
    body.append(_text((left + W - RIGHT) / 2, TOP + 2, column_label))
    for j, c in enumerate(columns):
        body.append(_text(left + cell_w * (j + 0.5), top - 6, _short(c, int(cell_w / 7))))
    cy = top + cell_h * len(rows) / 2
    body.append(_text(12, cy, row_label, extra=f' transform="rotate(-90 12 {_n(cy)})"'))
    for i, r in enumerate(rows):
        y = top + cell_h * i
        body.append(_text(left - 6, y + cell_h / 2 + 4, _short(r, 18), "end"))
        for j in range(len(columns)):
            share = counts[i][j] / total
            x = left + cell_w * j
            alpha = 0.08 + 0.8 * math.sqrt(share)
            ink = "#fff" if alpha > 0.55 else "#1d2330"
            body.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell_w - 2)}" height="{cell_h - 2}" '
                f'fill="{PALETTE["blue"]}" fill-opacity="{alpha:.2f}"/>'
            )
            body.append(
                f'<g fill="{ink}">{_text(x + cell_w / 2, y + 18, tick_label(counts[i][j]))}'
            )
            if notes is not None:
                body.append(_text(x + cell_w / 2, y + 34, str(notes[i][j])))
            body.append("</g>")
    body.append("</g>")
    return _figure("".join(body), title, desc, caption, int(height))
