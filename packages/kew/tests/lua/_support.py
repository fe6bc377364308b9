"""Helpers for driving kew's Lua scripts through RedisStore with raw inputs and reading the state.

Each test gets its own namespace (``kewlua-<uuid>``) on the session's Redis and deletes only that
namespace at the end (style rule 10).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kew.keys import QueueKeys
from kew.store import ClaimResult, RedisStore
from redis.asyncio import Redis

NOW = 1_700_000_000_000  # ms
LEASE = 30_000  # ms
RESET = 60_000  # ms
RETENTION = 86_400_000  # ms
STAGING_TTL = 600_000  # ms
SEQ_BASE = 2**40  # ready score = priority * 2**40 + sequence

OK, DUPLICATE, QUEUE_FULL, LEASE_LOST, NOT_FOUND = 0, 1, 2, 3, 4


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

    # -- scripts -----------------------------------------------------------------------------

    async def submit(self, *rows: Sequence[Any], now: int = NOW, max_size: int = 100) -> list[int]:
        return await self.store.submit(self.qk, now, max_size, rows)

    async def stage(
        self, batch: str, *rows: Sequence[Any], now: int = NOW, max_size: int = 100
    ) -> tuple[int, int]:
        return await self.store.submit_atomic(
            self.qk, now, max_size, rows, batch_id=batch, final=False, staging_ttl_ms=STAGING_TTL
        )

    async def commit(
        self, batch: str, *rows: Sequence[Any], now: int = NOW, max_size: int = 100
    ) -> tuple[int, int]:
        return await self.store.submit_atomic(
            self.qk, now, max_size, rows, batch_id=batch, final=True, staging_ttl_ms=STAGING_TTL
        )

    async def claim(
        self,
        n: int = 10,
        now: int = NOW,
        lease: int = LEASE,
        owner: str = "w1",
        reset: int = RESET,
        limit: int = 1000,
    ) -> ClaimResult:
        return await self.store.claim(self.qk, now, n, lease, owner, reset, limit)

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

    # -- reads -------------------------------------------------------------------------------

    def _client(self) -> Any:
        """The client, untyped: replies are bytes (``decode_responses=False``)."""
        return self.client

    async def task(self, task_id: str) -> dict[str, str]:
        raw: dict[bytes, bytes] = await self._client().hgetall(self.qk.task(task_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

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

    async def clear_wake(self) -> None:
        await self.client.delete(self.qk.wake)

    async def pttl(self, key: str) -> int:
        return int(await self.client.pttl(key))

    async def breaker(self) -> dict[str, str]:
        raw: dict[bytes, bytes] = await self._client().hgetall(self.qk.breaker)
        return {k.decode(): v.decode() for k, v in raw.items()}


def new_namespace() -> str:
    return f"kewlua-{uuid.uuid4().hex[:12]}"
