"""``cloudcircuit report``: a dry-run scan written as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from cloudcircuit.cli.app import app, console, err_console, handle_errors
from cloudcircuit.cli.scan import parse_now

__all__ = ["report"]


@app.command()
@handle_errors
def report(
    policy: Path = typer.Option(..., "--policy", "-p", help="Policy file (YAML)."),
    html: Path = typer.Option(..., "--html", help="Where to write the HTML report."),
    now: str | None = typer.Option(
        None, "--now", help="Judge as of this UTC time (ISO 8601), e.g. 2026-11-23T14:00:00Z."
    ),
) -> None:
    """Run a dry-run scan and write the HTML report (charts per scope, decisions, plan).

    The page works offline: no script, no CDN, the charts are inline SVG.
    """
    from cloudcircuit.policy import load_policy
    from cloudcircuit.report import write_report
    from cloudcircuit.scan import run_scan

    result = run_scan(load_policy(policy), enforce=False, now=parse_now(now), console=err_console)
    written = write_report(result, html)
    for problem in result.errors:
        err_console.print(
            f"[yellow]{problem.kind}[/]: {escape(problem.message)}", highlight=False, soft_wrap=True
        )
    console.print(
        f"report written to [bold]{written}[/] ({len(result.decisions)} decisions, "
        f"overall {result.action}); open file://{written.resolve()}",
        highlight=False,
    )
