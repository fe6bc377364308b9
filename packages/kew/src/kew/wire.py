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

    Raises:
        TypeError: an argument of a type Redis does not take.
    """
    return pack("EVALSHA", sha, len(keys), *keys, *args)


class FastEval:
    """Sends pre-packed EVALSHA requests on connections of a plain redis-py asyncio client.

    Use :meth:`for_client` to get one: it returns None for clients this does not apply to
    (Redis Cluster, the embedded backend, a subclassed pool), which keep ``execute_command``.
    """

    def __init__(self, client: Redis, fallback: bool = True) -> None:
        self._execute: Any = client.execute_command  # untyped in redis-py
        self._pool: Any = client.connection_pool
        self._fallback = fallback

    @classmethod
    def for_client(cls, client: Any, fallback: bool = True) -> FastEval | None:
        """A FastEval for ``client`` when it is a plain ``redis.asyncio.Redis`` on a plain
        ``ConnectionPool`` (no single-connection mode), else None.

        ``fallback``: after a connection error, try once more through ``execute_command``
        (False: raise it, for a caller that reroutes, as on Redis Cluster).
        """
        if type(client) is not Redis or getattr(client, "single_connection_client", False):
            return None
        if type(client.connection_pool) is not ConnectionPool:
            return None
        return cls(client, fallback)

    async def evalsha(self, sha: str, keys: Sequence[str | bytes], args: Sequence[Arg]) -> Any:
        """Run a loaded script and return its reply.

        Raises:
            redis.exceptions.NoScriptError: the script is not loaded on the server.
            redis.exceptions.ResponseError: the script failed (or another server error).
            redis.exceptions.ConnectionError / TimeoutError: from the fallback call.
            TypeError: an argument Redis does not take.
        """
        packed = pack_evalsha(sha, keys, args)
        pool = self._pool
        conn = await pool.get_connection()
        clean = False
        try:
            await conn.send_packed_command(packed)
            reply = await conn.read_response()
            clean = True
        except rexc.ResponseError:
            clean = True  # the reply (an error) was read whole: the connection is fine
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, OSError):
            if not self._fallback:
                raise
            # below: once more through redis-py, with its retry policy
        finally:
            if not clean:
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            await pool.release(conn)
        if clean:
            return reply
        return await self._execute("EVALSHA", sha, len(keys), *keys, *args)

    async def blpop_then_evalsha(
        self,
        key: bytes,
        timeout: float,
        sha: str,
        keys: Sequence[str | bytes],
        args: Sequence[Arg],
        on_blocked: Callable[[int], None],
    ) -> tuple[Any, Any]:
        """Block on ``key`` (BLPOP) and run a script the moment the wait ends, in one round trip.

        The three commands ``CLIENT ID``, ``BLPOP key timeout`` and ``EVALSHA ...`` go out
        together on one connection; Redis runs the script as soon as the BLPOP returns (a token
        arrived or the timeout passed), without waiting for the client to ask. ``on_blocked``
        gets the connection's client id while it blocks, so ``CLIENT UNBLOCK`` can end the wait
        early (shutdown).

        Returns:
            (what BLPOP returned, None on timeout; the script's reply, or the ResponseError
            instance it answered with, e.g. NoScriptError).

        Raises:
            redis.exceptions.ConnectionError / TimeoutError: the connection failed (dropped).
            asyncio.CancelledError: cancelled while blocked (the connection is dropped, so
                Redis discards the pending script).
        """
        packed = (
            pack("CLIENT", "ID")
            + pack("BLPOP", key, max(0.001, round(timeout, 3)))
            + pack_evalsha(sha, keys, args)
        )
        pool = self._pool
        conn = await pool.get_connection()
        clean = False
        try:
            await conn.send_packed_command(packed)
            on_blocked(int(await conn.read_response()))
            popped = await conn.read_response()
            try:
                reply: Any = await conn.read_response()
            except rexc.ResponseError as exc:
                reply = exc
            clean = True
        finally:
            if not clean:
                with contextlib.suppress(Exception):
                    await conn.disconnect()
            await pool.release(conn)
        return popped, reply
