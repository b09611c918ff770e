"""``cloudcircuit watch``: scan on a schedule in one long-lived process and serve /metrics.

Scans run at a fixed rate (a scan that overruns its interval is followed at once by the next,
missed ticks are skipped, never queued). The policy file is re-read before every scan, so an
edit applies at the next tick; a policy that stops validating fails that scan (counted
against the scan SLO) without killing the process. /metrics serves
:class:`~cloudcircuit.metrics.ScanMetrics` (budget usage, burn rates per window pair,
decisions, actions, source freshness, and the ``scan_success`` SLO); /healthz answers 200 while
the latest scan succeeded and 503 otherwise. SIGTERM or Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from cloudcircuit.burn import format_duration, parse_duration
from cloudcircuit.cli.app import app, console, err_console, handle_errors
from cloudcircuit.errors import CloudCircuitError, InputError

if TYPE_CHECKING:
    from cloudcircuit.metrics import ScanMetrics
    from cloudcircuit.policy import Policy
    from cloudcircuit.scan import ScanResult

__all__ = ["Watcher", "watch"]

ScanFn = Callable[["Policy"], "ScanResult"]


class _Handler(BaseHTTPRequestHandler):
    watcher: Watcher  # set on the per-server subclass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = self.watcher.metrics.render()
            self._send(200, body, content_type)
        elif path == "/healthz":
            status = self.watcher.status()
            code = 200 if status["last_ok"] else 503
            self._send(code, json.dumps(status).encode(), "application/json")
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the terminal: stay quiet."""


class Watcher:
    """The watch loop: a metrics server on ``host:port`` and a scan every ``interval`` seconds."""

    def __init__(
        self,
        policy_path: Path,
        *,
        interval: float,
        host: str = "127.0.0.1",
        port: int = 9464,
        enforce: bool = False,
        max_scans: int | None = None,
        slo_target: float = 0.99,
        scan: ScanFn | None = None,
        out: Console | None = None,
    ) -> None:
        from cloudcircuit.metrics import ScanMetrics

        if interval <= 0:
            raise InputError(f"--interval must be > 0, got {interval}")
        if max_scans is not None and max_scans < 1:
            raise InputError(f"--max-scans must be >= 1, got {max_scans}")
        if not 0 < slo_target < 1:
            raise InputError(f"--slo-target must be in (0, 1), got {slo_target}")
        self.policy_path = policy_path
        self.interval = interval
        self.host = host
        self.port = port
        self.enforce = enforce
        self.max_scans = max_scans
        self.metrics: ScanMetrics = ScanMetrics(slo_target=slo_target)
        self._scan = scan
        self._out = out or console
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.scans = 0
        self.last_ok = False
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start_server(self) -> int:
        """Bind and serve /metrics in a background thread; returns the bound port."""
        handler = type("Handler", (_Handler,), {"watcher": self})
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), handler)
        except OSError as exc:
            raise InputError(f"cannot serve metrics on {self.host}:{self.port}: {exc}") from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        return self.port

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {
            "scans": self.scans,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "slo": self.metrics.snapshot(),
        }

    def run(self) -> int:
        """Scan until stopped or ``max_scans`` scans ran; returns the number of scans."""
        if self._server is None:
            self.start_server()
        self._out.print(
            f"watching [bold]{self.policy_path}[/] every {format_duration(self.interval)}; "
            f"metrics on http://{self.host}:{self.port}/metrics",
            highlight=False,
        )
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                self.scan_once()
                if self.max_scans is not None and self.scans >= self.max_scans:
                    break
                # fixed rate: the next tick after now, skipping ticks a slow scan overran
                elapsed = time.monotonic() - started
                ticks = int(elapsed // self.interval) + 1
                self._stop.wait(max(0.0, ticks * self.interval - elapsed))
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
        return self.scans

    # -- one scan ------------------------------------------------------------------------

    def _run_scan(self, policy: Policy) -> ScanResult:
        if self._scan is not None:
            return self._scan(policy)
        from cloudcircuit.scan import run_scan

        return run_scan(policy, enforce=self.enforce, progress=False)

    def scan_once(self) -> bool:
        """One scan, recorded in the metrics whatever happens; returns whether it succeeded."""
        from cloudcircuit.policy import load_policy

        self.scans += 1
        t0 = time.perf_counter()
        try:
            result = self._run_scan(load_policy(self.policy_path))
        except Exception as exc:  # a failed scan must not end a long-lived watcher
            duration = time.perf_counter() - t0
            self.metrics.observe_failure(exc, duration=duration)
            self.last_ok = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            kind = "error" if isinstance(exc, CloudCircuitError) else "unexpected error"
            err_console.print(
                f"[red]scan {self.scans} failed ({kind}):[/] {escape(str(exc))}",
                highlight=False,
                soft_wrap=True,
            )
            return False
        duration = time.perf_counter() - t0
        ok = self.metrics.observe(result, duration=duration)
        self.last_ok = ok
        self.last_error = None if ok else "; ".join(e.message for e in result.errors)[:500]
        counts: dict[str, int] = {}
        for d in result.decisions:
            counts[d.action] = counts.get(d.action, 0) + 1
        slo = self.metrics.snapshot()
        summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no decisions"
        state = "[green]ok[/]" if ok else f"[yellow]with {len(result.errors)} error(s)[/]"
        self._out.print(
            f"scan {self.scans} {state} in {duration:.2f}s: {summary}; "
            f"scan SLO {slo['success_ratio']:.1%} ({slo['scans']} scans)",
            highlight=False,
        )
        return ok


@app.command()
@handle_errors
def watch(
    policy: Path = typer.Option(..., "--policy", "-p", help="Policy file (YAML)."),
    interval: str = typer.Option(
        "15m", "--interval", "-i", help="Time between scans: 30s, 15m, 1h."
    ),
    port: int = typer.Option(9464, "--port", help="Port of the /metrics endpoint (0 = any free)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve /metrics on."),
    enforce: bool = typer.Option(False, "--enforce", help="Execute actions (default: dry-run)."),
    slo_target: float = typer.Option(0.99, "--slo-target", help="Target of the scan-success SLO."),
    max_scans: int | None = typer.Option(
        None, "--max-scans", help="Stop after this many scans (default: run until stopped)."
    ),
) -> None:
    """Scan on a schedule in one long-lived process and serve Prometheus /metrics."""
    from cloudcircuit.policy import load_policy

    seconds = parse_duration(interval, what="--interval")
    load_policy(policy)  # a bad policy fails now, with exit code 2, not at the first tick
    watcher = Watcher(
        policy,
        interval=seconds,
        host=host,
        port=port,
        enforce=enforce,
        max_scans=max_scans,
        slo_target=slo_target,
    )
    watcher.start_server()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    try:
        watcher.run()
    except KeyboardInterrupt:
        watcher.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    slo = watcher.metrics.snapshot()
    console.print(
        f"stopped after {watcher.scans} scans; scan SLO {slo['success_ratio']:.1%}",
        highlight=False,
    )
