"""The running task's own handle: ``kew.current_task()`` inside a task function.

A task can report its progress (a number and a message) that ``get_task_status`` returns::

    from kew import current_task

    async def import_rows(rows):
        for i, row in enumerate(rows):
            ...
            await current_task().report_progress(i / len(rows), f"row {i}")
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from .exceptions import InvalidArgumentError, TaskQueueError

__all__ = ["TaskContext", "current_task"]

MAX_PROGRESS_MESSAGE = 4096  # characters: progress is a status line, not a log

_current: ContextVar[TaskContext | None] = ContextVar("kew_current_task", default=None)


@dataclass(frozen=True)
class TaskContext:
    """What a running task knows about itself.

    Attributes:
        task_id: the task's id.
        queue_name: its queue.
        attempt: 1 for the first run, 2 for the first retry (or a rerun after a crash)...
    """

    task_id: str
    queue_name: str
    attempt: int
    _report: Callable[[float, str], Awaitable[int]]
    _loop: asyncio.AbstractEventLoop

    async def report_progress(self, value: float, message: str = "") -> bool:
        """Store this run's progress; ``get_task_status`` shows it (``progress``,
        ``progress_message``).

        Args:
            value: any finite number (e.g. a fraction 0.0-1.0, or items done).
            message: a short text (at most 4,096 characters).

        Returns:
            False when this run no longer owns the task (its lease was taken over): nothing
            was written.

        Raises:
            InvalidArgumentError: value not a finite number, or message not a str.
            KewConnectionError: Redis unreachable.
        """
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidArgumentError(f"progress must be a finite number, got {value!r}")
        if not isinstance(message, str):
            raise InvalidArgumentError(f"message must be a str, got {type(message).__name__}")
        if len(message) > MAX_PROGRESS_MESSAGE:
            raise InvalidArgumentError(
                f"progress message is {len(message)} characters, over {MAX_PROGRESS_MESSAGE}"
            )
        return await self._report(float(value), message) == 0

    def report_progress_sync(self, value: float, message: str = "") -> bool:
        """:meth:`report_progress` for sync task functions (they run in a worker thread).

        Blocks the calling thread until the progress is stored (at most 30 s).

        Raises:
            TaskQueueError: called from the event loop's own thread (use the async method).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise TaskQueueError(
                "report_progress_sync() is for sync tasks; await report_progress()"
            )
        future = asyncio.run_coroutine_threadsafe(self.report_progress(value, message), self._loop)
        return future.result(timeout=30.0)


def current_task() -> TaskContext:
    """Return the handle of the task running in the current asyncio task (or its thread).

    Raises:
        TaskQueueError: when called outside a task run by kew.
    """
    ctx = _current.get()
    if ctx is None:
        raise TaskQueueError("current_task() is only available inside a task run by kew")
    return ctx


def set_current(ctx: TaskContext) -> None:
    """Bind ``ctx`` in the current context (the worker calls this at the start of a run)."""
    _current.set(ctx)
