"""``cloudcircuit validate FILE...`` and ``cloudcircuit schema``.

``validate`` reports every problem of a policy file with its path and line, so one run is
enough to fix a file; it exits 2 when any file is invalid. ``schema`` prints the policy's JSON
Schema for editors (yaml-language-server, VS Code, JetBrains).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.markup import escape

from cloudcircuit.cli.app import EXIT_USAGE, app, console, err_console, handle_errors
from cloudcircuit.errors import ConfigError
from cloudcircuit.policy import Policy, load_policy, policy_json_schema
from cloudcircuit.providers import PROVIDER_PACKAGES, available_providers

__all__ = ["schema", "summary", "validate"]


def summary(policy: Policy) -> str:
    """``3 budgets, 1 source, 1 alert sink`` (singular and plural right)."""

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return ", ".join(
        (
            count(len(policy.budgets), "budget"),
            count(len(policy.sources), "source"),
            count(len(policy.alerts), "alert sink"),
        )
    )


@app.command()
@handle_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Policy files (YAML) to check.", metavar="FILE"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems."),
) -> None:
    """Check policy files; print every problem with its path, exit 2 if any file is invalid."""
    failed = False
    for file in files:
        try:
            policy = load_policy(file)
        except ConfigError as exc:
            failed = True
            where = exc.source or str(file)
            for path, message in exc.problems:
                line = f"{where}: {path}: {message}" if path else f"{where}: {message}"
                err_console.print(escape(line), highlight=False, soft_wrap=True)
            continue
        if not quiet:
            console.print(
                f"{escape(str(file))}: [green]ok[/] ({summary(policy)})",
                highlight=False,
                soft_wrap=True,
            )
        for i, sink in enumerate(policy.alerts):
            for name in sink.env_names():
                if name not in os.environ:
                    err_console.print(
                        f"{escape(str(file))}: [yellow]note:[/] alerts[{i}] ({escape(sink.name)}) "
                        f"reads {name}, which is not set here",
                        highlight=False,
                        soft_wrap=True,
                    )
        installed = set(available_providers())
        needed = set(policy.enforcement_providers()) | set(policy.source_providers())
        for provider in sorted(needed - installed):
            package = PROVIDER_PACKAGES.get(provider, f"cloudcircuit-{provider}")
            err_console.print(
                f"{escape(str(file))}: [yellow]note:[/] provider {provider!r} is not installed "
                f"here (pip install {escape(package)}); scans that need it fail until it is",
                highlight=False,
                soft_wrap=True,
            )
    if failed:
        raise typer.Exit(EXIT_USAGE)


@app.command()
@handle_errors
def schema(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the schema to this file instead of stdout."
    ),
) -> None:
    """Print the JSON Schema of the policy file (for editor completion and checks)."""
    text = json.dumps(policy_json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
