"""RedisStore: bucketed SLO counters in Redis, so many processes or replicas share one SLO.

Each time bucket is one hash ``{prefix}{<slo>}:<bucket>`` with fields ``t`` (events) and ``f``
(failures), incremented atomically by a Lua script that also moves the SLO's newest-bucket mark
and sets the key's expiry (the window length plus two buckets, so Redis forgets buckets nobody
can read any more). Counting a window is one script call summing its buckets server side.
Semantics match :class:`~cloudcircuit.slo.store.BucketedStore` exactly: the same ring of
``ceil(max_age / resolution) + 1`` buckets behind the newest one, the same resolution rule.

The ``{<slo>}`` hash tag keeps one SLO's keys in one cluster slot. Needs redis-py
(``pip install 'cloudcircuit[redis]'``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cloudcircuit.errors import StateError
from cloudcircuit.slo.model import Observation

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

# KEYS[1] bucket hash, KEYS[2] newest mark; ARGV idx, failed (0/1), ring size, ttl seconds
_RECORD = """
local idx = tonumber(ARGV[1])
local newest = tonumber(redis.call('GET', KEYS[2]) or '-1e18')
if idx <= newest - tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], 't', 1)
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'f', 1) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if idx > newest then redis.call('SET', KEYS[2], idx, 'EX', ARGV[4])
else redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1
"""

# KEYS[1] newest mark; ARGV key prefix, first bucket wanted, ring size, last bucket wanted
_COUNT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, 0} end
local newest = tonumber(raw)
local lo = math.max(tonumber(ARGV[2]), newest - tonumber(ARGV[3]) + 1)
local hi = math.min(newest, tonumber(ARGV[4]))
local total, fails = 0, 0
for i = lo, hi do
  local v = redis.call('HMGET', ARGV[1] .. i, 't', 'f')
  if v[1] then
    total = total + tonumber(v[1])
    if v[2] then fails = fails + tonumber(v[2]) end
  end
end
return {total, fails}
"""

_FAR_FUTURE = 2**53


class RedisStore:
    """An SLO's bucketed counters in Redis (see the module docstring)."""

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        name: str,
        max_age_seconds: float,
        *,
        resolution_seconds: float = 60.0,
        prefix: str = "cloudcircuit:slo:",
    ) -> None:
        try:
            import redis as redis_lib
        except ImportError as exc:  # pragma: no cover - the redis extra installs it
            raise ImportError(
                "RedisStore needs redis-py: pip install 'cloudcircuit[redis]'"
            ) from exc
        if not name:
            raise ValueError("RedisStore needs a non-empty SLO name")
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        if not resolution_seconds > 0:
            raise ValueError(f"resolution_seconds must be > 0, got {resolution_seconds}")
        self._client: redis.Redis = (
            redis_lib.Redis.from_url(url_or_client)
            if isinstance(url_or_client, str)
            else url_or_client
        )
        self._errors: tuple[type[Exception], ...] = (redis_lib.RedisError,)
        self._res = float(resolution_seconds)
        self._size = math.ceil(float(max_age_seconds) / self._res) + 1
        self._ttl = math.ceil(float(max_age_seconds) + 2 * self._res)
        self._bucket_prefix = f"{prefix}{{{name}}}:"
        self._newest_key = f"{prefix}{{{name}}}:newest"
        self._record_script = self._client.register_script(_RECORD)
        self._count_script = self._client.register_script(_COUNT)

    @property
    def resolution_seconds(self) -> float:
        return self._res

    def _call(self, what: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: {what} failed: {exc}") from exc

    def add(self, timestamp: float, success: bool) -> None:
        idx = math.floor(timestamp / self._res)
        self._call(
            "record",
            self._record_script,
            [f"{self._bucket_prefix}{idx}", self._newest_key],
            [idx, 0 if success else 1, self._size, self._ttl],
        )

    def record(self, observation: Observation) -> None:
        self.add(observation.timestamp, observation.success)

    def _range(self, lo: int, hi: int) -> tuple[int, int]:
        out = self._call(
            "count",
            self._count_script,
            [self._newest_key],
            [self._bucket_prefix, lo, self._size, hi],
        )
        return int(out[0]), int(out[1])

    def counts(self, now: float, seconds: int) -> tuple[int, int]:
        """``(total, failures)`` from the bucket holding ``now - seconds`` on."""
        return self._range(math.floor((now - seconds) / self._res), _FAR_FUTURE)

    def window(self, now: float, seconds: int) -> list[Observation]:
        """Observations rebuilt from the counters at their bucket's start (0.1 protocol)."""
        newest = self._newest()
        if newest is None:
            return []
        lo = max(math.floor((now - seconds) / self._res), newest - self._size + 1)
        out: list[Observation] = []
        for idx in range(lo, newest + 1):
            total, fails = self._range(idx, idx)
            start = idx * self._res
            out.extend(Observation(start, False) for _ in range(fails))
            out.extend(Observation(start, True) for _ in range(total - fails))
        return out

    def _newest(self) -> int | None:
        try:
            raw = self._client.get(self._newest_key)
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: read failed: {exc}") from exc
        return None if raw is None else int(float(raw))

    def trim(self, before: float) -> None:
        """Delete the buckets that end at or before ``before``."""
        newest = self._newest()
        if newest is None:
            return
        limit = math.floor(before / self._res)
        keys = [f"{self._bucket_prefix}{i}" for i in range(newest - self._size + 1, limit)]
        try:
            for lo in range(0, len(keys), 1000):
                self._client.delete(*keys[lo : lo + 1000])
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: trim failed: {exc}") from exc

    def clear(self) -> None:
        """Delete every key of this SLO."""
        try:
            keys = list(self._client.scan_iter(match=f"{self._bucket_prefix}*", count=1000))
            for lo in range(0, len(keys), 1000):
                self._client.delete(*keys[lo : lo + 1000])
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: clear failed: {exc}") from exc

    def __len__(self) -> int:
        return self._range(-_FAR_FUTURE, _FAR_FUTURE)[0]
