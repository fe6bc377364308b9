"""EVALSHA on the wire without redis-py's per-command machinery (the hot path of every script).

Every state change is one EVALSHA (design.md §5). redis-py's ``execute_command`` costs more per
call than the round trip's own Python work here (argument packing of about 1 µs per argument,
response-callback lookup, and on redis-py 8 its observability hooks), so for the plain asyncio
client kew packs the RESP request itself and sends it on a connection borrowed from the
client's own pool. Everything else (connecting, health checks, TLS, AUTH, the pool, parsing with
hiredis) stays redis-py's. The command bytes are those redis-py would send; a test holds the two
encodings equal.

Safety rules (as redis-py's own): a connection whose reply was not read in full (a cancelled
call, a connection error) is disconnected before it goes back to the pool, so no later command
reads a stale reply; a connection error falls back once to ``execute_command``, so redis-py's
retry policy still applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from redis import exceptions as rexc
from redis.asyncio import ConnectionPool, Redis

__all__ = ["Arg", "FastEval", "encode_arg", "pack", "pack_evalsha"]

Arg = str | bytes | int | float

MAX_IDLE = 16  # connections a FastEval keeps between calls (more go back to the pool)


def encode_arg(value: Arg) -> bytes:
    """Encode one command argument as redis-py does (bytes as is, str UTF-8, numbers repr).

    Raises:
        TypeError: a bool or another type (redis-py raises DataError for these).
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("a bool is not a Redis argument")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"{type(value).__name__} is not a Redis argument")


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(*command: Arg) -> bytes:
    """The RESP request of one command (pure).

    Raises:
        TypeError: an argument of a type Redis does not take.
    """
    return b"*%d\r\n" % len(command) + b"".join(_bulk(encode_arg(a)) for a in command)


def pack_evalsha(sha: str, keys: Sequence[str | bytes], args: Sequence[Arg]) -> bytes:
    """The RESP request ``EVALSHA sha numkeys *keys *args`` (pure).

    The part before the arguments is packed once per (script, keys) and reused.

    Raises:
        TypeError: an argument of a type Redis does not take.
    """
    head = _heads.get((sha, *keys))
    if head is None:
        if len(_heads) > 4096:  # bounded: keys are per queue, and queues are few
            _heads.clear()
        head = _heads[(sha, *keys)] = b"".join(
            _bulk(encode_arg(a)) for a in ("EVALSHA", sha, len(keys), *keys)
        )
    parts = [b"*%d\r\n" % (3 + len(keys) + len(args)), head]
    for a in args:
        # the common exact types first; encode_arg handles the rest (and refuses bools)
        if type(a) is bytes:
            data: bytes = a
        elif type(a) is str:
            data = a.encode()
        elif type(a) is int:
            data = b"%d" % a
        else:
            data = encode_arg(a)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


_heads: dict[tuple[str | bytes, ...], bytes] = {}


