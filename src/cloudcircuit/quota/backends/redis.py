"""``redis://``, ``rediss://`` and Redis Cluster (``redis+cluster://``) ledgers.

Each operation is one Lua script, loaded once (SCRIPT LOAD when the server first answers
NOSCRIPT) and run with EVALSHA: one round trip covers every scope of the chain, and Redis runs
the script atomically. A script is put together from ``lua/prelude.lua``, the library parts
(``lua/lib_*.lua``) its ``-- needs:`` line names and its body (:func:`script_source`), so each
call defines only the helpers it uses. On a single Redis the EVALSHA is packed here, per chain
and time slot, and sent on the backend's own connection (:mod:`.wire`).

Keys are ``<prefix>{<root>}:<kind>:<scope>``: the chain's root scope is the hash tag, so one
hierarchy lives in one slot of a cluster and the script never crosses slots. With the default
``global > project > user`` chain the root is ``global`` and the whole ledger is one slot:
the global counter is read and written by every request anyway (a hot key by construction),
so spreading the other keys would not remove the bottleneck and would cost the global limit
its atomicity. To spread load over a cluster, root the chain at a level with many entities
(``org > team > key``): each org then lands in its own slot. bench/bench_quota.py measures both.

URL options (removed before the URL reaches redis-py): ``prefix`` (key prefix, default
``cc:quota:``). The socket timeouts are the ledger timeout, and redis-py's own retries are off:
a late or lost answer fails closed at once, and a retried request id is idempotent anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from importlib import resources
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cloudcircuit.errors import ConfigError, LedgerUnavailableError, QuotaError
from cloudcircuit.quota.backends.base import Op, ScopeArgs
from cloudcircuit.quota.backends.wire import Wire

try:
    import redis
    import redis.asyncio as aredis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - the redis extra is part of dev
    raise ImportError(
        "the Redis quota ledger needs redis-py: pip install 'cloudcircuit[redis]'"
    ) from exc

__all__ = ["DEFAULT_PREFIX", "SCRIPTS", "RedisBackend", "script_source"]

DEFAULT_PREFIX = "cc:quota:"
_PACK_CACHE = 4096
SCRIPTS = ("reserve", "commit", "release", "charge", "usage", "limit")
_GROUPS: dict[str, int] = {
    "reserve": 5, "commit": 3, "release": 0, "charge": 5, "usage": 5, "limit": 5,
}  # fmt: skip
"""Per-scope argument groups each script reads (see prelude.lua): it is sent no more."""


def script_source(name: str) -> str:
    """The full Lua source of one operation: the prelude, the library parts its ``-- needs:``
    line names (in that order), then its body."""
    folder = resources.files("cloudcircuit.quota.backends") / "lua"
    body = (folder / f"{name}.lua").read_text(encoding="utf-8")
    first = body.split("\n", 1)[0]
    if not first.startswith("-- needs:"):
        raise ConfigError(f"quota script {name}.lua: first line must be '-- needs: ...'")
    parts = [(folder / "prelude.lua").read_text(encoding="utf-8")]
    parts.extend(
        (folder / f"lib_{part}.lua").read_text(encoding="utf-8")
        for part in first.removeprefix("-- needs:").split()
    )
    parts.append(body)
    return "\n".join(parts)


class _Packing(NamedTuple):
    """A chain's pre-packed EVALSHA parts for one time slot (see ``RedisBackend._pack_op``)."""

    scopes: tuple[ScopeArgs, ...]  # identity check: the cache is keyed by id()
    request_prefix: bytes
    rest: bytes  # the keys after the request record's
    heads: dict[str, tuple[bytes, bytes]]  # per kind: command head, per-scope arguments


def _bulk(item: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(item), item)


