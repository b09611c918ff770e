"""The one place boto3 clients are built: lazily, with botocore adaptive retries.

Nothing here runs at import time: a client created at import escapes moto's mock and slows a
Lambda cold start. :class:`Clients` builds a client on first use and keeps it; ``assume()``
gives the :class:`Clients` of another account through STS AssumeRole.

Every API call made through a client built here passes through :func:`_on_call`, which counts
it per ``(service, operation)`` and tells the observers registered with :func:`observe_calls`
(the request counter of the Cost Explorer source, the IAM-coverage test).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Clients",
    "aws_error_code",
    "observe_calls",
    "observe_clients",
]

DEFAULT_MAX_ATTEMPTS = 8

CallObserver = Callable[[str, str], None]
ClientObserver = Callable[[str, Any], None]
_observers: list[CallObserver] = []
_client_observers: list[ClientObserver] = []
_observers_lock = threading.Lock()


def observe_calls(observer: CallObserver) -> Callable[[], None]:
    """Call ``observer(service, operation)`` for every AWS call; returns the unsubscribe."""
    with _observers_lock:
        _observers.append(observer)

    def remove() -> None:
        with _observers_lock:
            if observer in _observers:
                _observers.remove(observer)

    return remove


def observe_clients(observer: ClientObserver) -> Callable[[], None]:
    """Call ``observer(service, client)`` for every client built from now on (the demo and
    tests attach moto's Cost Explorer seeder this way); returns the unsubscribe."""
    with _observers_lock:
        _client_observers.append(observer)

    def remove() -> None:
        with _observers_lock:
            if observer in _client_observers:
                _client_observers.remove(observer)

    return remove


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@dataclass
class Clients:
    """Lazily built boto3 clients of one account (one boto3 Session).

    ``region`` is the default region; ``credentials`` (from AssumeRole) or ``profile`` choose
    the identity; ``max_attempts`` bounds botocore's adaptive retries (throttling backs off).
    """

    region: str = "us-east-1"
    profile: str | None = None
    credentials: dict[str, str] | None = None
    account: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _session: Any = field(default=None, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def session(self) -> Any:
        if self._session is None:
            import boto3

            kwargs: dict[str, Any] = {"region_name": self.region}
            if self.profile:
                kwargs["profile_name"] = self.profile
            if self.credentials:
                kwargs.update(
                    aws_access_key_id=self.credentials["AccessKeyId"],
                    aws_secret_access_key=self.credentials["SecretAccessKey"],
                    aws_session_token=self.credentials.get("SessionToken"),
                )
            self._session = boto3.session.Session(**kwargs)
        return self._session

    def client(self, service: str, region: str | None = None) -> Any:
        """The client of ``service`` in ``region`` (default region), built on first use."""
        key = (service, region or self.region)
        with self._lock:
            found = self._clients.get(key)
            if found is not None:
                return found
            from botocore.config import Config

            config = Config(
                retries={"mode": "adaptive", "max_attempts": self.max_attempts},
                user_agent_extra="cloudcircuit",
            )
            built = self.session().client(service, region_name=key[1], config=config)
            built.meta.events.register("before-call", self._on_call)
            self._clients[key] = built
            with _observers_lock:
                watchers = list(_client_observers)
        for watcher in watchers:
            watcher(service, built)
        return built

    def _on_call(self, model: Any = None, **_: Any) -> None:
        service = str(model.service_model.service_name) if model is not None else "?"
        operation = str(model.name) if model is not None else "?"
        self.calls[(service, operation)] += 1
        with _observers_lock:
            observers = list(_observers)
        for observer in observers:
            observer(service, operation)

    def assume(self, role_arn: str, *, session_name: str = "cloudcircuit") -> Clients:
        """The clients of the account ``role_arn`` belongs to (STS AssumeRole)."""
        from cloudcircuit.errors import ProviderError

        try:
            answer = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        except Exception as exc:
            raise ProviderError(f"cannot assume {role_arn}: {exc}") from exc
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else None
        return Clients(
            region=self.region,
            credentials=dict(answer["Credentials"]),
            account=account,
            max_attempts=self.max_attempts,
        )
