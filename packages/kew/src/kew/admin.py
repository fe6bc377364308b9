"""Operating a queue: cancel, pause and resume, dead letters (part of TaskQueueManager).

Each operation is one Lua script shared by every process on the Redis; this mixin only
validates and translates. ``TaskQueueManager`` provides ``_queue``, ``_require_store``,
``_decode``, ``_search_keys``, ``clock`` and ``settings``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidArgumentError, TaskNotFoundError
from .keys import QueueKeys as KeysOf
from .models import TaskInfo
from .scheduling import to_ms

if TYPE_CHECKING:
    from .clock import Clock
    from .keys import QueueKeys
    from .queue import Queue
    from .settings import ManagerSettings
    from .store import RedisStore

__all__ = ["AdminMixin"]


class AdminMixin:
    """Cancel, pause/resume and dead-letter operations of a manager."""

    clock: Clock
    settings: ManagerSettings
    queues: dict[str, Queue]

    if TYPE_CHECKING:

        def _queue(self, name: object) -> Queue: ...
        @property
        def namespace(self) -> str: ...
        def _require_store(self) -> RedisStore: ...
        def _decode(self, fields: dict[bytes, bytes]) -> TaskInfo: ...
        async def _search_keys(self, refresh: bool) -> list[QueueKeys]: ...

    async def _keys_of(self, queue_name: object) -> QueueKeys:
        """Keys of a queue of this namespace, created here or by any other process: an admin
        process need not consume a queue to pause it or handle its dead letters.

        Raises:
            QueueNotFoundError: no queue of that name in the namespace.
        """
        if (
            not isinstance(queue_name, str)
            or not queue_name
            or "{" in queue_name
            or "}" in queue_name
        ):
            raise InvalidArgumentError(f"queue_name must be a queue name, got {queue_name!r}")
        queue = self.queues.get(queue_name)
        if queue is not None:
            return queue.keys
        store = self._require_store()
        if queue_name in await store.list_queues(self.namespace):
            return KeysOf(self.namespace, queue_name)
        self._queue(queue_name)  # raises QueueNotFoundError with the usual message
        raise AssertionError("unreachable")

    async def cancel_task(self, task_id: str) -> bool:
        """Cancel a task wherever it is.

        A queued, deferred or retry-waiting task becomes CANCELLED at once. A running task is
        cancelled where it runs: at once in this process, else by its owner at its next lease
        renewal (within ``lease_timeout / 3`` s); its coroutine is cancelled (``finally`` blocks
        run) and it ends CANCELLED. A sync function's thread cannot be interrupted: it runs to
        its end, but its result is not stored.

        Returns:
            True when the task was cancelled or its cancellation was requested; False when it
            had already finished (COMPLETED, FAILED or CANCELLED): nothing changed.

        Raises:
            TaskNotFoundError: no such task in any queue of the namespace.
        """
        store = self._require_store()
        if not isinstance(task_id, str) or not task_id:
            raise InvalidArgumentError(f"task_id must be a non-empty str, got {task_id!r}")
        for qk in await self._search_keys(True):
            local = self.queues.get(qk.queue)
            retention = local.worker.retention if local is not None else self.settings.retention
            code, what = await store.cancel(qk, task_id, to_ms(self.clock.now()), to_ms(retention))
            if code != 0:  # NOT_FOUND in this queue
                continue
            if what == "requested":
                queue = self.queues.get(qk.queue)
                if queue is not None:
                    queue.worker.cancel_local(task_id)
                return True
            return what == "cancelled"
        raise TaskNotFoundError(f"task {task_id!r} not found")

    async def pause_queue(self, queue_name: str) -> None:
        """Stop claiming from a queue in every process (running tasks go on; submissions are
        still accepted). Idempotent.

        Raises:
            QueueNotFoundError: no such queue in the namespace (it may have been created by
                another process).
        """
        keys = await self._keys_of(queue_name)
        await self._require_store().set_paused(keys, True)

    async def resume_queue(self, queue_name: str) -> None:
        """Resume claiming from a paused queue in every process (idle workers wake at once).

        Raises:
            QueueNotFoundError: unknown queue.
        """
        keys = await self._keys_of(queue_name)
        await self._require_store().set_paused(keys, False)

    async def list_dead(self, queue_name: str, limit: int = 100, offset: int = 0) -> list[TaskInfo]:
        """Tasks of a queue that failed for good (dead letters), newest first.

        Each TaskInfo carries its last ``error``, all ``errors``, ``attempts`` and times.

        Args:
            queue_name: the queue.
            limit: most entries to return (int >= 1, default 100).
            offset: entries to skip (int >= 0, default 0).

        Raises:
            QueueNotFoundError: unknown queue. InvalidArgumentError: bad limit or offset.
        """
        keys = await self._keys_of(queue_name)
        for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgumentError(f"{name} must be an int >= {low}, got {value!r}")
        store = self._require_store()
        ids = await store.dead_ids(keys, offset, limit)
        records = await store.get_tasks(keys, ids, keep_missing=True)
        await store.prune_dead(keys, [i for i, r in zip(ids, records, strict=True) if not r])
        return [self._decode(r) for r in records if r]

    async def requeue_dead(self, queue_name: str, task_ids: Sequence[str] | None = None) -> int:
        """Run dead letters again with fresh retries, keeping their history.

        Args:
            queue_name: the queue.
            task_ids: the ids to requeue; None (default) requeues every dead letter.

        Returns:
            How many tasks were requeued (ids that are not dead letters are skipped).

        Raises:
            QueueNotFoundError: unknown queue. InvalidArgumentError: task_ids not a list of str.
        """
        keys = await self._keys_of(queue_name)
        ids = _id_list(task_ids)
        if task_ids is not None and not ids:
            return 0
        return await self._require_store().requeue_dead(keys, ids)

    async def purge_dead(self, queue_name: str, older_than: float | None = None) -> int:
        """Delete dead letters (records included).

        Args:
            queue_name: the queue.
            older_than: only those that failed at least this many seconds ago (float >= 0);
                None (default): all.

        Returns:
            How many dead letters were deleted.

        Raises:
            QueueNotFoundError: unknown queue. InvalidArgumentError: bad older_than.
        """
        keys = await self._keys_of(queue_name)
        cutoff = None
        if older_than is not None:
            if (
                isinstance(older_than, bool)
                or not isinstance(older_than, int | float)
                or not math.isfinite(older_than)
                or older_than < 0
            ):
                raise InvalidArgumentError(f"older_than must be seconds >= 0, got {older_than!r}")
            cutoff = to_ms(self.clock.now() - older_than)
        return await self._require_store().purge_dead(keys, cutoff)


def _id_list(task_ids: Any) -> list[str]:
    if task_ids is None:
        return []
    if isinstance(task_ids, str | bytes) or not isinstance(task_ids, Sequence):
        raise InvalidArgumentError("task_ids must be a list of task ids")
    if not all(isinstance(t, str) and t for t in task_ids):
        raise InvalidArgumentError("task_ids must be non-empty strings")
    return list(task_ids)
