"""Status and results (design.md §3): the public API users know from kew 0.2.x, plus
``wait_for_task``. ``get_task_status`` returns a TaskInfo with task_id, task_type, queue_name,
priority, status, queued/started/completed times, result, error and retry_count;
``get_ongoing_tasks`` lists the tasks running in any process; ``get_queue_status`` has at least
name, max_workers, current_workers (this process), queued_tasks and circuit_breaker_status;
``wait_for_task`` returns at the terminal state or raises TaskTimeoutError (a TimeoutError);
unknown ids raise TaskNotFoundError. Async tasks run in the application's own event loop, sync
functions in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any

import kew
import kew.exceptions
import kew.models
import pytest
import tasks
from kew import (
    QueueConfig,
    QueuePriority,
    TaskInfo,
    TaskNotFoundError,
    TaskQueueError,
    TaskStatus,
    TaskTimeoutError,
)
from kew_testkit import assert_task_completed, drain, wait_for_status, wait_until

Q = "status"
P = QueuePriority.HIGH

PUBLIC_NAMES = [
    "TaskQueueManager",
    "QueueConfig",
    "QueuePriority",
    "TaskStatus",
    "TaskInfo",
    "RedisCircuitBreaker",
    "TaskQueueError",
    "TaskAlreadyExistsError",
    "TaskNotFoundError",
    "QueueNotFoundError",
    "QueueProcessorError",
]


def test_the_public_names_of_kew_0_2_are_importable_from_kew_and_their_modules() -> None:
    for name in PUBLIC_NAMES:
        assert hasattr(kew, name), name
    for name in [
        "TaskQueueError",
        "TaskAlreadyExistsError",
        "TaskNotFoundError",
        "QueueNotFoundError",
        "QueueProcessorError",
    ]:
        assert getattr(kew.exceptions, name) is getattr(kew, name)
        assert issubclass(getattr(kew, name), kew.TaskQueueError)
    for name in ["QueueConfig", "QueuePriority", "TaskStatus", "TaskInfo"]:
        assert getattr(kew.models, name) is getattr(kew, name)


def test_task_statuses_and_priorities_have_the_values_users_know() -> None:
    assert {s.value for s in TaskStatus} >= {"queued", "processing", "completed", "failed", "retry"}
    assert [QueuePriority.HIGH.value, QueuePriority.MEDIUM.value, QueuePriority.LOW.value] == [
        1,
        2,
        3,
    ]


async def test_a_completed_task_reports_every_field(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    submitted = await kew_manager.submit_task("t", Q, "adder", tasks.add, P, 2, b=3)
    assert isinstance(submitted, TaskInfo)
    assert (submitted.task_id, submitted.task_type, submitted.queue_name) == ("t", "adder", Q)
    assert submitted.status is TaskStatus.QUEUED
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert isinstance(info, TaskInfo)
    assert (info.task_id, info.task_type, info.queue_name) == ("t", "adder", Q)
    assert info.priority == QueuePriority.HIGH.value
    assert info.status is TaskStatus.COMPLETED
    assert (info.result, info.error, info.retry_count) == (5, None, 0)
    assert all(
        isinstance(t, datetime) for t in (info.queued_time, info.started_time, info.completed_time)
    )
    assert info.queued_time <= info.started_time <= info.completed_time
    assert await kew_manager.get_task_status("t") == info


async def test_a_failed_task_reports_its_error_and_no_result(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task("t", Q, "boom", tasks.fail_with, P, "card declined")
    info = await kew_manager.wait_for_task("t", timeout=10)  # returns; does not raise
    assert info.status is TaskStatus.FAILED
    assert (info.error, info.result, info.retry_count) == ("card declined", None, 0)
    assert info.completed_time is not None


async def test_a_running_task_is_processing_and_listed_as_ongoing(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    worker = await kew_manager_factory()
    observer = await kew_manager_factory()
    await worker.create_queue(QueueConfig(Q, max_workers=2))
    await worker.submit_task("t", Q, "hold", tasks.hold, P, probe.name, "t")
    info = await wait_for_status(worker, "t", TaskStatus.PROCESSING, timeout=10)
    assert info.started_time is not None and info.completed_time is None
    for manager in (worker, observer):  # ongoing tasks are seen from any process
        ongoing = await manager.get_ongoing_tasks()
        assert [(i.task_id, i.status) for i in ongoing] == [("t", TaskStatus.PROCESSING)]
    probe.open_gate()
    assert_task_completed(await observer.wait_for_task("t", timeout=10))
    assert await worker.get_ongoing_tasks() == []


async def test_queue_status_reports_name_limits_workers_waiting_tasks_and_breaker(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    worker = await kew_manager_factory()
    other = await kew_manager_factory()
    await worker.create_queue(QueueConfig(Q, max_workers=2))
    await other.create_queue(QueueConfig(Q, max_workers=5))
    idle = await worker.get_queue_status(Q)
    assert {
        k: idle[k]
        for k in (
            "name",
            "max_workers",
            "current_workers",
            "queued_tasks",
            "circuit_breaker_status",
        )
    } == {
        "name": Q,
        "max_workers": 2,
        "current_workers": 0,
        "queued_tasks": 0,
        "circuit_breaker_status": "closed",
    }
    await other.shutdown()  # only `worker` consumes from now on
    for i in range(5):
        await worker.submit_task(f"t{i}", Q, "hold", tasks.hold, P, probe.name, f"t{i}")
    await worker.submit_task("later", Q, "hold", tasks.hold, P, probe.name, "l", _defer_by=3600)
    await wait_until(lambda: probe.current == 2, timeout=10, message="not running")
    busy = await worker.get_queue_status(Q)
    assert (busy["current_workers"], busy["queued_tasks"]) == (2, 4)

    probe.open_gate()
    await drain(worker, Q, timeout=10)
    assert (await worker.get_queue_status(Q))["current_workers"] == 0


async def test_wait_for_task_raises_task_timeout_error_which_is_a_timeout_error(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task("t", Q, "hold", tasks.hold, P, probe.name, "t")
    with pytest.raises(TaskTimeoutError) as caught:
        await kew_manager.wait_for_task("t", timeout=0.05)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, TaskQueueError)
    # the task itself is not affected by the caller giving up
    assert (await kew_manager.get_task_status("t")).status is TaskStatus.PROCESSING
    probe.open_gate()
    assert_task_completed(await kew_manager.wait_for_task("t", timeout=10))


async def test_wait_for_task_sees_a_task_finish_in_another_manager(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    worker = await kew_manager_factory()
    waiter = await kew_manager_factory()
    await worker.create_queue(QueueConfig(Q, max_workers=1))
    await worker.submit_task("t", Q, "hold", tasks.hold, P, probe.name, "t", "done")
    waiting = asyncio.ensure_future(waiter.wait_for_task("t", timeout=10))
    await wait_until(lambda: probe.current == 1, timeout=10, message="not running")
    assert not waiting.done()
    probe.open_gate()
    assert_task_completed(await waiting, "done")


async def test_unknown_task_ids_raise_task_not_found_error(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    for call in (
        kew_manager.get_task_status("missing"),
        kew_manager.wait_for_task("missing", timeout=1),
    ):
        with pytest.raises(TaskNotFoundError) as caught:
            await call
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, TaskQueueError)


async def test_a_task_submitted_by_one_manager_is_visible_to_another(
    kew_manager_factory: Any,
) -> None:
    a = await kew_manager_factory()
    b = await kew_manager_factory()
    await a.create_queue(QueueConfig(Q, max_workers=1))
    await a.submit_task("t", Q, "adder", tasks.add, P, 1, 1)
    assert_task_completed(await b.wait_for_task("t", timeout=10), 2)
    assert (await b.get_task_status("t")).queue_name == Q


async def test_async_tasks_run_in_the_applications_own_event_loop(kew_manager: Any) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1))
    await kew_manager.submit_task("t", Q, "loop", tasks.running_loop_id, P)
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_completed(info, id(asyncio.get_running_loop()))


async def test_sync_functions_run_in_a_thread_without_blocking_the_loop(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task("ident", Q, "sync", tasks.sync_thread_ident, P)
    info = await kew_manager.wait_for_task("ident", timeout=10)
    assert info.status is TaskStatus.COMPLETED
    assert info.result != threading.get_ident()
    # a sync task that waits for the event loop: it would deadlock if it ran in the loop
    await kew_manager.submit_task("waits", Q, "sync", tasks.sync_waits_for_loop, P, probe.name, "w")
    await wait_until(lambda: probe.labels == ["w"], timeout=10, message="sync task not started")
    probe.open_gate()
    assert_task_completed(await kew_manager.wait_for_task("waits", timeout=10), True)
    await kew_manager.submit_task("sum", Q, "sync", tasks.sync_add, P, 20, 22)
    assert_task_completed(await kew_manager.wait_for_task("sum", timeout=10), 42)


async def test_cleanup_deletes_the_namespace_records(kew_manager_factory: Any) -> None:
    manager = await kew_manager_factory()
    await manager.create_queue(QueueConfig(Q, max_workers=1))
    await manager.submit_task("t", Q, "adder", tasks.add, P, 1, 2)
    assert_task_completed(await manager.wait_for_task("t", timeout=10))
    await manager.cleanup()
    with pytest.raises(TaskNotFoundError):
        await manager.get_task_status("t")
