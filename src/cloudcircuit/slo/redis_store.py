"""RedisStore: bucketed SLO counters in Redis, so many processes or replicas share one SLO.

Each time bucket is one hash ``{prefix}{<slo>}:<bucket>`` with fields ``t`` (events) and ``f``
(failures), incremented atomically by a Lua script that also keeps running totals over the ring
(``...:totals``), moves the newest-bucket mark and retires the buckets that leave the ring.
Every key expires (the window length plus two buckets after its last write), so an SLO nobody
records any more disappears. Counting the whole window is one hash read; a shorter window sums
the shorter of itself and its complement, server side, in one script call.
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

# KEYS: bucket hash, newest mark, totals hash; ARGV: idx, failed (0/1), ring size, ttl, prefix
_RECORD = """
local idx = tonumber(ARGV[1])
local size = tonumber(ARGV[3])
local raw = redis.call('GET', KEYS[2])
local newest = nil  -- a missing key reads as false in Lua, not nil
if raw then newest = tonumber(raw) end
if newest ~= nil and idx <= newest - size then return 0 end
if newest == nil or idx > newest then
  if newest ~= nil and idx - newest < size then
    -- buckets leaving the ring leave the running totals
    for j = newest - size + 1, idx - size do
      local key = ARGV[5] .. j
      local v = redis.call('HMGET', key, 't', 'f')
      if v[1] then
        redis.call('HINCRBY', KEYS[3], 't', -tonumber(v[1]))
        if v[2] then redis.call('HINCRBY', KEYS[3], 'f', -tonumber(v[2])) end
        redis.call('DEL', key)
      end
    end
  else
    redis.call('HSET', KEYS[3], 't', 0, 'f', 0)
  end
  redis.call('SET', KEYS[2], idx)
end
redis.call('HINCRBY', KEYS[1], 't', 1)
redis.call('HINCRBY', KEYS[3], 't', 1)
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[1], 'f', 1)
  redis.call('HINCRBY', KEYS[3], 'f', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""

_SUM = """
local function sum(prefix, lo, hi)
  local total, fails = 0, 0
  for i = lo, hi do
    local v = redis.call('HMGET', prefix .. i, 't', 'f')
    if v[1] then
      total = total + tonumber(v[1])
      if v[2] then fails = fails + tonumber(v[2]) end
    end
  end
  return total, fails
end
"""

# KEYS: newest mark, totals hash; ARGV: prefix, first bucket wanted, ring size
_COUNT = (
    _SUM
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, 0} end
local newest = tonumber(raw)
local size = tonumber(ARGV[3])
local cutoff = tonumber(ARGV[2])
local oldest = newest - size + 1
local all = redis.call('HMGET', KEYS[2], 't', 'f')
local all_t, all_f = tonumber(all[1] or '0'), tonumber(all[2] or '0')
if cutoff <= oldest then return {all_t, all_f} end
if cutoff > newest then return {0, 0} end
local inside = newest - cutoff + 1
if inside <= size - inside then
  local t, f = sum(ARGV[1], cutoff, newest)
  return {t, f}
end
local t, f = sum(ARGV[1], oldest, cutoff - 1)
return {all_t - t, all_f - f}
"""
)

# KEYS: newest mark, totals hash; ARGV: prefix, first bucket kept, ring size
_TRIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local newest = tonumber(raw)
local last = math.min(tonumber(ARGV[2]) - 1, newest)
for j = newest - tonumber(ARGV[3]) + 1, last do
  local key = ARGV[1] .. j
  local v = redis.call('HMGET', key, 't', 'f')
  if v[1] then
    redis.call('HINCRBY', KEYS[2], 't', -tonumber(v[1]))
    if v[2] then redis.call('HINCRBY', KEYS[2], 'f', -tonumber(v[2])) end
    redis.call('DEL', key)
  end
end
return 1
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
        self._totals_key = f"{prefix}{{{name}}}:totals"
        self._record_script = self._client.register_script(_RECORD)
        self._count_script = self._client.register_script(_COUNT)
        self._trim_script = self._client.register_script(_TRIM)

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
            [f"{self._bucket_prefix}{idx}", self._newest_key, self._totals_key],
            [idx, 0 if success else 1, self._size, self._ttl, self._bucket_prefix],
        )

    def record(self, observation: Observation) -> None:
        self.add(observation.timestamp, observation.success)

    def counts(self, now: float, seconds: int) -> tuple[int, int]:
        """``(total, failures)`` from the bucket holding ``now - seconds`` on."""
        out = self._call(
            "count",
            self._count_script,
            [self._newest_key, self._totals_key],
            [self._bucket_prefix, math.floor((now - seconds) / self._res), self._size],
        )
        return int(out[0]), int(out[1])

    def window(self, now: float, seconds: int) -> list[Observation]:
        """Observations rebuilt from the counters at their bucket's start (0.1 protocol)."""
        newest = self._newest()
        if newest is None:
            return []
        lo = max(math.floor((now - seconds) / self._res), newest - self._size + 1)
        try:
            pipe = self._client.pipeline(transaction=False)
            for idx in range(lo, newest + 1):
                pipe.hmget(f"{self._bucket_prefix}{idx}", "t", "f")
            rows = pipe.execute()
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: read failed: {exc}") from exc
        out: list[Observation] = []
        for idx, (total, fails) in zip(range(lo, newest + 1), rows, strict=True):
            start = idx * self._res
            n_fail = int(fails or 0)
            out.extend(Observation(start, False) for _ in range(n_fail))
            out.extend(Observation(start, True) for _ in range(int(total or 0) - n_fail))
        return out

    def _newest(self) -> int | None:
        try:
            raw = self._client.get(self._newest_key)
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: read failed: {exc}") from exc
        return None if raw is None else int(float(raw))

    def trim(self, before: float) -> None:
        """Delete the buckets that end at or before ``before``."""
        self._call(
            "trim",
            self._trim_script,
            [self._newest_key, self._totals_key],
            [self._bucket_prefix, math.floor(before / self._res), self._size],
        )

    def clear(self) -> None:
        """Delete every key of this SLO."""
        try:
            keys = list(self._client.scan_iter(match=f"{self._bucket_prefix}*", count=1000))
            for lo in range(0, len(keys), 1000):
                self._client.delete(*keys[lo : lo + 1000])
        except self._errors as exc:
            raise StateError(f"SLO store {self._bucket_prefix!r}: clear failed: {exc}") from exc

    def __len__(self) -> int:
        return self.counts(_FAR_FUTURE, 2 * _FAR_FUTURE)[0]
