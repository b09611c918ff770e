"""Build the Lambda deployment zip: cloudcircuit core + the AWS adapter, nothing else.

    python adapters/aws/build_lambda.py [--out dist/cloudcircuit-aws-lambda.zip]
                                        [--policy path/to/policy.yaml] [--python-version 3.11]

- Runtime dependencies of the core (numpy, pydantic, pydantic-settings, pyyaml, httpx, rich)
  are installed for Lambda's platform (manylinux2014 x86_64, the Python version given) with
  ``pip install --target --only-binary=:all:``. typer (CLI only), DuckDB (FOCUS extra), the
  GCP / Azure adapters and the moto-only demo modules are left out.
- boto3 / botocore are NOT bundled: every Lambda Python runtime provides them, and the adapter
  imports boto3 only when a client is first built. (Bundling would add ~25 MB unzipped and pin a
  version; a deployment that must pin one can add it to ``--extra``.)
- Minimal ``*.dist-info`` folders are written for cloudcircuit and cloudcircuit-aws so that the
  ``cloudcircuit.providers`` and ``cloudcircuit.state`` entry points resolve inside the zip.

Prints the zip size and the handler's cold import time, measured in a fresh interpreter
started with ``-S`` (no site-packages: only the zip's contents and the standard library), and
writes both as JSON next to the zip.
"""

from __future__ import annotations

import argparse
import compileall
import json
import py_compile
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DEPS = [
    "numpy>=1.26",
    "pydantic>=2.6",
    "pydantic-settings>=2.2",
    "pyyaml>=6.0",
    "httpx>=0.27",
    "rich>=13.7",
]
EXCLUDED_AWS_MODULES = {"demo.py", "fleet.py", "ce_emulator.py"}
VERSION = "1.0.0.dev0"

_IMPORT_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import cloudcircuit_aws.handler
t1 = time.perf_counter()
import cloudcircuit.scan, cloudcircuit.policy, cloudcircuit.state, cloudcircuit.enforcement
from cloudcircuit.providers import load_provider
provider = load_provider("aws")
t2 = time.perf_counter()
print(json.dumps({
    "handler_import_ms": round((t1 - t0) * 1000, 1),
    "first_invocation_imports_ms": round((t2 - t0) * 1000, 1),
    "boto3_imported": "boto3" in sys.modules,
    "provider": type(provider).__name__,
}))
"""


def _copy_tree(src: Path, dst: Path, *, skip: frozenset[str] | set[str] = frozenset()) -> None:
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or path.name in skip or path.suffix == ".pyc":
            continue
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _dist_info(build: Path, name: str, entry_points: str = "") -> None:
    info = build / f"{name.replace('-', '_')}-{VERSION}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {VERSION}\n")
    (info / "RECORD").write_text("")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)


def _prune(build: Path) -> None:
    """Drop what a function never runs: tests, caches, type stubs of numpy's C API headers."""
    for pattern in ("**/__pycache__", "numpy/*/tests", "numpy/tests", "numpy/_core/include"):
        for path in build.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def build(
    out: Path, *, policy: Path | None, python_version: str, extra: list[str]
) -> dict[str, object]:
    work = out.parent / "lambda-build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(work),
            "--platform",
            "manylinux2014_x86_64",
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--only-binary=:all:",
            *RUNTIME_DEPS,
            *extra,
        ],
        check=True,
    )
    _copy_tree(ROOT / "src" / "cloudcircuit", work / "cloudcircuit")
    _copy_tree(
        ROOT / "adapters" / "aws" / "src" / "cloudcircuit_aws",
        work / "cloudcircuit_aws",
        skip=EXCLUDED_AWS_MODULES,
    )
    _dist_info(work, "cloudcircuit")
    _dist_info(
        work,
        "cloudcircuit-aws",
        "[cloudcircuit.providers]\naws = cloudcircuit_aws.provider:AwsProvider\n\n"
        "[cloudcircuit.state]\ndynamodb = cloudcircuit_aws.state:open_dynamodb_state\n",
    )
    if policy is not None:
        shutil.copy2(policy, work / "policy.yaml")
    _prune(work)
    if python_version == f"{sys.version_info.major}.{sys.version_info.minor}":
        # /var/task is read-only: ship bytecode so a cold start does not compile every module
        compileall.compile_dir(
            work,
            quiet=1,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    out.unlink(missing_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(work.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(work))
    unzipped = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    probe = subprocess.run(
        [sys.executable, "-S", "-c", _IMPORT_PROBE, str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    report: dict[str, object] = {
        "zip": str(out),
        "zip_bytes": out.stat().st_size,
        "unzipped_bytes": unzipped,
        "python_version": python_version,
        **json.loads(probe.stdout),
    }
    (out.with_suffix(".json")).write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "cloudcircuit-aws-lambda.zip")
    parser.add_argument(
        "--policy", type=Path, default=None, help="bundle this policy as policy.yaml"
    )
    parser.add_argument(
        "--python-version",
        default=f"{sys.version_info.major}.{sys.version_info.minor}",
        help="Lambda runtime's Python (default: this interpreter's, so imports can be timed)",
    )
    parser.add_argument("--extra", action="append", default=[], help="extra requirement to bundle")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = build(
        args.out, policy=args.policy, python_version=args.python_version, extra=args.extra
    )
    mb = float(str(report["zip_bytes"])) / 1e6
    unz = float(str(report["unzipped_bytes"])) / 1e6
    print(f"{report['zip']}: {mb:.1f} MB zipped, {unz:.1f} MB unzipped (limit 250 MB)")
    first = report["first_invocation_imports_ms"]
    print(
        f"cold import: handler module {report['handler_import_ms']} ms; "
        f"with the core and provider (first invocation) {first} ms; "
        f"boto3 imported at import time: {report['boto3_imported']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
