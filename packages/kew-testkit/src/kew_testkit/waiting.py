"""Bounded waits on conditions: never a blind ``sleep(n)`` and hope.

This module owns :func:`wait_for_status`, :func:`drain` and :func:`wait_until`, and the probe that
tells a :class:`~kew_testkit.FakeClock` whether a manager still has due work
(:func:`manager_load`, :func:`watch_manager`). Every timeout here is in *real* seconds (the event
loop's clock), so a wait stays bounded even when the manager runs on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from kew.models import TaskInfo, TaskStatus

from .clock import FakeClock, Load

__all__ = [
    "UnexpectedStatusError",
    "drain",
    "manager_load",
    "wait_for_status",
    "wait_until",
    "watch_manager",
]

DEFAULT_TIMEOUT: Final = 10.0
_FIRST_INTERVAL: Final = 0.002
_MAX_INTERVAL: Final = 0.05


class UnexpectedStatusError(AssertionError):
    """A task reached a final status other than the one waited for (e.g. FAILED, not COMPLETED)."""


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Return as soon as ``condition()`` is true; check again after short, growing pauses.

    Args:
        condition: a function or async function returning a bool.
        timeout: real seconds (float) to wait at most. Default 10.0.
        message: text (or a function giving it) for the TimeoutError.

    Raises:
        TimeoutError: when the condition is still false after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = _FIRST_INTERVAL
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"{text} (waited {timeout} s)")
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        interval = min(interval * 2, _MAX_INTERVAL)


def _describe(info: TaskInfo | None) -> str:
    if info is None:
        return "no status read yet"
    error = f", error={info.error!r}" if info.error else ""
    return f"status {info.status.name}, retry_count={info.retry_count}{error}"


def _wanted(status: TaskStatus | str | Iterable[TaskStatus | str]) -> frozenset[TaskStatus]:
    if isinstance(status, TaskStatus | str):
        status = [status]
    return frozenset(TaskStatus(s) for s in status)


async def wait_for_status(
    manager: Any,
    task_id: str,
    status: TaskStatus | str | Iterable[TaskStatus | str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> TaskInfo:
    """Wait until task ``task_id`` has ``status`` (or one of several) and return its TaskInfo.

    For final statuses the manager's own ``wait_for_task`` is used (no polling); other statuses
    are polled.

    Args:
        manager: a kew ``TaskQueueManager``.
        task_id: the task's id.
        status: a TaskStatus (or its value, e.g. ``"retry"``), or several.
        timeout: real seconds (float) to wait at most. Default 10.0.

    Returns:
        The task's TaskInfo as last read.

    Raises:
        UnexpectedStatusError: (an AssertionError) the task reached a final status not waited for.
        TimeoutError: the status was not reached within ``timeout`` seconds.
    """
    wanted = _wanted(status)
    names = "/".join(sorted(s.name for s in wanted))
    last: TaskInfo | None = None

    final_only = wanted <= {TaskStatus.COMPLETED, TaskStatus.FAILED}

    async def reached() -> bool:
        nonlocal last
        if final_only and hasattr(manager, "wait_for_task"):
            last = await manager.wait_for_task(task_id)
        else:
            last = await manager.get_task_status(task_id)
        assert last is not None
        if last.status not in wanted and last.status.is_terminal:
            raise UnexpectedStatusError(f"task {task_id!r} ended {_describe(last)}, not {names}")
        return last.status in wanted

    try:
        async with asyncio.timeout(timeout):
            await wait_until(reached, timeout=timeout + 1)
    except TimeoutError:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                last = await manager.get_task_status(task_id)
        raise TimeoutError(
            f"task {task_id!r} did not reach {names} within {timeout} s ({_describe(last)})"
        ) from None
    assert last is not None
    return last


def _is_drained(status: Mapping[str, Any]) -> bool:
    busy = ("ready", "scheduled_due", "processing", "current_workers")
    return all(int(status.get(key) or 0) == 0 for key in busy)


async def drain(
    manager: Any, queue_name: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Wait until a queue (or every queue of the manager) has nothing left to do now: nothing
    ready, nothing scheduled whose due time has come, nothing running. Tasks deferred to a later
    time do not count (advance a fake clock to make them due).

    Args:
        manager: a kew ``TaskQueueManager``.
        queue_name: one queue; None (default) means every queue in ``manager.queues``.
        timeout: real seconds (float) to wait at most. Default 10.0.

    Raises:
        TimeoutError: with the queues' last status, when they did not drain in time.
    """
    names = [queue_name] if queue_name is not None else list(manager.queues)
    last: dict[str, Mapping[str, Any]] = {}

    async def drained() -> bool:
        for name in names:
            last[name] = await manager.get_queue_status(name)
        return all(_is_drained(s) for s in last.values())

    await wait_until(drained, timeout=timeout, message=lambda: f"queues not drained: {last}")


def _load_of(status: Mapping[str, Any]) -> Load:
    def n(key: str) -> int:
        return int(status.get(key) or 0)

    running = n("current_workers")
    has_slot = running < n("max_workers")
    breaker = str(status.get("circuit_breaker_status", "closed")).lower()
    held_back = (
        breaker == "open"
        or (breaker == "half-open" and n("processing") > 0)
        or bool(status.get("paused"))
        or bool(status.get("held_back"))  # the last claim was held back (pause, limits)
    )
    if (n("ready") or n("scheduled_due")) and has_slot and not held_back:
        return Load.DUE
    return Load.RUNNING if running or n("processing") else Load.IDLE


async def manager_load(manager: Any) -> Load:
    """Tell whether ``manager`` has due work not yet picked up (the FakeClock's probe).

    Args:
        manager: a kew ``TaskQueueManager``.

    Returns:
        :attr:`Load.DUE` when a queue with a free worker slot (and a closed breaker) has ready
        or due tasks; else :attr:`Load.RUNNING` when tasks run; else :attr:`Load.IDLE`.
    """
    load = Load.IDLE
    for name in list(manager.queues):
        queue_load = _load_of(await manager.get_queue_status(name))
        load = max(load, queue_load, key=lambda x: x.value)
    return load


def watch_manager(clock: FakeClock, manager: Any) -> Callable[[], None]:
    """Make ``clock.advance()`` wait, after each step, until ``manager`` picked up its due work.

    The ``kew_manager`` and ``kew_manager_factory`` fixtures do this for you.

    Args:
        clock: the FakeClock the manager runs on.
        manager: a kew ``TaskQueueManager``.

    Returns:
        A function that stops watching.
    """

    async def probe() -> Load:
        return await manager_load(manager)

    return clock.watch(probe)
