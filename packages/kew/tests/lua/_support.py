"""Helpers for driving kew's Lua scripts through RedisStore with raw inputs and reading the state.

Each test gets its own namespace (``kewlua-<uuid>``) on the session's Redis and deletes only that
namespace at the end (style rule 10).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kew.keys import QueueKeys
from kew.models import TaskInfo
from kew.store import ClaimResult, RedisStore
from redis.asyncio import Redis

NOW = 1_700_000_000_000  # ms
LEASE = 30_000  # ms
RESET = 60_000  # ms
RETENTION = 86_400_000  # ms
STAGING_TTL = 600_000  # ms
SEQ_BASE = 2**40  # ready score = priority * 2**40 + sequence

OK, DUPLICATE, QUEUE_FULL, LEASE_LOST, NOT_FOUND = 0, 1, 2, 3, 4
NO_LIMITS = (0, 0, 0, 0)  # claim limits: fleet-wide max running, rate, period (ms), burst


def ready_score(priority: int, seq: int) -> float:
    return float(priority * SEQ_BASE + seq)


def row(
    task_id: str,
    priority: int = 2,
    due: int = 0,
    task_type: str = "t",
    func: bytes = b"rmod:fn",
    args: bytes = b"",
) -> tuple[str, str, int, int, bytes, bytes]:
    """The 6 submit ARGV values of one task: id, type, priority, due (ms, 0 = now), func, args."""
    return (task_id, task_type, priority, due, func, args)


@dataclass
class Env:
    """A store, its client and one queue's keys in a namespace of its own."""

    store: RedisStore
    client: Redis
    ns: str
    qk: QueueKeys
    staged: dict[str, int] = field(default_factory=dict)  # tasks staged per batch id

    # -- scripts -----------------------------------------------------------------------------

    async def submit(self, *rows: Sequence[Any], now: int = NOW, max_size: int = 100) -> list[int]:
        return await self.store.submit(self.qk, now, max_size, rows)

    async def stage(
        self, batch: str, *rows: Sequence[Any], now: int = NOW, max_size: int = 100
    ) -> tuple[int, int]:
        """Stage a chunk of ``batch``, counting its tasks as staged when it is accepted."""
        got = await self._chunk(batch, rows, now, max_size, final=False)
        if got[0] == OK:
            self.staged[batch] = self.staged.get(batch, 0) + len(rows)
        return got

    async def commit(
        self, batch: str, *rows: Sequence[Any], now: int = NOW, max_size: int = 100
    ) -> tuple[int, int]:
        return await self._chunk(batch, rows, now, max_size, final=True)

    async def _chunk(
        self, batch: str, rows: Sequence[Sequence[Any]], now: int, max_size: int, final: bool
    ) -> tuple[int, int]:
        return await self.store.submit_atomic(
            self.qk,
            now,
            max_size,
            rows,
            batch_id=batch,
            staged=self.staged.get(batch, 0),
            final=final,
            staging_ttl_ms=STAGING_TTL,
        )

    async def claim(
        self,
        n: int = 10,
        now: int = NOW,
        lease: int = LEASE,
        owner: str = "w1",
        reset: int = RESET,
        limit: int = 1000,
        limits: tuple[int, int, int, int] = NO_LIMITS,
    ) -> ClaimResult:
        return await self.store.claim(self.qk, now, n, lease, owner, reset, limit, limits)

    async def claim_ids(self, n: int = 10, now: int = NOW, **kw: Any) -> list[str]:
        return [t.task_id for t in (await self.claim(n, now, **kw)).tasks]

    async def fail(
        self,
        task_id: str,
        fence: bytes,
        *,
        now: int = NOW,
        error: str = "boom",
        retry_due: int = 0,
        breaker_max: int = 3,
        count: bool = True,
        retention: int = RETENTION,
    ) -> tuple[int, int]:
        """(code, breaker failures) of the fail script; see :meth:`fail_outcome` for the rest."""
        code, failures, _ = await self.fail_outcome(
            task_id,
            fence,
            now=now,
            error=error,
            retry_due=retry_due,
            breaker_max=breaker_max,
            count=count,
            retention=retention,
        )
        return code, failures

    async def fail_outcome(
        self,
        task_id: str,
        fence: bytes,
        *,
        now: int = NOW,
        error: str = "boom",
        retry_due: int = 0,
        breaker_max: int = 3,
        count: bool = True,
        retention: int = RETENTION,
    ) -> tuple[int, int, str]:
        """(code, breaker failures, outcome: retry | failed | cancelled) of the fail script."""
        return await self.store.fail(
            self.qk,
            task_id,
            fence,
            now_ms=now,
            error=error,
            retry_due_ms=retry_due,
            retention_ms=retention,
            breaker_max=breaker_max,
            breaker_reset_ms=RESET,
            count_for_breaker=count,
        )

    async def claim_one(self, task_id: str = "a", **kw: Any) -> bytes:
        """Submit ``task_id`` (alone) and claim it; return its fence."""
        await self.submit(row(task_id))
        (t,) = (await self.claim(n=1, **kw)).tasks
        assert t.task_id == task_id
        return t.fence

    async def extend(
        self, owned: Sequence[tuple[str, bytes]], expiry: int = NOW + 99_000
    ) -> tuple[list[str], list[str]]:
        return await self.store.extend(self.qk, expiry, owned)

    async def release(self, owned: Sequence[tuple[str, bytes]], now: int = NOW) -> int:
        return await self.store.release(self.qk, owned, now)

    async def cancel(
        self, task_id: str, *, now: int = NOW, retention: int = RETENTION, fence: bytes = b""
    ) -> tuple[int, str]:
        return await self.store.cancel(self.qk, task_id, now, retention, fence)

    async def complete(self, task_id: str, fence: bytes, now: int = NOW) -> list[int]:
        return await self.store.complete(self.qk, now, RETENTION, [(task_id, fence, b"jnull")])

    # -- reads -------------------------------------------------------------------------------

    def _client(self) -> Any:
        """The client, untyped: replies are bytes (``decode_responses=False``)."""
        return self.client

    async def task(self, task_id: str) -> dict[str, str]:
        raw: dict[bytes, bytes] = await self._client().hgetall(self.qk.task(task_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def info(self, task_id: str) -> TaskInfo:
        """The task's record decoded as the manager does (result not decoded)."""
        raw: dict[bytes, bytes] = await self._client().hgetall(self.qk.task(task_id))
        return TaskInfo.from_hash(raw)

    async def zset(self, key: str) -> list[tuple[str, float]]:
        pairs: list[tuple[bytes, float]] = await self._client().zrange(key, 0, -1, withscores=True)
        return [(m.decode(), s) for m, s in pairs]

    async def members(self, key: str) -> list[str]:
        return [m for m, _ in await self.zset(key)]

    async def ready(self) -> list[str]:
        return await self.members(self.qk.ready)

    async def scheduled(self) -> list[tuple[str, float]]:
        return await self.zset(self.qk.scheduled)

    async def leased(self) -> list[tuple[str, float]]:
        return await self.zset(self.qk.leased)

    async def wake_len(self) -> int:
        return int(await self.client.llen(self.qk.wake))

    async def expire_record(self, task_id: str) -> None:
        """Delete what expires with a finished task's record: its HASH and any other key of the
        namespace kept for that id (a key ending in ``:id:<task id>``)."""
        keys = [self.qk.task(task_id)]
        async for key in self._client().scan_iter(match=f"{self.ns}:*"):
            if key.decode().endswith(f":id:{task_id}"):
                keys.append(key)
        await self.client.delete(*keys)

    async def clear_wake(self) -> None:
        await self.client.delete(self.qk.wake)

    async def pttl(self, key: str) -> int:
        return int(await self.client.pttl(key))

    async def dead(self) -> list[tuple[str, float]]:
        return await self.zset(self.qk.dead)

    async def breaker(self) -> dict[str, str]:
        raw: dict[bytes, bytes] = await self._client().hgetall(self.qk.breaker)
        return {k.decode(): v.decode() for k, v in raw.items()}


def new_namespace() -> str:
    return f"kewlua-{uuid.uuid4().hex[:12]}"


async def published(env: Env, action: Awaitable[Any]) -> tuple[Any, list[bytes]]:
    """Run ``action`` while subscribed to the queue's events channel; return its result and the
    messages published meanwhile (in order)."""
    messages: list[bytes] = []
    async with env.store.subscribe([env.qk.events]) as pubsub:
        for _ in range(100):  # the subscription is confirmed before the action runs
            first = await pubsub.get_message(timeout=0.05)
            if first is not None and first["type"] == "subscribe":
                break
        else:
            raise AssertionError("no subscription confirmation")
        result = await action
        quiet = 0
        while quiet < 5:  # until nothing arrives for a few short polls
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is None:
                quiet += 1
                await asyncio.sleep(0)
            else:
                messages.append(message["data"])
    return result, messages
