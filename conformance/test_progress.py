"""Task progress (issue 7): inside a task, ``kew.current_task()`` is the run's own handle
(``task_id``, ``queue_name``, ``attempt``); ``await current_task().report_progress(value, message)``
stores a number and a text that ``get_task_status`` (and ``get_ongoing_tasks``) return as
``progress`` / ``progress_message``, from any manager; a sync task reports from its thread with
``current_task().report_progress_sync(value, message)``. Outside a task ``current_task()``
raises TaskQueueError; a value that is not a finite number, or a message that is not a str,
raises InvalidArgumentError (a ValueError).

Every test uses two managers on one Redis and namespace, as two processes would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ops_tasks
import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskQueueError, TaskStatus, current_task
from kew_testkit import assert_task_completed, wait_until

Q = "progressing"
P = QueuePriority.MEDIUM
BOUND = 10.0  # real seconds any wait may take at most


async def _pair(factory: Any) -> tuple[Any, Any]:
    """(runner, reader): the runner has the queue; the reader only looks (it cannot run it)."""
    runner = await factory()
    reader = await factory()
    await runner.create_queue(
        QueueConfig(Q, max_retries=1, retry_delay=0, max_circuit_breaker_failures=10**6)
    )
    return runner, reader


async def test_progress_reported_by_a_running_task_is_visible_from_another_manager(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner, reader = await _pair(kew_manager_factory)
    steps = [(0.0, "starting"), (0.5, "half way: 50/100 rows"), (42, "")]
    go = [asyncio.Event() for _ in steps]
    probe.values["job"] = go
    await runner.submit_task(
        "job", Q, "import", ops_tasks.progress_steps, P, probe.name, "job", steps
    )

    for i, (value, message) in enumerate(steps):

        async def reported(v: float = value, m: str = message) -> bool:
            info = await reader.get_task_status("job")
            return info.progress == v and info.progress_message == m

        await wait_until(reported, timeout=BOUND, message=f"progress step {i} not visible")
        info = await reader.get_task_status("job")
        assert info.status is TaskStatus.PROCESSING
        assert isinstance(info.progress, float)
        ongoing = [t for t in await reader.get_ongoing_tasks() if t.task_id == "job"]
        assert [(t.progress, t.progress_message) for t in ongoing] == [(float(value), message)]
        go[i].set()

    info = await reader.wait_for_task("job", timeout=BOUND)
    assert_task_completed(info, [True, True, True])  # every report was stored by its owner


async def test_a_task_that_never_reports_has_no_progress(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner, reader = await _pair(kew_manager_factory)
    await runner.submit_task("quiet", Q, "hold", ops_tasks.hold, P, probe.name, "quiet")
    info = await reader.get_task_status("quiet")
    assert (info.progress, info.progress_message) == (None, None)
    await wait_until(lambda: probe.current == 1, timeout=BOUND, message="task never started")
    info = await reader.get_task_status("quiet")
    assert info.status is TaskStatus.PROCESSING
    assert (info.progress, info.progress_message) == (None, None)
    probe.open_gate()
    assert_task_completed(await reader.wait_for_task("quiet", timeout=BOUND))


async def test_current_task_tells_the_run_its_id_queue_and_attempt(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner, reader = await _pair(kew_manager_factory)
    await runner.submit_task("once", Q, "ctx", ops_tasks.context_of_run, P, probe.name, "once")
    await runner.submit_task("twice", Q, "ctx", ops_tasks.context_of_run, P, probe.name, "twice", 1)
    assert_task_completed(await reader.wait_for_task("once", timeout=BOUND), ("once", Q, 1))
    info = await reader.wait_for_task("twice", timeout=BOUND)
    assert_task_completed(info, ("twice", Q, 2))  # the retry is the second attempt
    assert info.attempts == 2


async def test_current_task_works_in_a_sync_task_too(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """``current_task()`` is "the task running in the current asyncio task (or its thread)"."""
    runner, reader = await _pair(kew_manager_factory)
    await runner.submit_task(
        "threaded", Q, "ctx", ops_tasks.context_of_sync_run, P, probe.name, "threaded"
    )
    info = await reader.wait_for_task("threaded", timeout=BOUND)
    assert_task_completed(info, ("threaded", Q, 1))


async def test_a_sync_task_reports_progress_from_its_thread(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    runner, reader = await _pair(kew_manager_factory)
    await runner.submit_task(
        "sync-job", Q, "sync", ops_tasks.progress_sync, P, probe.name, "sync-job", 0.3, "rows"
    )

    async def reported() -> bool:
        info = await reader.get_task_status("sync-job")
        return (info.progress, info.progress_message) == (0.3, "rows")

    await wait_until(reported, timeout=BOUND, message="progress of a sync task not visible")
    assert (await reader.get_task_status("sync-job")).status is TaskStatus.PROCESSING
    probe.open_gate()
    assert_task_completed(await reader.wait_for_task("sync-job", timeout=BOUND), True)

    # in an async task the blocking variant would block the event loop: it refuses
    await runner.submit_task("in-loop", Q, "async", ops_tasks.progress_sync_in_loop, P)
    info = await reader.wait_for_task("in-loop", timeout=BOUND)
    assert_task_completed(info, "TaskQueueError")


async def test_current_task_outside_a_task_raises_task_queue_error() -> None:
    with pytest.raises(TaskQueueError):
        current_task()
    with pytest.raises(TaskQueueError):
        await asyncio.create_task(_ask_for_current_task())


async def _ask_for_current_task() -> None:
    current_task()


async def test_bad_progress_values_raise_invalid_argument_error_inside_the_task(
    kew_manager_factory: Any,
) -> None:
    runner, reader = await _pair(kew_manager_factory)
    await runner.submit_task("bad", Q, "bad", ops_tasks.progress_bad_values, P)
    info = await reader.wait_for_task("bad", timeout=BOUND)
    assert_task_completed(info, ["InvalidArgumentError/ValueError"] * 6)
    assert (info.progress, info.progress_message) == (None, None)  # nothing bad was stored
