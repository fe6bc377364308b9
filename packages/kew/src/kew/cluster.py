"""Redis Cluster for kew: a key's slot picks the primary; one plain redis-py client per primary.

Every kew script touches one slot, its queue's (design.md §5), so routing is simple: the slot of
a command's first key (redis-py's ``key_slot``: CRC16 of the hash tag) names a primary in the
slot map read with ``CLUSTER SLOTS``, and the command runs on that primary's plain asyncio
client, whose connection pool redis-py keeps. On MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY or
a dropped connection (a failover, a resharding) the map is read again and the command retried,
for about 6 s in all, then the error is raised to the caller (whose own loops retry).

Why not redis-py's asyncio ``RedisCluster``: from redis-py 7.1 to 8.1 (the newest at the time of
writing) it hands one connection to two concurrent commands under load (commands then fail with
``'NoneType' object has no attribute 'writelines'`` or run twice); 6.4 and 7.0 do not. kew's
workers are concurrent by design, so kew routes on its own, on the plain client, which does not
have that fault.

Multi-key commands must stay in one slot (Redis refuses CROSSSLOT); :meth:`ClusterClient.unlink`
takes keys of any slots and sends one UNLINK per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis import exceptions as rexc
from redis.asyncio import ConnectionPool, Redis
from redis.crc import key_slot

__all__ = ["RETRY_DELAYS", "ClusterClient", "ClusterPipeline", "ride_out_failover"]

T = TypeVar("T")
Address = tuple[str, int]

# Seconds between attempts while the cluster heals (a failover with a 2 s node timeout takes
# 3 to 5 s to promote a replica): about 6 s in all.
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 2.0)
SLOTS = 16384

# Replies meaning "this node is not the one (or not ready)": read the slot map again and retry.
_REROUTE = (
    rexc.MovedError,
    rexc.AskError,
    rexc.TryAgainError,
    rexc.ClusterDownError,
    rexc.ReadOnlyError,
    rexc.ConnectionError,
    rexc.TimeoutError,
)


async def ride_out_failover(
    attempt: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    between: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Await ``attempt()``; on one of ``errors`` wait (RETRY_DELAYS, about 6 s in all), run
    ``between()`` (read the topology again) and try again. Used while a failover promotes a
    replica (Redis Cluster, Sentinel): a call made meanwhile succeeds late instead of failing.

    Raises:
        the last error, once the delays are used up.
    """
    for delay in RETRY_DELAYS:
        try:
            return await attempt()
        except errors:
            await asyncio.sleep(delay)
            if between is not None:
                await between()
    return await attempt()


def _slot(key: Any) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


def _first_key(args: Sequence[Any]) -> Any:
    key = args[0]
    if isinstance(key, list | tuple):  # blpop([key], timeout=...)
        key = key[0]
    return key


