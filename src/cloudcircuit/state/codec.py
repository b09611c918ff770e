"""JSON encoding shared by every state backend, so a value or a journal entry written by one
backend reads back identically from any other (and from a file a person inspects).

Values are plain JSON plus one extension: aware datetimes travel as ``{"$datetime": ISO}`` and
come back as aware UTC datetimes, because enforcement states (launch times, schedules) carry
them and the journal must round-trip exactly. Naive datetimes are refused: a state store never
guesses a time zone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cloudcircuit.errors import InputError, StateError
from cloudcircuit.providers import JournalEntry, Resource

__all__ = [
    "check_ttl",
    "decode_entry",
    "decode_value",
    "encode_entry",
    "encode_value",
]

_DT_TAG = "$datetime"


def _to_utc(value: datetime, where: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{where}: datetime {value.isoformat()} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _prepare(value: Any, where: str) -> Any:
    """Turn ``value`` into something :func:`json.dumps` accepts, naming the bad part."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where}: {value} is not a finite number and cannot be stored")
        return value
    if isinstance(value, datetime):
        return {_DT_TAG: _to_utc(value, where).isoformat()}
    if isinstance(value, Mapping):
        if len(value) == 1 and _DT_TAG in value:
            raise InputError(f"{where}: a mapping with the single key {_DT_TAG!r} is reserved")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"{where}: mapping key {key!r} must be a string")
            out[key] = _prepare(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_prepare(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InputError(f"{where}: {type(value).__name__} values cannot be stored (JSON only)")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _DT_TAG in obj and isinstance(obj[_DT_TAG], str):
        return datetime.fromisoformat(obj[_DT_TAG]).astimezone(UTC)
    return obj


def encode_value(value: Any, *, where: str = "value") -> str:
    """Compact JSON text of ``value``; :class:`InputError` names what cannot be stored."""
    return json.dumps(_prepare(value, where), separators=(",", ":"), sort_keys=True)


def decode_value(text: str | bytes, *, where: str = "value") -> Any:
    """Inverse of :func:`encode_value`; corrupt text is a :class:`StateError` naming ``where``."""
    try:
        return json.loads(text, object_hook=_hook)
    except (ValueError, TypeError) as exc:
        raise StateError(f"state value {where} is not valid JSON: {exc}") from exc


def check_ttl(ttl: float | None) -> float | None:
    """A TTL is ``None`` (forever) or a positive finite number of seconds."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InputError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise InputError(f"ttl must be a positive number of seconds, got {ttl}")
    return float(ttl)


def _resource_dict(resource: Resource) -> dict[str, Any]:
    return {
        "provider": resource.provider,
        "type": resource.type,
        "id": resource.id,
        "region": resource.region,
        "account": resource.account,
        "tags": dict(resource.tags),
        "name": resource.name,
    }


def encode_entry(entry: JournalEntry) -> str:
    """One journal line as JSON text (every field, the datetime in UTC)."""
    where = f"journal[{entry.run_id}#{entry.seq}/{entry.phase}]"
    if entry.phase not in ("before", "after"):
        raise InputError(f"{where}: phase must be 'before' or 'after', got {entry.phase!r}")
    return encode_value(
        {
            "run_id": entry.run_id,
            "seq": entry.seq,
            "phase": entry.phase,
            "action": entry.action,
            "resource": _resource_dict(entry.resource),
            "state": dict(entry.state),
            "status": entry.status,
            "at": _to_utc(entry.at, f"{where}.at"),
            "error": entry.error,
        },
        where=where,
    )


def decode_entry(text: str | bytes) -> JournalEntry:
    """Inverse of :func:`encode_entry`; a malformed line is a :class:`StateError`."""
    data = decode_value(text, where="journal entry")
    try:
        res = data["resource"]
        resource = Resource(
            provider=res["provider"],
            type=res["type"],
            id=res["id"],
            region=res["region"],
            account=res["account"],
            tags=dict(res["tags"]),
            name=res["name"],
        )
        return JournalEntry(
            run_id=data["run_id"],
            seq=int(data["seq"]),
            phase=data["phase"],
            action=data["action"],
            resource=resource,
            state=dict(data["state"]),
            status=data["status"],
            at=data["at"],
            error=data["error"],
        )
    except (KeyError, TypeError) as exc:
        raise StateError(f"journal entry is missing or has a bad field: {exc}") from exc
