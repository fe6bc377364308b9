"""Retries (design.md §4): after failure n (1-based) the task waits ``retry_delay * 2**(n-1)`` s in
status RETRY, then runs again; ``retry_count`` counts the failed attempts that were retried; after
``max_retries`` retries the task is FAILED with the last error kept.

Timing is checked on the fake clock: each retry runs exactly at its due time, not 1 ms before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import assert_task_completed, assert_task_failed, wait_for_status, wait_until

Q = "flaky"
P = QueuePriority.MEDIUM
NO_BREAKER = 10**6  # keep the circuit breaker out of the way


async def _status(manager: Any, task_id: str) -> Any:
    return await manager.get_task_status(task_id)


@pytest.mark.parametrize(
    ("retry_delay", "waits"), [(1.0, [1, 2, 4]), (2.5, [2.5, 5, 10])], ids=["1s", "2.5s"]
)
async def test_retries_wait_in_status_retry_and_run_exactly_after_the_doubling_backoff(
    kew_manager: Any,
    probe: tasks.Probe,
    fake_clock: Any,
    retry_delay: float,
    waits: list[float],
) -> None:
    await kew_manager.create_queue(
        QueueConfig(
            Q,
            max_workers=1,
            max_retries=3,
            retry_delay=retry_delay,
            max_circuit_breaker_failures=NO_BREAKER,
        )
    )
    t0 = fake_clock.now()
    await kew_manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    expected_runs = [t0]
    for n, wait in enumerate(waits, start=1):
        info = await wait_until_retry_count(kew_manager, "t", n)
        assert info.status is TaskStatus.RETRY
        assert info.error == f"t attempt {n}"
        due = expected_runs[-1] + wait
        assert info.due_time == datetime.fromtimestamp(due)

        await fake_clock.advance(due - fake_clock.now() - 0.001)
        # a ready task makes the worker claim (and promote what is due) 1 ms before the retry
        nudge = f"nudge-{n}"
        await kew_manager.submit_task(nudge, Q, "rec", tasks.record, P, probe.name, nudge)
        assert_task_completed(await kew_manager.wait_for_task(nudge, timeout=10))
        await fake_clock.advance(0)
        info = await _status(kew_manager, "t")
        assert (info.status, info.retry_count) == (TaskStatus.RETRY, n)
        assert _runs_of(probe, "t") == expected_runs, "a retry ran before its due time"

        await fake_clock.advance(0.001)
        expected_runs.append(due)
        await wait_until(
            lambda n=n: len(_runs_of(probe, "t")) == n + 1, timeout=10, message="no retry"
        )

    final = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_failed(final, retry_count=3)
    assert final.error == "t attempt 4"
    assert _runs_of(probe, "t") == expected_runs


def _runs_of(probe: tasks.Probe, label: str) -> list[float]:
    return [when for name, when in probe.runs if name == label]


async def wait_until_retry_count(manager: Any, task_id: str, n: int) -> Any:
    info = await wait_for_status(manager, task_id, TaskStatus.RETRY, timeout=10)
    await wait_until(
        lambda: _retry_count_is(manager, task_id, n), timeout=10, message=f"retry_count != {n}"
    )
    return await manager.get_task_status(task_id) if info.retry_count != n else info


async def _retry_count_is(manager: Any, task_id: str, n: int) -> bool:
    info = await manager.get_task_status(task_id)
    return info.status is TaskStatus.RETRY and info.retry_count == n


async def test_a_task_that_succeeds_on_its_third_attempt_completes_with_retry_count_2(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2, max_retries=3, retry_delay=0.01))
    await kew_manager.submit_task("t", Q, "flaky", tasks.flaky, P, probe.name, "t", 2, {"ok": True})
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_completed(info, {"ok": True})
    assert info.retry_count == 2
    assert probe.labels == ["t", "t", "t"]


async def test_after_max_retries_the_task_is_failed_with_the_last_error(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(
            Q,
            max_workers=2,
            max_retries=2,
            retry_delay=0.01,
            max_circuit_breaker_failures=NO_BREAKER,
        )
    )
    await kew_manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_failed(info, retry_count=2)
    assert info.error == "t attempt 3"
    assert len(probe.runs) == 3


async def test_without_retries_the_first_failure_is_final(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=2))
    await kew_manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_failed(info, retry_count=0)
    assert info.error == "t attempt 1"
    assert len(probe.runs) == 1


async def test_retry_delay_zero_retries_at_once(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await kew_manager.create_queue(
        QueueConfig(
            Q, max_workers=1, max_retries=2, retry_delay=0, max_circuit_breaker_failures=NO_BREAKER
        )
    )
    t0 = fake_clock.now()
    await kew_manager.submit_task("t", Q, "fail", tasks.fail, P, probe.name, "t")
    info = await kew_manager.wait_for_task("t", timeout=10)  # the clock never moves
    assert_task_failed(info, retry_count=2)
    assert [when for _, when in probe.runs] == [t0, t0, t0]


async def test_every_task_of_a_failing_batch_gets_its_own_retries(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(
            Q,
            max_workers=3,
            max_retries=1,
            retry_delay=0.01,
            max_circuit_breaker_failures=NO_BREAKER,
        )
    )
    ids = [f"t{i}" for i in range(6)]
    for i in ids:
        await kew_manager.submit_task(i, Q, "fail", tasks.fail, P, probe.name, i)
    for i in ids:
        info = await kew_manager.wait_for_task(i, timeout=10)
        assert_task_failed(info, retry_count=1)
        assert info.error == f"{i} attempt 2"
    assert sorted(probe.labels) == sorted(ids * 2)
