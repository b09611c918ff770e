"""API keys for the quota service: bearer tokens stored hashed, bound to scopes.

Keys are random tokens (``generate_api_key``: 256 bits), so a plain SHA-256 digest is the right
storage (no password-stretching needed for high-entropy secrets) and a lookup by digest leaks
nothing through timing. Each key lists the partial scopes it may act on: ``{"project": "p1"}``
allows any chain whose project is p1 (any user in it) and nothing else; ``"*"`` matches any
entity of that level; ``admin`` keys may act everywhere and set limits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ApiKey", "ApiKeyConfig", "ApiKeyStore", "generate_api_key", "hash_api_key"]

_PREFIX = "sha256:"


def hash_api_key(token: str) -> str:
    """The stored form of a key: ``sha256:<hex>``."""
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


def generate_api_key() -> str:
    """A new random key (show it once, store only its hash)."""
    return "cck_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's name, digest, the scopes it is bound to, and whether it is an admin key."""

    name: str
    digest: str
    scopes: tuple[Mapping[str, str], ...] = field(default_factory=tuple)
    admin: bool = False

    def allows(self, entities: Mapping[str, str]) -> bool:
        """May this key act on the chain naming ``entities``?"""
        if self.admin:
            return True
        for binding in self.scopes:
            if all(
                level in entities and (value == "*" or entities[level] == value)
                for level, value in binding.items()
            ):
                return True
        return False


class ApiKeyConfig(BaseModel):
    """One key of the service configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    sha256: str
    scopes: list[dict[str, str]] = Field(default_factory=list)
    admin: bool = False

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        digest = value.removeprefix(_PREFIX)
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("must be 64 lowercase hex digits (hash_api_key or quota-key)")
        return _PREFIX + digest

    def to_key(self) -> ApiKey:
        return ApiKey(self.name, self.sha256, tuple(self.scopes), self.admin)


class ApiKeyStore:
    """Looks bearer tokens up by digest."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._by_digest = {key.digest: key for key in keys}

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key a bearer token belongs to, or None."""
        digest = hash_api_key(token)
        key = self._by_digest.get(digest)
        if key is None or not hmac.compare_digest(key.digest, digest):
            return None
        return key
