"""The HTML report of a scan: one self-contained file, readable offline, no script, no CDN.

Per judged scope it draws two inline SVG charts, generated here:

- **spend per bucket**: the series, the budget pro-rated per bucket (dashed), buckets still
  settling shaded and drawn hollow on a dashed segment, and the buckets the anomaly rule flags
  (ringed, with the numbers in a ``<title>`` tooltip);
- **period to date** (when the period spans several buckets): cumulative spend against the
  budget and its warning level, and the forecast to the period's end as a dashed line.

Then the decisions with their evidence, the enforcement plan (and what could not run), errors
and what reading cost. Colors follow the Okabe-Ito palette (distinguishable with the common
color-vision deficiencies) and every mark is also told apart by shape or dash, not color alone.
The charts are drawn by :mod:`cloudcircuit.report.svg`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudcircuit.report.svg import (
    BLUE,
    GREEN,
    INK,
    ORANGE,
    VERMILION,
    Chart,
    Line,
    Mark,
    esc,
    money,
    svg_line_chart,
)
from cloudcircuit.spend import bucket_range, scope_key

if TYPE_CHECKING:
    from cloudcircuit.decision import Decision
    from cloudcircuit.scan import ScanResult, ScopeResult

__all__ = [
    "CSS",
    "MAX_MARKERS",
    "Chart",
    "Line",
    "Mark",
    "render_report",
    "svg_line_chart",
    "write_report",
]

#: above this many buckets a series is drawn as a line without per-point markers
MAX_MARKERS = 200

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  margin: 0; background: #f6f8fa; }
header { background: #1f2328; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #d0d7de; }
main { padding: 20px 28px 40px; max-width: 1180px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px;
  margin: 0 0 18px; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 0 0 6px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eaeef2;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-weight: 700;
  font-size: 13px; border: 1px solid; }
.allow { background: #dafbe1; color: #0a5c2b; border-color: #4ac26b; }
.throttle { background: #fff8c5; color: #6f4400; border-color: #d4a72c; }
.block { background: #ffebe9; color: #a40e26; border-color: #ff8182; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 0 0 18px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 16px;
  min-width: 130px; }
.card b { display: block; font-size: 24px; }
.charts { display: flex; gap: 16px; flex-wrap: wrap; }
.chart { flex: 1 1 520px; min-width: 0; max-width: 760px; }
.chart svg { width: 100%; height: auto; display: block; }
.muted { color: #57606a; }
.scope-head { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
ul.evidence { margin: 4px 0 0; padding-left: 18px; }
details summary { cursor: pointer; color: #0969da; }
code { font-size: 13px; }
"""


# -- the page -----------------------------------------------------------------------------


def _badge(action: str) -> str:
    return f'<span class="badge {esc(action)}">{esc(action)}</span>'


def _scope_label(scope: Any) -> str:
    return scope_key(scope) if scope else "all spend"


def _spend_chart(sr: ScopeResult) -> str:
    s = sr.series
    gran = s.granularity
    points = list(zip(s.starts, (float(a) for a in s.amounts), strict=True))
    hollow = [not bool(c) for c in s.complete]
    n_period = len(bucket_range(sr.period_start, sr.period_end, gran))
    per_bucket = sr.amount / max(n_period, 1)
    end = gran.next(s.starts[-1])
    titles = [
        f"{t:%Y-%m-%d %H:%M} UTC: {v:,.2f} {s.currency}{'' if c else ' (incomplete)'}"
        for (t, v), c in zip(points, s.complete, strict=True)
    ]
    first_incomplete = next((i for i, c in enumerate(s.complete) if not c), None)
    shade = (s.starts[first_incomplete], end) if first_incomplete is not None else None
    flagged = set(sr.anomalies)
    marks = [
        Mark(
            at=s.starts[i],
            value=float(s.amounts[i]),
            title=f"anomaly {s.starts[i]:%Y-%m-%d}: {float(s.amounts[i]):,.2f} {s.currency}",
        )
        for i in sorted(flagged)
    ]
    budget_label = (
        f"budget per {gran.value} ({money(sr.amount)}/{sr.period} pro-rated)"
        if n_period > 1
        else f"budget ({money(sr.amount)}/{sr.period})"
    )
    chart = Chart(
        title=f"{sr.budget}: spend per {gran.value}, {_scope_label(sr.scope)}",
        x_min=s.starts[0],
        x_max=s.starts[-1],
        currency=s.currency,
        shade=shade,
        lines=[
            Line(
                f"spend per {gran.value}",
                points,
                BLUE,
                hollow=hollow,
                markers=len(points) <= MAX_MARKERS,
                titles=titles,
            ),
            Line(
                budget_label,
                [(s.starts[0], per_bucket), (s.starts[-1], per_bucket)],
                INK,
                dash="8 5",
                width=1.5,
            ),
        ],
        marks=marks,
    )
    return svg_line_chart(chart)


