"""One real `cloudcircuit demo` run per session, shared by the end-to-end tests.

It goes through the installed console script (the entry point a user types), in a subprocess,
with the clock pinned so the scenario's decisions are fixed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_NOW = "2026-11-23T14:00:00Z"


def cli_command() -> list[str]:
    """The `cloudcircuit` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "cloudcircuit"
    if script.exists():
        return [str(script)]
    found = shutil.which("cloudcircuit")
    if found is None:
        pytest.skip("the cloudcircuit console script is not installed (pip install -e .)")
    return [found]


@dataclass(frozen=True)
class DemoRun:
    out: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    out = tmp_path_factory.mktemp("e2e") / "tmp"
    proc = subprocess.run(
        [*cli_command(), "demo", "--now", DEMO_NOW, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**_env(), "COLUMNS": "200"},
    )
    return DemoRun(out, proc.returncode, proc.stdout, proc.stderr)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
