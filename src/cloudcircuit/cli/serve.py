"""``cloudcircuit serve`` (the quota HTTP service on uvicorn) and ``cloudcircuit quota-key``.

FastAPI and uvicorn are imported inside the command, so ``cloudcircuit --help`` and every other
command stay light and work without the ``server`` extra.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from cloudcircuit.cli.app import app, console, handle_errors
from cloudcircuit.errors import ConfigError

__all__ = ["quota_key", "serve"]

CONFIG_ENV = "CLOUDCIRCUIT_QUOTA_CONFIG"


@app.command()
@handle_errors
def serve(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Quota service YAML (ledger, hierarchy, keys, prices)."
    ),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger URL; overrides the file (sqlite:///…, redis://…)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to bind (0: any free port)."),
    workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the quota service: /v1 reserve, commit, release, charge, usage, limits; /health,
    /metrics; coreason-compatible POST /check and POST /spend."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("cloudcircuit serve needs: pip install 'cloudcircuit[server]'") from None
    from cloudcircuit.quota.service_app import build_app

    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if ledger is not None:
        os.environ["CLOUDCIRCUIT_QUOTA_LEDGER"] = ledger
    build_app()  # validate the configuration before binding (errors exit with code 2)
    server_config = uvicorn.Config(
        "cloudcircuit.quota.service_app:build_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
    sock = _listen(host, port)
    console.print(
        f"cloudcircuit quota service on http://{host}:{sock.getsockname()[1]}", highlight=False
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(server_config, sockets=[sock]).run()
    else:
        uvicorn.Server(server_config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made here rather than by uvicorn: with several workers uvicorn
    binds a protocol-0 socket, on which asyncio never sets TCP_NODELAY, and every response
    then waits out the client's 40 ms delayed ACK. Made with IPPROTO_TCP and TCP_NODELAY,
    accepted connections get no-delay in every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host/--port: cannot bind {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@app.command("quota-key")
@handle_errors
def quota_key(
    name: str = typer.Argument(..., help="A name for the key (shown in 403 messages)."),
    scope: list[str] = typer.Option(
        [], "--scope", "-s", help="Scope the key may act on, e.g. project=p1 (repeatable)."
    ),
    admin: bool = typer.Option(False, help="Admin key: any scope, and may set limits."),
) -> None:
    """Create an API key for the quota service: prints the key once and its config entry."""
    import json

    from cloudcircuit.quota.auth import generate_api_key, hash_api_key

    bindings = []
    for item in scope:
        binding = {}
        for part in item.split(","):
            level, sep, entity = part.partition("=")
            if not sep or not level or not entity:
                raise ConfigError(f"--scope: expected level=entity, got {part!r}")
            binding[level.strip()] = entity.strip()
        bindings.append(binding)
    token = generate_api_key()
    entry = {"name": name, "sha256": hash_api_key(token), "scopes": bindings, "admin": admin}
    # plain echo, not Rich: the lines are copied into files and must never be wrapped
    typer.echo(f"key (shown once): {token}")
    typer.echo(f"config entry:     {json.dumps(entry)}")
