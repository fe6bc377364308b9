"""Shutdown (design.md §4): stop claiming; wait up to ``timeout`` for running tasks; the ones still
running are cancelled and handed back to the queue at once (not failed, not lost). A manager is
usable as ``async with``; once shut down it refuses new work with QueueProcessorError.

"At once" is checked against the lease: managers here keep the default 30 s lease, and the
handed-back task is completed by another manager within a few seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import tasks
from kew import (
    QueueConfig,
    QueuePriority,
    QueueProcessorError,
    TaskQueueError,
    TaskQueueManager,
    TaskStatus,
)
from kew_testkit import assert_task_completed, wait_until

Q = "jobs"
P = QueuePriority.MEDIUM


async def _start_holding(manager: Any, probe: tasks.Probe, ids: list[str], running: int) -> None:
    for i in ids:
        await manager.submit_task(i, Q, "hold", tasks.hold, P, probe.name, i)
    await wait_until(lambda: probe.current == running, timeout=10, message="tasks not running")


@pytest.mark.parametrize("wait", [True, False], ids=["wait-with-timeout", "no-wait"])
async def test_shutdown_hands_running_tasks_back_at_once_not_failed_not_lost(
    kew_manager_factory: Any, probe: tasks.Probe, wait: bool
) -> None:
    first = await kew_manager_factory()
    reader = await kew_manager_factory()
    await first.create_queue(QueueConfig(Q, max_workers=2))
    ids = ["a", "b", "c"]
    await _start_holding(first, probe, ids, running=2)

    await first.shutdown(wait=wait, timeout=0.05)

    assert sorted(probe.cancelled) == ["a", "b"]  # the running ones were cancelled...
    assert probe.current == 0  # ...and their finally blocks ran
    for i in ids:
        info = await reader.get_task_status(i)
        assert info.status is TaskStatus.QUEUED, info  # ...and they are waiting again
        assert (info.retry_count, info.error) == (0, None)

    await reader.create_queue(QueueConfig(Q, max_workers=3))
    probe.open_gate()
    for i in ids:
        assert_task_completed(await reader.wait_for_task(i, timeout=5), i)
    assert sorted(probe.labels) == ["a", "a", "b", "b", "c"]


async def test_shutdown_waits_for_running_tasks_that_finish_within_the_timeout(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    manager = await kew_manager_factory()
    reader = await kew_manager_factory()
    await manager.create_queue(QueueConfig(Q, max_workers=2))
    await manager.submit_task("t", Q, "busy", tasks.busy, P, probe.name, "t", 0.05)
    await wait_until(lambda: probe.current == 1, timeout=10, message="task not running")
    await manager.shutdown(wait=True, timeout=10)
    assert probe.cancelled == []
    assert_task_completed(await reader.get_task_status("t"), "t")


async def test_async_with_initializes_the_manager_and_shuts_it_down(
    kew_manager_factory: Any, kew_redis_url: str, probe: tasks.Probe
) -> None:
    reader = await kew_manager_factory()  # same namespace; the factory deletes it afterwards
    async with TaskQueueManager(
        redis_url=kew_redis_url, namespace=kew_manager_factory.namespace
    ) as manager:
        await manager.create_queue(QueueConfig(Q, max_workers=1))
        await manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t")
        assert_task_completed(await manager.wait_for_task("t", timeout=10), "t")
    with pytest.raises(QueueProcessorError):
        await manager.submit_task("u", Q, "rec", tasks.record, P, probe.name, "u")
    assert_task_completed(await reader.get_task_status("t"), "t")


async def test_leaving_async_with_by_an_exception_still_shuts_down_gracefully(
    kew_manager_factory: Any, kew_redis_url: str, probe: tasks.Probe
) -> None:
    reader = await kew_manager_factory()
    with pytest.raises(KeyError):
        async with TaskQueueManager(
            redis_url=kew_redis_url, namespace=kew_manager_factory.namespace
        ) as manager:
            await manager.create_queue(QueueConfig(Q, max_workers=1))
            await manager.submit_task("t", Q, "busy", tasks.busy, P, probe.name, "t", 0.05)
            await wait_until(lambda: probe.current == 1, timeout=10, message="not running")
            raise KeyError("the application failed")
    assert probe.cancelled == []  # the running task was given time to finish
    assert_task_completed(await reader.get_task_status("t"), "t")
    with pytest.raises(QueueProcessorError):
        await manager.submit_task("u", Q, "rec", tasks.record, P, probe.name, "u")


async def test_a_manager_refuses_new_work_after_shutdown(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.shutdown()
    await kew_manager.shutdown()  # a second shutdown is harmless
    with pytest.raises(QueueProcessorError) as caught:
        await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t")
    assert isinstance(caught.value, TaskQueueError)
    with pytest.raises(QueueProcessorError):
        await kew_manager.submit_tasks(
            Q, [{"task_id": "u", "task_func": tasks.record, "args": (probe.name, "u")}]
        )
    with pytest.raises(QueueProcessorError):
        await kew_manager.create_queue(QueueConfig("another", max_workers=1))
    assert probe.runs == []


async def test_waiting_and_deferred_tasks_stay_queued_for_the_next_manager(
    kew_manager_factory: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    first = await kew_manager_factory()
    await first.create_queue(QueueConfig(Q, max_workers=1))
    await _start_holding(first, probe, ["run", "wait1", "wait2"], running=1)
    await first.submit_task("later", Q, "rec", tasks.record, P, probe.name, "later", _defer_by=60)
    await first.shutdown(wait=False)

    second = await kew_manager_factory()
    await second.create_queue(QueueConfig(Q, max_workers=3))
    probe.open_gate()
    for i in ["run", "wait1", "wait2"]:
        assert_task_completed(await second.wait_for_task(i, timeout=10))
    assert (await second.get_task_status("later")).status is TaskStatus.QUEUED
    await fake_clock.advance(60)
    assert_task_completed(await second.wait_for_task("later", timeout=10))
