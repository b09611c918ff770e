"""``cloudcircuit version``."""

from __future__ import annotations

from cloudcircuit import __version__
from cloudcircuit.cli.app import app, console
from cloudcircuit.providers import available_providers


@app.command()
def version() -> None:
    """Print the version and the installed providers."""
    providers = ", ".join(available_providers()) or "none"
    console.print(f"cloudcircuit {__version__} (providers: {providers})", highlight=False)
