"""BullMQ's Python port, driven as its docs show: ``Queue(name, {"connection": url})`` with
``add`` and ``addBulk``, a ``Worker(name, processor, {"concurrency": ...})`` that starts in the
running loop; its ``completed`` event (emitted after the job is moved to completed, with its
return value stored) counts finished tasks.

For the crash scenario ``lockDuration`` and ``stalledInterval`` are the recovery time: BullMQ
moves a dead worker's active jobs back to wait when its stalled-jobs check finds their lock
expired (``maxStalledCount`` stays at its default, 1).

Runs in its own environment: ``bullmq`` (redis-py 8) and hiredis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from bullmq import Queue, Worker

from bench.drivers import tasks
from bench.drivers.base import Driver, main


async def _process(job: Any, token: str) -> None:
    return await tasks.TASKS[job.name](job.data["k"])


class BullmqDriver(Driver):
    library = "bullmq"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        self.queue: Queue | None = None
        self.worker: Worker | None = None

    async def connect(self, role: str) -> None:
        self.queue = Queue(self.opts.queue, {"connection": self.opts.url})

    async def submit(self, key: str, task: str) -> None:
        assert self.queue is not None
        await self.queue.add(task, {"k": key})

    async def submit_batch(self, keys: Sequence[str], task: str) -> None:
        assert self.queue is not None
        await self.queue.addBulk([{"name": task, "data": {"k": k}} for k in keys])

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        opts: dict[str, Any] = {"connection": self.opts.url, "concurrency": self.opts.concurrency}
        if self.opts.recovery:
            ms = int(self.opts.recovery * 1000)
            opts.update(lockDuration=ms, stalledInterval=ms)
        self.worker = Worker(self.opts.queue, _process, opts)  # type: ignore[arg-type]
        self.worker.on("completed", lambda job, result: on_done())

    async def close(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await self.worker.close()
        if self.queue is not None:
            with contextlib.suppress(Exception):
                await self.queue.close()


if __name__ == "__main__":
    main(BullmqDriver)
