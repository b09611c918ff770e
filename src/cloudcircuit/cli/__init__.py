"""``cloudcircuit`` command line (Typer + Rich).

Every module in this package registers its commands on :data:`cloudcircuit.cli.app.app`;
they are imported here, so a new command is a new module, not an edit of a central list.
"""

from __future__ import annotations

import importlib
import pkgutil

from cloudcircuit.cli.app import app

__all__ = ["app", "main"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "app" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def main() -> None:
    """Console-script entry point."""
    app()
