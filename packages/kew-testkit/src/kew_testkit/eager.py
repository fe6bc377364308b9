"""Eager mode: ``submit_task`` returns only once the task has finished, with its final TaskInfo.

This module owns :class:`EagerManager` and :func:`eager_manager`. The task still goes through
kew for real (serialization, Lua scripts, workers, retries), so a unit test of a task's logic
checks what production would do; it just does not have to wait by hand. On a
:class:`~kew_testkit.FakeClock` the deferral and every retry backoff are skipped by advancing the
clock to the task's due time, so a task with three retries finishes at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kew.models import TaskInfo, TaskStatus

from .clock import FakeClock
from .waiting import DEFAULT_TIMEOUT, wait_until

__all__ = ["EagerManager", "eager_manager", "run_to_completion"]

_NUDGE = 0.001  # virtual seconds: one step past a due time stored in whole milliseconds


async def _step(manager: Any, task_id: str, clock: FakeClock | None) -> TaskInfo | None:
    """One look at the task: its final TaskInfo, or None after moving it closer to the end."""
    if clock is None:
        final: TaskInfo = await manager.wait_for_task(task_id)
        return final
    info: TaskInfo = await manager.get_task_status(task_id)
    if info.status.is_terminal:
        return info
    if info.status in (TaskStatus.QUEUED, TaskStatus.RETRY) and info.due_time is not None:
        due = info.due_time.timestamp()
        await clock.advance_to(due) if due > clock.now() else await clock.advance(_NUDGE)
        return None
    seen = info.status, info.retry_count
    await wait_until(
        lambda: _changed(manager, task_id, seen), timeout=DEFAULT_TIMEOUT, message="no progress"
    )
    return None


async def _changed(manager: Any, task_id: str, seen: tuple[TaskStatus, int]) -> bool:
    info: TaskInfo = await manager.get_task_status(task_id)
    return (info.status, info.retry_count) != seen or info.due_time is not None


async def run_to_completion(
    manager: Any, task_id: str, *, clock: FakeClock | None = None, timeout: float = 30.0
) -> TaskInfo:
    """Drive a submitted task to COMPLETED or FAILED and return its final TaskInfo.

    Args:
        manager: a kew ``TaskQueueManager`` whose workers run the task.
        task_id: the task's id.
        clock: the manager's FakeClock, advanced to each due time; None waits in real time.
        timeout: real seconds (float) to wait at most. Default 30.0.

    Returns:
        The task's final TaskInfo.

    Raises:
        TimeoutError: when the task did not finish within ``timeout`` seconds.
    """
    try:
        async with asyncio.timeout(timeout):
            while (info := await _step(manager, task_id, clock)) is None:
                pass
    except TimeoutError:
        last = await manager.get_task_status(task_id)
        raise TimeoutError(
            f"eager task {task_id!r} did not finish within {timeout} s "
            f"(status {last.status.name}, retry_count={last.retry_count})"
        ) from None
    return info


class EagerManager:
    """Wraps a manager so that ``submit_task`` returns the task's *final* TaskInfo.

    Every other attribute and method is the wrapped manager's own.

    Args:
        manager: an initialized kew ``TaskQueueManager``.
        clock: the manager's FakeClock, if it runs on one (backoffs and deferrals are then
            skipped); None waits in real time. Default None.
        timeout: real seconds (float) ``submit_task`` waits at most for a task. Default 30.0.
    """

    def __init__(self, manager: Any, *, clock: FakeClock | None = None, timeout: float = 30.0):
        self.manager = manager
        self.clock = clock
        self.timeout = timeout

    async def submit_task(
        self,
        task_id: str,
        queue_name: str,
        task_type: str,
        task_func: Any,
        priority: Any,
        *args: Any,
        **kwargs: Any,
    ) -> TaskInfo:
        """Submit like ``TaskQueueManager.submit_task`` and return the task's final TaskInfo.

        Args:
            task_id, queue_name, task_type, task_func, priority, *args, **kwargs: as for
                ``TaskQueueManager.submit_task`` (``_defer_by``/``_defer_until`` included).

        Returns:
            The TaskInfo once the task is COMPLETED or FAILED (a failure is returned, not raised).

        Raises:
            TimeoutError: when the task did not finish within ``timeout`` seconds; anything
                ``submit_task`` itself raises (bad input, unknown queue, queue full).
        """
        await self.manager.submit_task(
            task_id, queue_name, task_type, task_func, priority, *args, **kwargs
        )
        return await run_to_completion(
            self.manager, task_id, clock=self.clock, timeout=self.timeout
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.manager, name)


def eager_manager(
    manager: Any, *, clock: FakeClock | None = None, timeout: float = 30.0
) -> EagerManager:
    """Return an :class:`EagerManager` over ``manager`` (see there for the arguments)."""
    return EagerManager(manager, clock=clock, timeout=timeout)
