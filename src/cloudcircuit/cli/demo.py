"""``cloudcircuit demo``: the whole loop on generated data, offline, no credentials.

1. generate 90 days of FOCUS 1.2 billing data (a runaway GPU cluster, a slowly rising service,
   a healthy one) into ``OUT/demo-data``;
2. dry-run scan with examples/policy.yaml, its source pointed at that folder, its state in
   ``OUT/state.db`` and its webhook sink at a receiver this command runs on loopback (so the
   signed alerts are really sent and checked);
3. print the decisions and the enforcement plan, write ``OUT/report.html`` and ``OUT/scan.json``;
4. when the AWS adapter is installed, its moto demo enforces the same decisions against
   emulated AWS resources and restores them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from cloudcircuit.cli.app import app, console, err_console, handle_errors
from cloudcircuit.cli.scan import parse_now, print_result
from cloudcircuit.errors import InputError

__all__ = ["DEMO_SECRET_ENV", "WebhookReceiver", "demo", "demo_policy", "find_example_policy"]

#: the variable examples/policy.yaml reads its webhook HMAC key from
DEMO_SECRET_ENV = "CLOUDCIRCUIT_WEBHOOK_SECRET"


def find_example_policy() -> Path:
    """examples/policy.yaml of this checkout (next to src/), else of the current folder."""
    candidates = [
        Path(__file__).resolve().parents[3] / "examples" / "policy.yaml",
        Path.cwd() / "examples" / "policy.yaml",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(
        "examples/policy.yaml not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); run the demo from a cloudcircuit checkout or pass --policy"
    )


class WebhookReceiver:
    """A tiny HTTP server on loopback that records what the webhook sink posts."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/cloudcircuit"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def _env_default(name: str, value: str) -> Iterator[str]:
    """``os.environ[name]`` for the block, set to ``value`` only if it was not set."""
    old = os.environ.get(name)
    if old is None:
        os.environ[name] = value
    try:
        yield os.environ[name]
    finally:
        if old is None:
            os.environ.pop(name, None)


def demo_policy(policy: Any, *, data_dir: Path, state_db: Path, webhook_url: str | None) -> Any:
    """``policy`` with its FOCUS sources reading ``data_dir``, its state in ``state_db`` and
    its webhook sinks posting to ``webhook_url`` (other sinks need the internet: dropped)."""
    sources = [
        s.model_copy(update={"path": str(data_dir)}) if s.type == "focus" else s
        for s in policy.sources
    ]
    sinks = [
        s.model_copy(update={"url": webhook_url})
        for s in policy.alerts
        if s.type == "webhook" and webhook_url is not None
    ]
    return policy.model_copy(
        update={"sources": sources, "state": f"sqlite:///{state_db}", "alerts": sinks}
    )


def _verify(received: list[tuple[dict[str, str], bytes]], secret: str) -> tuple[int, int]:
    from cloudcircuit.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

    good = 0
    for headers, body in received:
        lower = {k.lower(): v for k, v in headers.items()}
        sig = lower.get(SIGNATURE_HEADER.lower(), "")
        ts = lower.get(TIMESTAMP_HEADER.lower(), "")
        if sig and verify_signature(secret, ts, body, sig, tolerance_seconds=None):
            good += 1
    return good, len(received)


@app.command()
@handle_errors
def demo(
    out: Path = typer.Option(Path("out"), "--out", help="Folder for data, state and report."),
    now: str | None = typer.Option(
        None, "--now", help="Pretend it is this UTC time (ISO 8601); default: now."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", help="Policy to use (default: examples/policy.yaml)."
    ),
) -> None:
    """Generate demo billing data, dry-run scan it, print decisions and plan, write the report.

    Offline and without credentials; with the AWS adapter installed it then enforces the
    decisions against emulated (moto) AWS resources and restores them.
    """
    from cloudcircuit.demo_data import generate_demo_dataset
    from cloudcircuit.policy import load_policy
    from cloudcircuit.report import write_report
    from cloudcircuit.scan import run_scan

    at = parse_now(now) or datetime.now(UTC)
    out = out.resolve()
    data_dir = out / "demo-data"
    console.rule("[bold]cloudcircuit demo")
    with console.status("generating 90 days of FOCUS 1.2 billing data..."):
        generate_demo_dataset(data_dir, now=at)
    console.print(
        f"demo billing data (FOCUS 1.2, hourly rows): {escape(str(data_dir))}",
        highlight=False,
        soft_wrap=True,
    )
    policy_path = policy or find_example_policy()
    loaded = load_policy(policy_path)
    console.print(f"policy: {escape(str(policy_path))}", highlight=False, soft_wrap=True)
    with (
        _env_default(DEMO_SECRET_ENV, "cloudcircuit-demo-secret") as secret,
        _emulated_aws(),
        WebhookReceiver() as hook,
    ):
        run_policy = demo_policy(
            loaded, data_dir=data_dir, state_db=out / "state.db", webhook_url=hook.url
        )
        result = run_scan(run_policy, enforce=False, now=at, console=err_console)
        received = list(hook.received)
        signed, total = _verify(received, secret)
    print_result(result, console)
    if result.alerts is not None:
        report = result.alerts
        console.print(
            f"alerts: {len(report.sent)} sent to the loopback webhook ({signed} of {total} "
            f"received with a valid HMAC signature), {len(report.suppressed)} suppressed as "
            f"duplicates, {len(report.failed)} failed",
            highlight=False,
        )
    html = write_report(result, out / "report.html")
    (out / "scan.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", "utf-8")
    console.print(
        f"\n[bold green]report:[/] file://{html}\n(scan result as JSON: {out / 'scan.json'})",
        highlight=False,
    )
    _aws_part(data_dir, at)


@contextlib.contextmanager
def _emulated_aws() -> Iterator[None]:
    """The demo never touches a real cloud account: with the AWS adapter installed, the
    dry-run scan resolves its targets in an in-process moto AWS holding the demo fleet;
    without it, AWS actions are listed as not executable (with the package to install)."""
    try:
        from cloudcircuit_aws.demo import (  # type: ignore[import-not-found,unused-ignore]
            moto_aws,
        )
        from cloudcircuit_aws.fleet import (  # type: ignore[import-not-found,unused-ignore]
            seed_fleet,
        )
    except ImportError:
        yield
        return
    with moto_aws():
        seed_fleet(with_rds_eks=False)
        yield


def _aws_part(data_dir: Path, now: datetime) -> None:
    """The AWS adapter's moto demo, when the adapter (and its demo) is installed."""
    try:
        import cloudcircuit_aws  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        console.print(
            "\n[dim]AWS part skipped: install the adapter (pip install -e adapters/aws) to see "
            "the decisions enforced on emulated AWS resources.[/]"
        )
        return
    try:
        from cloudcircuit_aws.demo import (  # type: ignore[import-not-found,unused-ignore]
            run_moto_demo,
        )
    except ImportError as exc:
        console.print(
            f"\n[yellow]AWS part skipped: cloudcircuit_aws.demo cannot be loaded: {exc}[/]"
        )
        return
    console.rule("[bold]enforcement on emulated AWS (moto)")
    console.print(
        "[dim]The dry-run above resolved its targets in an emulated AWS account; here the same "
        "policy reads Cost Explorer and acts on emulated resources, then restores them.[/]"
    )
    run_moto_demo(console, data_dir=data_dir, now=now)