class FastEval:
    """Sends pre-packed EVALSHA requests on connections of a plain redis-py asyncio client.

    Use :meth:`for_client` to get one: it returns None for clients this does not apply to
    (the embedded backend, a single-connection client, a pool of another kind), which keep
    ``execute_command``. A Sentinel-managed pool qualifies: its connections find the primary.
    """

    def __init__(self, client: Redis, fallback: bool = True) -> None:
        self._client = client
        self._execute: Any = client.execute_command  # untyped in redis-py
        self._pool: Any = client.connection_pool
        self._fallback = fallback
        # Connections taken from the pool once and kept between calls: the pool's own checkout
        # and return cost about as much as the rest of a call's Python work (redis-py 8). Not
        # with Sentinel: its pool points new connections at the current primary, while a kept
        # connection would reconnect to the old one after a failover.
        self._idle: list[Any] = []
        self._keep = type(self._pool) is ConnectionPool

    async def _acquire(self) -> Any:
        if self._idle:
            return self._idle.pop()
        conn = await self._pool.get_connection()
        if not self._keep and conn.is_connected:
            # Sentinel: a connection that was in use when the pool learned of a new primary is
            # still open to the old one, which may answer as a primary (and lose what it takes)
            # until the sentinels turn it into a replica. Reconnect it to the current primary.
            primary = self._pool.master_address
            if primary is not None and (conn.host, conn.port) != tuple(primary):
                await conn.disconnect()
        return conn

    async def _release(self, conn: Any, healthy: bool = True) -> None:
        if self._keep and healthy and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            await self._pool.release(conn)

    async def aclose(self) -> None:
        """Hand the connections kept between calls back to the pool."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    @classmethod
    def for_client(cls, client: Any, fallback: bool = True) -> FastEval | None:
        """A FastEval for ``client`` when it is a plain ``redis.asyncio.Redis`` on a plain (or
        Sentinel-managed) connection pool, not in single-connection mode; else None.

        ``fallback``: after a connection error, try once more through redis-py's own command
        path (False: raise it, for a caller that reroutes, as on Redis Cluster).
        """
        from redis.asyncio.sentinel import SentinelConnectionPool

        if type(client) is not Redis or getattr(client, "single_connection_client", False):
            return None
        if type(client.connection_pool) not in (ConnectionPool, SentinelConnectionPool):
            return None
        return cls(client, fallback)

    async def _exchange(
        self, packed: bytes, replies: int, on_first: Callable[[Any], None] | None = None
    ) -> list[Any] | None:
        """Send ``packed`` (one or more commands) on one pooled connection and read ``replies``
        replies; an error reply comes back as its ResponseError instance. None when the
        connection failed and ``fallback`` is on (the caller retries through redis-py).

        Raises:
            redis.exceptions.ConnectionError / TimeoutError: the connection failed and
                ``fallback`` is off.
            asyncio.CancelledError: cancelled mid-exchange (the connection is dropped).
        """
        conn = await self._acquire()
        clean = False
        try:
            await conn.send_packed_command(packed)
            out: list[Any] = []
            for _ in range(replies):
                try:
                    out.append(await conn.read_response())
                except rexc.ResponseError as exc:  # read whole: the connection is fine
                    out.append(exc)
                if on_first is not None and len(out) == 1:
                    on_first(out[0])
            clean = True
        except (rexc.ConnectionError, rexc.TimeoutError, OSError):
            if not self._fallback:
                raise
            return None
        finally:
            if not clean:
                with contextlib.suppress(Exception):
                    await conn.disconnect()  # the pool reconnects it on its next checkout
            await self._release(conn, healthy=clean)
        return out

    async def evalsha(self, sha: str, keys: Sequence[str | bytes], args: Sequence[Arg]) -> Any:
        """Run a loaded script and return its reply.

        Raises:
            redis.exceptions.NoScriptError: the script is not loaded on the server.
            redis.exceptions.ResponseError: the script failed (or another server error).
            redis.exceptions.ConnectionError / TimeoutError: the connection failed (after the
                fallback, when on).
            TypeError: an argument Redis does not take.
        """
        out = await self._exchange(pack_evalsha(sha, keys, args), 1)
        if out is None:
            return await self._execute("EVALSHA", sha, len(keys), *keys, *args)
        return _raise_error(out[0])

    async def evalsha_replicated(
        self,
        sha: str,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
        replicas: int,
        timeout_ms: int,
    ) -> tuple[Any, int]:
        """Run a loaded script, then ``WAIT replicas timeout_ms`` on the same connection, in one
        round trip: the script's writes are acknowledged once ``replicas`` replicas have them.

        Returns:
            (the script's reply, how many replicas confirmed within the timeout).

        Raises:
            as :meth:`evalsha`.
        """
        packed = pack_evalsha(sha, keys, args) + pack("WAIT", replicas, timeout_ms)
        out = await self._exchange(packed, 2)
        if out is None:  # WAIT only counts this connection's writes: send both together again
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
                pipe.execute_command("WAIT", replicas, timeout_ms)
                out = list(await pipe.execute(raise_on_error=False))
        return _raise_error(out[0]), int(_raise_error(out[1]))

    async def blpop_then_evalsha(
        self,
        key: bytes,
        timeout: float,
        sha: str,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
        on_blocked: Callable[[int], None],
        wait: tuple[int, int] | None = None,
    ) -> tuple[Any, Any, int | None]:
        """Block on ``key`` (BLPOP) and run a script the moment the wait ends, in one round trip.

        The three commands ``CLIENT ID``, ``BLPOP key timeout`` and ``EVALSHA ...`` go out
        together on one connection; Redis runs the script as soon as the BLPOP returns (a token
        arrived or the timeout passed), without waiting for the client to ask. ``on_blocked``
        gets the connection's client id while it blocks, so ``CLIENT UNBLOCK`` can end the wait
        early (shutdown); it is not called when an ACL refuses ``CLIENT ID``.

        With ``wait`` = (replicas, timeout ms), ``WAIT`` follows the script on the connection.

        Returns:
            (what BLPOP returned, None on timeout; the script's reply, or the ResponseError
            instance it answered with, e.g. NoScriptError; the replicas WAIT counted, or None
            without ``wait``).

        Raises:
            redis.exceptions.ConnectionError / TimeoutError: the connection failed (dropped).
            asyncio.CancelledError: cancelled while blocked (the connection is dropped, so
                Redis discards the pending script).
        """
        packed = (
            pack("CLIENT", "ID")
            + pack("BLPOP", key, max(0.001, round(timeout, 3)))
            + pack_evalsha(sha, keys, args)
            + (pack("WAIT", *wait) if wait is not None else b"")
        )

        def blocked(client_id: Any) -> None:
            if not isinstance(client_id, rexc.ResponseError):  # an ACL may refuse CLIENT ID
                on_blocked(int(client_id))

        out = await self._exchange(packed, 3 if wait is None else 4, blocked)
        if out is None:
            raise rexc.ConnectionError("the blocking wait's connection failed")
        confirmed = None if wait is None else int(_raise_error(out[3]))
        return _raise_error(out[1]), out[2], confirmed


def _raise_error(reply: Any) -> Any:
    """Raise ``reply`` when it is an error reply; else return it."""
    if isinstance(reply, rexc.ResponseError):
        raise reply
    return reply