def _period_chart(sr: ScopeResult) -> str | None:
    s = sr.series
    gran = s.granularity
    starts = bucket_range(sr.period_start, sr.period_end, gran)
    if len(starts) < 2:
        return None
    idx = [i for i, t in enumerate(s.starts) if sr.period_start <= t < sr.period_end]
    if not idx:
        return None
    running = 0.0
    cum: list[tuple[datetime, float]] = [(sr.period_start, 0.0)]
    hollow = [False]
    for i in idx:
        running += float(s.amounts[i])
        cum.append((gran.next(s.starts[i]), running))
        hollow.append(not bool(s.complete[i]))
    lines = [
        Line(
            "spend to date (cumulative)",
            cum,
            BLUE,
            hollow=hollow,
            markers=True,
            titles=[
                "period start",
                *[f"{t:%Y-%m-%d}: {v:,.2f} {s.currency} to date" for t, v in cum[1:]],
            ],
        ),
        Line(
            f"budget {money(sr.amount)}",
            [(sr.period_start, sr.amount), (sr.period_end, sr.amount)],
            VERMILION,
            width=1.5,
        ),
        Line(
            f"warning {sr.warning_ratio:.0%}",
            [
                (sr.period_start, sr.amount * sr.warning_ratio),
                (sr.period_end, sr.amount * sr.warning_ratio),
            ],
            ORANGE,
            dash="2 4",
            width=1.5,
        ),
    ]
    if sr.forecast is not None:
        complete = [p for p, h in zip(cum, hollow, strict=True) if not h]
        anchor = complete[-1] if complete else cum[0]
        lines.append(
            Line(
                f"forecast {money(sr.forecast)}",
                [anchor, (sr.period_end, sr.forecast)],
                GREEN,
                dash="7 5",
                markers=True,
                titles=["forecast from here", f"projected {sr.period} total {sr.forecast:,.2f}"],
            )
        )
    first_incomplete = next((k for k, h in enumerate(hollow) if h), None)
    shade = None
    if first_incomplete is not None:
        shade = (cum[first_incomplete - 1][0], cum[-1][0])
    chart = Chart(
        title=f"{sr.budget}: {sr.period} to date vs budget, {_scope_label(sr.scope)}",
        x_min=sr.period_start,
        x_max=sr.period_end,
        lines=lines,
        currency=s.currency,
        shade=shade,
    )
    return svg_line_chart(chart)


def _evidence_items(decision: Decision) -> str:
    fired = decision.fired
    if not fired:
        return '<span class="muted">all guardrails healthy</span>'
    items = "".join(
        f"<li><b>{esc(e.rule)}</b> &rarr; {_badge(e.action)} {esc(e.detail or '')}</li>"
        for e in fired
    )
    return f'<ul class="evidence">{items}</ul>'


def _evidence_table(decision: Decision) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{esc(e.rule)}</td><td>{'yes' if e.fired else 'no'}</td>"
        f"<td>{_badge(e.action) if e.fired else ''}</td>"
        f'<td class="num">{e.observed:,.2f}</td><td class="num">{e.threshold:,.2f}</td>'
        f'<td class="num">{"" if e.expected is None else f"{e.expected:,.2f}"}</td>'
        f"<td>{esc(e.detail)}</td></tr>"
        for e in decision.evidence
    )
    return (
        "<details><summary>all evidence</summary><table><thead><tr><th>rule</th><th>fired</th>"
        "<th>asks</th><th>observed</th><th>threshold</th><th>expected</th><th>detail</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></details>"
    )


