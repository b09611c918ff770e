"""``cloudcircuit scan``: one scan of a policy, dry-run unless ``--enforce``.

Prints the decisions (budget, scope, action, the evidence that decided it) and the enforcement
plan as Rich tables, or with ``--json`` the whole :meth:`ScanResult.to_dict` on stdout and
nothing else there. The exit code says what the scan found (see :func:`scan_exit_code`).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cloudcircuit.cli.app import (
    EXIT_BLOCK,
    EXIT_ENFORCEMENT,
    EXIT_OK,
    EXIT_PROVIDER,
    EXIT_THROTTLE,
    EXIT_USAGE,
    app,
    console,
    err_console,
    handle_errors,
)
from cloudcircuit.decision import ACTION_RANK, Decision
from cloudcircuit.errors import InputError
from cloudcircuit.spend import to_utc

if TYPE_CHECKING:
    from cloudcircuit.scan import ScanResult

__all__ = ["ACTION_STYLE", "parse_now", "print_result", "scan", "scan_exit_code"]

ACTION_STYLE = {"allow": "bold green", "throttle": "bold yellow", "block": "bold red"}

#: error kind -> exit code when no decision outranks it
_ERROR_EXIT = {
    "input": EXIT_USAGE,
    "source": EXIT_PROVIDER,
    "provider": EXIT_PROVIDER,
    "incomplete": EXIT_PROVIDER,
    "enforcement": EXIT_ENFORCEMENT,
}


def parse_now(value: str | None) -> datetime | None:
    """``--now`` as an aware UTC datetime (ISO 8601; a naive time is taken as UTC)."""
    if value is None:
        return None
    try:
        return to_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise InputError(
            f"--now: {value!r} is not an ISO 8601 time (e.g. 2026-11-23T14:00:00Z)"
        ) from None


def scan_exit_code(result: ScanResult, *, exit_zero: bool = False) -> int:
    """11 when something blocks, else the code of the worst problem (2 bad input, 3 provider
    or source, 4 enforcement), else 10 when something throttles, else 0. ``exit_zero``
    turns 10 and 11 into 0; problems keep their codes."""
    action = result.action
    if action == "block" and not exit_zero:
        return EXIT_BLOCK
    codes = [_ERROR_EXIT[e.kind] for e in result.errors if e.kind in _ERROR_EXIT]
    for code in (EXIT_USAGE, EXIT_PROVIDER, EXIT_ENFORCEMENT):
        if code in codes:
            return code
    if action == "throttle" and not exit_zero:
        return EXIT_THROTTLE
    return EXIT_OK


def _scope_text(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "all spend"


def _top_evidence(decision: Decision) -> str:
    fired = sorted(decision.fired, key=lambda e: -ACTION_RANK[e.action])
    if not fired:
        return decision.reason
    top = fired[0]
    more = f" (+{len(fired) - 1} more)" if len(fired) > 1 else ""
    return f"{top.rule}: {top.detail or f'{top.observed:g} vs {top.threshold:g}'}{more}"


def print_result(result: ScanResult, out: Console) -> None:
    """The decisions, the enforcement plan and any problems, as Rich tables."""
    mode = "dry-run" if result.dry_run else "ENFORCE"
    breaker = "[bold red]open[/]" if result.breaker_open else "closed"
    out.print(
        f"scan [bold]{result.run_id}[/] as of {result.now:%Y-%m-%d %H:%M} UTC, {mode}, "
        f"circuit breaker {breaker}",
        highlight=False,
    )
    table = Table(title="Decisions", title_justify="left", expand=False)
    table.add_column("budget", style="bold")
    table.add_column("scope", overflow="fold")
    table.add_column("action")
    table.add_column("evidence", overflow="fold")
    for d in result.decisions:
        table.add_row(
            d.budget,
            _scope_text(dict(d.scope)),
            Text(d.action, style=ACTION_STYLE[d.action]),
            _top_evidence(d),
        )
    out.print(table)
    _print_sources(result, out)
    _print_plan(result, out)
    if result.errors:
        out.print("[bold red]problems:[/]")
        for e in result.errors:
            out.print(f"  [red]{e.kind}[/]: {e.message}", highlight=False)


def _print_sources(result: ScanResult, out: Console) -> None:
    """What reading cost: provider requests and their price (Cost Explorer bills each page)."""
    for s in result.source_stats:
        parts = [f"{s.rows_read:,} rows"] if s.rows_read else []
        if s.requests:
            parts.append(f"{s.requests} API requests (USD {s.api_cost_usd:,.2f})")
        if s.cached_buckets:
            parts.append(f"{s.cached_buckets} buckets from cache")
        if s.bytes_processed:
            parts.append(f"{s.bytes_processed:,} bytes processed")
        if s.freshness is not None:
            parts.append(f"newest data {s.freshness:%Y-%m-%d %H:%M} UTC")
        out.print(
            f"source [bold]{s.source}[/]: " + (", ".join(parts) or "no data"), highlight=False
        )


def _print_plan(result: ScanResult, out: Console) -> None:
    title = "Enforcement plan" + (" (dry-run: nothing changed)" if result.dry_run else "")
    actions = result.plan.actions if result.plan is not None else []
    if not actions and not result.pending:
        out.print(f"[bold]{title}[/]: nothing to do")
        return
    if actions:
        table = Table(title=title, title_justify="left")
        for col in ("budget", "action", "resource", "region", "account", "status"):
            table.add_column(col)
        statuses = [o.status for o in result.outcomes] + ["planned"] * len(actions)
        for planned, status in zip(actions, statuses, strict=False):
            res = planned.resource
            label = f"{res.type} {res.id}" + (f" ({res.name})" if res.name else "")
            table.add_row(
                planned.budget,
                planned.action,
                label,
                res.region or "",
                res.account or "",
                Text(status, style="red" if status == "failed" else ""),
            )
        out.print(table)
    else:
        out.print(f"[bold]{title}[/]: no resource matched")
    if result.pending:
        table = Table(title="Not executable here", title_justify="left")
        for col in ("budget", "decision", "action", "provider", "why"):
            table.add_column(col, overflow="fold")
        for p in result.pending:
            why = p.reason + (f" (pip install {p.install})" if p.install else "")
            table.add_row(
                p.budget,
                Text(p.decision, style=ACTION_STYLE[p.decision]),
                p.action,
                p.provider,
                why,
            )
        out.print(table)


@app.command()
@handle_errors
def scan(
    policy: Path = typer.Option(..., "--policy", "-p", help="Policy file (YAML)."),
    enforce: bool = typer.Option(
        False, "--enforce", help="Carry out the plan (default: dry-run, nothing changes)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the scan result as JSON on stdout (decisions + evidence)."
    ),
    now: str | None = typer.Option(
        None, "--now", help="Judge as of this UTC time (ISO 8601), e.g. 2026-11-23T14:00:00Z."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the HTML report to this file."
    ),
    exit_zero: bool = typer.Option(
        False, "--exit-zero", help="Exit 0 on throttle/block decisions (problems keep codes)."
    ),
) -> None:
    """Scan spend, decide allow/throttle/block per budget scope, alert, plan enforcement.

    Exit codes: 0 all allow, 10 throttle, 11 block, 2 bad input, 3 provider/source failure,
    4 enforcement failed or a safety rail aborted the plan, 5 state store failure.
    """
    from cloudcircuit.policy import load_policy
    from cloudcircuit.report import write_report
    from cloudcircuit.scan import run_scan

    loaded = load_policy(policy)
    result = run_scan(
        loaded,
        enforce=enforce,
        now=parse_now(now),
        progress=not as_json or err_console.is_terminal,
        console=err_console,
    )
    if report is not None:
        written = write_report(result, report)
        err_console.print(
            f"report written to {escape(str(written))}", highlight=False, soft_wrap=True
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        sys.stdout.flush()
    else:
        print_result(result, console)
    code = scan_exit_code(result, exit_zero=exit_zero)
    if code:
        raise typer.Exit(code)
