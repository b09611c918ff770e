"""Spend sources: FOCUS files (built in, on DuckDB) and provider adapters (entry points).

:func:`open_source` turns what a policy or the command line names into a
:class:`~cloudcircuit.providers.SpendSource`: ``"focus:PATH"`` or a source config of type
``focus`` reads FOCUS files; any other type is a provider package found through the
``cloudcircuit.providers`` entry-point group (``aws`` -> cloudcircuit-aws).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cloudcircuit.errors import ConfigError
from cloudcircuit.providers import SpendSource, load_provider

__all__ = ["FOCUS_SETTINGS", "SourceConfigLike", "open_source"]

#: settings a ``focus`` source accepts (besides ``path``)
FOCUS_SETTINGS = ("settle_hours", "strict", "version")


class SourceConfigLike(Protocol):
    """What :func:`open_source` reads from a policy's source entry (policy.SourceConfig)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def path(self) -> str | None: ...

    @property
    def settings(self) -> Mapping[str, Any]: ...


def _focus(
    path: str | Path,
    settings: Mapping[str, Any],
    *,
    name: str,
    where: str,
    now: datetime | None,
    settle_hours: float | None,
) -> SpendSource:
    from cloudcircuit.sources.focus import FocusSource

    unknown = sorted(set(settings) - set(FOCUS_SETTINGS))
    if unknown:
        allowed = ", ".join(FOCUS_SETTINGS)
        raise ConfigError(
            [
                (f"{where}.settings.{key}", f"unknown setting; a focus source takes {allowed}")
                for key in unknown
            ]
        )
    settle = settings.get("settle_hours", settle_hours)
    version = settings.get("version")
    return FocusSource(
        path,
        version=None if version is None else str(version),
        name=name,
        settle_hours=0.0 if settle is None else float(settle),
        now=now,
        strict=bool(settings.get("strict", True)),
    )


def open_source(
    config: SourceConfigLike | str,
    *,
    now: datetime | None = None,
    settle_hours: float | None = None,
) -> SpendSource:
    """The spend source a policy entry or a ``TYPE:ARG`` string names.

    ``"focus:PATH"`` (file, folder or glob) or a config with ``type: focus`` and ``path``
    gives a FocusSource; other types load the provider package registered under that name
    and call its ``source(settings)``. ``settle_hours`` is the policy default for how long
    a bucket keeps filling; a source's own ``settings.settle_hours`` wins.
    """
    if isinstance(config, str):
        kind, _, arg = config.partition(":")
        kind = kind.strip()
        if kind == "focus":
            if not arg.strip():
                raise ConfigError("focus source needs a path: focus:PATH (file, folder or glob)")
            return _focus(
                arg.strip(), {}, name="focus", where="source", now=now, settle_hours=settle_hours
            )
        if not kind:
            raise ConfigError(f"source {config!r}: expected TYPE or focus:PATH")
        return load_provider(kind).source({"arg": arg} if arg else {})
    where = f"sources[{config.name}]"
    if config.type == "focus":
        if not config.path:
            raise ConfigError(
                [(f"{where}.path", "a focus source needs a path (file, folder or glob)")]
            )
        return _focus(
            config.path,
            config.settings,
            name=config.name,
            where=where,
            now=now,
            settle_hours=settle_hours,
        )
    return load_provider(config.type).source(dict(config.settings))
