"""Virtual environments for the predecessor packages, so they are measured side by side.

``predecessor_python("cloudcircuit==0.3.8")`` creates (once) ``bench/.work/venv-cloudcircuit-0.3.8``
with that requirement installed and returns its interpreter. The predecessor runs in its own
process; the benchmark sends it work through a small script and reads JSON back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

__all__ = ["WORK", "predecessor_python", "run_json"]

WORK = Path(__file__).resolve().parent / ".work"


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", spec).strip("-")


def predecessor_python(spec: str, *extra: str) -> Path:
    """Interpreter of a venv holding ``spec`` (and ``extra`` requirements), created on first use."""
    home = WORK / f"venv-{_slug(spec)}"
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if stamp.exists() and python.exists():
        return python
    WORK.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec, *extra],
        check=True,
    )
    stamp.write_text(spec + "\n")
    return python


def run_json(python: Path, script: str, payload: Any, *, timeout: float = 3600) -> Any:
    """Run ``script`` in ``python`` with ``payload`` as JSON on stdin; parse its JSON stdout."""
    proc = subprocess.run(
        [str(python), "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"predecessor script failed with exit code {proc.returncode}")
    return json.loads(proc.stdout)