def _split_url(url: str) -> tuple[str, bool, str]:
    parts = urlsplit(url)
    scheme = parts.scheme
    cluster = scheme.endswith("+cluster")
    base = scheme.removesuffix("+cluster")
    if base not in ("redis", "rediss"):
        raise ConfigError(f"ledger url: expected redis://, rediss:// or redis+cluster://: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    rest = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        else:
            rest.append((key, value))
    clean = urlunsplit((base, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return clean, cluster, prefix


class RedisBackend:
    """Redis or Redis Cluster ledger store (sync and asyncio clients, same scripts)."""

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.url, self.cluster, self.prefix = _split_url(url)
        self.name = "redis-cluster" if self.cluster else "redis"
        self.timeout = timeout
        self._sources = {name: script_source(name) for name in SCRIPTS}
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "decode_responses": True,
        }
        if self.cluster:
            self.client: Any = RedisCluster.from_url(
                self.url,
                **options,
                retry=Retry(NoBackoff(), 0),
                require_full_coverage=False,
            )
        else:
            self.client = redis.Redis.from_url(
                self.url, **options, retry=Retry(NoBackoff(), 0), health_check_interval=0
            )
        self._shas = {
            n: hashlib.sha1(s.encode(), usedforsecurity=False).hexdigest()
            for n, s in self._sources.items()
        }
        self._options = options
        self._packed: dict[int, _Packing] = {}
        self._wire = Wire(self.client)  # single Redis only (a cluster routes by slot)
        self._wire_lock = threading.Lock()
        self._async: Any = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def keys_and_args(self, op: Op) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV of the script for ``op`` (all keys carry the chain's hash tag).

        Each scope is one hash (held + committed buckets). ARGV is the time, amount, TTL and
        retention, then the per-scope groups the operation reads, grouped by kind (current
        buckets, first buckets, expiries, scope keys, configured limits; see prelude.lua).
        """
        tagged = f"{self.prefix}{{{op.root}}}:"
        keys = [tagged + "q:" + op.request, tagged + "exp", tagged + "lim"]
        keys.extend(f"{tagged}s:{s.key}:{s.window}" for s in op.scopes)
        args: list[str | int] = [op.now_ms, op.amount, op.ttl_ms, op.keep_ms]
        return keys, args + self._groups(op.scopes, _GROUPS[op.kind])

    @staticmethod
    def _groups(scopes: tuple[ScopeArgs, ...], count: int) -> list[str | int]:
        groups: list[str | int] = []
        for field in ("hi", "lo", "expire_ms", "key", "limit")[:count]:
            groups.extend(getattr(s, field) for s in scopes)
        return groups

    def _load(self, client: Any) -> None:
        for source in self._sources.values():
            client.script_load(source)

    def _chain_packing(self, op: Op) -> _Packing:
        """The parts of ``op``'s EVALSHA that depend only on its chain and time slot."""
        keys, _ = self.keys_and_args(op)
        request_prefix = keys[0][: len(keys[0]) - len(op.request)].encode()
        rest = b"".join(_bulk(k.encode()) for k in keys[1:])
        heads: dict[str, tuple[bytes, bytes]] = {}
        for kind, sha in self._shas.items():
            tail = self._groups(op.scopes, _GROUPS[kind])
            count = len(keys) + 4 + len(tail)
            head = b"*%d\r\n$7\r\nEVALSHA\r\n%s%s" % (
                count + 3,
                _bulk(sha.encode()),
                _bulk(b"%d" % len(keys)),
            )
            heads[kind] = (head, b"".join(_bulk(str(a).encode()) for a in tail))
        packing = _Packing(op.scopes, request_prefix, rest, heads)
        if len(self._packed) >= _PACK_CACHE:
            self._packed.clear()
        self._packed[id(op.scopes)] = packing
        return packing

    def _pack_op(self, op: Op) -> bytes:
        """EVALSHA of ``op`` as RESP bytes.

        redis-py's generic packer costs more than the round trip saves at this size. The
        chain's part (its keys and scope arguments) is packed once per chain and time slot
        (the ledger hands the same ``scopes`` tuple for a slot, so it is found by identity)
        and reused; only the request key, the time, the amount and the TTL are packed per call.
        """
        packing = self._packed.get(id(op.scopes))
        if packing is None or packing.scopes is not op.scopes:
            packing = self._chain_packing(op)
        head, tail = packing.heads[op.kind]
        request = packing.request_prefix + op.request.encode()
        now, amount, ttl, keep = (
            b"%d" % op.now_ms,
            b"%d" % op.amount,
            b"%d" % op.ttl_ms,
            b"%d" % op.keep_ms,
        )
        return b"%s$%d\r\n%s\r\n%s$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n%s" % (
            head, len(request), request, packing.rest, len(now), now, len(amount), amount,
            len(ttl), ttl, len(keep), keep, tail,
        )  # fmt: skip

    def _call(self, payload: bytes) -> Any:
        """One round trip (single Redis) on this backend's own connection when it is free,
        else on a pooled one: most callers are one thread, and the pool's bookkeeping costs
        about as much as the script. Errors drop the connection (it reconnects on next use).
        """
        lock = self._wire_lock
        if lock.acquire(blocking=False):
            try:
                return self._wire.call(payload)
            finally:
                lock.release()
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([payload], check_health=False)
            return conn.read_response()
        except redis.ResponseError:
            raise
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def _evalsha(self, op: Op) -> Any:
        if self.cluster:  # routed by the key's slot: redis-py's cluster client does that
            keys, args = self.keys_and_args(op)
            sha = self._shas[op.kind]
            return self.client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        return self._call(self._pack_op(op))

    def execute(self, op: Op) -> list[object]:
        try:
            try:
                reply = self._evalsha(op)
            except redis.exceptions.NoScriptError:
                self._load(self.client)  # first use, or the server restarted empty
                reply = self._evalsha(op)
        except redis.ResponseError as exc:
            if "CLUSTERDOWN" in str(exc) or "LOADING" in str(exc):
                raise LedgerUnavailableError(f"{self.name} ledger: {exc}") from exc
            raise QuotaError(f"{self.name} ledger script {op.kind!r} failed: {exc}") from exc
        except (redis.RedisError, OSError) as exc:
            raise LedgerUnavailableError(
                f"{self.name} ledger did not answer within {self.timeout:g}s: {exc}"
            ) from exc
        return reply if type(reply) is list else list(reply)

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            if self.cluster:
                client: Any = aredis.RedisCluster.from_url(self.url, **self._options)
            else:
                client = aredis.Redis.from_url(
                    self.url, **self._options, retry=Retry(NoBackoff(), 0)
                )
            self._async = client
            self._async_loop = loop
        return self._async

    async def aexecute(self, op: Op) -> list[object]:
        client = self._async_client()

        async def evalsha() -> Any:
            if self.cluster:
                keys, args = self.keys_and_args(op)
                sha = self._shas[op.kind]
                return await client.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            pool = client.connection_pool
            conn = await pool.get_connection()
            try:
                await conn.send_packed_command([self._pack_op(op)], check_health=False)
                return await conn.read_response()
            except redis.ResponseError:
                raise
            except BaseException:
                # timed out or cancelled mid-call: the reply may still come, so the connection
                # must not go back to the pool with it pending
                await conn.disconnect(nowait=True)
                raise
            finally:
                await pool.release(conn)

        try:
            async with asyncio.timeout(self.timeout * 2):
                try:
                    reply = await evalsha()
                except redis.exceptions.NoScriptError:
                    for source in self._sources.values():
                        await client.script_load(source)
                    reply = await evalsha()
        except redis.ResponseError as exc:
            if "CLUSTERDOWN" in str(exc) or "LOADING" in str(exc):
                raise LedgerUnavailableError(f"{self.name} ledger: {exc}") from exc
            raise QuotaError(f"{self.name} ledger script {op.kind!r} failed: {exc}") from exc
        except (TimeoutError, redis.RedisError, OSError) as exc:
            raise LedgerUnavailableError(
                f"{self.name} ledger did not answer within {self.timeout:g}s: {exc}"
            ) from exc
        return list(reply)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        with self._wire_lock:
            self._wire.close()
        self.client.close()
