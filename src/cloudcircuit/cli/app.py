"""The Typer application every CLI module registers its commands on, and the exit codes.

Exit codes (documented in README.md):

====  =========================================================================
0     success; for ``scan``: every decision is allow (or --exit-zero was given)
1     unexpected internal error (a bug: please report it)
2     bad input: invalid policy, settings, arguments or spend data
3     a provider or source failed (credentials, network, throttling, API cap)
4     enforcement failed or a safety rail aborted the plan
5     the state store failed
10    ``scan``: at least one throttle decision, no block
11    ``scan``: at least one block decision
====  =========================================================================
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cloudcircuit.errors import (
    CloudCircuitError,
    EnforcementError,
    InputError,
    ProviderError,
    StateError,
)

__all__ = [
    "EXIT_BLOCK",
    "EXIT_ENFORCEMENT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_PROVIDER",
    "EXIT_STATE",
    "EXIT_THROTTLE",
    "EXIT_USAGE",
    "app",
    "console",
    "err_console",
    "exit_code_for",
    "handle_errors",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PROVIDER = 3
EXIT_ENFORCEMENT = 4
EXIT_STATE = 5
EXIT_THROTTLE = 10
EXIT_BLOCK = 11

app = typer.Typer(
    name="cloudcircuit",
    help="Stop runaway cloud bills: scan spend, decide allow/throttle/block, enforce reversibly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def exit_code_for(exc: CloudCircuitError) -> int:
    """The documented exit code for a cloudcircuit error."""
    if isinstance(exc, InputError):
        return EXIT_USAGE
    if isinstance(exc, ProviderError):
        return EXIT_PROVIDER
    if isinstance(exc, EnforcementError):
        return EXIT_ENFORCEMENT
    if isinstance(exc, StateError):
        return EXIT_STATE
    return EXIT_INTERNAL


def _print_error(exc: BaseException) -> None:
    """One line, never wrapped at the terminal width (a log or a grep must see it whole), with
    the message taken literally (a ``[...]`` in it is not markup)."""
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn cloudcircuit errors into one clear line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CloudCircuitError as exc:
            _print_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            _print_error(exc)
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper
