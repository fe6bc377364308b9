"""SAQ, driven as its docs show: ``Queue.from_url`` + ``queue.enqueue(name, **kwargs)`` to
submit, a ``Worker(queue, functions, concurrency=...)`` started with ``worker.start()`` in the
same loop (it blocks on BLMOVE, so an idle worker wakes at once).

SAQ has no batch enqueue API (``queue.batch()`` only groups aborts). For the crash scenario the
job ``timeout`` is the recovery time, jobs get ``retries=3`` (SAQ's default of 1 attempt would
abort a swept job instead of running it again) and the sweep runs every second: SAQ re-queues
an active job of a dead worker when its sweep finds it stuck (running longer than ``timeout``).

Runs in its own environment: ``saq[redis,hiredis]``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from saq import Queue, Worker

from bench.drivers import tasks
from bench.drivers.base import Driver, main


async def noop(ctx: dict[str, Any], *, tid: str) -> None:
    return await tasks.noop(tid)


async def pickup(ctx: dict[str, Any], *, tid: str) -> None:
    return await tasks.pickup(tid)


async def sleep20(ctx: dict[str, Any], *, tid: str) -> None:
    return await tasks.sleep20(tid)


class SaqDriver(Driver):
    library = "saq"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        self.queue: Queue | None = None
        self.worker: Worker | None = None
        self._run: asyncio.Task[None] | None = None

    async def connect(self, role: str) -> None:
        self.queue = Queue.from_url(self.opts.url, name=self.opts.queue)
        await self.queue.connect()

    async def submit(self, key: str, task: str) -> None:
        assert self.queue is not None
        kwargs: dict[str, Any] = {"key": key, "tid": key}  # key: SAQ's job id
        if self.opts.recovery:  # the crash scenario: a stuck job is retried, not aborted
            kwargs["timeout"] = max(1, round(self.opts.recovery))
            kwargs["retries"] = 3
        await self.queue.enqueue(task, **kwargs)

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        assert self.queue is not None

        async def after_process(ctx: dict[str, Any]) -> None:  # after job.finish() stored it
            on_done()

        timers: dict[str, int] = {}
        if self.opts.recovery:
            timers["sweep"] = 1
        self.worker = Worker(
            self.queue,
            functions=[noop, pickup, sleep20],
            concurrency=self.opts.concurrency,
            after_process=after_process,
            timers=timers,  # type: ignore[arg-type]
        )
        self.worker.SIGNALS = []  # the bench process handles its own signals
        self._run = asyncio.create_task(self.worker.start())

    async def close(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.worker.stop(), 10.0)
            if self._run is not None:
                self._run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._run
        if self.queue is not None:
            with contextlib.suppress(Exception):
                await self.queue.disconnect()


if __name__ == "__main__":
    main(SaqDriver)
