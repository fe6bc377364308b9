"""Timeouts (design.md §4): an attempt running longer than ``task_timeout`` seconds is cancelled
(its ``finally`` runs) and counts as a failure: retried while retries are left, FAILED after, and
counted by the circuit breaker. A sync function that times out fails too.
"""

from __future__ import annotations

from typing import Any

import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed

Q = "slow"
P = QueuePriority.MEDIUM
TIMEOUT = 0.05  # real seconds


async def test_a_timed_out_coroutine_is_cancelled_and_its_finally_runs(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, task_timeout=TIMEOUT))
    await kew_manager.submit_task("t", Q, "hang", tasks.hang, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert probe.cancelled == ["t"]  # the coroutine saw CancelledError
    assert probe.finished == ["t"]  # and its finally block ran
    assert probe.current == 0
    assert_task_failed(info, retry_count=0)


async def test_a_timeout_is_a_failure_whose_error_says_it_timed_out(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, task_timeout=TIMEOUT))
    await kew_manager.submit_task("t", Q, "hang", tasks.hang, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert info.status is TaskStatus.FAILED
    assert info.error and "time" in info.error.lower(), info.error
    assert info.result is None
    assert info.completed_time is not None


async def test_a_timed_out_attempt_is_retried_while_retries_are_left(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=1, task_timeout=TIMEOUT, max_retries=2, retry_delay=0.01)
    )
    # hangs on attempt 1 only; attempt 2 returns at once
    await kew_manager.submit_task("t", Q, "hang", tasks.hang, P, probe.name, "t", 1, "done")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_completed(info, "done")
    assert info.retry_count == 1
    assert probe.labels == ["t", "t"]
    assert probe.cancelled == ["t"]


async def test_a_task_timing_out_on_every_attempt_fails_after_max_retries(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=2, task_timeout=TIMEOUT, max_retries=2, retry_delay=0.01)
    )
    await kew_manager.submit_task("t", Q, "hang", tasks.hang, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_failed(info, retry_count=2)
    assert probe.cancelled == ["t", "t", "t"]


async def test_a_sync_function_that_runs_too_long_fails_with_a_timeout(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, task_timeout=TIMEOUT))
    await kew_manager.submit_task("t", Q, "sleep", tasks.sleep_sync, P, probe.name, "t", 0.3)
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert info.status is TaskStatus.FAILED
    assert info.error and "time" in info.error.lower(), info.error
    assert info.result is None


async def test_timeouts_count_as_failures_for_the_circuit_breaker(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=1, task_timeout=TIMEOUT, max_circuit_breaker_failures=2)
    )
    for i in range(2):
        await kew_manager.submit_task(f"t{i}", Q, "hang", tasks.hang, P, probe.name, f"t{i}")
        assert (await kew_manager.wait_for_task(f"t{i}", timeout=10)).status is TaskStatus.FAILED
    status = await kew_manager.get_queue_status(Q)
    assert status["circuit_breaker_status"] == "open"
    assert await kew_manager.queues[Q].circuit_breaker.check_state() is False


async def test_a_task_finishing_within_its_timeout_is_not_affected(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=1, task_timeout=5))
    await kew_manager.submit_task("t", Q, "busy", tasks.busy, P, probe.name, "t", 0.01)
    assert_task_completed(await kew_manager.wait_for_task("t", timeout=10), "t")
    assert probe.cancelled == []
