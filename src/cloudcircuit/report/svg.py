"""Inline SVG line charts for the report, written by hand: axes with 1-2-5 ticks, UTC date
ticks, a legend that wraps, dashed and hollow marks for incomplete data, ringed anomalies and a
``<title>`` tooltip on every point. Colors are Okabe-Ito (safe for color-vision deficiencies);
every mark also differs by dash or shape, never by color alone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


__all__ = [
    "BLUE",
    "GREEN",
    "GRID",
    "INK",
    "MUTED",
    "ORANGE",
    "VERMILION",
    "Chart",
    "Line",
    "Mark",
    "esc",
    "money",
    "svg_line_chart",
]

BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILION = "#D55E00"
GREEN = "#009E73"
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#d8dee4"


# -- numbers and axes ---------------------------------------------------------------------


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1-2-5 step giving about ``ticks`` intervals over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * magnitude:
            return float(mult * magnitude)
    return float(10 * magnitude)


def money(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:,.1f}k"
    if abs(value) >= 10 or value == 0:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(slots=True)
class Line:
    """One drawn series: points, style, and the legend label."""

    label: str
    points: Sequence[tuple[datetime, float]]
    color: str = BLUE
    dash: str | None = None
    width: float = 2.0
    #: points drawn hollow (still settling); their segments are dashed
    hollow: Sequence[bool] = ()
    markers: bool = False
    #: tooltip per point
    titles: Sequence[str] = ()


@dataclass(slots=True)
class Mark:
    """A point to call out (an anomaly): ringed, with a tooltip."""

    at: datetime
    value: float
    title: str
    color: str = VERMILION


@dataclass(slots=True)
class Chart:
    title: str
    x_min: datetime
    x_max: datetime
    lines: list[Line] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    #: shaded x ranges (incomplete buckets) with a legend label
    shade: tuple[datetime, datetime] | None = None
    shade_label: str = "still settling (incomplete)"
    currency: str = "USD"
    width: int = 760
    height: int = 300


def _date_ticks(lo: datetime, hi: datetime, max_ticks: int = 8) -> list[datetime]:
    span_days = max((hi - lo).total_seconds() / 86400.0, 1e-9)
    for step in (1, 2, 3, 7, 14, 30, 61, 91, 182, 365):
        if span_days / step <= max_ticks:
            break
    if span_days < 2:
        hours = max(1, math.ceil(span_days * 24 / max_ticks))
        first = lo.replace(minute=0, second=0, microsecond=0)
        out = []
        t = first
        while t <= hi:
            if t >= lo:
                out.append(t)
            t += timedelta(hours=hours)
        return out
    first = lo.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < lo:
        first += timedelta(days=1)
    if step >= 30:
        out = []
        t = first.replace(day=1)
        while t <= hi:
            if t >= lo:
                out.append(t)
            t = (t.replace(day=28) + timedelta(days=4)).replace(day=1)
        return out
    return [first + timedelta(days=d) for d in range(0, int(span_days) + 1, step)]


def svg_line_chart(chart: Chart) -> str:
    """An accessible inline SVG line chart (axes, ticks, dates, legend, tooltips)."""
    left, right, bottom = 64, 18, 44
    w = chart.width
    top = 22 + 18 * len(_legend_rows(chart, left, w))
    h = chart.height + top - 40
    pw, ph = w - left - right, h - top - bottom
    values = [v for line in chart.lines for _, v in line.points] + [m.value for m in chart.marks]
    y_max = max([0.0, *[v for v in values if math.isfinite(v)]])
    y_min = min([0.0, *[v for v in values if math.isfinite(v)]])
    step = _nice_step(y_max - y_min or 1.0)
    y_top = math.ceil(y_max / step) * step if y_max > 0 else step
    y_bot = math.floor(y_min / step) * step
    x0, x1 = chart.x_min, chart.x_max
    span = max((x1 - x0).total_seconds(), 1.0)

    def px(t: datetime) -> float:
        return left + pw * (t - x0).total_seconds() / span

    def py(v: float) -> float:
        return top + ph * (1 - (v - y_bot) / (y_top - y_bot))

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{esc(chart.title)}" class="cc-chart">',
        f"<title>{esc(chart.title)}</title>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    if chart.shade is not None:
        s0, s1 = max(chart.shade[0], x0), min(chart.shade[1], x1)
        if s1 > s0:
            out.append(
                f'<rect class="incomplete" x="{px(s0):.1f}" y="{top}" '
                f'width="{px(s1) - px(s0):.1f}" height="{ph}" fill="#eaeef2">'
                f"<title>{esc(chart.shade_label)}</title></rect>"
            )
    # y grid and labels
    v = y_bot
    while v <= y_top + step / 2:
        y = py(v)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
            f'stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{MUTED}">{esc(money(v))}</text>'
        )
        v += step
    out.append(
        f'<text x="14" y="{top + ph / 2:.1f}" font-size="12" fill="{MUTED}" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})" text-anchor="middle">'
        f"{esc(chart.currency)}</text>"
    )
    # x axis, ticks and dates
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{INK}" '
        f'stroke-width="1"/>'
    )
    hourly = (x1 - x0) < timedelta(days=2)
    for tick in _date_ticks(x0, x1):
        x = px(tick)
        label = tick.strftime("%H:%M") if hourly else tick.strftime("%b %d")
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 5}" stroke="{INK}"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{top + ph + 19}" text-anchor="middle" font-size="12" '
            f'fill="{MUTED}">{esc(label)}</text>'
        )
    # lines
    for line in chart.lines:
        out.extend(_draw_line(line, px, py))
    for mark in chart.marks:
        x, y = px(mark.at), py(mark.value)
        out.append(
            f'<g class="anomaly"><circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" '
            f'stroke="{mark.color}" stroke-width="2.5"/>'
            f'<path d="M{x - 4:.1f} {y - 12:.1f} L{x + 4:.1f} {y - 12:.1f} L{x:.1f} {y - 7:.1f} Z"'
            f' fill="{mark.color}"/><title>{esc(mark.title)}</title></g>'
        )
    out.append(_legend(chart, left, w))
    out.append("</svg>")
    return "".join(out)


def _draw_line(line: Line, px: Any, py: Any) -> list[str]:
    pts = [(px(t), py(v), i) for i, (t, v) in enumerate(line.points) if math.isfinite(v)]
    if not pts:
        return []
    hollow = list(line.hollow) + [False] * (len(line.points) - len(line.hollow))
    out: list[str] = []
    solid = [p for p in pts if not hollow[p[2]]]
    label = esc(line.label)
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    if solid:
        d = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y, _ in solid)
        out.append(
            f'<path class="series" d="{d}" fill="none" stroke="{line.color}" '
            f'stroke-width="{line.width}"{dash} stroke-linejoin="round">'
            f"<title>{label}</title></path>"
        )
    pending = [p for p in pts if hollow[p[2]]]
    if pending:
        chain = ([solid[-1]] if solid and solid[-1][2] < pending[0][2] else []) + pending
        d = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y, _ in chain)
        out.append(
            f'<path class="series incomplete-line" d="{d}" fill="none" stroke="{line.color}" '
            f'stroke-width="{line.width}" stroke-dasharray="5 4"><title>{label} '
            f"(incomplete)</title></path>"
        )
    if line.markers:
        titles = list(line.titles) + [""] * (len(line.points) - len(line.titles))
        for x, y, i in pts:
            fill = "#ffffff" if hollow[i] else line.color
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{fill}" stroke="{line.color}" '
                f'stroke-width="1.5"><title>{esc(titles[i])}</title></circle>'
            )
    return out


def _legend_entries(chart: Chart) -> list[tuple[str, str, str | None, str]]:
    entries: list[tuple[str, str, str | None, str]] = [
        (line.label, line.color, line.dash, "line") for line in chart.lines
    ]
    if chart.marks:
        entries.append(("anomaly flagged", chart.marks[0].color, None, "ring"))
    if chart.shade is not None:
        entries.append((chart.shade_label, "#eaeef2", None, "box"))
    return entries


def _legend_rows(chart: Chart, left: int, width: int) -> list[list[tuple[float, int]]]:
    """Positions (x, entry index) per legend row, wrapping at the chart's width."""
    rows: list[list[tuple[float, int]]] = [[]]
    x = float(left)
    for i, (label, *_rest) in enumerate(_legend_entries(chart)):
        size = 34 + 6.4 * len(label)
        if rows[-1] and x + size > width - 8:
            rows.append([])
            x = float(left)
        rows[-1].append((x, i))
        x += size + 10
    return rows


def _legend(chart: Chart, left: int, width: int) -> str:
    entries = _legend_entries(chart)
    items: list[str] = []
    for row_no, row in enumerate(_legend_rows(chart, left, width)):
        y = 14 + 18 * row_no
        for x, i in row:
            label, color, dash, kind = entries[i]
            if kind == "line":
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                items.append(
                    f'<line x1="{x:.0f}" x2="{x + 22:.0f}" y1="{y}" y2="{y}" stroke="{color}" '
                    f'stroke-width="2.5"{dash_attr}/>'
                )
            elif kind == "ring":
                items.append(
                    f'<circle cx="{x + 11:.0f}" cy="{y}" r="6" fill="none" stroke="{color}" '
                    f'stroke-width="2.5"/>'
                )
            else:
                items.append(
                    f'<rect x="{x:.0f}" y="{y - 6}" width="22" height="12" fill="{color}" '
                    f'stroke="#afb8c1"/>'
                )
            items.append(
                f'<text x="{x + 28:.0f}" y="{y + 4}" font-size="12" fill="{INK}">'
                f"{esc(label)}</text>"
            )
    return f'<g class="legend">{"".join(items)}</g>'
