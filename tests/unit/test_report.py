"""report.py: the self-contained HTML page and its inline SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cloudcircuit.policy import Policy
from cloudcircuit.providers import FetchResult, SourceStats, SpendQuery
from cloudcircuit.report import Chart, Line, Mark, render_report, svg_line_chart, write_report
from cloudcircuit.scan import ScanResult, run_scan
from cloudcircuit.spend import SpendSeries, bucket_range
from cloudcircuit.state import MemoryStore

NOW = datetime(2026, 11, 23, 14, tzinfo=UTC)
SERVICE = 'Compute & <GPU> "fleet"'


class Source:
    """Two scopes: a runaway since Nov 21 and a flat one; honours filters."""

    name = "mem"

    def fetch(self, query: SpendQuery) -> FetchResult:
        starts = tuple(bucket_range(query.start, query.end, query.granularity))
        scopes = {
            SERVICE: [600.0 if s.day in (21, 22, 23) and s.month == 11 else 100.0 for s in starts],
            "Storage": [50.0 for _ in starts],
        }
        wanted = query.filters.get("service")
        series = [
            SpendSeries(
                scope={},
                granularity=query.granularity,
                starts=starts,
                amounts=np.array(values),
                complete=np.ones(len(starts), dtype=bool),
                currency="USD",
            )
            for name, values in scopes.items()
            if wanted is None or name in wanted
        ]
        return FetchResult(series, SourceStats(source="mem", requests=1, rows_read=9))


@pytest.fixture(scope="module")
def result() -> ScanResult:
    policy = Policy.model_validate(
        {
            "sources": [{"name": "mem", "type": "focus", "path": "/unused"}],
            "budgets": [
                {
                    "name": "gpu",
                    "scope": {"service": [SERVICE]},
                    "period": "month",
                    "amount": 5000,
                    "detectors": {"spike": {"action": "block"}},
                    "block": [{"action": "stop", "provider": "nosuchcloud"}],
                },
                {
                    "name": "storage",
                    "scope": {"service": ["Storage"]},
                    "period": "day",
                    "amount": 80,
                },
            ],
        }
    )
    return run_scan(policy, now=NOW, sources=[Source()], store=MemoryStore(), progress=False)


def test_the_page_is_self_contained(result: ScanResult) -> None:
    page = render_report(result)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "url(" not in page
    # the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}


def test_charts_per_scope_with_budget_forecast_anomalies_and_incomplete(
    result: ScanResult,
) -> None:
    page = render_report(result)
    # gpu: month budget -> spend chart + month-to-date chart; storage: day budget -> one chart
    assert page.count("<svg") == 3
    assert page.count('class="series"') >= 4
    assert re.search(r'<path class="series" d="M[\d.]+ [\d.]+ L', page)
    assert "budget per day (5.0k/month pro-rated)" in page
    assert "forecast " in page and 'stroke-dasharray="7 5"' in page
    assert 'class="incomplete"' in page and "still settling (incomplete)" in page
    assert 'class="series incomplete-line"' in page
    anomaly = re.search(r'<g class="anomaly">.*?<title>(.*?)</title></g>', page)
    assert anomaly is not None and anomaly.group(1).startswith("anomaly 2026-11-21")
    assert "Nov 01" in page  # date ticks on the x axis


def test_decisions_plan_and_problems_are_listed(result: ScanResult) -> None:
    page = render_report(result)
    assert '<span class="badge block">block</span>' in page
    assert '<span class="badge allow">allow</span>' in page
    assert "spike" in page and "all evidence" in page
    assert "Not executable here" in page
    assert "pip install cloudcircuit-nosuchcloud" in page
    assert "dry-run: nothing was changed" in page


def test_text_is_escaped(result: ScanResult) -> None:
    page = render_report(result)
    assert SERVICE not in page
    assert "Compute &amp; &lt;GPU&gt; &quot;fleet&quot;" in page


def test_write_report_replaces_the_file_atomically(result: ScanResult, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report.html"
    out.parent.mkdir()
    out.write_text("old")
    assert write_report(result, out) == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def _chart(**kwargs: Any) -> str:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    points = [(start + timedelta(days=i), float(10 * i)) for i in range(31)]
    return svg_line_chart(
        Chart(
            title="t",
            x_min=points[0][0],
            x_max=points[-1][0],
            lines=[Line("spend", points, hollow=[False] * 29 + [True, True], markers=True)],
            marks=[Mark(points[20][0], 200.0, "anomaly here")],
            **kwargs,
        )
    )


def test_svg_chart_axes_ticks_and_tooltips() -> None:
    svg = _chart()
    labels = re.findall(r'font-size="12" fill="#57606a">([^<]+)</text>', svg)
    assert labels[:5] == ["0", "100", "200", "300", "Oct 01"]  # 1-2-5 steps, then dates
    assert "Oct 01" in labels and "Oct 29" in labels
    assert svg.count("<circle") >= 31
    assert "<title>anomaly here</title>" in svg
    assert 'role="img"' in svg and 'aria-label="t"' in svg


def test_legend_wraps_instead_of_overflowing() -> None:
    start = datetime(2026, 10, 30, tzinfo=UTC)
    shade = (start, start + timedelta(days=1))
    narrow = _chart(width=300, shade=shade)
    wide = _chart(width=900, shade=shade)

    def rows(svg: str) -> int:
        return len(set(re.findall(r'<text x="\d+" y="(\d+)" font-size="12" fill="#1f2328"', svg)))

    assert rows(narrow) > rows(wide) == 1
