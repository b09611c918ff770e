"""One Redis connection driven with pre-packed RESP (the ledger's hot path).

redis-py opens the connection (TCP or TLS, AUTH, SELECT, client name, timeouts), then each call
writes its already packed command straight to the socket and reads the reply with its own
hiredis reader: redis-py's per-call bookkeeping costs about as much as a small script does on
the server. Without hiredis the calls go through redis-py's own send and read.

Any failure before a whole reply is read drops the connection (a late reply must never answer
the next call); it reconnects on the next call. A forked child opens its own connection.
"""

from __future__ import annotations

import importlib
import os
import socket
import struct
import sys
from typing import Any

import redis

_Reader: Any
try:
    _Reader = importlib.import_module("hiredis").Reader
except ImportError:  # pragma: no cover - hiredis comes with the redis extra
    _Reader = None

__all__ = ["Wire"]

_BUFFER = 65_536
_forks = [0]  # bumped in a forked child: cheaper to compare than os.getpid() (a system call)
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


def _error(reply: redis.ResponseError) -> redis.ResponseError:
    """The redis-py exception a reply error maps to (NOSCRIPT: the script must be loaded)."""
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return reply


def _kernel_timeouts(sock: Any) -> None:
    """Move a plain TCP socket's timeout into the kernel (SO_RCVTIMEO / SO_SNDTIMEO).

    A Python-level timeout makes every send and receive wait in poll() first, two system calls
    where one does; with the kernel's timeout a late reply still ends the wait (EAGAIN, an
    OSError like a Python timeout). Linux only; TLS sockets keep Python's timeout.
    """
    timeout = sock.gettimeout()
    if sys.platform != "linux" or type(sock) is not socket.socket or not timeout:
        return
    seconds = int(timeout)
    value = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)


class Wire:
    """A private connection made by ``client``'s pool (never returned to it), opened on first
    use; one thread at a time."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn: Any = None
        self._sock: Any = None
        self._fork = -1
        self._reader: Any = None
        self._buffer = bytearray(_BUFFER)

    def _connect(self) -> Any:
        conn = self._client.connection_pool.make_connection()
        conn.connect()
        self._conn, self._fork = conn, _forks[0]
        sock = getattr(conn, "_sock", None)
        if _Reader is None or sock is None:  # pragma: no cover - fallback transport
            self._sock = None
            return None
        self._sock = sock
        _kernel_timeouts(sock)
        self._reader = _Reader(
            encoding="utf-8",
            replyError=redis.ResponseError,
            protocolError=redis.exceptions.InvalidResponse,  # not Redis speaking: unavailable
        )
        return sock

    def call(self, payload: bytes) -> Any:
        """Send ``payload`` (one packed command) and return its reply."""
        if self._fork != _forks[0]:
            self._conn = None  # a parent's connection is left to the parent
            self._connect()
        sock = self._sock
        try:
            if sock is None:  # pragma: no cover - fallback transport
                self._conn.send_packed_command([payload], check_health=False)
                return self._conn.read_response()
            sock.sendall(payload)
            reader, buffer = self._reader, self._buffer
            reply = False  # nothing is pipelined: no reply can be waiting before this one
            while reply is False:
                got = sock.recv_into(buffer)
                if not got:
                    raise redis.ConnectionError("Redis closed the connection")
                reader.feed(buffer, 0, got)
                reply = reader.gets()
        except redis.ResponseError:  # a whole reply was read: the connection is fine
            raise
        except BlockingIOError:  # the kernel's timeout (see _kernel_timeouts)
            self.close()
            raise TimeoutError("timed out") from None
        except BaseException:  # a reply may still be in flight: never reuse the connection
            self.close()
            raise
        if isinstance(reply, redis.ResponseError):
            raise _error(reply)
        return reply

    def close(self) -> None:
        conn, self._conn, self._sock, self._reader = self._conn, None, None, None
        fork, self._fork = self._fork, -1
        if conn is not None and fork == _forks[0]:
            conn.disconnect()
