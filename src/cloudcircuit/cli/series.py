"""``cloudcircuit series``: print spend series from a source as CSV, JSON or a Rich table.

The quickest way to see what a guardrail will see: the same source, buckets and ``complete``
flags a scan uses. CSV and JSON go to stdout and nothing else does (progress is on stderr), so
the output can be piped into other tools.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cloudcircuit.cli.app import app, console, err_console, handle_errors
from cloudcircuit.errors import InputError
from cloudcircuit.providers import FetchResult, SpendQuery, SpendSource
from cloudcircuit.sources import open_source
from cloudcircuit.spend import CostBasis, Granularity, SpendSeries, parse_dimensions, to_utc

__all__ = ["OutputFormat", "parse_filters", "parse_when", "series", "series_rows"]


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def parse_when(text: str, option: str) -> datetime:
    """``2024-09-01`` or an ISO 8601 date-time (naive = UTC) -> aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{option} {text!r} is not an ISO 8601 date or date-time (e.g. 2024-09-01)"
        ) from None
    return to_utc(value)


def parse_filters(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["service=Amazon S3", "tag:team=ml", "service=AWS Lambda"]`` -> allowed values per
    dimension (repeating a dimension allows several values)."""
    out: dict[str, list[str]] = {}
    for item in items:
        dim, sep, value = item.partition("=")
        if not sep or not dim.strip():
            raise InputError(
                f"--filter {item!r}: expected DIMENSION=VALUE, e.g. service=AWS Lambda"
            )
        (name,) = parse_dimensions([dim.strip()])
        out.setdefault(name, []).append(value)
    return {k: tuple(v) for k, v in out.items()}


_ADJECTIVE = {Granularity.HOUR: "Hourly", Granularity.DAY: "Daily", Granularity.MONTH: "Monthly"}


def _date_text(start: datetime, granularity: Granularity) -> str:
    if granularity is Granularity.HOUR:
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return start.date().isoformat()


def series_rows(series: Sequence[SpendSeries], dims: Sequence[str]) -> Iterator[dict[str, object]]:
    """One row per bucket and group, buckets in time order, groups sorted within a bucket."""
    if not series:
        return
    ordered = sorted(series, key=lambda s: tuple(s.scope.get(d, "") for d in dims))
    for i, start in enumerate(ordered[0].starts):
        for s in ordered:
            row: dict[str, object] = {"date": _date_text(start, s.granularity)}
            row.update({d: s.scope.get(d, "") for d in dims})
            row.update(
                {
                    "amount": float(s.amounts[i]),
                    "currency": s.currency,
                    "complete": bool(s.complete[i]),
                }
            )
            yield row


def _amount_text(amount: float) -> str:
    if amount == 0 or abs(amount) >= 0.01:
        return f"{amount:,.2f}"
    return f"{amount:.4g}"


@dataclass(frozen=True, slots=True)
class _Request:
    """What the command line asked for; start/end None = the data's span (or 30 days)."""

    start: datetime | None
    end: datetime | None
    granularity: Granularity
    cost_basis: CostBasis
    group_by: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]


def _fetch(source: SpendSource, request: _Request) -> FetchResult:
    """Fetch with a spinner (and DuckDB's progress, when the source reports it) on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("Reading spend", total=None)

        def report(label: str, fraction: float | None) -> None:
            if fraction is None:
                progress.update(task, description=label, total=None)
            else:
                progress.update(task, description=label, total=1.0, completed=fraction)

        if hasattr(source, "progress"):
            setattr(source, "progress", report)  # noqa: B010 - optional, not in the Protocol
        return source.fetch(_query(source, request))


def _query(source: SpendSource, request: _Request) -> SpendQuery:
    """The SpendQuery; a missing --start/--end comes from the data (FOCUS) or the clock."""
    start, end = request.start, request.end
    time_range = getattr(source, "time_range", None)
    if (start is None or end is None) and callable(time_range):
        span = time_range()
        if span is not None:
            start = start if start is not None else span[0]
            end = end if end is not None else span[1]
    end = end if end is not None else datetime.now(UTC)
    start = start if start is not None else end - timedelta(days=30)
    if end <= request.granularity.floor(start):
        raise InputError(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
    return SpendQuery(
        start=start,
        end=end,
        granularity=request.granularity,
        cost_basis=request.cost_basis,
        group_by=request.group_by,
        filters=request.filters,
    )


@app.command()
@handle_errors
def series(
    source: str = typer.Option(
        ..., "--source", "-s", help="Where spend comes from: focus:PATH (file, folder or glob)."
    ),
    group_by: str = typer.Option(
        "provider,service",
        "--group-by",
        "-g",
        help="Comma-separated dimensions: provider, account, service, region, resource, tag:KEY.",
    ),
    granularity: Granularity = typer.Option(Granularity.DAY, "--granularity", help="Bucket size."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", "-f", help="Output."),
    cost_basis: CostBasis = typer.Option(
        CostBasis.BILLED, "--cost-basis", help="billed (BilledCost) or effective (EffectiveCost)."
    ),
    start: str | None = typer.Option(
        None, "--start", help="First bucket (ISO date/time, UTC). Default: the data's first."
    ),
    end: str | None = typer.Option(
        None, "--end", help="End, exclusive (ISO date/time, UTC). Default: the data's last."
    ),
    filters: list[str] = typer.Option(
        [], "--filter", help="DIMENSION=VALUE, repeatable (e.g. --filter tag:team=ml)."
    ),
    settle_hours: float = typer.Option(
        0.0, "--settle-hours", help="Buckets ending later than now minus this are incomplete."
    ),
) -> None:
    """Print spend per bucket and group: date, the group columns, amount, currency, complete."""
    dims = parse_dimensions(group_by)
    request = _Request(
        start=parse_when(start, "--start") if start else None,
        end=parse_when(end, "--end") if end else None,
        granularity=granularity,
        cost_basis=cost_basis,
        group_by=dims,
        filters=parse_filters(filters),
    )
    spend_source = open_source(source, settle_hours=settle_hours)
    result = _fetch(spend_source, request)
    rows = list(series_rows(result.series, dims))
    if output is OutputFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["date", *dims, "amount", "currency", "complete"])
        for row in rows:
            writer.writerow(
                [
                    *(row[k] for k in ("date", *dims)),
                    repr(row["amount"]),
                    row["currency"],
                    "true" if row["complete"] else "false",
                ]
            )
        return
    if output is OutputFormat.JSON:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(
        title=f"{_ADJECTIVE[granularity]} spend ({cost_basis.value}) from {source}",
        caption=f"{len(result.series)} series, {result.stats.rows_read:,} rows read",
    )
    table.add_column("date")
    for d in dims:
        table.add_column(d)
    table.add_column("amount", justify="right")
    table.add_column("currency")
    table.add_column("complete")
    for row in rows:
        amount = row["amount"]
        assert isinstance(amount, float)
        table.add_row(
            str(row["date"]),
            *(str(row[d]) for d in dims),
            _amount_text(amount),
            str(row["currency"]),
            "yes" if row["complete"] else "[yellow]no[/]",
        )
    console.print(table)
