"""Reading task and queue state (part of TaskQueueManager): status, waiting, listings.

``TaskQueueManager`` provides ``_require_store``, ``_keys_of`` (from AdminMixin), ``_now_ms``,
``codec``, ``settings``, ``queues``, ``namespace`` and the event registry ``_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING, Any

from .clock import real_sleep
from .exceptions import (
    InvalidArgumentError,
    KewConnectionError,
    TaskNotFoundError,
    TaskQueueError,
    TaskTimeoutError,
)
from .keys import QueueKeys
from .models import TaskInfo, TaskStatus
from .scheduling import breaker_state, to_ms

if TYPE_CHECKING:
    from .codec import Codec
    from .events import TaskEvents
    from .queue import Queue
    from .settings import ManagerSettings
    from .store import RedisStore

__all__ = ["ReadsMixin"]

_RECHECK_INTERVAL = 30.0  # seconds: wait_for_task re-reads the record if no event arrived


class ReadsMixin:
    """get_task_status, wait_for_task, get_ongoing_tasks and get_queue_status of a manager."""

    codec: Codec
    settings: ManagerSettings
    queues: dict[str, Queue]
    _known_queues: set[str]
    _events: TaskEvents | None

    if TYPE_CHECKING:

        @property
        def namespace(self) -> str: ...
        def _require_store(self) -> RedisStore: ...
        def _now_ms(self) -> int: ...
        async def _keys_of(self, queue_name: object) -> QueueKeys: ...

    async def _search_keys(self, refresh: bool) -> list[QueueKeys]:
        if refresh:
            self._known_queues.update(await self._require_store().list_queues(self.namespace))
        names = list(self.queues) + sorted(self._known_queues - set(self.queues))
        return [QueueKeys(self.namespace, n) for n in names]

    async def get_task_status(self, task_id: str) -> TaskInfo:
        """Return the current record of a task (from any queue of this namespace).

        Raises:
            TaskNotFoundError: no record (never submitted, or expired after retention).
            KewConnectionError: Redis unreachable.
        """
        store = self._require_store()
        if not isinstance(task_id, str) or not task_id:
            raise InvalidArgumentError(f"task_id must be a non-empty str, got {task_id!r}")
        fields = await store.find_task(await self._search_keys(False), task_id)
        if not fields:
            fields = await store.find_task(await self._search_keys(True), task_id)
        if not fields:
            raise TaskNotFoundError(f"task {task_id!r} not found")
        return self._decode(fields)

    def _decode(self, fields: dict[bytes, bytes]) -> TaskInfo:
        try:
            task_id = (fields.get(b"id") or b"").decode(errors="replace")
            result = self.codec.decode_result(fields.get(b"result"), task_id)
        except TaskQueueError as exc:
            result = None
            fields[b"error"] = str(exc).encode()
        return TaskInfo.from_hash(fields, result)

    async def wait_for_task(self, task_id: str, timeout: float | None = None) -> TaskInfo:
        """Wait until a task is COMPLETED, FAILED or CANCELLED and return its record.

        Woken by the event the finishing process publishes (no polling on the caller's side);
        the record is also re-read every 30 s in case an event was missed while the
        subscription reconnected. Redis outages shorter than the timeout are waited through.

        Args:
            task_id: the task's id.
            timeout: real seconds to wait at most (number >= 0; None: no limit). The bound
                holds even when Redis stops answering.

        Raises:
            TaskNotFoundError: no record of the task.
            TaskTimeoutError: (a TimeoutError) not finished within ``timeout``.
            QueueProcessorError: the manager was shut down while waiting.
            InvalidArgumentError: a bad timeout.
        """
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or math.isnan(timeout)
            or timeout < 0
        ):
            raise InvalidArgumentError(f"timeout must be seconds >= 0 or None, got {timeout!r}")
        self._require_store()
        try:
            async with asyncio.timeout(timeout):
                return await self._wait_until_done(task_id)
        except TimeoutError:
            raise TaskTimeoutError(f"task {task_id!r} did not finish within {timeout} s") from None

    async def _wait_until_done(self, task_id: str) -> TaskInfo:
        assert self._events is not None
        events = self._events
        await events.start()
        backoff = 0.1
        while True:
            fut = events.register(task_id)
            try:
                try:
                    info = await self.get_task_status(task_id)
                except KewConnectionError:
                    await real_sleep(backoff)  # Redis away: wait it out, within the timeout
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.1
                if info.status.is_terminal:
                    return info
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(fut), _RECHECK_INTERVAL)
            finally:
                events.discard(task_id, fut)

    async def get_ongoing_tasks(self) -> list[TaskInfo]:
        """Records of every task running now, in any process, in this namespace's queues."""
        store = self._require_store()
        infos: list[TaskInfo] = []
        for qk in await self._search_keys(True):
            ids = await store.leased_ids(qk)
            infos.extend(self._decode(f) for f in await store.get_tasks(qk, ids))
        return [i for i in infos if i.status is TaskStatus.PROCESSING]

    async def get_queue_status(self, queue_name: str) -> dict[str, Any]:
        """Return a snapshot of a queue (also one created only by other processes).

        Keys: name, priority, max_workers, max_size (this process's config; None for a queue
        this manager did not create), current_workers (running in this process), queued_tasks
        (waiting: ready + deferred + retry-waiting), ready, scheduled, scheduled_due (deferred
        tasks already due), processing (running in any process), circuit_breaker_status
        ("closed" | "open" | "half-open"), circuit_breaker_failures, paused (bool),
        dead_letters (tasks failed for good, kept for inspection), held_back (this process's
        last claim left ready tasks waiting: breaker, pause or fleet-wide limits).

        Raises:
            QueueNotFoundError: no such queue in the namespace.
            InvalidArgumentError: queue_name is not a queue name.
        """
        keys = await self._keys_of(queue_name)
        store = self._require_store()
        now_ms = self._now_ms()
        counts = await store.counts(keys, now_ms, to_ms(self.settings.dead_letter_ttl))
        breaker = await store.breaker_fields(keys)
        queue = self.queues.get(keys.queue)
        cfg = queue.config if queue is not None else None
        return {
            "name": keys.queue,
            "priority": cfg.priority.value if cfg else None,
            "max_workers": cfg.max_workers if cfg else None,
            "max_size": cfg.max_size if cfg else None,
            "current_workers": queue.current_workers if queue else 0,
            "queued_tasks": counts["ready"] + counts["scheduled"],
            "ready": counts["ready"],
            "scheduled": counts["scheduled"],
            "scheduled_due": counts["scheduled_due"],
            "processing": counts["leased"],
            "circuit_breaker_status": breaker_state(breaker, now_ms),
            "circuit_breaker_failures": int(breaker.get(b"failures", b"0")),
            "paused": bool(counts["paused"]),
            "dead_letters": counts["dead"],
            "held_back": queue.worker.held_back if queue else False,
        }
