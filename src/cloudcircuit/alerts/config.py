"""Build sinks from the policy's ``alerts:`` entries, reading secrets from the environment.

The policy never holds a secret, only the *name* of the environment variable that does
(``secret_env``, ``webhook_url_env``, ``routing_key_env``). A variable that is not set is a
:class:`~cloudcircuit.errors.ConfigError` naming it and the sink, raised before any scan
work, rather than an alert that silently never goes out.

Configs are read by attribute (:class:`SinkConfigLike`), so the policy models, a dataclass or
a test double all work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cloudcircuit.alerts.sinks import (
    PAGERDUTY_EVENTS_URL,
    PagerDutySink,
    Sink,
    SlackSink,
    WebhookSink,
)
from cloudcircuit.alerts.transport import HttpPoster, RetryPolicy
from cloudcircuit.errors import ConfigError

__all__ = ["SinkConfigLike", "build_sinks"]


class SinkConfigLike(Protocol):
    """What every sink config has (policy.SinkBase); type-specific fields are read by name."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def min_severity(self) -> str: ...

    @property
    def dedup_minutes(self) -> float: ...


def _env(environ: Mapping[str, str], var: str, where: str, sink: str) -> str:
    value = environ.get(var)
    if not value:
        raise ConfigError(
            [(where, f"environment variable {var} is not set (needed by alert sink {sink!r})")]
        )
    return value


def _poster(config: Any) -> HttpPoster:
    retries = getattr(config, "retries", 3)
    timeout = getattr(config, "timeout_seconds", 10.0)
    return HttpPoster(timeout=float(timeout), retry=RetryPolicy(retries=int(retries)))


def _build_one(config: Any, where: str, environ: Mapping[str, str]) -> Sink:
    kind = config.type
    name = config.name
    common: dict[str, Any] = {
        "min_severity": getattr(config, "min_severity", "warning"),
        "dedup_seconds": float(getattr(config, "dedup_minutes", 60.0)) * 60.0,
    }
    if kind == "webhook":
        secret_env = getattr(config, "secret_env", None)
        secret = _env(environ, secret_env, f"{where}.secret_env", name) if secret_env else None
        return WebhookSink(
            name,
            config.url,
            secret=secret,
            headers=dict(getattr(config, "headers", None) or {}),
            poster=_poster(config),
            **common,
        )
    if kind == "slack":
        url = getattr(config, "webhook_url", None)
        url_env = getattr(config, "webhook_url_env", None)
        if url_env:
            url = _env(environ, url_env, f"{where}.webhook_url_env", name)
        if not url:
            raise ConfigError(
                [(where, f"slack sink {name!r} needs webhook_url or webhook_url_env")]
            )
        return SlackSink(name, url, poster=_poster(config), **common)
    if kind == "pagerduty":
        key_env = getattr(config, "routing_key_env", None)
        if not key_env:
            raise ConfigError([(f"{where}.routing_key_env", f"pagerduty sink {name!r} needs it")])
        key = _env(environ, key_env, f"{where}.routing_key_env", name)
        url = getattr(config, "url", None) or PAGERDUTY_EVENTS_URL
        return PagerDutySink(name, key, url=url, poster=_poster(config), **common)
    raise ConfigError(
        [(f"{where}.type", f"unknown alert sink type {kind!r} (webhook, slack, pagerduty)")]
    )


def build_sinks(
    configs: Sequence[SinkConfigLike],
    *,
    environ: Mapping[str, str] | None = None,
) -> list[Sink]:
    """One sink per config, in order. Every problem (missing variable, duplicate name) is
    collected and raised as one ConfigError with its ``alerts[i]`` path."""
    env = os.environ if environ is None else environ
    sinks: list[Sink] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, config in enumerate(configs):
        where = f"alerts[{i}]"
        if config.name in seen:
            problems.append((f"{where}.name", f"duplicate sink name {config.name!r}"))
            continue
        seen.add(config.name)
        try:
            sinks.append(_build_one(config, where, env))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        for sink in sinks:
            sink.close()
        raise ConfigError(problems)
    return sinks
