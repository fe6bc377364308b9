"""Concurrency (design.md §4): ``max_workers`` is a hard per-process limit for a queue, never
exceeded, also while tasks retry, time out or are cancelled.

Measured, not inferred: every instrumented task enters and leaves a counter in its probe
(:attr:`tasks.Probe.peak` is the most runs that were ever inside at once). Per-manager limits in a
shared queue are measured with hooks: ``on_task_start`` .. ``on_task_complete`` brackets each run,
so the number of open brackets of a manager bounds its concurrent runs from above.
"""

from __future__ import annotations

from typing import Any

import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskStatus
from kew_testkit import drain, wait_until

Q = "work"
P = QueuePriority.MEDIUM


@pytest.mark.parametrize("limit", [1, 3, 8])
async def test_max_workers_is_reached_and_never_exceeded(
    kew_manager: Any, probe: tasks.Probe, limit: int
) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=limit))
    for i in range(limit * 3):
        await kew_manager.submit_task(f"t-{i}", Q, "hold", tasks.hold, P, probe.name, f"t-{i}")
    await wait_until(lambda: probe.current == limit, timeout=10, message="slots not filled")
    status = await kew_manager.get_queue_status(Q)
    assert status["current_workers"] == limit
    assert status["queued_tasks"] == limit * 2
    assert len(await kew_manager.get_ongoing_tasks()) == limit
    probe.open_gate()
    await drain(kew_manager, Q, timeout=20)
    assert probe.peak == limit
    assert len(probe.runs) == limit * 3


async def test_max_workers_holds_for_many_short_tasks(kew_manager: Any, probe: tasks.Probe) -> None:
    await kew_manager.create_queue(QueueConfig(Q, max_workers=4))
    probe.open_gate()
    ids = [f"t-{i}" for i in range(120)]
    for i in ids:
        await kew_manager.submit_task(i, Q, "busy", tasks.busy, P, probe.name, i, 0.002)
    await drain(kew_manager, Q, timeout=30)
    assert probe.peak <= 4
    assert sorted(probe.labels) == sorted(ids)


async def test_max_workers_holds_while_tasks_retry(kew_manager: Any, probe: tasks.Probe) -> None:
    await kew_manager.create_queue(
        QueueConfig(
            Q, max_workers=3, max_retries=2, retry_delay=0.01, max_circuit_breaker_failures=10**6
        )
    )
    ids = [f"r-{i}" for i in range(12)]
    for i in ids:
        await kew_manager.submit_task(i, Q, "busy", tasks.busy, P, probe.name, i, 0.005, True)
    for i in ids:
        info = await kew_manager.wait_for_task(i, timeout=20)
        assert info.status is TaskStatus.FAILED
        assert info.retry_count == 2
    assert len(probe.runs) == 36
    assert probe.peak <= 3


async def test_max_workers_holds_while_tasks_time_out(kew_manager: Any, probe: tasks.Probe) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=2, task_timeout=0.05, max_circuit_breaker_failures=10**6)
    )
    ids = [f"h-{i}" for i in range(6)]
    for i in ids:
        await kew_manager.submit_task(i, Q, "hang", tasks.hang, P, probe.name, i)
    for i in ids:
        assert (await kew_manager.wait_for_task(i, timeout=20)).status is TaskStatus.FAILED
    assert sorted(probe.cancelled) == ids
    assert probe.peak <= 2


async def test_a_timed_out_sync_task_keeps_its_slot_until_its_thread_ends(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await kew_manager.create_queue(
        QueueConfig(Q, max_workers=2, task_timeout=0.05, max_circuit_breaker_failures=10**6)
    )
    ids = [f"s-{i}" for i in range(6)]
    for i in ids:
        await kew_manager.submit_task(i, Q, "sleep", tasks.sleep_sync, P, probe.name, i, 0.3)
    for i in ids:  # each fails at its timeout, while its thread may still run on
        assert (await kew_manager.wait_for_task(i, timeout=30)).status is TaskStatus.FAILED
    await wait_until(lambda: len(probe.finished) == len(ids), timeout=30, message="threads stuck")
    assert probe.peak <= 2  # yet no more than max_workers threads ever ran at once
    assert sorted(probe.finished) == ids


async def test_max_workers_holds_when_running_tasks_are_cancelled_by_shutdown(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    first = await kew_manager_factory()
    await first.create_queue(QueueConfig(Q, max_workers=2))
    ids = [f"c-{i}" for i in range(6)]
    for i in ids:
        await first.submit_task(i, Q, "hold", tasks.hold, P, probe.name, i)
    await wait_until(lambda: probe.current == 2, timeout=10, message="slots not filled")
    await first.shutdown(wait=True, timeout=0.01)
    assert probe.current == 0  # the cancelled runs have left (their finally ran)
    assert len(probe.cancelled) == 2

    second = await kew_manager_factory()
    await second.create_queue(QueueConfig(Q, max_workers=2))
    await wait_until(lambda: probe.current == 2, timeout=10, message="second manager idle")
    probe.open_gate()
    for i in ids:
        assert (await second.wait_for_task(i, timeout=10)).status is TaskStatus.COMPLETED
    assert probe.peak == 2


async def test_two_managers_sharing_a_queue_each_respect_their_own_limit(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    open_runs = {"a": 0, "b": 0}
    peaks = {"a": 0, "b": 0}
    ran = {"a": 0, "b": 0}

    def hooks(name: str) -> dict[str, Any]:
        def start(info: Any) -> None:
            open_runs[name] += 1
            ran[name] += 1
            peaks[name] = max(peaks[name], open_runs[name])

        def end(info: Any, exc: Any = None) -> None:
            open_runs[name] -= 1

        return {"on_task_start": start, "on_task_complete": end, "on_task_fail": end}

    a = await kew_manager_factory(**hooks("a"))
    b = await kew_manager_factory(**hooks("b"))
    await a.create_queue(QueueConfig(Q, max_workers=2))
    await b.create_queue(QueueConfig(Q, max_workers=3))
    ids = [f"t-{i:02d}" for i in range(25)]
    for i in ids:
        await a.submit_task(i, Q, "hold", tasks.hold, P, probe.name, i)
    await wait_until(lambda: probe.current == 5, timeout=10, message="slots not filled")
    assert open_runs == {"a": 2, "b": 3}
    assert (await a.get_queue_status(Q))["current_workers"] == 2
    assert (await b.get_queue_status(Q))["current_workers"] == 3
    probe.open_gate()
    for i in ids:
        assert (await b.wait_for_task(i, timeout=20)).status is TaskStatus.COMPLETED
    assert peaks == {"a": 2, "b": 3}
    assert ran["a"] + ran["b"] == 25
    assert probe.peak == 5
