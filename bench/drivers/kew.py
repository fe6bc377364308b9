"""kew, driven as its README shows: one TaskQueueManager per process, ``create_queue`` starts
the consumer in the running loop, ``submit_task`` / ``submit_tasks`` enqueue.

kew has no producer-only mode: ``create_queue`` always starts this process's consumer. A
process that must only submit (the producer of the multi-process scenarios, the prefill of the
drain) therefore stops its consumer at once through ``manager.queues[name].worker.stop()``;
the report lists this as a gap.

With several queues (``opts.queues``, the scale scenario) one manager creates every queue, and
the namespace carries the measurement's tag, since the queue names are fixed (their hash tags
decide which cluster master serves them). A ``redis+cluster://`` URL works the same way: kew
routes each queue to the master of its slot.

Runs in the workspace environment: ``uv run python -m bench.drivers.kew ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kew import QueueConfig, QueuePriority, TaskQueueManager
from kew.models import TaskInfo

from bench.drivers import tasks
from bench.drivers.base import Driver, main

_MAX_SIZE = 10_000_000  # the benchmark never wants backpressure


class KewDriver(Driver):
    library = "kew"

    def __init__(self, opts: Any) -> None:
        super().__init__(opts)
        self.manager: TaskQueueManager | None = None
        self._role = ""
        self._on_done: Callable[[], None] | None = None

    def _names(self) -> tuple[str, ...]:
        return self.opts.queues or (self.opts.queue,)

    def _config(self, name: str) -> QueueConfig:
        return QueueConfig(
            name=name,
            max_workers=self.opts.concurrency,
            max_size=_MAX_SIZE,
            task_timeout=60,
        )

    def _completed(self, info: TaskInfo) -> None:
        if self._on_done is not None:
            self._on_done()

    async def connect(self, role: str) -> None:
        ns = f"kewbench-{self.opts.queue}" if self.opts.queues else "kewbench"
        kwargs: dict[str, Any] = {"namespace": ns}
        if self.opts.recovery:
            kwargs["lease_timeout"] = self.opts.recovery
        self.manager = TaskQueueManager(self.opts.url, on_task_complete=self._completed, **kwargs)
        await self.manager.initialize()
        self._role = role
        if role == "producer":
            for name in self._names():
                await self.manager.create_queue(self._config(name))
                await self.manager.queues[name].worker.stop(wait=False, timeout=0)

    async def submit(self, key: str, task: str) -> None:
        assert self.manager is not None
        await self.manager.submit_task(
            key, self.opts.queue, task, tasks.TASKS[task], QueuePriority.MEDIUM, key
        )

    async def submit_batch(self, keys: Sequence[str], task: str) -> None:
        await self.submit_batch_to(self.opts.queue, keys, task)

    async def submit_batch_to(self, queue: str, keys: Sequence[str], task: str) -> None:
        assert self.manager is not None
        fn = tasks.TASKS[task]
        await self.manager.submit_tasks(
            queue, [{"task_id": k, "task_type": task, "task_func": fn, "args": (k,)} for k in keys]
        )

    async def start_worker(self, on_done: Callable[[], None]) -> None:
        assert self.manager is not None
        self._on_done = on_done
        for name in self._names():
            await self.manager.create_queue(self._config(name))

    async def close(self) -> None:
        if self.manager is not None:
            await self.manager.shutdown(wait=True, timeout=5.0)


if __name__ == "__main__":
    main(KewDriver)