def _decisions(result: ScanResult) -> str:
    rows = "".join(
        f"<tr><td>{esc(d.budget)}</td><td><code>{esc(_scope_label(d.scope))}</code></td>"
        f"<td>{_badge(d.action)}</td><td>{_evidence_items(d)}{_evidence_table(d)}</td></tr>"
        for d in result.decisions
    )
    return (
        '<section id="decisions"><h2>Decisions</h2><table><thead><tr><th>budget</th>'
        "<th>scope</th><th>action</th><th>evidence</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _plan(result: ScanResult) -> str:
    mode = "dry-run: nothing was changed" if result.dry_run else "enforced"
    status = (
        {id(a): o.status for a, o in zip(result.plan.actions, result.outcomes, strict=False)}
        if result.plan
        else {}
    )
    rows = ""
    if result.plan is not None:
        for a in result.plan.actions:
            r = a.resource
            rows += (
                f"<tr><td>{esc(a.budget)}</td><td>{esc(a.action)}</td><td>{esc(r.type)}</td>"
                f"<td><code>{esc(r.id)}</code>{'' if not r.name else ' ' + esc(r.name)}</td>"
                f"<td>{esc(r.region or '')}</td><td>{esc(r.account or '')}</td>"
                f"<td>{esc(status.get(id(a), 'planned'))}</td></tr>"
            )
    body = (
        "<table><thead><tr><th>budget</th><th>action</th><th>type</th><th>resource</th>"
        f"<th>region</th><th>account</th><th>status</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">No resource to act on.</p>'
    )
    pending = ""
    if result.pending:
        prow = "".join(
            f"<tr><td>{esc(p.budget)}</td><td>{_badge(p.decision)}</td><td>{esc(p.action)}</td>"
            f"<td>{esc(p.provider)}</td><td>{esc(p.reason)}"
            f"{'' if not p.install else f' (<code>pip install {esc(p.install)}</code>)'}</td></tr>"
            for p in result.pending
        )
        pending = (
            "<h3>Not executable here</h3><table><thead><tr><th>budget</th><th>decision</th>"
            f"<th>action</th><th>provider</th><th>why</th></tr></thead><tbody>{prow}</tbody></table>"
        )
    protected = ""
    if result.plan is not None and result.plan.protected:
        names = ", ".join(f"{r.type} {r.id}" for r in result.plan.protected)
        protected = f'<p class="muted">Protected (never touched): {esc(names)}</p>'
    return (
        f'<section id="plan"><h2>Enforcement plan <span class="muted">({mode})</span></h2>'
        f"{body}{protected}{pending}</section>"
    )


def _errors(result: ScanResult) -> str:
    if not result.errors:
        return ""
    items = "".join(f"<li><b>{esc(e.kind)}</b>: {esc(e.message)}</li>" for e in result.errors)
    return f'<section id="errors"><h2>Problems during the scan</h2><ul>{items}</ul></section>'


def _sources(result: ScanResult) -> str:
    if not result.source_stats:
        return ""
    rows = "".join(
        f'<tr><td>{esc(s.source)}</td><td class="num">{s.requests}</td>'
        f'<td class="num">{s.api_cost_usd:,.2f}</td><td class="num">{s.rows_read:,}</td>'
        f'<td class="num">{s.bytes_processed:,}</td>'
        f"<td>{esc(s.freshness.isoformat() if s.freshness else '')}</td></tr>"
        for s in result.source_stats
    )
    return (
        '<section id="sources"><h2>Sources read</h2><table><thead><tr><th>source</th>'
        "<th>requests</th><th>API cost (USD)</th><th>rows</th><th>bytes</th><th>newest data</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _scope_section(sr: ScopeResult) -> str:
    charts = [_spend_chart(sr)]
    period = _period_chart(sr)
    if period is not None:
        charts.append(period)
    forecast = "" if sr.forecast is None else f", forecast {sr.forecast:,.2f}"
    return (
        f'<section class="scope"><div class="scope-head"><h3>{esc(sr.budget)}</h3>'
        f"{_badge(sr.decision.action)}<code>{esc(_scope_label(sr.scope))}</code></div>"
        f'<p class="muted">{esc(sr.period)} budget {sr.amount:,.2f} {esc(sr.series.currency)}'
        f"; spent this {esc(sr.period)} {sr.period_spend:,.2f}{esc(forecast)}. "
        f"{esc(sr.decision.reason)}</p>"
        f'<div class="charts">{"".join(f"<div class=chart>{c}</div>" for c in charts)}</div>'
        "</section>"
    )


def render_report(result: ScanResult, *, title: str = "cloudcircuit scan report") -> str:
    """The report as one HTML string."""
    counts = {
        a: sum(1 for d in result.decisions if d.action == a) for a in ("allow", "throttle", "block")
    }
    cards = "".join(
        f'<div class="card">{_badge(a)}<b>{n}</b><span class="muted">decisions</span></div>'
        for a, n in counts.items()
    )
    breaker = "open" if result.breaker_open else "closed"
    cards += f'<div class="card">circuit breaker<b>{breaker}</b></div>'
    if result.alerts is not None:
        sent, failed = len(result.alerts.sent), len(result.alerts.failed)
        dup = len(result.alerts.suppressed)
        cards += (
            f'<div class="card">alerts sent<b>{sent}</b><span class="muted">{dup} duplicates'
            f"{f', {failed} failed' if failed else ''}</span></div>"
        )
    mode = "dry-run" if result.dry_run else "enforce"
    scopes = "".join(_scope_section(sr) for sr in result.scopes)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>run {esc(result.run_id)} &middot; as of "
        f"{result.now:%Y-%m-%d %H:%M} UTC &middot; {mode} &middot; overall "
        f"{_badge(result.action)}</p></header><main>"
        f'<div class="cards">{cards}</div>'
        f"{_errors(result)}{_decisions(result)}{_plan(result)}"
        f"<h2>Spend per scope</h2>{scopes or '<p class=muted>No spend series was judged.</p>'}"
        f"{_sources(result)}</main></body></html>"
    )


def write_report(result: ScanResult, out: Path | str) -> Path:
    """Write the self-contained HTML report of ``result`` to ``out`` (atomically) and return
    its path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(result), encoding="utf-8")
    tmp.replace(path)
    return path
