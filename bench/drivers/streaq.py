"""streaq, driven as its docs show: a ``Worker`` with tasks registered by ``@worker.task``,
``async with worker:`` to enqueue (``await task.enqueue(...)``, ``worker.enqueue_many`` for a
batch), ``worker.run_async()`` to consume in the same loop.

Tasks are registered with ``silent=True`` (no per-task log line). streaq has no hook after a
result is stored, so the driver wraps the worker's own ``finish_task`` to count finished tasks
(instrumentation only), and it replaces ``signal_handler``, which streaq 7.2 starts even with
``handle_signals=False`` (it would swallow the SIGTERM that stops a worker process).

For the crash scenario ``idle_timeout`` is the recovery time: streaq re-claims a dead
consumer's stream entries once they have been idle that long.

Runs in its own environment: ``streaq`` (coredis client).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from streaq import Worker

from bench.drivers import tasks
from bench.drivers.base import Driver, main


class StreaqDriver(Driver):
    library = "streaq"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        kwargs: dict[str, Any] = {}
        if opts.recovery:
            kwargs["idle_timeout"] = opts.recovery
        self.worker: Worker[Any] = Worker(
            redis_url=opts.url,
            queue_name=opts.queue,
            concurrency=opts.concurrency,
            handle_signals=False,
            **kwargs,
        )
        self.registered = {
            name: self.worker.task(fn, name=name, silent=True)  # type: ignore[call-overload]
            for name, fn in tasks.TASKS.items()
        }
        self._stack = contextlib.AsyncExitStack()
        self._run: asyncio.Task[None] | None = None

    async def connect(self, role: str) -> None:
        # A streaq Worker can be entered once: run_async() enters it when this process consumes
        # (and its submits then use that connection); a producer enters it itself.
        if role == "producer":
            await self._stack.enter_async_context(self.worker)

    async def submit(self, key: str, task: str) -> None:
        await self.registered[task].enqueue(key)

    async def submit_batch(self, keys: Sequence[str], task: str) -> None:
        reg = self.registered[task]
        await self.worker.enqueue_many([reg.enqueue(k) for k in keys])

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        finish = self.worker.finish_task

        async def finish_task(*args: Any, **kwargs: Any) -> None:
            await finish(*args, **kwargs)
            if kwargs.get("finish"):
                on_done()

        self.worker.finish_task = finish_task  # type: ignore[method-assign]

        async def no_signal_handler(scope: Any) -> None:  # streaq 7.2 installs its SIGINT/
            return None  # SIGTERM receiver even with handle_signals=False

        self.worker.signal_handler = no_signal_handler  # type: ignore[method-assign]
        self._run = asyncio.create_task(self.worker.run_async())
        while not self.worker._running:  # connected, consumer group created
            if self._run.done():
                self._run.result()
            await asyncio.sleep(0.001)

    async def close(self) -> None:
        if self._run is not None:
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._run, 10.0)
        with contextlib.suppress(Exception):
            await self._stack.aclose()


if __name__ == "__main__":
    main(StreaqDriver)