class ClusterClient:
    """A Redis Cluster as kew uses it (the subset of redis-py's client API kew calls).

    Args:
        startup: (host, port) of some nodes; the rest are found with CLUSTER SLOTS.
        options: keyword arguments of every node's ``redis.asyncio.Redis`` (credentials, TLS,
            timeouts, ``max_connections``...).

    Keyed commands (``hget``, ``blpop``, ...) are forwarded to the primary of their first key
    through ``__getattr__``; the commands without a key are methods of their own.
    """

    def __init__(self, startup: Sequence[Address], options: dict[str, Any]) -> None:
        self._startup = list(startup)
        self._options = options
        self._clients: dict[Address, Redis] = {}
        self._slots: list[Address | None] = [None] * SLOTS
        self._refresh_task: asyncio.Task[None] | None = None
        self._ready = False

    # -- topology ------------------------------------------------------------------------------

    def client_at(self, address: Address) -> Redis:
        """The plain client of the node at ``address`` (created on first use)."""
        client = self._clients.get(address)
        if client is None:
            pool = ConnectionPool(host=address[0], port=address[1], **self._options)
            client = self._clients[address] = Redis.from_pool(pool)
        return client

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments every node's client is made with (a copy)."""
        return dict(self._options)

    def owner(self, slot: int) -> Address | None:
        """The primary that serves ``slot`` in the last slot map read (None: none)."""
        return self._slots[slot]

    def primaries(self) -> list[Address]:
        """Addresses of the primaries that serve slots, in slot order."""
        return list(dict.fromkeys(a for a in self._slots if a is not None))

    async def initialize(self) -> None:
        """Read the slot map if it was never read.

        Raises:
            redis.exceptions.ConnectionError: no node answered.
        """
        if not self._ready:
            await self.refresh()

    async def refresh(self) -> None:
        """Read the slot map again (concurrent callers share one read)."""
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._read_slots())
        await asyncio.shield(self._refresh_task)

    async def _read_slots(self) -> None:
        candidates = list(dict.fromkeys([*self.primaries(), *self._startup]))
        error: Exception = rexc.ConnectionError("no startup node")
        for address in candidates:
            try:
                execute: Any = self.client_at(address).execute_command  # untyped in redis-py
                ranges = await execute("CLUSTER SLOTS")
            except (rexc.RedisError, OSError) as exc:
                error = exc
                continue
            slots: list[Address | None] = [None] * SLOTS
            for start, end, primary, *_ in ranges:
                host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
                owner = (host or address[0], int(primary[1]))
                for slot in range(int(start), int(end) + 1):
                    slots[slot] = owner
            self._slots = slots
            self._ready = True
            return
        raise error

    async def for_key(self, key: Any) -> Redis:
        """The client of the primary that serves ``key``'s slot.

        Raises:
            redis.exceptions.ClusterDownError: no primary serves that slot.
        """
        await self.initialize()
        address = self._slots[_slot(key)]
        if address is None:
            raise rexc.ClusterDownError(f"no primary serves the slot of {key!r}")
        return self.client_at(address)

    async def call(self, key: Any, command: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``command`` on the primary of ``key``, rerouting while the cluster heals.

        Raises:
            the last redis error after the retries (see RETRY_DELAYS).
        """

        async def attempt() -> T:
            return await command(await self.for_key(key))

        async def reroute() -> None:
            with contextlib.suppress(rexc.RedisError, OSError):
                await self.refresh()

        return await ride_out_failover(attempt, _REROUTE, reroute)

    # -- keyed commands ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def keyed(*args: Any, **kwargs: Any) -> Any:
            return await self.call(
                _first_key(args), lambda client: getattr(client, name)(*args, **kwargs)
            )

        return keyed

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """A raw command whose first argument after the name is a key."""

        def run(client: Any) -> Awaitable[Any]:
            return client.execute_command(*args, **kwargs)  # type: ignore[no-any-return]

        return await self.call(args[1], run)

    async def unlink(self, *keys: Any) -> int:
        """UNLINK keys of any slots (one command per key, pipelined per primary)."""
        if not keys:
            return 0
        async with self.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("UNLINK", key)
            return sum(int(n) for n in await pipe.execute())

    # -- commands without a key ----------------------------------------------------------------

    async def _each_primary(self, command: Callable[[Redis], Awaitable[T]]) -> list[T]:
        await self.initialize()
        return list(await asyncio.gather(*(command(self.client_at(a)) for a in self.primaries())))

    async def script_load(self, source: str) -> str:
        """Load a script on every primary; return its SHA1."""
        shas = await self._each_primary(lambda c: c.script_load(source))
        return str(shas[0])

    async def ping(self) -> bool:
        """PING every primary; True when all answer."""
        return all(await self._each_primary(lambda c: c.ping()))

    async def info(self, section: str | None = None) -> dict[str, Any]:
        """INFO of one primary (they run the same server version)."""
        await self.initialize()
        result: dict[str, Any] = await self.client_at(self.primaries()[0]).info(section)
        return result

    async def scan_iter(
        self, match: str | None = None, count: int | None = None
    ) -> AsyncIterator[Any]:
        """SCAN every primary."""
        await self.initialize()
        for address in self.primaries():
            async for key in self.client_at(address).scan_iter(match=match, count=count):
                yield key

    async def any_node(self) -> Redis:
        """The client of some primary that answers PING (tried in random order).

        Raises:
            redis.exceptions.ConnectionError: none answered.
        """
        with contextlib.suppress(rexc.RedisError, OSError):
            await self.refresh()
        addresses = self.primaries() or list(self._startup)
        random.shuffle(addresses)
        error: Exception = rexc.ConnectionError("the cluster has no nodes")
        for address in addresses:
            client = self.client_at(address)
            try:
                await client.ping()
            except (rexc.RedisError, OSError) as exc:
                error = exc
                continue
            return client
        raise error

    def pipeline(self, transaction: bool = False) -> ClusterPipeline:
        """A pipeline whose commands go to their keys' primaries, one pipeline per primary;
        ``transaction`` applies per primary (keys of one MULTI must share a slot)."""
        return ClusterPipeline(self, transaction)

    async def aclose(self) -> None:
        """Close every node's connections."""
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()


class ClusterPipeline:
    """Commands queued by name (``pipe.hgetall(key)``), sent on :meth:`execute` as one pipeline
    per primary, concurrently; results come back in the order the commands were queued."""

    def __init__(self, cluster: ClusterClient, transaction: bool) -> None:
        self._cluster = cluster
        self._transaction = transaction
        self._calls: list[tuple[Any, str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., ClusterPipeline]:
        if name.startswith("_"):
            raise AttributeError(name)

        def queue(*args: Any, **kwargs: Any) -> ClusterPipeline:
            self._calls.append((_first_key(args), name, args, kwargs))
            return self

        return queue

    def execute_command(self, *args: Any, **kwargs: Any) -> ClusterPipeline:
        self._calls.append((args[1], "execute_command", args, kwargs))
        return self

    async def __aenter__(self) -> ClusterPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._calls.clear()

    async def execute(self) -> list[Any]:
        """Send everything queued; return the replies in order.

        Raises:
            the first redis error of any primary's pipeline, after rerouting retries.
        """
        calls, self._calls = self._calls, []
        await self._cluster.initialize()
        groups: dict[Any, list[int]] = {}
        for i, (key, *_) in enumerate(calls):
            # a MULTI must stay in one slot; a plain pipeline only in one primary
            slot = _slot(key)
            group = slot if self._transaction else self._cluster.owner(slot)
            groups.setdefault(group, []).append(i)
        results: list[Any] = [None] * len(calls)

        async def run(indexes: list[int]) -> None:
            async def send(client: Redis) -> list[Any]:
                async with client.pipeline(transaction=self._transaction) as pipe:
                    for i in indexes:
                        _, name, args, kwargs = calls[i]
                        getattr(pipe, name)(*args, **kwargs)
                    return list(await pipe.execute())

            replies = await self._cluster.call(calls[indexes[0]][0], send)
            for i, reply in zip(indexes, replies, strict=True):
                results[i] = reply

        await asyncio.gather(*(run(indexes) for indexes in groups.values()))
        return results
