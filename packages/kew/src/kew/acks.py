"""Batched acknowledgements: completions of one queue in one event-loop tick share one call.

With 50 tasks finishing together, one ``complete`` script call stores all 50 results instead of
50 round trips (design.md §9). Each run still learns its own outcome (OK or LEASE_LOST).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .background import spawn
from .clock import Clock, real_sleep
from .exceptions import KewConnectionError
from .keys import QueueKeys
from .scheduling import to_ms
from .store import RedisStore

__all__ = ["AckBatcher", "retrying"]

T = TypeVar("T")


async def retrying(call: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """Await ``call()``, retrying on connection errors with backoff (0.05 s doubling to 2 s).

    Used for writing a task's outcome: the scripts are safe to repeat (a repeat after a lost
    reply finds the outcome recorded under the same fence and answers OK without writing again,
    or, when the task was reclaimed meanwhile, the fence moved on and answers LEASE_LOST).
    """
    delay = 0.05
    for _ in range(attempts - 1):
        try:
            return await call()
        except KewConnectionError:
            await real_sleep(delay)
            delay = min(delay * 2, 2.0)
    return await call()


@dataclass
class _Batch:
    items: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    futures: list[asyncio.Future[int]] = field(default_factory=list)


class AckBatcher:
    """Collects the completions of one queue made in one loop tick into one ``complete`` call.

    Args:
        store: the manager's store.
        keys: the queue's keys.
        clock: the manager's clock (completion time).
        retention: seconds the finished records are kept.
    """

    def __init__(self, store: RedisStore, keys: QueueKeys, clock: Clock, retention: float) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._retention_ms = to_ms(retention)
        self._batch: _Batch | None = None

    async def ack(self, task_id: str, fence: bytes, encoded_result: bytes) -> int:
        """Store one result; return the script code (0 OK, LEASE_LOST when the fence is stale).

        Raises:
            KewConnectionError: Redis stayed unreachable through the retries.
        """
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            loop.call_soon(self._flush)
        future: asyncio.Future[int] = loop.create_future()
        batch.items.append((task_id, fence, encoded_result))
        batch.futures.append(future)
        return await asyncio.shield(future)

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            spawn(self._send(batch))

    async def _send(self, batch: _Batch) -> None:
        try:
            codes = await retrying(
                lambda: self._store.complete(
                    self._keys, to_ms(self._clock.now()), self._retention_ms, batch.items
                )
            )
        except Exception as exc:  # deliver the error to every waiting run
            for f in batch.futures:
                if not f.done():
                    f.set_exception(exc)
            return
        except BaseException:
            for f in batch.futures:
                f.cancel()
            raise
        for f, code in zip(batch.futures, codes, strict=True):
            if not f.done():
                f.set_result(code)
