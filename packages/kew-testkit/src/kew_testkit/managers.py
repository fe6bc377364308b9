"""Managers for tests: created in one namespace, torn down, checked for leaked running tasks.

This module owns :class:`ManagerFactory`, the engine under the ``kew_manager`` and
``kew_manager_factory`` fixtures (kept here so that the plugin stays a few lines and the logic can
be used without pytest). A factory makes initialized ``TaskQueueManager`` objects that share one
Redis and, by default, one fresh namespace, so that they cooperate like processes of one fleet.
Closing it shuts them all down, deletes exactly the namespaces they used and raises
:class:`LeakedTasksError` if a task was still running when the test ended.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

from kew.connection import create_client
from kew.manager import TaskQueueManager

from .clock import FakeClock
from .namespace import delete_namespace, unique_namespace
from .waiting import wait_until, watch_manager

__all__ = ["LeakedTasksError", "ManagerFactory", "running_task_ids"]

DEFAULT_LEAK_GRACE: Final = 1.0
DEFAULT_SHUTDOWN_TIMEOUT: Final = 5.0
# On a FakeClock an idle worker still wakes every ``idle_wait`` virtual seconds with nothing to do;
# each such wake costs a real settle in FakeClock.advance. Due tasks wake it through the clock and
# submits through Redis, so a long cap loses nothing and makes advancing by days cheap.
FAKE_CLOCK_IDLE_WAIT: Final = 3600.0


class LeakedTasksError(AssertionError):
    """Tasks were still running in a test's manager when the test ended."""


async def _running(manager: Any) -> int:
    total = 0
    for name in list(manager.queues):
        total += int((await manager.get_queue_status(name)).get("current_workers") or 0)
    return total


async def running_task_ids(manager: Any) -> list[str]:
    """Return the ids of the tasks ``manager`` is running in this process right now.

    Args:
        manager: a kew ``TaskQueueManager``.

    Returns:
        Task ids, sorted; when this process runs tasks that the fleet-wide list
        (``get_ongoing_tasks``) does not show yet, a ``<n running task(s)>`` placeholder.
    """
    count = await _running(manager)
    if count == 0:
        return []
    ids = sorted({info.task_id for info in await manager.get_ongoing_tasks()})
    return ids or [f"<{count} running task(s)>"]


class ManagerFactory:
    """Creates initialized managers on one Redis for one test, and cleans up after it.

    Example::

        factory = ManagerFactory("redis://127.0.0.1:6390/0")
        a = await factory()
        b = await factory()          # same namespace: a and b share the queues' data
        ...
        await factory.close()        # shut down, delete the namespace, report leaks

    Args:
        redis_url: the Redis every manager uses (``memory://`` included).
        namespace: the namespace managers get by default; None (default) picks a unique one.
        clock: a clock for every manager; None (default) keeps kew's system clock. A FakeClock
            is also watched (see :func:`~kew_testkit.watch_manager`), and its managers get
            ``idle_wait=3600`` unless given one, so that idle workers do not wake every 30
            virtual seconds for nothing.
        leak_grace: real seconds (float) given to tasks still running at close to finish before
            they count as leaked. Default 1.0.
        shutdown_timeout: seconds (float) passed to ``shutdown(wait=True, timeout=...)``.
            Default 5.0.
    """

    def __init__(
        self,
        redis_url: str,
        namespace: str | None = None,
        *,
        clock: Any = None,
        leak_grace: float = DEFAULT_LEAK_GRACE,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        self.redis_url = redis_url
        self.namespace = namespace or unique_namespace()
        self.clock = clock
        self.leak_grace = leak_grace
        self.shutdown_timeout = shutdown_timeout
        self.managers: list[TaskQueueManager] = []
        self._namespaces: set[str] = set()
        self._unwatch: list[Any] = []

    async def __call__(self, **kwargs: Any) -> TaskQueueManager:
        """Create and initialize a manager.

        Args:
            **kwargs: ``TaskQueueManager`` keyword arguments; ``redis_url``, ``namespace`` and
                ``clock`` default to the factory's.

        Returns:
            The initialized manager; the factory shuts it down on :meth:`close`.
        """
        kwargs.setdefault("redis_url", self.redis_url)
        kwargs.setdefault("namespace", self.namespace)
        if self.clock is not None:
            kwargs.setdefault("clock", self.clock)
        if isinstance(kwargs.get("clock"), FakeClock):
            kwargs.setdefault("idle_wait", FAKE_CLOCK_IDLE_WAIT)
        manager = TaskQueueManager(**kwargs)
        await manager.initialize()
        self.managers.append(manager)
        self._namespaces.add(kwargs["namespace"])
        if isinstance(kwargs.get("clock"), FakeClock):
            self._unwatch.append(watch_manager(kwargs["clock"], manager))
        return manager

    async def _leaks(self, manager: TaskQueueManager) -> list[str]:
        try:
            with contextlib.suppress(TimeoutError):
                await wait_until(lambda: _idle(manager), timeout=self.leak_grace)
            return await running_task_ids(manager)
        except Exception:  # the test shut it down itself, or its Redis is gone
            return []

    async def close(self) -> None:
        """Shut every manager down, delete the namespaces used, then report leaked tasks.

        Raises:
            LeakedTasksError: (an AssertionError) naming the tasks that were still running.
        """
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch.clear()
        leaks = sorted({task for m in self.managers for task in await self._leaks(m)})
        try:
            for manager in self.managers:
                await manager.shutdown(wait=not leaks, timeout=self.shutdown_timeout)
        finally:
            self.managers.clear()
            await self._delete_namespaces()
        if leaks:
            raise LeakedTasksError(
                f"{len(leaks)} kew task(s) were still running when the test ended: "
                f"{', '.join(leaks)}; wait for them (wait_for_status, drain) or shut the "
                "manager down in the test"
            )

    async def _delete_namespaces(self) -> None:
        client = create_client(self.redis_url)
        try:
            for namespace in sorted(self._namespaces):
                await delete_namespace(client, namespace)
        finally:
            await client.aclose()
        self._namespaces.clear()


async def _idle(manager: Any) -> bool:
    return await _running(manager) == 0
