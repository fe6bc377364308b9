"""arq 0.28, driven as its docs show: ``create_pool`` + ``enqueue_job`` to submit, a ``Worker``
with the functions, ``max_jobs`` = concurrency, run with ``async_run`` in the same loop.

Variants: ``""`` keeps arq's defaults (poll every 0.5 s); ``fast`` polls every 10 ms (arq's
``poll_delay``), its fastest reasonable setting. Job results are logged by arq only at INFO,
which is not enabled (``log_results=False`` as well). arq has no batch enqueue.
For the crash scenario ``job_timeout`` is set to the recovery time: arq lets another worker
take a crashed worker's job once ``job_timeout + 10`` s have passed.

Runs in its own environment: ``arq==0.28.0`` (which pins redis-py < 6).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import func

from bench.drivers import tasks
from bench.drivers.base import Driver, main


async def noop(ctx: dict[str, Any], key: str) -> None:
    return await tasks.noop(key)


async def pickup(ctx: dict[str, Any], key: str) -> None:
    return await tasks.pickup(key)


async def sleep20(ctx: dict[str, Any], key: str) -> None:
    return await tasks.sleep20(key)


class ArqDriver(Driver):
    library = "arq"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        self.poll_interval = 0.01 if opts.variant == "fast" else 0.5
        self.pool: ArqRedis | None = None
        self.worker: Worker | None = None
        self._run: asyncio.Task[None] | None = None

    async def connect(self, role: str) -> None:
        self.pool = await create_pool(
            RedisSettings.from_dsn(self.opts.url), default_queue_name=self.opts.queue
        )

    async def submit(self, key: str, task: str) -> None:
        assert self.pool is not None
        await self.pool.enqueue_job(task, key, _job_id=key)

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        async def after_job_end(ctx: dict[str, Any]) -> None:  # after the result is stored
            on_done()

        kwargs: dict[str, Any] = {}
        if self.opts.variant == "fast":
            kwargs["poll_delay"] = 0.01
        if self.opts.recovery:
            kwargs["job_timeout"] = self.opts.recovery
        functions = [func(f, name=f.__name__) for f in (noop, pickup, sleep20)]
        self.worker = Worker(
            functions=functions,
            queue_name=self.opts.queue,
            redis_pool=self.pool,
            max_jobs=self.opts.concurrency,
            handle_signals=False,
            log_results=False,
            after_job_end=after_job_end,
            **kwargs,
        )
        self._run = asyncio.create_task(self.worker.async_run())

    async def close(self) -> None:
        if self.worker is not None:
            self.worker.allow_pick_jobs = False
            if self._run is not None:
                self._run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._run
            with contextlib.suppress(Exception):
                await self.worker.close()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.aclose()


if __name__ == "__main__":
    main(ArqDriver)
