"""HTTP delivery with retries: what every sink shares.

Retried: connection errors and timeouts, 429 (honouring ``Retry-After``, capped) and 5xx,
with exponential backoff and jitter so many scanners do not hammer a recovering receiver in
step. Not retried: any other 4xx, because the request itself is wrong (a revoked Slack hook,
a bad PagerDuty routing key) and repeating it cannot help. Giving up raises
:class:`~cloudcircuit.errors.AlertDeliveryError` with the attempts and the last failure.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from cloudcircuit.errors import AlertDeliveryError, InputError

__all__ = ["DeliveryGaveUpError", "HttpPoster", "RetryPolicy", "parse_retry_after"]


class DeliveryGaveUpError(AlertDeliveryError):
    """Every attempt failed with a retryable error (unreachable, 429, 5xx): the receiver is
    down rather than the alert wrong, so dispatch stops sending it more in the same run."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` extra attempts after the first; delays in seconds."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise InputError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise InputError("backoff delays must be >= 0")

    def backoff_delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (0-based): half the exponential step plus
        a random half ("equal jitter"), never above ``max_backoff``."""
        step = min(self.max_backoff, self.backoff * (2**attempt))
        return float(step / 2 + rng.uniform(0, step / 2))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] + ("..." if len(text) > 200 else "")


class HttpPoster:
    """POST with the retry rules above. ``sleep`` and ``rng`` are injectable so tests can
    record the delays instead of waiting them out."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def post(
        self, url: str, content: bytes, headers: Mapping[str, str], *, what: str
    ) -> httpx.Response:
        """POST ``content``; returns the 2xx response or raises AlertDeliveryError naming
        ``what`` (the sink), the attempts and the last failure."""
        attempts = self.retry.retries + 1
        last = ""
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = self._client.post(url, content=content, headers=dict(headers))
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                last = f"HTTP {status}: {_snippet(response)}"
                if status != 429 and status < 500:
                    raise AlertDeliveryError(
                        f"{what}: {last} (not retried: the receiver refused the request)"
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt + 1 < attempts:
                if retry_after is not None:
                    delay = min(retry_after, self.retry.max_retry_after)
                else:
                    delay = self.retry.backoff_delay(attempt, self._rng)
                self._sleep(delay)
        raise DeliveryGaveUpError(
            f"{what}: gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {last}"
        )
