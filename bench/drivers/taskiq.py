"""taskiq + taskiq-redis, driven as their docs show: a ``RedisStreamBroker`` (the broker with
acknowledgements) with a ``RedisAsyncResultBackend``, tasks registered on the broker, ``kiq``
to submit, ``run_receiver_task`` to consume in the same loop with ``max_async_tasks`` =
concurrency. A middleware's ``post_save`` hook (after the result is stored) counts finished
tasks. taskiq has no batch enqueue.

For the crash scenario the broker's ``idle_timeout`` is the recovery time: taskiq-redis
re-claims a dead consumer's pending entries (XAUTOCLAIM) that have been idle that long.

Runs in its own environment: ``taskiq``, ``taskiq-redis`` (redis-py 8) and hiredis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from taskiq import TaskiqMiddleware
from taskiq.api import run_receiver_task
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from bench.drivers import tasks
from bench.drivers.base import Driver, main


class _Finished(TaskiqMiddleware):
    def __init__(self) -> None:
        super().__init__()
        self.on_done: Callable[[], None] | None = None

    def post_save(self, message: Any, result: Any) -> None:
        if self.on_done is not None:
            self.on_done()


class TaskiqDriver(Driver):
    library = "taskiq"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        kwargs: dict[str, Any] = {}
        if opts.recovery:
            kwargs["idle_timeout"] = int(opts.recovery * 1000)
        self.broker = RedisStreamBroker(
            opts.url, queue_name=opts.queue, consumer_group_name=opts.queue, **kwargs
        ).with_result_backend(RedisAsyncResultBackend(redis_url=opts.url))
        self.finished = _Finished()
        self.broker.add_middlewares(self.finished)
        self.registered = {
            name: self.broker.register_task(fn, task_name=name) for name, fn in tasks.TASKS.items()
        }
        self._run: asyncio.Task[None] | None = None

    async def connect(self, role: str) -> None:
        await self.broker.startup()  # creates the consumer group before anything is sent

    async def submit(self, key: str, task: str) -> None:
        await self.registered[task].kiq(key)

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        self.finished.on_done = on_done
        self._run = asyncio.create_task(
            run_receiver_task(self.broker, max_async_tasks=self.opts.concurrency)
        )

    async def close(self) -> None:
        if self._run is not None:
            self._run.cancel()  # taskiq's prefetcher sometimes never finishes cancelling:
            await asyncio.wait({self._run}, timeout=2.0)  # don't wait for it forever
        with contextlib.suppress(Exception):
            await self.broker.shutdown()


if __name__ == "__main__":
    main(TaskiqDriver)
