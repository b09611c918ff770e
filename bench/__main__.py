"""Run every benchmark in bench/ (modules named bench_*.py), one after the other.

``python -m bench`` runs them all at full size; ``python -m bench --quick`` runs small sizes;
``python -m bench NAME ...`` runs only the named ones (``batch``, ``quota``...).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    flags = [a for a in argv if a.startswith("-")]
    names = [a for a in argv if not a.startswith("-")]
    here = Path(__file__).resolve().parent
    found = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    chosen = [m for m in found if not names or m.removeprefix("bench_") in names]
    if not chosen:
        print(f"no benchmark matches {names}; have: {[m[6:] for m in found]}", file=sys.stderr)
        return 2
    failures = 0
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        module = importlib.import_module(f"bench.{name}")
        code = int(module.main(flags))
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
